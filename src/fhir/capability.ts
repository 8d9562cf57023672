/** The CapabilityStatement (Conformance in DSTU2) that `GET [base]/metadata` answers. */
import { FILE_NAME_EXTENSION } from "./binary.ts";
import { EXPUNGE_DEFINITION } from "./expunge.ts";
import type { Resource } from "./outcome.ts";
import type { FhirVersion } from "./version.ts";

export interface CapabilityOptions {
  version: FhirVersion;
  software: { name: string; version: string };
  url: string;
  date: string;
  auth: boolean;
  /** JWT bearer tokens with SMART scopes are accepted: the security section names the SMART service. */
  smart?: boolean;
}

/** What the Binary resources of this server carry beyond the specification. */
const RESOURCE_DOCUMENTATION = [
  "A document's original file name, sent as `Content-Disposition: attachment; filename*=UTF-8''...` (or",
  "`filename=`) with a create or update, is kept with the version: in `Binary.meta` as the extension",
  `${FILE_NAME_EXTENSION} (valueString), in the native read's \`Content-Disposition\`, and searchable`,
  "with the `filename` parameter.",
].join(" ");

/** Describes the Binary endpoint fhirbin serves, in the release's own resource shape. */
export function toCapabilityStatement({
  version,
  software,
  url,
  date,
  auth,
  smart = false,
}: CapabilityOptions): Resource {
  const interactions = ["read", "vread", "update", "delete", "history-instance", "create"];
  // Search: search-type and history-type.
  interactions.push("search-type", "history-type");
  const resource: Record<string, unknown> = {
    type: "Binary",
    // rest.resource.documentation arrived in STU3; it comes before interaction in the element order.
    ...(version.name === "DSTU2" ? {} : { documentation: RESOURCE_DOCUMENTATION }),
    interaction: interactions.map((code) => ({ code })),
    versioning: "versioned-update",
    readHistory: true,
    updateCreate: true,
  };
  // conditionalRead arrived in STU3.
  if (version.name !== "DSTU2") resource.conditionalRead = "full-support";
  // Search: the parameters of GET [base]/Binary (fhir-binary-rules.md section 6).
  resource.searchParam = searchParams(version);
  // R4 lists operations per resource, with a canonical; DSTU2 and STU3 only per server, by Reference.
  const expunge = { name: "expunge", definition: EXPUNGE_DEFINITION, documentation: EXPUNGE_DOCUMENTATION };
  if (version.name === "R4") resource.operation = [expunge];
  // Element order differs: DSTU2 Conformance has publisher before date, STU3 and R4 the reverse.
  const dated = version.name === "DSTU2" ? { publisher: "fhirbin", date } : { date, publisher: "fhirbin" };
  const statement: Resource = {
    resourceType: version.capabilityType,
    status: "active",
    ...dated,
    kind: "instance",
    software,
    implementation: { description: "fhirbin: FHIR Binary server", url },
    fhirVersion: version.release,
  };
  // acceptUnknown is required in DSTU2 and STU3 and gone from R4.
  if (version.name !== "R4") statement.acceptUnknown = "no";
  statement.format = ["json", "xml"];
  statement.rest = [
    {
      mode: "server",
      security: {
        ...(auth && smart ? { service: [smartService(version)] } : {}),
        description: auth
          ? smart
            ? "Every request except GET /metadata needs Authorization: Bearer <token> (RFC 6750): a static " +
              "token or a JWT with SMART on FHIR scopes on Binary (v1 and v2); see .well-known/smart-configuration."
            : "Every request except GET /metadata needs Authorization: Bearer <token> (RFC 6750)."
          : "Authentication is switched off on this server.",
      },
      resource: [resource],
      ...(version.name === "R4"
        ? {}
        : { operation: [{ name: "expunge", definition: { reference: EXPUNGE_DEFINITION } }] }),
    },
  ];
  return statement;
}

const EXPUNGE_DOCUMENTATION =
  "POST [base]/Binary/[id]/$expunge with a Parameters of expungePreviousVersions or expungeDeletedResources " +
  "(valueBoolean): removes those versions and their content for good. Static token or system/Binary.d only.";

/** The SMART-on-FHIR restful security service, in the release's code system. */
function smartService(version: FhirVersion): Record<string, unknown> {
  const system =
    version.name === "R4"
      ? "http://terminology.hl7.org/CodeSystem/restful-security-service"
      : "http://hl7.org/fhir/restful-security-service";
  return { coding: [{ system, code: "SMART-on-FHIR" }], text: "SMART on FHIR" };
}

// Search ------------------------------------------------------------------------------------------

/**
 * The search parameters fhirbin supports on Binary. `contenttype` is defined by DSTU2 and STU3 (R4 defines
 * none for Binary, so it has no definition there); `_id` and `_lastUpdated` are common to all resources.
 */
function searchParams(version: FhirVersion): Record<string, unknown>[] {
  const spec = "http://hl7.org/fhir/SearchParameter/";
  return [
    {
      name: "contenttype",
      ...(version.name === "R4" ? {} : { definition: `${spec}Binary-contenttype` }),
      type: "token",
      documentation:
        "MIME type of the content; a type without parameters also matches it with any parameters",
    },
    {
      name: "filename",
      type: "string",
      documentation:
        "The document's original file name contains the text, ignoring case and accents (comma list); " +
        "`filename:exact` matches the whole name exactly",
    },
    {
      name: "_id",
      definition: `${spec}Resource-id`,
      type: "token",
      documentation: "Logical id (comma list)",
    },
    {
      name: "_lastUpdated",
      definition: `${spec}Resource-lastUpdated`,
      type: "date",
      documentation:
        "When the version was stored; prefixes eq, gt, ge, lt, le; partial dates mean the whole range",
    },
  ];
}
