/**
 * The history Bundle (fhir-binary-rules.md section 3): newest first as given, deletions as entries with
 * `request.method` DELETE and no resource, resources in summary form named by release.
 */
import { expect, test } from "bun:test";
import { subsettedTag } from "../../src/fhir/binary.ts";
import { type HistoryRecord, toHistoryBundle } from "../../src/fhir/bundle.ts";
import { FHIR_VERSIONS } from "../../src/fhir/version.ts";

const BASE = "http://127.0.0.1:8080/fhir";
const SELF = `${BASE}/Binary/doc-1/_history`;
const T1 = "2024-05-06T07:08:01.000Z";
const T2 = "2024-05-06T07:08:02.000Z";
const T3 = "2024-05-06T07:08:03.000Z";

const RECORDS: HistoryRecord[] = [
  { id: "doc-1", versionId: 3, lastUpdated: T3, deleted: true },
  {
    id: "doc-1",
    versionId: 2,
    lastUpdated: T2,
    deleted: false,
    contentType: "text/plain",
    securityContext: "Patient/123",
  },
  {
    id: "doc-1",
    versionId: 1,
    lastUpdated: T1,
    deleted: false,
    contentType: "application/pdf",
    securityContext: null,
  },
];

/** The summary-form Binary of a history entry. */
const binary = (
  name: "DSTU2" | "STU3" | "R4",
  versionId: string,
  lastUpdated: string,
  contentType: string,
  securityContext?: string,
): Record<string, unknown> => ({
  resourceType: "Binary",
  id: "doc-1",
  meta: { versionId, lastUpdated, tag: [subsettedTag(FHIR_VERSIONS[name])] },
  contentType,
  ...(securityContext ? { securityContext: { reference: securityContext } } : {}),
});

test.each([
  ["DSTU2", undefined],
  ["STU3", "Patient/123"],
  ["R4", "Patient/123"],
] as const)("%s history", (name, securityContext) => {
  expect(toHistoryBundle(RECORDS, BASE, FHIR_VERSIONS[name], SELF)).toEqual({
    resourceType: "Bundle",
    type: "history",
    total: 3,
    link: [{ relation: "self", url: SELF }],
    entry: [
      {
        fullUrl: `${BASE}/Binary/doc-1`,
        request: { method: "DELETE", url: "Binary/doc-1" },
        response: { status: "204", etag: 'W/"3"', lastModified: T3 },
      },
      {
        fullUrl: `${BASE}/Binary/doc-1`,
        resource: binary(name, "2", T2, "text/plain", securityContext),
        request: { method: "PUT", url: "Binary/doc-1" },
        response: { status: "200", etag: 'W/"2"', lastModified: T2 },
      },
      {
        fullUrl: `${BASE}/Binary/doc-1`,
        resource: binary(name, "1", T1, "application/pdf"),
        request: { method: "POST", url: "Binary" },
        response: { status: "201", etag: 'W/"1"', lastModified: T1 },
      },
    ],
  });
});

test("an empty history is an empty Bundle", () => {
  expect(toHistoryBundle([], BASE, FHIR_VERSIONS.R4, SELF)).toEqual({
    resourceType: "Bundle",
    type: "history",
    total: 0,
    link: [{ relation: "self", url: SELF }],
    entry: [],
  });
});
