/**
 * The one place errors become responses: a FhirError renders as an OperationOutcome in the negotiated FHIR
 * format (JSON when the request was native); anything else is logged and answered with a generic 500 whose
 * text never comes from the error.
 */
import { Elysia } from "elysia";
import { FhirError } from "../fhir/errors.ts";
import { type FhirFormat, negotiateBinary, negotiateResource } from "../fhir/format.ts";
import { toOperationOutcome } from "../fhir/outcome.ts";
import type { FhirVersion } from "../fhir/version.ts";
import { forMethod, resourceResponse } from "./respond.ts";

/** FHIR when the request explicitly asked for FHIR (or sent FHIR), else JSON; never throws. */
export function errorFormat(request: Request, fallback: FhirVersion): FhirFormat {
  const url = new URL(request.url);
  const format = url.searchParams.get("_format");
  const accept = request.headers.get("accept");
  try {
    const chosen = negotiateBinary(format, accept, fallback);
    if (chosen.kind === "fhir") return chosen;
    return negotiateResource(null, null, request.headers.get("content-type"), fallback);
  } catch {
    return negotiateResource(null, null, null, fallback);
  }
}

/** Renders any error as a response. */
export function errorResponse(
  error: unknown,
  request: Request,
  fallback: FhirVersion,
  log: (line: string) => void,
) {
  const known =
    error instanceof FhirError
      ? error
      : notFound(error)
        ? new FhirError(404, "not-found", `No route for ${request.method} ${new URL(request.url).pathname}`)
        : null;
  if (!known)
    log(`unexpected error on ${request.method} ${new URL(request.url).pathname}: ${describe(error)}`);
  const failure =
    known ?? new FhirError(500, "exception", "An unexpected error occurred; it has been logged");
  const severity = failure.status >= 500 ? "fatal" : "error";
  const format = errorFormat(request, fallback);
  const response = resourceResponse(
    toOperationOutcome(severity, failure.code, failure.diagnostics, format.version),
    format,
    { status: failure.status, headers: { ...failure.headers } },
  );
  return forMethod(request, response);
}

function notFound(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "NOT_FOUND";
}

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}

/** The Elysia plugin installing the error renderer for the whole app. */
export function errorHandler(fallback: FhirVersion, log: (line: string) => void) {
  return new Elysia({ name: "fhirbin-errors" }).onError({ as: "global" }, ({ error, code, request }) =>
    errorResponse(code === "NOT_FOUND" ? { code } : error, request, fallback, log),
  );
}
