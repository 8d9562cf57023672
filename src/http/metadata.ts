/** `GET [base]/metadata`: the CapabilityStatement, served without a token. */
import { Elysia } from "elysia";
import pkg from "../../package.json" with { type: "json" };
import type { Config } from "../config.ts";
import { toCapabilityStatement } from "../fhir/capability.ts";
import { negotiateResource } from "../fhir/format.ts";
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
  return new Elysia({ name: "fhirbin-metadata", prefix: config.basePath })
    .get("/metadata", handler)
    .head("/metadata", handler);
}
