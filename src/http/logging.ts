/**
 * Request observation: an `X-Request-ID` accepted or generated and echoed, one log line per request (text or
 * JSON) and the request metrics. Elysia hooks: onRequest stamps the request; onAfterHandle (a handler's
 * response) and onError (a failure, before errors.ts renders it) log and count. onAfterResponse and a global
 * mapResponse would be simpler but cost 10-25 us per request, a quarter of the read path's throughput.
 */
import { Elysia } from "elysia";
import type { LogFormat } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";
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
    return JSON.stringify({ ...record, time: record.time.toISOString(), ms });
  }
  const bytes = record.bytes === null ? "-" : String(record.bytes);
  return `${record.time.toISOString()} ${record.requestId} ${record.method} ${record.path} ${record.status} ${bytes} ${ms}ms`;
}

/** The path of a request URL without its query string, without building a URL object. */
export function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const query = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const end = query >= 0 ? query : hash >= 0 ? hash : url.length;
  return url.slice(start, end);
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
  // Keyed by method then route so that a lookup builds no string.
  const byMethod = new Map<string, Map<string, string>>();
  for (const [key, interaction] of table) {
    const [method = "", route = ""] = key.split(" ");
    const routes = byMethod.get(method) ?? new Map<string, string>();
    routes.set(route, interaction);
    byMethod.set(method, routes);
  }
  return (method, route) => (route === undefined ? undefined : byMethod.get(method)?.get(route)) ?? "other";
}

/** Per-request state kept on Elysia's context object between the hooks. */
interface Observed {
  fhirbinStart?: number;
  fhirbinRequestId?: string;
}

/** The request id the observer accepted or generated for a request's context (for the audit trail). */
export function requestIdOf(context: object): string | undefined {
  return (context as Observed).fhirbinRequestId;
}

function contentLength(headers: Headers): number | null {
  const value = headers.get("content-length");
  return value === null ? null : Number(value);
}

/** The status an error is answered with, as errors.ts renders it. */
function errorStatus(error: unknown, code: unknown): number {
  if (error instanceof FhirError) return error.status;
  return code === "NOT_FOUND" ? 404 : 500;
}

/** The Elysia plugin observing every request of the app it is used in (use it before the error renderer). */
export function requestObserver({
  format,
  log,
  metrics,
  basePath,
}: {
  format: LogFormat;
  log: (line: string) => void;
  metrics: Metrics;
  basePath: string;
}) {
  const interactionOf = interactionsOf(basePath);
  const finish = (
    context: { request: Request; route?: string } & Observed,
    status: number,
    bytes: number | null,
  ): void => {
    const { request } = context;
    const end = performance.now();
    const ms = end - (context.fhirbinStart ?? end);
    metrics.observe(
      interactionOf(request.method, context.route),
      status,
      ms / 1000,
      contentLength(request.headers) ?? 0,
      bytes ?? 0,
    );
    if (format === "off") return;
    log(
      toLogLine(
        {
          time: new Date(),
          requestId: context.fhirbinRequestId ?? "-",
          method: request.method,
          path: pathOf(request.url),
          status,
          bytes,
          ms,
        },
        format,
      ),
    );
  };
  return new Elysia({ name: "fhirbin-observer" })
    .onRequest((context) => {
      const observed = context as typeof context & Observed;
      observed.fhirbinStart = performance.now();
      const id = acceptRequestId(context.request.headers.get("x-request-id"));
      observed.fhirbinRequestId = id;
    })
    .onAfterHandle({ as: "global" }, (context) => {
      const response = context.responseValue;
      const { method } = context.request;
      const id = requestIdOf(context);
      if (response instanceof Response) {
        // On the Response itself: anything in set.headers makes Elysia copy every Response (issue 8).
        if (id) response.headers.set("x-request-id", id);
        const status = response.status;
        const empty = method === "HEAD" || status === 204 || status === 304;
        finish(context, status, empty ? 0 : contentLength(response.headers));
      } else {
        if (id) context.set.headers["x-request-id"] = id;
        const status = typeof context.set.status === "number" ? context.set.status : 200;
        finish(context, status, typeof response === "string" ? Buffer.byteLength(response) : null);
      }
    })
    .onError({ as: "global" }, (context) => {
      // Returns nothing, so the error goes on to the renderer in errors.ts, whose response gets set.headers.
      const id = requestIdOf(context);
      if (id) context.set.headers["x-request-id"] = id;
      finish(context, errorStatus(context.error, context.code), null);
    });
}
