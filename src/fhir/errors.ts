/** IssueType codes from http://hl7.org/fhir/issue-type that fhirbin reports. */
export type IssueCode =
  | "invalid"
  | "structure"
  | "required"
  | "value"
  | "security"
  | "login"
  | "forbidden"
  | "not-found"
  | "deleted"
  | "too-long"
  | "not-supported"
  | "conflict"
  | "processing"
  | "exception"
  | "transient"
  | "no-store"
  | "informational";

/**
 * The one error type: it knows its HTTP status and the OperationOutcome issue it renders as.
 * `headers` carries what the response must add (WWW-Authenticate, Allow, ETag of a deletion...).
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    readonly diagnostics: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(diagnostics);
    this.name = "FhirError";
  }
}
