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
import { isOwnPatient, type Permission, type Principal } from "../security/scopes.ts";
import type { Store, StoredVersion, VersionRecord, WriteResult } from "../store/types.ts";
import { createAuthenticator, requirePermission } from "./auth.ts";
import { preferredReturn, readWriteInput } from "./body.ts";
import {
  etagOf,
  ifRangeHolds,
  noneMatchHits,
  notModifiedSince,
  parseIfMatch,
  parseRange,
} from "./conditional.ts";
import { fhirContentType, forMethod, nativeHeaders, resourceResponse, versionHeaders } from "./respond.ts";

/** Largest content wrapped as FHIR in memory (8 MiB: GP Connect's 5 MB wrapped documents fit). */
const WRAP_IN_MEMORY = 8 * 1024 * 1024;

/** `scheme://host:port` of an absolute URL, without parsing it. */
function originOf(url: string): string {
  const path = url.indexOf("/", url.indexOf("//") + 2);
  return path < 0 ? url : url.slice(0, path);
}

/** Checks an id from the URL (already percent-decoded) before anything else sees it. */
function requireId(id: string): string {
  if (!isValidId(id)) throw new FhirError(400, "value", "The id must be 1-64 characters of A-Z a-z 0-9 - .");
  return id;
}

function methodNotAllowed(allow: string): never {
  throw new FhirError(405, "not-supported", `Method not allowed here; allowed: ${allow}`, { allow });
}

/** The Binary interactions as plain functions of a request: the Elysia routes and the hot read share them. */
export type BinaryInteractions = ReturnType<typeof binaryInteractions>;

/** Builds the Binary interactions over a store. */
export function binaryInteractions({ config, store }: { config: Config; store: Store }) {
  const authenticate = createAuthenticator(config);
  // The read path is hot (issue 8): the origin and the query are sliced from request.url rather than parsed
  // with new URL() several times per request.
  const baseOf = (request: Request): string => config.publicUrl ?? originOf(request.url) + config.basePath;
  const query = (request: Request, name: string): string | null => {
    const at = request.url.indexOf("?");
    return at < 0 ? null : new URLSearchParams(request.url.slice(at + 1)).get(name);
  };
  // Versions never change, so their headers are built once per cached version record (issue 8).
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

  const native = (request: Request, version: StoredVersion, base: string): Response => {
    const headers = cachedNativeHeaders(version, base);
    const content = store.content(version);
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
   * none (a native read, a 304): most reads on a busy server, with no promise on the way (issue 8).
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
    const answer = (record: VersionRecord | null) =>
      readAnswer(request, principal, permission, representation, id, vid, record);
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
    id: string,
    vid: string | null,
    found: VersionRecord | null,
  ): Response | Promise<Response> => {
    let record = found;
    // A patient-scoped token sees only its patient's Binaries; anything else is "not known", not 403.
    if (
      permission === "patient-only" &&
      !(record && !record.deleted && isOwnPatient(principal, record.securityContext))
    )
      record = null;
    if (!record) {
      throw new FhirError(
        404,
        "not-found",
        vid ? `Binary/${id}/_history/${vid} is not known` : `Binary/${id} is not known`,
      );
    }
    if (record.deleted) {
      throw new FhirError(410, "deleted", `Binary/${id} was deleted`, { etag: etagOf(record.versionId) });
    }
    const base = baseOf(request);
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
    if (representation.kind === "native") return forMethod(request, native(request, record, base));
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
    if (id !== null) {
      requireId(id);
      // A PUT that creates the resource (update-as-create) is a create too: it needs `c` as well as `u`.
      const current = await store.current(id);
      if (!current || current.deleted) requirePermission(principal, "create");
    }
    const format = resourceFormat(request);
    // The release a FHIR body is written in: its Content-Type's (fhirVersion, or a DSTU2 MIME type), else
    // the server's.
    const bodyType = request.headers.get("content-type");
    const input = await readWriteInput(
      request,
      config.maxSize,
      id,
      negotiateResource(null, null, bodyType, config.fhirVersion).version,
    );
    const settle = input.metadataAfterBody;
    if (!settle) requireAllowedType(input.contentType);
    if (permission === "patient-only" && !settle) await requireOwnWrite(principal, input.securityContext, id);
    const ifMatch = request.headers.get("if-match");
    const writeRequest = {
      ...input,
      // A streamed Binary's securityContext is only known once its body has been read: checked then.
      ...(settle && (permission === "patient-only" || config.denyTypes.length > 0)
        ? {
            metadataAfterBody: async () => {
              const metadata = await settle();
              requireAllowedType(metadata.contentType);
              if (permission === "patient-only")
                await requireOwnWrite(principal, metadata.securityContext, id);
              return metadata;
            },
          }
        : {}),
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

  /** Throws 403 unless a patient-scoped write keeps the Binary, before and after, in its patient. */
  const requireOwnWrite = async (principal: Principal, securityContext: string | null, id: string | null) => {
    const current = id === null ? null : await store.current(id);
    const ownBefore = !current || current.deleted || isOwnPatient(principal, current.securityContext);
    if (!ownBefore || !isOwnPatient(principal, securityContext)) {
      throw new FhirError(
        403,
        "forbidden",
        `A patient-scoped token may only write Binaries whose securityContext is Patient/${principal.patient}`,
      );
    }
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
    if (records.length === 0) throw new FhirError(404, "not-found", `Binary/${id} is not known`);
    const at = request.url.indexOf("?");
    const entries = at < 0 ? [] : [...new URLSearchParams(request.url.slice(at + 1))];
    // Paged like the type history (R4 http.html#history: `_count`, `_since`).
    const params = parseHistoryParams(entries, { strict: isStrictHandling(request.headers.get("prefer")) });
    const base = baseOf(request);
    const page = instanceHistoryPage(records, params, `${base}/Binary/${id}/_history`);
    const format = resourceFormat(request);
    const bundle = toTypeHistoryBundle(page.records, base, format.version, page.total, page.links);
    return resourceResponse(bundle, format, { pretty: params.pretty });
  };

  const remove = async (request: Request, principal: Principal, id: string): Promise<Response> => {
    if (requirePermission(principal, "delete") === "patient-only") {
      const current = await store.current(requireId(id));
      if (!current || current.deleted || !isOwnPatient(principal, current.securityContext))
        throw new FhirError(404, "not-found", `Binary/${id} is not known`);
    }
    const ifMatch = request.headers.get("if-match");
    const tombstone = await store.delete(
      requireId(id),
      ifMatch === null ? {} : { ifMatch: parseIfMatch(ifMatch) },
    );
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
