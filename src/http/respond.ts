/** Builds responses: FHIR resources, native content with its headers, and the metadata headers. */
import { serialise } from "../fhir/binary.ts";
import { formatContentDisposition } from "../fhir/content-disposition.ts";
import type { FhirFormat } from "../fhir/format.ts";
import { extensionFor, isPassiveType, parseMediaType } from "../fhir/mime.ts";
import type { Resource } from "../fhir/outcome.ts";
import type { StoredVersion, VersionRecord } from "../store/types.ts";
import { etagOf, httpDate } from "./conditional.ts";

/**
 * Every response whose form `Accept` chooses says so, 304s included, so that a cache never serves the native
 * bytes for the FHIR form or the other way round. RFC 9110 section 12.5.5: "An origin server SHOULD send a
 * Vary header field when its algorithm for selecting a representation varies based on aspects of the
 * request message other than the method and target URI".
 */
const VARY = { vary: "Accept" } as const;

/**
 * `Content-Type` of a FHIR response: "FHIR responses carry `; charset=utf-8`", and R4B and R5 their
 * `fhirVersion` (R4 http.html#version-parameter), as their MIME types and names are R4's.
 */
export function fhirContentType(format: FhirFormat): string {
  const { mimeParameter } = format.version;
  return `${format.mime}${mimeParameter === null ? "" : `; fhirVersion=${mimeParameter}`}; charset=utf-8`;
}

/** A FHIR resource in the negotiated format. */
export function resourceResponse(
  resource: Resource,
  format: FhirFormat,
  init: { status?: number; headers?: Record<string, string>; pretty?: boolean } = {},
): Response {
  const text = serialise(resource, format, init.pretty ?? false);
  // Stated, not only computed by Bun on the wire, so HEAD, the request log and the byte metrics see it.
  const length = String(Buffer.byteLength(text));
  return new Response(text, {
    status: init.status ?? 200,
    headers: { "content-type": fhirContentType(format), "content-length": length, ...VARY, ...init.headers },
  });
}

/** ETag, Last-Modified and Content-Location of a version (R4 http.html#read). */
export function versionHeaders(record: VersionRecord, base: string): Record<string, string> {
  return {
    etag: etagOf(record.versionId),
    "last-modified": httpDate(record.lastUpdated),
    "content-location": `${base}/Binary/${record.id}/_history/${record.versionId}`,
    ...VARY,
  };
}

/**
 * Headers of a native read. Stored content must never script the server's origin: `nosniff` always, and any
 * type that can carry script is an attachment in a CSP sandbox (fhir-binary-rules.md section 5).
 */
export function nativeHeaders(version: StoredVersion, base: string): Record<string, string> {
  const essence = parseMediaType(version.contentType)?.essence ?? "application/octet-stream";
  const passive = isPassiveType(essence);
  const type = passive ? "inline" : "attachment";
  const headers: Record<string, string> = {
    "content-type": version.contentType,
    ...versionHeaders(version, base),
    "accept-ranges": "bytes",
    "x-content-type-options": "nosniff",
    "cache-control": "private, no-cache",
  };
  if (version.securityContext) headers["x-security-context"] = version.securityContext;
  // The document's own name when it was given one, else one made of its id (plain ASCII, quoted as is).
  headers["content-disposition"] =
    version.fileName === undefined
      ? `${type}; filename="${version.id}.${extensionFor(essence)}"`
      : formatContentDisposition(type, version.fileName);
  if (!passive) headers["content-security-policy"] = "sandbox; default-src 'none'";
  return headers;
}

/** A GET's response as it is, or for HEAD "the same headers a GET would, with no body". */
export function forMethod(request: Request, response: Response): Response {
  return request.method === "HEAD"
    ? new Response(null, { status: response.status, headers: response.headers })
    : response;
}
