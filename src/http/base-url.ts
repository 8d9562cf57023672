/**
 * The FHIR base URL that `Location`, `Content-Location`, Bundle links and the CapabilityStatement carry:
 * `--public-url`, else the request's scheme and `Host` header and the base path. The Host comes from the
 * client, so it is used only when it is a plain host[:port].
 */
import { isIPv6 } from "node:net";
import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";

/**
 * RFC 3986 section 3.2.2 `host = IP-literal / IPv4address / reg-name` and section 3.2.3 `port = *DIGIT`;
 * reg-names are limited to unreserved characters (no percent-encoding, no sub-delims such as `'` `,` `;`),
 * which every DNS name and IPv4 address is made of. No userinfo, path, query, fragment or space.
 */
const PLAIN_HOST = /^(?:[A-Za-z0-9._~-]+|\[([0-9A-Fa-f:.]+)\])(?::(\d{1,5}))?$/;

/** True when a `Host` header is a plain host name, IPv4 address or [IPv6] address, with an optional port. */
export function isPlainHost(host: string): boolean {
  const match = PLAIN_HOST.exec(host);
  if (!match) return false;
  const [, ipv6, port] = match;
  return (ipv6 === undefined || isIPv6(ipv6)) && (port === undefined || Number(port) <= 65535);
}

/** The request's `Host` header; 400 unless it is plain. */
function requirePlainHost(request: Request): string {
  const host = request.headers.get("host");
  if (host === null || !isPlainHost(host)) {
    throw new FhirError(400, "value", "The Host header must be a host name or address with an optional port");
  }
  return host;
}

/**
 * Refuses a request whose URL is not absolute, before anything builds URLs from it: Bun hands an HTTP/1.0
 * request without Host its bare path, and a CONNECT its authority (`host:port`). RFC 9112 section 3.2: "A
 * server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request message that lacks a Host
 * header field"; and section 3.2.3 keeps the authority-form for CONNECT to a proxy, which fhirbin is not.
 */
export function requireAbsoluteUrl(request: Request): void {
  if (request.url.startsWith("http://") || request.url.startsWith("https://")) return;
  throw request.method === "CONNECT"
    ? new FhirError(400, "not-supported", "CONNECT is not supported: fhirbin is not a proxy")
    : new FhirError(400, "required", "The request has no Host header (RFC 9112 section 3.2)");
}

/** Builds the function giving a request's FHIR base URL (400 for a Host that is not plain, in any case). */
export function baseUrlOf(config: Config): (request: Request) => string {
  // The hot read asks on every request: the last plain Host seen (one name per client, mostly) is remembered.
  let lastHost: string | null = null;
  let lastBase = "";
  return (request) => {
    const host = request.headers.get("host");
    if (host === null || host !== lastHost) {
      const plain = requirePlainHost(request);
      const scheme = request.url.startsWith("https:") ? "https" : "http";
      lastBase = config.publicUrl ?? `${scheme}://${plain}${config.basePath}`;
      lastHost = plain;
    }
    return lastBase;
  };
}

/**
 * Refuses with 400, before routing, any request without an absolute URL or whose `Host` header is not plain:
 * Bun makes of it a URL that is only the path, or one that does not parse, and nothing that reads the URL
 * could trust it. (The hot read checks the URL itself, and the Host when it builds the base URL.)
 */
export function hostPolicy() {
  return new Elysia({ name: "fhirbin-host" }).onRequest(({ request }) => {
    requireAbsoluteUrl(request);
    requirePlainHost(request);
  });
}
