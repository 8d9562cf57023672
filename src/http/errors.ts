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

/** A request's URL, parsed without ever throwing: a bare path (no Host) is read against a placeholder. */
function parsedUrl(request: Request): URL {
  return URL.parse(request.url) ?? new URL(`http://invalid/${request.url.replace(/^\/+/, "")}`);
}

/**
 * The FhirError an error stands for: itself; a 404 for Elysia's NOT_FOUND; a 400 when the request body failed
 * because the client is gone (a disconnect, or chunked framing Bun refused and answered itself); null for an
 * unexpected error. The body's read then fails with an AbortError and the request's signal is aborted.
 */
export function knownError(error: unknown, request: Request): FhirError | null {
  if (error instanceof FhirError) return error;
  if (notFound(error)) {
    return new FhirError(404, "not-found", `No route for ${request.method} ${parsedUrl(request).pathname}`);
  }
  if (request.signal.aborted && error instanceof DOMException && error.name === "AbortError") {
    return new FhirError(
      400,
      "structure",
      "The request body was cut short: the connection closed " +
        "(the client went away, or its chunked framing was refused)",
    );
  }
  return null;
}

/** FHIR when the request explicitly asked for FHIR (or sent FHIR), else JSON; never throws. */
export function errorFormat(request: Request, fallback: FhirVersion): FhirFormat {
  const format = parsedUrl(request).searchParams.get("_format");
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
  const known = knownError(error, request);
  if (!known) log(`unexpected error on ${request.method} ${parsedUrl(request).pathname}: ${describe(error)}`);
  else if (known.logged !== null)
    log(`${known.status} on ${request.method} ${parsedUrl(request).pathname}: ${known.logged}`);
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

/**
 * The Elysia plugin installing the error renderer for the whole app, and refusing first the requests it could
 * not answer (no absolute URL).
 */
export function errorHandler(fallback: FhirVersion, log: (line: string) => void) {
  return new Elysia({ name: "fhirbin-errors" }).onError({ as: "global" }, ({ error, code, request }) =>
    errorResponse(code === "NOT_FOUND" ? { code } : error, request, fallback, log),
  );
}
