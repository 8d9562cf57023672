/** The Binary REST interactions (fhir-binary-rules.md sections 2-4): thin handlers over the store. */

import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { base64Length, binaryEnvelope, binaryStream, toBinaryResource } from "../fhir/binary.ts";
import { FhirError } from "../fhir/errors.ts";
import { type FhirFormat, negotiateBinary, negotiateResource, type Representation } from "../fhir/format.ts";
import { isValidId, parseVersionId } from "../fhir/id.ts";
import { toOperationOutcome } from "../fhir/outcome.ts";
import { toTypeHistoryBundle } from "../fhir/search-bundle.ts";
import { isStrictHandling, parseHistoryParams } from "../fhir/search-params.ts";
import { instanceHistoryPage } from "../search/paging.ts";
import {
  isOwnPatient,
  isVisibleToPatient,
  type Permission,
  type Principal,
  permissionFor,
} from "../security/scopes.ts";
import type { Preconditions, Store, StoredVersion, VersionRecord, WriteResult } from "../store/types.ts";
import { createAuthenticator, requirePermission } from "./auth.ts";
import { baseUrlOf } from "./base-url.ts";
import { preferredReturn, readWriteInput } from "./body.ts";
import {
  etagOf,
  ifRangeHolds,
  noneMatchHits,
  notModifiedSince,
  parseIfMatch,
  parseRange,
} from "./conditional.ts";
import type { ConnectionGuard } from "./limits.ts";
import { fhirContentType, forMethod, nativeHeaders, resourceResponse, versionHeaders } from "./respond.ts";

/** Largest content wrapped as FHIR in memory (8 MiB: GP Connect's 5 MB wrapped documents fit). */
const WRAP_IN_MEMORY = 8 * 1024 * 1024;

/** Checks an id from the URL (already percent-decoded) before anything else sees it. */
export function requireId(id: string): string {
  if (!isValidId(id)) throw new FhirError(400, "value", "The id must be 1-64 characters of A-Z a-z 0-9 - .");
  return id;
}

/** The 404 of an id that is not known, or not shown to the caller. */
function notKnown(id: string): FhirError {
  return new FhirError(404, "not-found", `Binary/${id} is not known`);
}

function methodNotAllowed(allow: string): never {
  throw new FhirError(405, "not-supported", `Method not allowed here; allowed: ${allow}`, { allow });
}

/** The Binary interactions as plain functions of a request: the Elysia routes and the hot read share them. */
export type BinaryInteractions = ReturnType<typeof binaryInteractions>;

/** Builds the Binary interactions over a store. */
export function binaryInteractions({
  config,
  store,
  guard,
  cursorKey,
}: {
  config: Config;
  store: Store;
  guard: ConnectionGuard;
  /** The key that seals the paging cursors of instance histories (the search index's). */
  cursorKey: Uint8Array;
}) {
  const authenticate = createAuthenticator(config);
  const baseOf = baseUrlOf(config);
  // The read path is hot: the query is sliced from request.url rather than parsed with new URL() each time.
  const query = (request: Request, name: string): string | null => {
    const at = request.url.indexOf("?");
    return at < 0 ? null : new URLSearchParams(request.url.slice(at + 1)).get(name);
  };
  // Versions never change, so their headers are built once per cached version record.
  const cachedNativeHeaders = perVersion((version: StoredVersion, base) => {
    const headers = new Headers(nativeHeaders(version, base));
    headers.set("content-length", String(version.size));
    return headers;
  });
  const cachedVersionHeaders = perVersion((record: VersionRecord, base) =>
    Object.freeze(versionHeaders(record, base)),
  );
  const resourceFormat = (request: Request): FhirFormat =>
    negotiateResource(
      query(request, "_format"),
      request.headers.get("accept"),
      request.headers.get("content-type"),
      config.fhirVersion,
    );

  /**
   * A FHIR-wrapped read with an exact Content-Length. Bun drops a handler's Content-Length on stream bodies
   * (oven-sh/bun#10507), so documents up to WRAP_IN_MEMORY are encoded whole; larger ones are streamed,
   * base64-encoded chunk by chunk, and go out chunked.
   */
  const wrapped = async (
    version: StoredVersion,
    format: FhirFormat,
    pretty: boolean,
    headers: Readonly<Record<string, string>>,
    status = 200,
  ): Promise<Response> => {
    const { head, tail } = binaryEnvelope(version, format, pretty);
    const length = Buffer.byteLength(head) + base64Length(version.size) + Buffer.byteLength(tail);
    const content = store.content(version);
    const body =
      version.size <= WRAP_IN_MEMORY
        ? head + (await content.bytes()).toBase64() + tail
        : binaryStream(head, content.stream(), tail);
    return new Response(body, {
      status,
      headers: { "content-type": fhirContentType(format), "content-length": String(length), ...headers },
    });
  };

  const native = (request: Request, version: StoredVersion, base: string, content: Blob): Response => {
    const headers = cachedNativeHeaders(version, base);
    const rangeHeader = request.headers.get("range");
    const ifRange = request.headers.get("if-range");
    if (rangeHeader && (!ifRange || ifRangeHolds(ifRange, version.versionId, version.lastUpdated))) {
      const range = parseRange(rangeHeader, version.size);
      if (range === "unsatisfiable") {
        throw new FhirError(416, "value", `The range is outside the document (${version.size} bytes)`, {
          "content-range": `bytes */${version.size}`,
        });
      }
      if (range) {
        const partial = new Headers(headers);
        partial.set("content-range", `bytes ${range.start}-${range.end}/${version.size}`);
        partial.set("content-length", String(range.end - range.start + 1));
        return new Response(content.slice(range.start, range.end + 1), { status: 206, headers: partial });
      }
    }
    return new Response(content, { headers });
  };

  /**
   * A read or vread. Synchronous when the store knows the current version without I/O and the answer needs
   * none (a native read from memory, a 304): most reads on a busy server, with no promise on the way.
   */
  const read = (
    request: Request,
    principal: Principal,
    id: string,
    vid: string | null,
  ): Response | Promise<Response> => {
    const permission = requirePermission(principal, vid === null ? "read" : "vread");
    requireId(id);
    const representation = negotiateBinary(
      query(request, "_format"),
      request.headers.get("accept"),
      config.fhirVersion,
    );
    // A Host that is not plain is refused whatever the answer would have been.
    const base = baseOf(request);
    const answer = (record: VersionRecord | null) =>
      readAnswer(request, principal, permission, representation, base, id, vid, record);
    if (vid === null) {
      const known = store.peek(id);
      return known === undefined ? store.current(id).then(answer) : answer(known);
    }
    const versionId = parseVersionId(requireId(vid));
    return versionId === null ? answer(null) : store.version(id, versionId).then(answer);
  };

  const readAnswer = (
    request: Request,
    principal: Principal,
    permission: Permission,
    representation: Representation,
    base: string,
    id: string,
    vid: string | null,
    found: VersionRecord | null,
  ): Response | Promise<Response> => {
    let record = found;
    // A patient-scoped token sees only its patient's Binaries; anything else is "not known", not 403.
    if (permission === "patient-only" && !(record && isVisibleToPatient(principal, record))) record = null;
    if (!record)
      throw vid ? new FhirError(404, "not-found", `Binary/${id}/_history/${vid} is not known`) : notKnown(id);
    if (record.deleted) {
      throw new FhirError(410, "deleted", `Binary/${id} was deleted`, { etag: etagOf(record.versionId) });
    }
    const headers = cachedVersionHeaders(record, base);
    const ifNoneMatch = request.headers.get("if-none-match");
    const ifModifiedSince = request.headers.get("if-modified-since");
    // RFC 9110 section 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
    if (
      ifNoneMatch
        ? noneMatchHits(ifNoneMatch, record.versionId)
        : ifModifiedSince && notModifiedSince(ifModifiedSince, record.lastUpdated)
    ) {
      return new Response(null, { status: 304, headers });
    }
    if (representation.kind === "native") {
      return forMethod(request, native(request, record, base, store.content(record)));
    }
    const pretty = query(request, "_pretty") === "true";
    if (summaryMode(query(request, "_summary"))) {
      const resource = toBinaryResource(record, representation.version, null);
      return forMethod(request, resourceResponse(resource, representation, { headers, pretty }));
    }
    return wrapped(record, representation, pretty, headers).then((response) => forMethod(request, response));
  };

  const written = async (request: Request, result: WriteResult, format: FhirFormat): Promise<Response> => {
    const { version, created } = result;
    const base = baseOf(request);
    const headers = versionHeaders(version, base);
    if (created) headers.location = `${base}/Binary/${version.id}/_history/${version.versionId}`;
    const status = created ? 201 : 200;
    const pretty = query(request, "_pretty") === "true";
    switch (preferredReturn(request.headers.get("prefer"))) {
      case "minimal":
        return new Response(null, { status, headers });
      case "OperationOutcome": {
        const text = `${created ? "Created" : "Updated"} Binary/${version.id} version ${version.versionId}`;
        return resourceResponse(
          toOperationOutcome("information", "informational", text, format.version),
          format,
          {
            status,
            headers,
            pretty,
          },
        );
      }
      case "representation":
        return wrapped(version, format, pretty, headers, status);
      default:
        // The summary form, so uploads are not echoed back as base64.
        return resourceResponse(toBinaryResource(version, format.version, null), format, {
          status,
          headers,
          pretty,
        });
    }
  };

  const write = async (request: Request, principal: Principal, id: string | null): Promise<Response> => {
    const permission = requirePermission(principal, id === null ? "create" : "update");
    let authorize: Preconditions["authorize"];
    if (id !== null) {
      requireId(id);
      authorize = authorizeUpdate(principal, permission);
      // Before the body is read; the store decides again before any precondition, in the id's turn.
      authorize(await store.current(id));
    }
    const format = resourceFormat(request);
    // The release a FHIR body is written in: its Content-Type's (fhirVersion, or a DSTU2 MIME type), else
    // the server's.
    const bodyType = request.headers.get("content-type");
    const input = await readWriteInput(
      { headers: request.headers, body: guard.body(request) },
      config.maxSize,
      id,
      negotiateResource(null, null, bodyType, config.fhirVersion).version,
    );
    const settle = input.metadataAfterBody;
    if (!settle) requireAllowedType(input.contentType);
    if (permission === "patient-only" && !settle) requireOwnContext(principal, input.securityContext);
    const ifMatch = request.headers.get("if-match");
    const writeRequest = {
      ...input,
      // A streamed Binary's securityContext is only known once its body has been read: checked then.
      ...(settle && (permission === "patient-only" || config.denyTypes.length > 0)
        ? {
            metadataAfterBody: async () => {
              const metadata = await settle();
              requireAllowedType(metadata.contentType);
              if (permission === "patient-only") requireOwnContext(principal, metadata.securityContext);
              return metadata;
            },
          }
        : {}),
      ...(authorize ? { authorize } : {}),
      maxSize: config.maxSize,
      ...(ifMatch === null ? {} : { ifMatch: parseIfMatch(ifMatch) }),
      ifNoneMatch: id !== null && request.headers.get("if-none-match")?.trim() === "*",
    };
    const result =
      id === null
        ? { version: await store.create(writeRequest), created: true }
        : await store.update(id, writeRequest);
    return written(request, result, format);
  };

  /** Throws 415 for a media type of --deny-types (compared without parameters, case-insensitively). */
  const requireAllowedType = (contentType: string): void => {
    const mediaType = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
    if (config.denyTypes.includes(mediaType))
      throw new FhirError(415, "not-supported", `Uploads of ${mediaType} are not accepted by this server`);
  };

  /**
   * Who may PUT over the current version. A patient-scoped token may not write over another patient's
   * Binary, live or deleted: a tombstone keeps the securityContext of the version it deleted, so that the id
   * (which that patient's records may still point at) cannot be taken over. A PUT that creates the resource
   * (update-as-create) is a create too: it needs `c` as well as `u`.
   */
  const authorizeUpdate =
    (principal: Principal, permission: Permission) =>
    (current: VersionRecord | null): boolean => {
      if (permission === "patient-only" && current && !isOwnPatient(principal, current.securityContext))
        throw notOwnPatient(principal);
      if (!current || current.deleted) requirePermission(principal, "create");
      return mayRead(principal, current);
    };

  /** Throws 403 unless a patient-scoped write stores its own patient's securityContext. */
  const requireOwnContext = (principal: Principal, securityContext: string | null): void => {
    if (!isOwnPatient(principal, securityContext)) throw notOwnPatient(principal);
  };

  const history = async (request: Request, principal: Principal, id: string): Promise<Response> => {
    const permission = requirePermission(principal, "history");
    let records = await store.history(requireId(id));
    // Every version must be the patient's: an older one may have belonged to someone else.
    if (
      permission === "patient-only" &&
      !records.every((record) => record.deleted || isOwnPatient(principal, record.securityContext))
    )
      records = [];
    if (records.length === 0) throw notKnown(id);
    const at = request.url.indexOf("?");
    const entries = at < 0 ? [] : [...new URLSearchParams(request.url.slice(at + 1))];
    // Paged like the type history (R4 http.html#history: `_count`, `_since`).
    const params = parseHistoryParams(entries, { strict: isStrictHandling(request.headers.get("prefer")) });
    const base = baseOf(request);
    const page = instanceHistoryPage(records, params, `${base}/Binary/${id}/_history`, cursorKey);
    const format = resourceFormat(request);
    const bundle = toTypeHistoryBundle(page.records, base, format.version, page.total, page.links);
    return resourceResponse(bundle, format, { pretty: params.pretty });
  };

  const remove = async (request: Request, principal: Principal, id: string): Promise<Response> => {
    const permission = requirePermission(principal, "delete");
    requireId(id);
    // A patient-scoped token is answered as a read would answer it: another patient's Binary is not known.
    const authorize = (current: VersionRecord | null): boolean => {
      if (permission === "patient-only" && !(current && isVisibleToPatient(principal, current)))
        throw notKnown(id);
      return mayRead(principal, current);
    };
    // Before anything is journalled; the store decides again before any precondition, in the id's turn.
    authorize(await store.current(id));
    const ifMatch = request.headers.get("if-match");
    const tombstone = await store.delete(id, {
      authorize,
      ...(ifMatch === null ? {} : { ifMatch: parseIfMatch(ifMatch) }),
    });
    return new Response(null, {
      status: 204,
      headers: tombstone ? { etag: etagOf(tombstone.versionId) } : {},
    });
  };

  return { authenticate, read, write, history, remove };
}

/** The Binary routes under the FHIR base path. */
export function binaryRoutes(basePath: string, binary: BinaryInteractions) {
  const { read, write } = binary;
  // Every route here needs a caller: 401 before anything else is looked at.
  return (
    new Elysia({ name: "fhirbin-binary", prefix: basePath })
      .resolve(async ({ request }) => ({ principal: await binary.authenticate(request) }))
      // GET and HEAD of these two are answered by Bun's router when listening (hot-read.ts), with the same read.
      .get("/Binary/:id", ({ request, principal, params }) => read(request, principal, params.id, null))
      .head("/Binary/:id", ({ request, principal, params }) => read(request, principal, params.id, null))
      .get("/Binary/:id/_history/:vid", ({ request, principal, params }) =>
        read(request, principal, params.id, params.vid),
      )
      .head("/Binary/:id/_history/:vid", ({ request, principal, params }) =>
        read(request, principal, params.id, params.vid),
      )
      .get("/Binary/:id/_history", ({ request, principal, params }) =>
        binary.history(request, principal, params.id),
      )
      .post("/Binary", ({ request, principal }) => write(request, principal, null), { parse: "none" })
      .put("/Binary/:id", ({ request, principal, params }) => write(request, principal, params.id), {
        parse: "none",
      })
      .delete("/Binary/:id", ({ request, principal, params }) => binary.remove(request, principal, params.id))
      .post("/Binary/:id", () => methodNotAllowed("GET, HEAD, PUT, DELETE"), { parse: "none" })
      .patch("/Binary/:id", () => methodNotAllowed("GET, HEAD, PUT, DELETE"), { parse: "none" })
      .patch("/Binary", () => methodNotAllowed("GET, POST"), { parse: "none" })
      .put("/Binary", () => methodNotAllowed("GET, POST"), { parse: "none" })
      .delete("/Binary", () => methodNotAllowed("GET, POST"), { parse: "none" })
  );
}

/** The 403 of a patient-scoped write that would leave (or take over) another patient's Binary. */
function notOwnPatient(principal: Principal): FhirError {
  return new FhirError(
    403,
    "forbidden",
    `A patient-scoped token may only write Binaries whose securityContext is Patient/${principal.patient}`,
  );
}

/**
 * True when the read rules would show the current version to the caller, so that a 412 may name its
 * version number; a caller that may not read it learns only that the precondition failed.
 */
function mayRead(principal: Principal, current: VersionRecord | null): boolean {
  const permission = permissionFor(principal, "read");
  if (permission === "patient-only") return current === null || isVisibleToPatient(principal, current);
  return permission === "unrestricted";
}

/** Memoises a function of a version record and the base URL on the record, which the store caches. */
function perVersion<V extends VersionRecord, T>(build: (version: V, base: string) => T) {
  const cache = new WeakMap<V, { base: string; value: T }>();
  return (version: V, base: string): T => {
    const hit = cache.get(version);
    if (hit && hit.base === base) return hit.value;
    const value = build(version, base);
    cache.set(version, { base, value });
    return value;
  };
}

/** `_summary` on a FHIR read: true/text leave the payload out, false/data keep it; count is for searches. */
function summaryMode(value: string | null): boolean {
  if (value === null || value === "false" || value === "data") return false;
  if (value === "true" || value === "text") return true;
  throw new FhirError(400, "value", `_summary=${value} does not apply to a read`);
}
