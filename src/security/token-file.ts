/**
 * Static tokens with scopes (`--token-file`): one token a line, then its SMART scopes and optional
 * `patient=ID` and `label=NAME` words; `#` starts a comment. Plain `--token` tokens keep full access.
 *
 *   # token                          scopes                         extras
 *   3b1f0c...e9   system/Binary.cruds                               label=ehr-backend
 *   9a77d2...01   patient/Binary.rs                                 patient=123 label=portal
 */
import { createHash } from "node:crypto";
import { type Grant, parseScope } from "./scopes.ts";

/** A static token and what it may do. */
export interface ScopedToken {
  token: string;
  /** Names the token in the audit trail and logs (the token itself never appears there). */
  label: string;
  grants: readonly Grant[] | "all";
  patient: string | null;
}

// RFC 6750 section 2.1 b64token, the characters a bearer token may use.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const LABEL = /^[A-Za-z0-9._-]{1,64}$/;
const PATIENT_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** The label of a token given without one: a short hash, stable across restarts, useless for guessing. */
export function tokenLabel(token: string): string {
  return `token-${createHash("sha256").update(token).digest("hex").slice(0, 8)}`;
}

/** Parses the token file's text; every problem is reported with its line number (never the token). */
export function parseTokenFile(text: string): { tokens: ScopedToken[]; problems: string[] } {
  const tokens: ScopedToken[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (line === "") return;
    const where = `line ${index + 1}`;
    const [token = "", ...words] = line.split(/\s+/);
    if (token.length < 16 || !B64TOKEN.test(token)) {
      problems.push(`${where}: a token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + /`);
      return;
    }
    if (seen.has(token)) problems.push(`${where}: the token appears twice`);
    seen.add(token);
    const grants: Grant[] = [];
    let label: string | null = null;
    let patient: string | null = null;
    for (const word of words) {
      if (word.startsWith("label=")) {
        label = word.slice(6);
        if (!LABEL.test(label)) problems.push(`${where}: label= takes 1-64 characters of A-Z a-z 0-9 . _ -`);
      } else if (word.startsWith("patient=")) {
        patient = word.slice(8);
        if (!PATIENT_ID.test(patient)) problems.push(`${where}: patient= takes a FHIR id`);
      } else {
        const grant = parseScope(word);
        if (grant) grants.push(grant);
        else problems.push(`${where}: ${JSON.stringify(word)} is not a SMART scope on Binary`);
      }
    }
    if (grants.length === 0) problems.push(`${where}: the token has no scope (use --token for full access)`);
    if (grants.some((grant) => grant.context === "patient") && patient === null) {
      problems.push(`${where}: patient/ scopes need patient=ID`);
    }
    tokens.push({ token, label: label ?? tokenLabel(token), grants, patient });
  });
  return { tokens, problems };
}
