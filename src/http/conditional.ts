/**
 * HTTP validators and ranges (RFC 9110 sections 8.8, 13 and 14) as pure functions over header values.
 * fhirbin's ETag is the FHIR version: `W/"<versionId>"` (R4 http.html#versioning).
 */
import { FhirError } from "../fhir/errors.ts";

/** The ETag of a version. */
export function etagOf(versionId: number): string {
  return `W/"${versionId}"`;
}

/** An IMF-fixdate for Last-Modified; HTTP dates have whole seconds. */
export function httpDate(iso: string): string {
  return new Date(iso).toUTCString();
}

/** The opaque part of each entity tag in a list (`W/"3", "4"` -> 3, 4), or `*`. */
function entityTags(header: string): string[] {
  return [...header.matchAll(/(?:W\/)?"([^"]*)"/g)].map((match) => match[1] ?? "");
}

/** Only a bare `*` is the wildcard (RFC 9110 section 13.1.1); `"*"` is an ordinary tag. */
function isWildcard(header: string): boolean {
  return header.trim() === "*";
}

/**
 * "A recipient MUST use the weak comparison function when comparing entity-tags for If-None-Match"
 * (RFC 9110 section 13.1.2): `W/"3"` and `"3"` both match version 3.
 */
export function noneMatchHits(header: string, versionId: number): boolean {
  return isWildcard(header) || entityTags(header).includes(String(versionId));
}

/** If-Modified-Since: true when the resource has not changed since the given date (304). */
export function notModifiedSince(header: string, lastUpdated: string): boolean {
  const since = Date.parse(header);
  return !Number.isNaN(since) && Math.floor(Date.parse(lastUpdated) / 1000) * 1000 <= since;
}

/**
 * Parses If-Match on a write into the version it names, or `*`; 400 when it is not one entity tag. A tag
 * that names no version fhirbin could have issued (`W/"0"`, `W/"abc"`) becomes 0, which never matches: 412.
 */
export function parseIfMatch(header: string): number | "*" {
  if (isWildcard(header)) return "*";
  const [tag, ...more] = entityTags(header);
  if (tag === undefined || more.length > 0) {
    throw new FhirError(400, "value", `If-Match must be one entity tag, such as W/"3"`);
  }
  return /^[1-9][0-9]{0,14}$/.test(tag) ? Number(tag) : 0;
}

/**
 * If-Range: the ETag of the current version (versions never change, so the weak tag is as good as a strong
 * one) or exactly its Last-Modified date. "If the validator given in the If-Range header field matches the
 * current validator for the selected representation ... the server SHOULD process the Range header".
 */
export function ifRangeHolds(header: string, versionId: number, lastUpdated: string): boolean {
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith("W/")) return entityTags(value)[0] === String(versionId);
  return value === httpDate(lastUpdated);
}

export type RangeResult = { start: number; end: number } | "unsatisfiable" | null;

/**
 * Parses a single byte range (`bytes=0-99`, `bytes=100-`, `bytes=-100`) against the size. Null means "serve
 * the whole document": a malformed header or several ranges ("A server MAY ignore the Range header field").
 */
export function parseRange(header: string, size: number): RangeResult {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return null;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return null;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}
