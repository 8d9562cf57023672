/**
 * The SMART discovery document (`[base]/.well-known/smart-configuration`), SMART App Launch 2.0 section
 * "Conformance": https://hl7.org/fhir/smart-app-launch/conformance.html. fhirbin is a resource server: it
 * verifies tokens an authorization server issued, so it names that issuer but no endpoints of its own.
 */
import type { JwtSettings } from "./jwt.ts";
import { allowedAlgorithms } from "./jwt.ts";

/** The scopes fhirbin understands, v2 first. */
export const SCOPES_SUPPORTED = [
  "system/Binary.cruds",
  "user/Binary.cruds",
  "patient/Binary.cruds",
  "system/Binary.*",
  "user/Binary.*",
  "patient/Binary.*",
  "system/Binary.read",
  "user/Binary.read",
  "patient/Binary.read",
  "system/Binary.write",
  "user/Binary.write",
  "patient/Binary.write",
] as const;

/** The discovery document for the configured JWT verification. */
export function toSmartConfiguration(jwt: Readonly<JwtSettings>): Record<string, unknown> {
  return {
    ...(jwt.issuer === null ? {} : { issuer: jwt.issuer }),
    scopes_supported: [...SCOPES_SUPPORTED],
    capabilities: ["permission-v1", "permission-v2", "permission-patient", "permission-user"],
    // Not a SMART field: which JWS algorithms this server verifies (never "none").
    "fhirbin-token-algorithms": allowedAlgorithms(jwt),
  };
}
