import type { IssueCode } from "./errors.ts";
import type { FhirVersion } from "./version.ts";

/** A FHIR resource as plain JSON, properties in spec order. */
export type Resource = { resourceType: string } & Record<string, unknown>;

export type Severity = "fatal" | "error" | "warning" | "information";

/**
 * The issue code as `version` has it. IssueType gained `deleted` in R4; STU3 and DSTU2 bind their own value
 * set as required, in which a deleted resource is `not-found`.
 */
function issueCodeIn(code: IssueCode, version: FhirVersion): IssueCode {
  return code === "deleted" && version.name !== "R4" ? "not-found" : code;
}

/** Builds an OperationOutcome with a single issue (same shape in DSTU2, STU3 and R4), in `version`'s codes. */
export function toOperationOutcome(
  severity: Severity,
  code: IssueCode,
  diagnostics: string,
  version: FhirVersion,
): Resource {
  return {
    resourceType: "OperationOutcome",
    issue: [{ severity, code: issueCodeIn(code, version), diagnostics }],
  };
}
