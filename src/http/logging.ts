/**
 * Request observation: an `X-Request-ID` accepted or generated and echoed, one log line per request (text or
 * JSON), the request metrics and the audit trail of Binary requests. One plain observer serves both ways a
 * request is answered: Elysia's hooks (onRequest, then onAfterHandle for a handler's response or onError for
 * a failure, before errors.ts renders it) and the hot read served by Bun's router (hot-read.ts). A global
 * mapResponse or onAfterResponse hook would be simpler but makes Elysia copy every Response.
 */
import type { Server } from "bun";
import { Elysia } from "elysia";
import type { LogFormat } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";
import { isoTime } from "../lines.ts";
import { type AuditSink, auditedInteraction, auditedVersion } from "../security/audit.ts";
import type { Principal } from "../security/scopes.ts";
import { knownError } from "./errors.ts";
import type { Metrics } from "./ops.ts";

/** A client's request id is kept when it is 1-128 characters of this set, else a new one is generated. */
const REQUEST_ID = /^[A-Za-z0-9._:@+=/-]{1,128}$/;

/** The client's `X-Request-ID` when it is sane, else a new random one. */
export function acceptRequestId(header: string | null): string {
  return header !== null && REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/** What one request log line says. */
export interface RequestRecord {
  time: Date;
  requestId: string;
  method: string;
  /** The path only: a query string may carry secrets (`access_token=`), so it is never logged. */
  path: string;
  status: number;
  /** Response body bytes, from its Content-Length; null when unknown (streamed). */
  bytes: number | null;
  ms: number;
}

/** One log line: `time id method path status bytes ms` as text, or a JSON object. */
export function toLogLine(record: RequestRecord, format: "text" | "json"): string {
  const ms = Math.round(record.ms * 10) / 10;
  if (format === "json") {
    return JSON.stringify({ ...record, time: isoTime(record.time), ms });
  }
  const bytes = record.bytes === null ? "-" : String(record.bytes);
  return `${isoTime(record.time)} ${record.requestId} ${record.method} ${record.path} ${record.status} ${bytes} ${ms}ms`;
}

/** The path of a request URL without its query string, without building a URL object. */
export function pathOf(url: string): string {
  // Bun gives a request without Host its bare path.
  const scheme = url.indexOf("://");
  const start = scheme < 0 ? url.indexOf("/") : url.indexOf("/", scheme + 3);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const end = query >= 0 ? query : hash >= 0 ? hash : url.length;
  return url.slice(start, end);
}

/**
 * A function of a request's method and route pattern, worked out once per pair: there are few of them, and
 * a lookup then builds no string (every request asks).
 */
function perRoute<T>(compute: (method: string, route: string) => T): (method: string, route: string) => T {
  const byMethod = new Map<string, Map<string, T>>();
  return (method, route) => {
    let routes = byMethod.get(method);
    if (!routes) {
      routes = new Map();
      byMethod.set(method, routes);
    }
    if (!routes.has(route)) routes.set(route, compute(method, route));
    return routes.get(route) as T;
  };
}

/** Names each route pattern's interaction for the metrics (`read`, `create`...); others are `other`. */
export function interactionsOf(basePath: string): (method: string, route: string | undefined) => string {
  const b = basePath;
  const table = new Map<string, string>([
    [`GET ${b}/Binary/:id`, "read"],
    [`HEAD ${b}/Binary/:id`, "read"],
    [`GET ${b}/Binary/:id/_history/:vid`, "vread"],
    [`HEAD ${b}/Binary/:id/_history/:vid`, "vread"],
    [`GET ${b}/Binary/:id/_history`, "history"],
    [`GET ${b}/Binary`, "search"],
    [`POST ${b}/Binary/_search`, "search"],
    [`GET ${b}/Binary/_history`, "history-type"],
    [`POST ${b}/Binary`, "create"],
    [`PUT ${b}/Binary/:id`, "update"],
    [`DELETE ${b}/Binary/:id`, "delete"],
    [`GET ${b}/metadata`, "capabilities"],
    [`HEAD ${b}/metadata`, "capabilities"],
    ["GET /healthz", "ops"],
    ["HEAD /healthz", "ops"],
    ["GET /readyz", "ops"],
    ["HEAD /readyz", "ops"],
    ["GET /metrics", "ops"],
  ]);
  const known = perRoute((method, route) => table.get(`${method} ${route}`) ?? "other");
  return (method, route) => (route === undefined ? "other" : known(method, route));
}

/** What a request started with: kept from the first hook to the last. */
export interface Observation {
  start: number;
  requestId: string;
}

/** What the routing knew of a request: its route pattern, its path parameters and its caller. */
export interface RouteFacts {
  route: string | undefined;
  params: Readonly<Record<string, string | undefined>> | undefined;
  principal: Principal | undefined;
}

/** How a request was answered. */
export interface Outcome {
  status: number;
  /** The response's headers, or an error's (the audit trail names the version they carry). */
  headers: Headers | Readonly<Record<string, string>>;
  /** Response body bytes; null when unknown (streamed). */
  bytes: number | null;
}

export interface Observer {
  /** Starts observing a request: its start time and request id. */
  begin(request: Request): Observation;
  /**
   * Records a finished request: metrics, the log line, and the audit event of a Binary route. Null when
   * nothing is audited or the event is already appended (a read's); the 503 to answer instead when it could
   * not be (no access without its audit record); else a promise of one of the two (a write's, whose event
   * waits for its fsync).
   */
  record(
    observation: Observation,
    request: Request,
    server: Server<unknown> | null,
    facts: RouteFacts,
    outcome: Outcome,
  ): Response | Promise<Response | null> | null;
  /**
   * Stamps X-Request-ID on a response and records the request it answers; gives the response to send: this
   * one, once its audit event is appended, or the 503 that replaces it.
   */
  responded(
    observation: Observation,
    request: Request,
    server: Server<unknown> | null,
    facts: RouteFacts,
    response: Response,
  ): Response | Promise<Response>;
}

function contentLength(headers: Headers): number | null {
  const value = headers.get("content-length");
  return value === null ? null : Number(value);
}

/** The status an error is answered with, as errors.ts renders it. */
function errorStatus(error: unknown, code: unknown, request: Request): number {
  return code === "NOT_FOUND" ? 404 : (knownError(error, request)?.status ?? 500);
}

/**
 * Answers up to this size wait for the audit events of their turn of the event loop, appended together;
 * Bun sends a larger Response far more slowly when it is not returned in the call that received its request.
 */
const BATCHED_ANSWER_BYTES = 8 * 1024;

/** How long a client is asked to wait after a 503 for an audit event that could not be appended. */
const AUDIT_RETRY_AFTER_S = 30;

/** The observer of every request: metrics always, the request log unless off, the audit trail when given. */
export function createObserver({
  format,
  log,
  metrics,
  basePath,
  audit,
  renderError,
}: {
  format: LogFormat;
  log: (line: string) => void;
  metrics: Metrics;
  basePath: string;
  audit: AuditSink | undefined;
  /** errors.ts's renderer (with the CORS headers): the 503 of a request whose event was not appended. */
  renderError: (error: FhirError, request: Request) => Response;
}): Observer {
  const interactionOf = interactionsOf(basePath);
  const auditedOf = perRoute((method, route) =>
    route.startsWith(`${basePath}/`) ? auditedInteraction(method, route.slice(basePath.length)) : null,
  );
  /** Metrics and the log line of a request, with the status it was answered with. */
  const observe = (
    observation: Observation,
    request: Request,
    route: string | undefined,
    time: Date,
    status: number,
    bytes: number | null,
  ): void => {
    const ms = performance.now() - observation.start;
    const { method } = request;
    metrics.observe(
      interactionOf(method, route),
      status,
      ms / 1000,
      contentLength(request.headers) ?? 0,
      bytes ?? 0,
    );
    if (format !== "off") {
      const path = pathOf(request.url);
      log(toLogLine({ time, requestId: observation.requestId, method, path, status, bytes, ms }, format));
    }
  };
  const record: Observer["record"] = (observation, request, server, facts, { status, headers, bytes }) => {
    const time = new Date();
    const interaction = audit && facts.route !== undefined ? auditedOf(request.method, facts.route) : null;
    if (!audit || !interaction) {
      observe(observation, request, facts.route, time, status, bytes);
      return null;
    }
    const named = auditedVersion(headers);
    // The sink has logged why an event could not be appended. Nothing of the answer goes out without its
    // event in the trail: a 503 replaces it.
    const refuse = (): Response => {
      const refused = renderError(
        new FhirError(
          503,
          "transient",
          "The audit trail cannot be written at the moment, so the request is not answered",
          { "retry-after": String(AUDIT_RETRY_AFTER_S) },
        ),
        request,
      );
      refused.headers.set("x-request-id", observation.requestId);
      observe(observation, request, facts.route, time, refused.status, contentLength(refused.headers));
      return refused;
    };
    let appended: Promise<void> | null;
    try {
      appended = audit.record(
        {
          time,
          requestId: observation.requestId,
          interaction,
          status,
          who: facts.principal?.subject ?? "unauthenticated",
          // Asked before the response is sent: afterwards the connection may be gone.
          address: server?.requestIP(request)?.address ?? null,
          id: facts.params?.id ?? named.id,
          versionId: facts.params?.vid ?? named.versionId,
        },
        { inBatch: bytes !== null && bytes <= BATCHED_ANSWER_BYTES },
      );
    } catch {
      return refuse();
    }
    if (appended === null) {
      observe(observation, request, facts.route, time, status, bytes);
      return null;
    }
    return appended.then(() => {
      observe(observation, request, facts.route, time, status, bytes);
      return null;
    }, refuse);
  };
  return {
    begin: (request) => ({
      start: performance.now(),
      requestId: acceptRequestId(request.headers.get("x-request-id")),
    }),
    record,
    responded(observation, request, server, facts, response) {
      response.headers.set("x-request-id", observation.requestId);
      const { status, headers } = response;
      const empty = request.method === "HEAD" || status === 204 || status === 304;
      const waiting = record(observation, request, server, facts, {
        status,
        headers,
        bytes: empty ? 0 : contentLength(headers),
      });
      if (waiting === null) return response;
      const answer = (refused: Response | null): Response => {
        if (refused === null) return response;
        // The document's body is dropped unread, and whatever it holds open with it.
        response.body?.cancel().catch(() => {});
        return refused;
      };
      return waiting instanceof Response ? answer(waiting) : waiting.then(answer);
    },
  };
}

/** What an Elysia hook returns for a recorded request: nothing to keep its answer, or the 503 instead. */
function replacement(
  waiting: Response | Promise<Response | null> | null,
): Response | Promise<Response | undefined> | undefined {
  if (waiting instanceof Response) return waiting;
  return waiting?.then((refused) => refused ?? undefined);
}

/** The caller a binary or search route resolved, when it got that far. */
function principalOf(context: object): Principal | undefined {
  return (context as { principal?: Principal }).principal;
}

/** The Elysia plugin running the observer on every request of the app it is used in (before errors.ts). */
export function requestObserver(observer: Observer) {
  // Elysia fills in context members such as `route` only where a hook's own source names them (its
  // "sucrose" analysis), so the hooks below spell out context.route and context.params.
  const observations = new WeakMap<Request, Observation>();
  // onRequest runs first for every request; begin() again only if Elysia ever skipped it.
  const observationOf = (request: Request): Observation =>
    observations.get(request) ?? observer.begin(request);
  return new Elysia({ name: "fhirbin-observer" })
    .onRequest(({ request }) => {
      observations.set(request, observer.begin(request));
    })
    .onAfterHandle({ as: "global" }, (context) => {
      const { request, server, set, responseValue } = context;
      const facts = { route: context.route, params: context.params, principal: principalOf(context) };
      const observation = observationOf(request);
      if (responseValue instanceof Response) {
        // On the Response itself: anything in set.headers makes Elysia copy every Response.
        return observer.responded(observation, request, server, facts, responseValue);
      }
      // A plain value (the API docs): Elysia builds its Response afterwards, with set.headers.
      set.headers["x-request-id"] = observation.requestId;
      return replacement(
        observer.record(observation, request, server, facts, {
          status: typeof set.status === "number" ? set.status : 200,
          headers: {},
          bytes: typeof responseValue === "string" ? Buffer.byteLength(responseValue) : null,
        }),
      );
    })
    .onError({ as: "global" }, (context) => {
      // Returns nothing once the event is appended, so the error goes on to the renderer in errors.ts,
      // whose response gets set.headers; or the 503 that replaces it.
      const { request, server, set, error, code } = context;
      const facts = { route: context.route, params: context.params, principal: principalOf(context) };
      const observation = observationOf(request);
      set.headers["x-request-id"] = observation.requestId;
      return replacement(
        observer.record(observation, request, server, facts, {
          status: errorStatus(error, code, request),
          headers: error instanceof FhirError ? error.headers : {},
          bytes: null,
        }),
      );
    });
}
