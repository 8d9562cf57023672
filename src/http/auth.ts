/** Static bearer tokens (CC: "All requests MUST contain a valid 'Authorization' header"). */
import { timingSafeEqual } from "node:crypto";
import { FhirError } from "../fhir/errors.ts";

const CHALLENGE = 'Bearer realm="fhirbin", error="invalid_token"';

/** The 401 every missing or bad token gets (RFC 6750 section 3). */
function unauthorized(reason: string): FhirError {
  return new FhirError(401, "login", reason, { "www-authenticate": CHALLENGE });
}

/** Builds a check that throws 401 unless the request carries one of the tokens; a no-op when auth is off. */
export function createTokenCheck(tokens: readonly string[], enabled: boolean): (request: Request) => void {
  const accepted = tokens.map((token) => Buffer.from(token));
  return (request) => {
    if (!enabled) return;
    // Only the standard header: the CC page's "Authorisation" spelling is not accepted.
    const header = request.headers.get("authorization");
    if (!header) throw unauthorized("An Authorization: Bearer token is required");
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    const presented = Buffer.from(match?.[1] ?? "");
    // Compare against every token in constant time so timing reveals neither which nor how much matched.
    let ok = false;
    for (const token of accepted) {
      ok = (token.length === presented.length && timingSafeEqual(token, presented)) || ok;
    }
    if (!ok) throw unauthorized("The bearer token is not valid");
  };
}
