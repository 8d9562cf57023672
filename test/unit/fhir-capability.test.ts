/**
 * `GET [base]/metadata` (fhir-binary-rules.md section 7) in each release's own shape: DSTU2 Conformance
 * with acceptUnknown and no conditionalRead, STU3 CapabilityStatement with acceptUnknown, R4 without it.
 */
import { expect, test } from "bun:test";
import { FILE_NAME_EXTENSION } from "../../src/fhir/binary.ts";
import { type CapabilityOptions, toCapabilityStatement } from "../../src/fhir/capability.ts";
import type { Resource } from "../../src/fhir/outcome.ts";
import { FHIR_VERSIONS, R4B, R5 } from "../../src/fhir/version.ts";
import { toXml } from "../../src/fhir/xml.ts";

const OPTIONS: Omit<CapabilityOptions, "version"> = {
  software: { name: "fhirbin", version: "0.1.0" },
  url: "http://127.0.0.1:8080/fhir",
  date: "2024-05-06T07:08:09Z",
  auth: true,
};

const INTERACTIONS = [
  "read",
  "vread",
  "update",
  "delete",
  "history-instance",
  "create",
  // Search (issue 6).
  "search-type",
  "history-type",
].map((code) => ({ code }));

/** Search (issue 6): the search parameters; `contenttype` has a definition in DSTU2 and STU3 only. */
function searchParams(contenttypeDefined: boolean): Record<string, unknown>[] {
  const spec = "http://hl7.org/fhir/SearchParameter/";
  return [
    {
      name: "contenttype",
      ...(contenttypeDefined ? { definition: `${spec}Binary-contenttype` } : {}),
      type: "token",
      documentation: expect.any(String),
    },
    // fhirbin's own: the original file name; no SearchParameter is published for it.
    { name: "filename", type: "string", documentation: expect.any(String) },
    { name: "_id", definition: `${spec}Resource-id`, type: "token", documentation: expect.any(String) },
    {
      name: "_lastUpdated",
      definition: `${spec}Resource-lastUpdated`,
      type: "date",
      documentation: expect.any(String),
    },
  ];
}
const BINARY = {
  type: "Binary",
  interaction: INTERACTIONS,
  versioning: "versioned-update",
  readHistory: true,
  updateCreate: true,
};
const AUTH_ON = "Every request except GET /metadata needs Authorization: Bearer <token> (RFC 6750).";
const AUTH_OFF = "Authentication is switched off on this server.";

/** The statement every release shares, with the release-specific parts filled in. */
function expected(
  resourceType: string,
  fhirVersion: string,
  extra: { acceptUnknown?: "no"; conditionalRead?: "full-support"; security?: string },
): Resource {
  const { acceptUnknown, conditionalRead, security = AUTH_ON } = extra;
  // $expunge: per resource with a canonical in R4, per server with a Reference before it.
  const r4 = fhirVersion === "4.0.1";
  const expunge = { name: "expunge", definition: "urn:fhirbin:OperationDefinition:Binary-i-expunge" };
  return {
    resourceType,
    status: "active",
    date: OPTIONS.date,
    publisher: "fhirbin",
    kind: "instance",
    software: OPTIONS.software,
    implementation: { description: "fhirbin: FHIR Binary server", url: OPTIONS.url },
    fhirVersion,
    ...(acceptUnknown ? { acceptUnknown } : {}),
    format: ["json", "xml"],
    rest: [
      {
        mode: "server",
        security: { description: security },
        resource: [
          {
            ...BINARY,
            // rest.resource.documentation (from STU3) names the file-name extension of Binary.meta.
            ...(resourceType === "Conformance"
              ? {}
              : { documentation: expect.stringContaining(FILE_NAME_EXTENSION) }),
            ...(conditionalRead ? { conditionalRead } : {}),
            searchParam: searchParams(!r4),
            ...(r4 ? { operation: [{ ...expunge, documentation: expect.any(String) }] } : {}),
          },
        ],
        ...(r4 ? {} : { operation: [{ name: expunge.name, definition: { reference: expunge.definition } }] }),
      },
    ],
  };
}

test.each([
  ["DSTU2", false, expected("Conformance", "1.0.2", { acceptUnknown: "no" })],
  [
    "STU3",
    false,
    expected("CapabilityStatement", "3.0.2", { acceptUnknown: "no", conditionalRead: "full-support" }),
  ],
  ["R4", false, expected("CapabilityStatement", "4.0.1", { conditionalRead: "full-support" })],
  [
    "R4",
    true,
    expected("CapabilityStatement", "4.0.1", { conditionalRead: "full-support", security: AUTH_OFF }),
  ],
] as const)("%s (auth off: %p)", (name, authOff, statement) => {
  const resource = toCapabilityStatement({ ...OPTIONS, version: FHIR_VERSIONS[name], auth: !authOff });
  expect(resource).toEqual(statement);
});

test.each([
  ["R4B", R4B, "4.3.0"],
  ["R5", R5, "5.0.0"],
] as const)("%s says its own release, in R4's shape", (_name, version, release) => {
  const r4 = toCapabilityStatement({ ...OPTIONS, version: FHIR_VERSIONS.R4 });
  expect(toCapabilityStatement({ ...OPTIONS, version })).toEqual({ ...r4, fhirVersion: release });
});

// Element order of the release's definition (DSTU2 Conformance has publisher before date; STU3 moved date up).
const STU3_ORDER = ["status", "date", "publisher", "kind", "software", "implementation", "fhirVersion"];
test.each([
  ["DSTU2", ["status", "publisher", "date", "kind", "software", "implementation", "fhirVersion"]],
  ["STU3", STU3_ORDER],
  ["R4", STU3_ORDER],
] as const)("%s elements are in spec order", (name, order) => {
  const resource = toCapabilityStatement({ ...OPTIONS, version: FHIR_VERSIONS[name] });
  // The XML form is written in insertion order, so it must follow the element order of the release.
  const all = ["resourceType", ...order, "acceptUnknown", "format", "rest"];
  expect(Object.keys(resource)).toEqual(all.filter((key) => key in resource));
  const rest = (resource.rest as Record<string, unknown>[])[0] ?? {};
  expect(Object.keys(rest)).toEqual([
    "mode",
    "security",
    "resource",
    ...(name === "R4" ? [] : ["operation"]),
  ]);
  const binary = (rest.resource as Record<string, unknown>[])[0] ?? {};
  expect(Object.keys(binary).slice(0, 3)).toEqual(
    name === "DSTU2" ? ["type", "interaction", "versioning"] : ["type", "documentation", "interaction"],
  );
  expect(toXml(resource).startsWith(`<?xml version="1.0" encoding="UTF-8"?><${resource.resourceType} `)).toBe(
    true,
  );
});
