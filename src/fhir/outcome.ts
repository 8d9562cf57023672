import type { IssueCode } from "./errors.ts";

/** A FHIR resource as plain JSON, properties in spec order. */
export type Resource = { resourceType: string } & Record<string, unknown>;

export type Severity = "fatal" | "error" | "warning" | "information";

/** Builds an OperationOutcome with a single issue (same shape in DSTU2, STU3 and R4). */
export function toOperationOutcome(severity: Severity, code: IssueCode, diagnostics: string): Resource {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}
