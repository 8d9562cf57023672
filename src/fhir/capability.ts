/** The CapabilityStatement (Conformance in DSTU2) that `GET [base]/metadata` answers. */
import type { Resource } from "./outcome.ts";
import type { FhirVersion } from "./version.ts";

export interface CapabilityOptions {
  version: FhirVersion;
  software: { name: string; version: string };
  url: string;
  date: string;
  auth: boolean;
}

/** Describes the Binary endpoint fhirbin serves, in the release's own resource shape. */
export function toCapabilityStatement({ version, software, url, date, auth }: CapabilityOptions): Resource {
  const interactions = ["read", "vread", "update", "delete", "history-instance", "create"];
  const resource: Record<string, unknown> = {
    type: "Binary",
    interaction: interactions.map((code) => ({ code })),
    versioning: "versioned-update",
    readHistory: true,
    updateCreate: true,
  };
  // conditionalRead arrived in STU3.
  if (version.name !== "DSTU2") resource.conditionalRead = "full-support";
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
        description: auth
          ? "Every request except GET /metadata needs Authorization: Bearer <token> (RFC 6750)."
          : "Authentication is switched off on this server.",
      },
      resource: [resource],
    },
  ];
  return statement;
}
