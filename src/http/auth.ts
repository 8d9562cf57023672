/**
 * Bearer authentication (CC: "All requests MUST contain a valid 'Authorization' header"): static tokens,
 * static tokens with scopes, and JWTs; then SMART scope checks per interaction.
 */
import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";
import { addVary, corsHeaders } from "../security/cors.ts";
import { createJwtVerifier, looksLikeJwt } from "../security/jwt.ts";
import { type Interaction, type Permission, type Principal, permissionFor } from "../security/scopes.ts";
import { toSmartConfiguration } from "../security/smart.ts";
import { tokenLabel } from "../security/token-file.ts";

/**
 * The challenge of a request without a bearer token. RFC 6750 section 3.1: "If the request lacks any
 * authentication information (e.g., the client was unaware that authentication is necessary or attempted
 * using an unsupported authentication method), the resource server SHOULD NOT include an error code".
 */
const CHALLENGE = 'Bearer realm="fhirbin"';
const INVALID_TOKEN = `${CHALLENGE}, error="invalid_token"`;

/** The answer to a bearer token that was sent and refused: terse, as it must not help guess a valid one. */
const NOT_VALID = "The bearer token is not valid";

/**
 * The 401 of a bearer token that was sent and refused (RFC 6750 section 3), or of none (`challenge`); `logged`
 * is why, for the log only.
 */
function unauthorized(reason: string, challenge = INVALID_TOKEN, logged: string | null = null): FhirError {
  return new FhirError(401, "login", reason, { "www-authenticate": challenge }, logged);
}

/** The principal of every request when authentication is off. */
export const ANONYMOUS: Principal = Object.freeze({
  kind: "anonymous",
  subject: "anonymous",
  grants: "all",
  patient: null,
});

/** The token of an `Authorization: Bearer` header, or null (only the standard header, one token). */
function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  return header === null ? null : (/^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1] ?? null);
}

/**
 * Compares two secrets in time that depends only on their lengths: every character is looked at, with no
 * early exit (crypto.timingSafeEqual needed two Buffers made on every request).
 */
export function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/**
 * Builds the authenticator: it gives the caller's principal or throws 401. Static tokens (plain and scoped)
 * are compared in constant time against every entry and answered synchronously, so that the hot read needs
 * no promise for them; a JWT-shaped token that matches none of them is verified, asynchronously,
 * when JWTs are configured (a rejection is then the 401).
 */
export function createAuthenticator(config: Config): (request: Request) => Principal | Promise<Principal> {
  const statics = [
    ...config.tokens.map((token) => ({
      token,
      label: tokenLabel(token),
      grants: "all" as const,
      patient: null,
    })),
    ...config.scopedTokens,
  ].map(({ token, label, grants, patient }): { token: string; principal: Principal } => ({
    token,
    principal: Object.freeze({ kind: "static", subject: label, grants, patient }),
  }));
  const verifyJwt = config.jwt ? createJwtVerifier(config.jwt) : null;
  return (request) => {
    if (!config.auth) return ANONYMOUS;
    const header = request.headers.get("authorization");
    if (header === null) throw unauthorized("An Authorization: Bearer token is required", CHALLENGE);
    // Saying that the scheme is missing tells nothing of the tokens: only how to send one.
    if (!/^Bearer(?:[ \t]|$)/i.test(header))
      throw unauthorized(
        "The Authorization header has no Bearer scheme: send it as Authorization: Bearer <token>",
        CHALLENGE,
      );
    const token = bearerToken(request);
    if (token === null)
      throw unauthorized(NOT_VALID, INVALID_TOKEN, "the Authorization header is not Bearer and one token");
    let found: Principal | null = null;
    for (const entry of statics) {
      if (sameSecret(entry.token, token) && !found) found = entry.principal;
    }
    if (found) return found;
    if (verifyJwt && looksLikeJwt(token)) {
      return verifyJwt(token).catch((error: unknown) => {
        throw unauthorized(NOT_VALID, INVALID_TOKEN, `refused the JWT: ${(error as Error).message}`);
      });
    }
    throw unauthorized(
      NOT_VALID,
      INVALID_TOKEN,
      verifyJwt
        ? "the token is neither a configured token nor a JWT"
        : "the token is not one of the configured tokens",
    );
  };
}

/** The 403 of a missing scope (RFC 6750 section 3.1, SMART "insufficient_scope"). */
export function insufficientScope(interaction: Interaction): FhirError {
  return new FhirError(403, "forbidden", `The token's scopes do not allow ${interaction} on Binary`, {
    "www-authenticate": 'Bearer realm="fhirbin", error="insufficient_scope"',
  });
}

/** Throws 403 unless the principal may perform the interaction; says whether it is limited to its patient. */
export function requirePermission(principal: Principal, interaction: Interaction): Permission {
  const permission = permissionFor(principal, interaction);
  if (permission === "denied") throw insufficientScope(interaction);
  return permission;
}

/** `GET [base]/.well-known/smart-configuration`, served without a token when JWTs are configured. */
export function smartRoutes(config: Config) {
  const app = new Elysia({ name: "fhirbin-smart", prefix: config.basePath });
  const { jwt } = config;
  if (!jwt || !config.auth) return app;
  const body = JSON.stringify(toSmartConfiguration(jwt));
  return app.get(
    "/.well-known/smart-configuration",
    () =>
      new Response(body, {
        headers: { "content-type": "application/json", "cache-control": "max-age=3600" },
      }),
  );
}

/** Adds the CORS headers of a (non-preflight) request's origin to a response built outside Elysia. */
export function corsOnResponse(origins: readonly string[]): (request: Request, response: Response) => void {
  return (request, response) => {
    if (origins.length === 0) return;
    const headers = corsHeaders(origins, request.headers.get("origin"), false);
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (name === "vary") addVary(response.headers, value);
      else response.headers.set(name, value);
    }
  };
}

/**
 * CORS for the configured origins: a preflight (`OPTIONS` with `Access-Control-Request-Method`) is answered
 * at once with 204; other requests from an allowed origin get the allow and expose headers. Nothing is
 * added for other origins, so their browsers keep blocking.
 */
export function corsPolicy(origins: readonly string[]) {
  const plugin = new Elysia({ name: "fhirbin-cors" });
  if (origins.length === 0) return plugin;
  return (
    plugin
      .onRequest(({ request, set }) => {
        const preflight =
          request.method === "OPTIONS" && request.headers.has("access-control-request-method");
        const headers = corsHeaders(origins, request.headers.get("origin"), preflight);
        if (preflight) return new Response(null, { status: 204, headers: headers ?? { vary: "Origin" } });
        if (headers) Object.assign(set.headers, headers);
      })
      // A Response's own Vary (Accept, on negotiated ones) wins over the one set above: Origin is added to it.
      .mapResponse({ as: "global" }, ({ request, responseValue }) => {
        if (responseValue instanceof Response && corsHeaders(origins, request.headers.get("origin"), false))
          addVary(responseValue.headers, "Origin");
      })
  );
}
