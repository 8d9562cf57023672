/**
 * JWT bearer tokens, verified with `jose` (audited, maintained crypto rather than hand-written checks):
 * HS256 with a shared secret, RS256/ES256 with a PEM public key or a JWKS file. The algorithm allow-list
 * comes from the configured keys alone, so `none` and algorithm confusion (an HS256 token "signed" with a
 * public key) are refused by construction.
 */
import { createPublicKey } from "node:crypto";
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from "jose";
import { type Principal, parseScopes } from "./scopes.ts";

/** What `--jwt-secret`, `--jwt-public-key`, `--jwks`, `--jwt-issuer` and `--jwt-audience` configure. */
export interface JwtSettings {
  secret: string | null;
  /** A PEM SPKI public key (RSA for RS256, P-256 for ES256). */
  publicKeyPem: string | null;
  jwks: JSONWebKeySet | null;
  issuer: string | null;
  audience: string | null;
}

/** Seconds of clock difference tolerated on `exp` and `nbf`. */
export const CLOCK_SKEW_SECONDS = 30;

/** Shortest HS256 secret accepted: RFC 7518 section 3.2 wants a key at least as long as the hash. */
export const MIN_SECRET_BYTES = 32;

const ASYMMETRIC = ["RS256", "ES256"] as const;

/** A token that failed verification; the message is safe to show (it never contains the token). */
export class JwtError extends Error {
  override name = "JwtError";
}

/** The algorithm a PEM public key signs with, or a problem to report. */
export function algorithmOfPem(pem: string): "RS256" | "ES256" | { problem: string } {
  let key: ReturnType<typeof createPublicKey>;
  try {
    key = createPublicKey(pem);
  } catch {
    return { problem: "is not a PEM public key" };
  }
  if (key.asymmetricKeyType === "rsa") return "RS256";
  if (key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  return { problem: "must be an RSA or P-256 EC public key" };
}

/** Parses a JWKS file's text; a problem when it is not `{ "keys": [...] }` with RS256/ES256-capable keys. */
export function parseJwks(text: string): JSONWebKeySet | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: "is not JSON" };
  }
  const keys = (value as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) return { problem: 'must be a JWKS: { "keys": [ ... ] }' };
  for (const key of keys) {
    const kty = (key as { kty?: unknown } | null)?.kty;
    if (kty !== "RSA" && kty !== "EC") return { problem: "may hold only RSA and EC public keys" };
    if ("d" in (key as object)) return { problem: "holds a private key; give the public keys only" };
  }
  return { keys } as JSONWebKeySet;
}

/** The algorithms the configured keys allow; never `none`. */
export function allowedAlgorithms(settings: JwtSettings): string[] {
  const algorithms: string[] = [];
  if (settings.secret !== null) algorithms.push("HS256");
  if (settings.jwks !== null) algorithms.push(...ASYMMETRIC);
  else if (settings.publicKeyPem !== null) {
    const alg = algorithmOfPem(settings.publicKeyPem);
    if (typeof alg === "string") algorithms.push(alg);
  }
  return algorithms;
}

/** True when a bearer token has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/** Builds the verifier: a valid token resolves to its principal, anything else rejects with a JwtError. */
export function createJwtVerifier(settings: JwtSettings): (token: string) => Promise<Principal> {
  const algorithms = allowedAlgorithms(settings);
  const secret = settings.secret === null ? null : new TextEncoder().encode(settings.secret);
  const pem = settings.publicKeyPem;
  const pemAlg = pem === null ? null : algorithmOfPem(pem);
  // jose is loaded on the first JWT, so servers without JWTs do not pay for it at start.
  let verifier: Promise<{ jose: typeof import("jose"); getKey: JWTVerifyGetKey }> | null = null;
  const load = async () => {
    const jose = await import("jose");
    const jwks = settings.jwks === null ? null : jose.createLocalJWKSet(settings.jwks);
    let pemKey: ReturnType<typeof jose.importSPKI> | null = null;
    // Picks the key by the header's algorithm; jose has already checked it against the allow-list.
    const getKey: JWTVerifyGetKey = async (header, token) => {
      if (header.alg === "HS256" && secret) return secret;
      if (jwks) return jwks(header, token);
      if (pem !== null && header.alg === pemAlg) {
        pemKey ??= jose.importSPKI(pem, header.alg);
        return pemKey;
      }
      throw new JwtError(`no key for algorithm ${header.alg}`);
    };
    return { jose, getKey };
  };
  return async (token) => {
    verifier ??= load();
    const { jose, getKey } = await verifier;
    let payload: JWTPayload;
    try {
      ({ payload } = await jose.jwtVerify(token, getKey, {
        algorithms,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ["exp"],
        ...(settings.issuer === null ? {} : { issuer: settings.issuer }),
        ...(settings.audience === null ? {} : { audience: settings.audience }),
      }));
    } catch (error) {
      // jose's codes and messages (ERR_JWT_CLAIM_VALIDATION_FAILED: missing required "exp" claim) say why
      // without the token.
      const { code, message } = error as { code?: unknown; message?: unknown };
      throw new JwtError(
        `${typeof message === "string" && message !== "" ? message : "not a valid JWT"} (${
          typeof code === "string" ? code : "ERR_JWT_INVALID"
        })`,
      );
    }
    return toPrincipal(payload);
  };
}

/** The principal a verified JWT stands for: `sub`, SMART `scope` (or `scp`), and the `patient` claim. */
export function toPrincipal(payload: JWTPayload): Principal {
  const scope = payload.scope ?? payload.scp;
  const scopes = typeof scope === "string" || Array.isArray(scope) ? (scope as string | string[]) : [];
  const subject = [payload.sub, payload.client_id, payload.azp].find((value) => typeof value === "string");
  return {
    kind: "jwt",
    subject: typeof subject === "string" ? subject : "unknown",
    grants: parseScopes(Array.isArray(scopes) ? scopes.filter((s) => typeof s === "string") : scopes),
    patient: typeof payload.patient === "string" && payload.patient !== "" ? payload.patient : null,
  };
}
