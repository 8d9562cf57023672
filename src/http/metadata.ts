/**
 * `GET [base]/metadata`: the CapabilityStatement, served without a token; and `GET [base]` itself, which
 * leads a browser to the demo app and a FHIR client to the CapabilityStatement.
 */
import { Elysia } from "elysia";
import pkg from "../../package.json" with { type: "json" };
import type { Config } from "../config.ts";
import { toCapabilityStatement } from "../fhir/capability.ts";
import { FhirError } from "../fhir/errors.ts";
import { negotiateResource, parseAccept } from "../fhir/format.ts";
import { baseUrlOf } from "./base-url.ts";
import { forMethod, resourceResponse } from "./respond.ts";

export function metadataRoutes(config: Config) {
  const started = new Date().toISOString();
  const baseOf = baseUrlOf(config);
  const handler = ({ request }: { request: Request }) => {
    const url = new URL(request.url);
    const format = negotiateResource(
      url.searchParams.get("_format"),
      request.headers.get("accept"),
      null,
      config.fhirVersion,
    );
    const statement = toCapabilityStatement({
      // A fhirVersion MIME parameter asks for the statement of that release.
      version: format.version,
      software: { name: "fhirbin", version: pkg.version },
      url: baseOf(request),
      date: started,
      auth: config.auth,
      smart: config.jwt !== null,
    });
    const response = resourceResponse(statement, format, {
      pretty: url.searchParams.get("_pretty") === "true",
    });
    return forMethod(request, response);
  };
  const routes = new Elysia({ name: "fhirbin-metadata", prefix: config.basePath })
    .get("/metadata", handler)
    .head("/metadata", handler);
  // With the base at the root, `GET [base]` is the demo app itself.
  if (config.basePath === "") return routes;
  const base = ({ request }: { request: Request }) => {
    // A browser opening the printed base URL wants a page: 303 "See Other" sends it to the app with a GET.
    if (prefersHtml(request.headers.get("accept")))
      return new Response(null, { status: 303, headers: { location: "/" } });
    throw new FhirError(
      404,
      "not-found",
      `This is the FHIR base of fhirbin: its CapabilityStatement is ${baseOf(request)}/metadata, ` +
        `the documents are under ${baseOf(request)}/Binary; the API docs are at /docs, the demo app at /`,
    );
  };
  // Not an API of its own: left out of the API docs.
  const hidden = { detail: { hide: true } };
  return routes.get("", base, hidden).get("/", base, hidden);
}

/** True when the most preferred entry of an Accept header is `text/html`, as a browser's navigation sends. */
function prefersHtml(accept: string | null): boolean {
  const entries = accept ? parseAccept(accept).filter((entry) => entry.q > 0) : [];
  const top = Math.max(...entries.map((entry) => entry.q));
  return entries.some((entry) => entry.q === top && entry.essence === "text/html");
}
