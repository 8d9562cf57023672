/**
 * CORS for browser-based SMART apps (`--cors-origin`, repeatable): the Fetch standard's CORS protocol,
 * https://fetch.spec.whatwg.org/#http-cors-protocol. Bearer tokens, never cookies: no credentials mode.
 */

/** The request headers a preflight may ask for: Authorization first (SMART apps send bearer tokens). */
export const CORS_ALLOW_HEADERS =
  "Authorization, Content-Type, Accept, If-Match, If-None-Match, If-Modified-Since, If-Range, Range, " +
  "Prefer, X-Request-ID, X-Security-Context, Content-Disposition";

/** The methods of the Binary API. */
export const CORS_ALLOW_METHODS = "GET, HEAD, POST, PUT, DELETE";

/** Response headers a browser app may read besides the CORS-safelisted ones. */
export const CORS_EXPOSE_HEADERS =
  "ETag, Location, Last-Modified, Content-Location, Content-Disposition, Content-Range, X-Request-ID, " +
  "X-Security-Context, WWW-Authenticate";

/** Checks an allowed origin as configured: `*`, or exactly an origin such as https://app.example.org. */
export function isOriginSetting(value: string): boolean {
  if (value === "*") return true;
  const url = URL.parse(value);
  return url !== null && (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
}

/** Adds `name` to a response's Vary (RFC 9110 section 12.5.5), keeping the names already there. */
export function addVary(headers: Headers, name: string): void {
  const present = headers.get("vary");
  if (present === null) headers.set("vary", name);
  else if (!present.split(",").some((item) => [name.toLowerCase(), "*"].includes(item.trim().toLowerCase())))
    headers.set("vary", `${present}, ${name}`);
}

/** The CORS headers for a request's Origin, or null when the origin is not allowed (no CORS headers). */
export function corsHeaders(
  allowed: readonly string[],
  origin: string | null,
  preflight: boolean,
): Record<string, string> | null {
  if (origin === null || !(allowed.includes("*") || allowed.includes(origin))) return null;
  const headers: Record<string, string> = { "access-control-allow-origin": origin, vary: "Origin" };
  if (preflight) {
    headers["access-control-allow-methods"] = CORS_ALLOW_METHODS;
    headers["access-control-allow-headers"] = CORS_ALLOW_HEADERS;
    headers["access-control-max-age"] = "600";
  } else {
    headers["access-control-expose-headers"] = CORS_EXPOSE_HEADERS;
  }
  return headers;
}
