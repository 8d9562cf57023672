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
 * `headers` carries what the response must add (WWW-Authenticate, Allow, ETag of a deletion...); `logged`
 * what only the log may say (why a token was refused, which the answer keeps to itself).
 */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly code: IssueCode,
    readonly diagnostics: string,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly logged: string | null = null,
  ) {
    super(diagnostics);
    this.name = "FhirError";
  }
}
