/**
 * SMART on FHIR scopes (v1 and v2) as they apply to Binary, and the securityContext rule of `patient/`
 * scopes. Pure functions over strings: the HTTP layer decides what a denial answers.
 *
 * SMART App Launch 2.0 "Scopes for requesting FHIR resources":
 * https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
 */

/** The SMART v2 permission letters, in their required order: create, read, update, delete, search. */
export type Action = "c" | "r" | "u" | "d" | "s";

/** The context a scope was granted in: the patient in context, the user, or a backend system. */
export type ScopeContext = "patient" | "user" | "system";

/** One parsed scope that grants actions on Binary. */
export interface Grant {
  context: ScopeContext;
  actions: ReadonlySet<Action>;
}

/** Who is asking and what they may do; built from a static token, a JWT, or nobody when auth is off. */
export interface Principal {
  /** How the caller authenticated. */
  kind: "static" | "jwt" | "anonymous";
  /** The JWT `sub`, or the static token's label; never the token itself. */
  subject: string;
  /** Everything the caller may do, or "all" for plain `--token` tokens and auth off. */
  grants: readonly Grant[] | "all";
  /** The `patient` claim (the patient in context), or null. */
  patient: string | null;
}

/** The Binary interactions fhirbin serves, and the SMART action each one needs. */
export const INTERACTION_ACTIONS = {
  read: "r",
  vread: "r",
  history: "r",
  search: "s",
  create: "c",
  update: "u",
  delete: "d",
} as const satisfies Record<string, Action>;

export type Interaction = keyof typeof INTERACTION_ACTIONS;

const V1_ACTIONS: Readonly<Record<string, readonly Action[]>> = {
  // v1 `read` covered reads and searches; `write` covered create, update and delete.
  read: ["r", "s"],
  write: ["c", "u", "d"],
  "*": ["c", "r", "u", "d", "s"],
};

// context/resource.permissions; v2 permissions are a non-empty subsequence of "cruds".
const SCOPE = /^(patient|user|system)\/(Binary|\*)\.([a-z*]+)$/;
const V2_LETTERS = /^c?r?u?d?s?$/;

/**
 * Parses one scope; null when it grants nothing on Binary (other resources, openid, launch, malformed) or
 * narrows by a query (`?category=...`), which fhirbin cannot evaluate and so does not honour.
 */
export function parseScope(scope: string): Grant | null {
  const match = SCOPE.exec(scope);
  if (!match) return null;
  const context = match[1] as ScopeContext;
  const permissions = match[3] as string;
  const v1 = V1_ACTIONS[permissions];
  if (v1) return { context, actions: new Set(v1) };
  if (permissions === "" || !V2_LETTERS.test(permissions)) return null;
  return { context, actions: new Set(permissions.split("") as Action[]) };
}

/** Parses a space-separated scope string (the JWT `scope` claim, or a token-file line) into its grants. */
export function parseScopes(scopes: string | readonly string[]): Grant[] {
  const list = typeof scopes === "string" ? scopes.split(/\s+/) : scopes;
  return list.map(parseScope).filter((grant): grant is Grant => grant !== null);
}

/** What a principal may do for one interaction: nothing, anything, or only its own patient's Binaries. */
export type Permission = "denied" | "unrestricted" | "patient-only";

/**
 * Decides an interaction. `user/` and `system/` scopes are not restricted by securityContext; when only
 * `patient/` scopes grant the action, the caller is limited to Binaries of its `patient` claim, and a
 * patient scope without that claim grants nothing (fail closed).
 */
export function permissionFor(principal: Principal, interaction: Interaction): Permission {
  if (principal.grants === "all") return "unrestricted";
  const action = INTERACTION_ACTIONS[interaction];
  const granting = principal.grants.filter((grant) => grant.actions.has(action));
  if (granting.some((grant) => grant.context !== "patient")) return "unrestricted";
  if (granting.length > 0 && principal.patient !== null) return "patient-only";
  return "denied";
}

/** True when a Binary's securityContext is the principal's patient (`Patient/<id>`); false with none. */
export function isOwnPatient(principal: Principal, securityContext: string | null): boolean {
  if (principal.patient === null || securityContext === null) return false;
  // Only the exact relative reference: an absolute one may name another server's patient.
  return securityContext === `Patient/${principal.patient}`;
}

/**
 * True when a principal limited to its patient may see a version: a live one of its patient. A deleted
 * Binary is not shown (its existence is not revealed), though its tombstone keeps the patient's context.
 */
export function isVisibleToPatient(
  principal: Principal,
  record: { deleted: boolean; securityContext: string | null },
): boolean {
  return !record.deleted && isOwnPatient(principal, record.securityContext);
}

/** The scopes a principal holds, as SMART v2 strings, for logs and the audit trail. */
export function describeGrants(principal: Principal): string {
  if (principal.grants === "all") return "*";
  return principal.grants.map((grant) => `${grant.context}/Binary.${[...grant.actions].join("")}`).join(" ");
}
