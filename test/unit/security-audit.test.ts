/** The audit trail's pure rules: the line of one event, the audited interactions and the version named. */
import { describe, expect, test } from "bun:test";
import {
  type AuditEvent,
  type AuditFacts,
  auditedInteraction,
  auditedVersion,
  auditLine,
} from "../../src/security/audit.ts";

const time = new Date("2026-11-22T09:30:00.123Z");
const facts = (over: Partial<AuditFacts>): AuditFacts => ({
  time,
  requestId: "req-1",
  interaction: "read",
  status: 200,
  who: "reader",
  address: "127.0.0.1",
  id: "doc",
  versionId: null,
  ...over,
});

describe("auditLine", () => {
  test("is one line of JSON: an R4 AuditEvent", () => {
    const line = auditLine(facts({ versionId: "3" }));
    expect(line.includes("\n")).toBe(false);
    expect(JSON.parse(line) as AuditEvent).toEqual({
      resourceType: "AuditEvent",
      id: "req-1",
      type: {
        system: "http://terminology.hl7.org/CodeSystem/audit-event-type",
        code: "rest",
        display: "RESTful Operation",
      },
      subtype: [{ system: "http://hl7.org/fhir/restful-interaction", code: "read" }],
      action: "R",
      recorded: "2026-11-22T09:30:00.123Z",
      outcome: "0",
      outcomeDesc: "HTTP 200",
      agent: [{ who: { display: "reader" }, requestor: true, network: { address: "127.0.0.1", type: "2" } }],
      source: { observer: { display: "fhirbin" } },
      entity: [{ what: { reference: "Binary/doc/_history/3" } }],
    });
  });

  test.each([
    ["create", 201, "C", "0"],
    ["update", 200, "U", "0"],
    ["delete", 204, "D", "0"],
    ["search-type", 200, "E", "0"],
    ["history-instance", 404, "R", "4"],
    ["vread", 401, "R", "4"],
    ["read", 500, "R", "8"],
    ["history-type", 503, "R", "8"],
  ] as const)("%s answered %d: action %s, outcome %s", (interaction, status, action, outcome) => {
    const event = JSON.parse(auditLine(facts({ interaction, status }))) as AuditEvent;
    expect([event.action, event.outcome, event.outcomeDesc]).toEqual([action, outcome, `HTTP ${status}`]);
  });

  test("no address and no id leave out network and entity", () => {
    const event = JSON.parse(auditLine(facts({ address: null, id: null }))) as AuditEvent;
    expect(event.agent[0]?.network).toBeUndefined();
    expect(event.entity).toBeUndefined();
  });

  test("values from the request are quoted, whatever they hold", () => {
    const odd = 'a"b\\c\n\u0000</script>é';
    const event = JSON.parse(
      auditLine(facts({ who: odd, id: odd, versionId: odd, address: odd })),
    ) as AuditEvent;
    expect(event.agent[0]?.who.display).toBe(odd);
    expect(event.agent[0]?.network?.address).toBe(odd);
    expect(event.entity?.[0]?.what.reference).toBe(`Binary/${odd}/_history/${odd}`);
  });
});

describe("auditedInteraction", () => {
  test.each([
    ["GET", "/Binary/:id", "read"],
    ["HEAD", "/Binary/:id", "read"],
    ["GET", "/Binary/:id/_history/:vid", "vread"],
    ["HEAD", "/Binary/:id/_history/:vid", "vread"],
    ["GET", "/Binary/:id/_history", "history-instance"],
    ["GET", "/Binary/_history", "history-type"],
    ["GET", "/Binary", "search-type"],
    ["POST", "/Binary/_search", "search-type"],
    ["POST", "/Binary", "create"],
    ["PUT", "/Binary/:id", "update"],
    ["DELETE", "/Binary/:id", "delete"],
    ["POST", "/Binary/:id/$expunge", "operation"],
    ["PATCH", "/Binary/:id", null],
    ["POST", "/Binary/:id", null],
    ["GET", "/metadata", null],
    ["GET", "/Binary/:id/extra", null],
  ] as const)("%s %s is %p", (method, route, expected) => {
    expect(auditedInteraction(method, route)).toBe(expected);
  });
});

describe("auditedVersion", () => {
  test.each([
    [{ etag: 'W/"3"' }, { id: null, versionId: "3" }],
    [{ location: "http://h/fhir/Binary/abc/_history/2" }, { id: "abc", versionId: "2" }],
    [
      { etag: 'W/"5"', location: "http://h/fhir/Binary/abc/_history/5" },
      { id: "abc", versionId: "5" },
    ],
    [{ etag: '"3"' }, { id: null, versionId: null }],
    [{ location: "http://h/fhir/Binary/abc" }, { id: null, versionId: null }],
    [{}, { id: null, versionId: null }],
  ])("%p names %p", (headers, expected) => {
    expect(auditedVersion(headers)).toEqual(expected);
    expect(auditedVersion(new Headers(headers))).toEqual(expected);
  });
});
