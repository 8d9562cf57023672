/**
 * Search parameters (fhir-binary-rules.md section 6, R4 search.html): partial dates as ranges, the date
 * prefixes, contenttype tokens, _id lists, _count, _sort, _summary, _elements, unknown parameters (ignored
 * or 400 under strict handling), unsupported modifiers, and the paging cursor.
 */
import { describe, expect, test } from "bun:test";
import { FhirError } from "../../src/fhir/errors.ts";
import {
  type Cursor,
  DEFAULT_COUNT,
  decodeCursor,
  encodeCursor,
  isStrictHandling,
  MAX_COUNT,
  normaliseContentType,
  parseDateRange,
  parseHistoryParams,
  parseLastUpdated,
  parseSearchParams,
} from "../../src/fhir/search-params.ts";

const ms = (iso: string): number => Date.parse(iso);

/** The status and issue code of the FhirError `f` throws. */
function errorOf(f: () => unknown): { status: number; code: string } {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(FhirError);
    const { status, code } = error as FhirError;
    return { status, code };
  }
  throw new Error("expected a FhirError");
}

const search = (query: string, strict = false) => parseSearchParams(new URLSearchParams(query), { strict });

describe("parseDateRange: a partial date means its whole range", () => {
  test.each([
    ["2024", "2024-01-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"],
    ["2024-02", "2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"],
    ["2024-12", "2024-12-01T00:00:00.000Z", "2025-01-01T00:00:00.000Z"],
    ["2024-02-29", "2024-02-29T00:00:00.000Z", "2024-03-01T00:00:00.000Z"],
    ["2024-03-05T10:30", "2024-03-05T10:30:00.000Z", "2024-03-05T10:31:00.000Z"],
    ["2024-03-05T10:30Z", "2024-03-05T10:30:00.000Z", "2024-03-05T10:31:00.000Z"],
    ["2024-03-05T10:30:15Z", "2024-03-05T10:30:15.000Z", "2024-03-05T10:30:16.000Z"],
    ["2024-03-05T10:30:15.5Z", "2024-03-05T10:30:15.500Z", "2024-03-05T10:30:15.600Z"],
    ["2024-03-05T10:30:15.123Z", "2024-03-05T10:30:15.123Z", "2024-03-05T10:30:15.124Z"],
    ["2024-03-05T10:30:15+01:00", "2024-03-05T09:30:15.000Z", "2024-03-05T09:30:16.000Z"],
    ["2024-03-05T10:30:15-05:30", "2024-03-05T16:00:15.000Z", "2024-03-05T16:00:16.000Z"],
    // An unescaped `+` in a query string arrives as a space.
    ["2024-03-05T10:30:15 01:00", "2024-03-05T09:30:15.000Z", "2024-03-05T09:30:16.000Z"],
  ])("%s is [%s, %s)", (value, from, to) => {
    expect(parseDateRange(value)).toEqual({ from: ms(from), to: ms(to) });
  });

  test.each([
    "24",
    "2024-13",
    "2024-00",
    "2023-02-29",
    "2024-04-31",
    "2024-03-05T24:00",
    "2024-03-05T10:60",
    "2024-03-05T10:30:61Z",
    "2024-03-05T10:30:15+15:00",
    "2024-03-05 10:30",
    "yesterday",
    "",
  ])("%p is a 400", (value) => {
    expect(errorOf(() => parseDateRange(value))).toEqual({ status: 400, code: "value" });
  });
});

describe("parseLastUpdated: prefixes against the range of the value", () => {
  const day = { from: ms("2024-03-05T00:00:00Z"), to: ms("2024-03-06T00:00:00Z") };
  test.each([
    ["2024-03-05", { from: day.from, to: day.to }],
    ["eq2024-03-05", { from: day.from, to: day.to }],
    ["gt2024-03-05", { from: day.to, to: null }],
    ["ge2024-03-05", { from: day.from, to: null }],
    ["lt2024-03-05", { from: null, to: day.from }],
    ["le2024-03-05", { from: null, to: day.to }],
  ])("%s", (value, range) => {
    expect(parseLastUpdated(value)).toEqual(range);
  });

  test.each([
    ["garbage", '"garbage" is not a date'],
    ["gtgarbage", '"gtgarbage" is not a date'],
    ["gt2024-13", '"gt2024-13" is not a valid date'],
    ["le2024-03-05T10:00+15:00", '"le2024-03-05T10:00+15:00" has an invalid time zone'],
  ])("a garbled date is quoted as the client sent it: %s", (value, diagnostics) => {
    expect(() => parseLastUpdated(value)).toThrow(diagnostics);
  });

  test.each(["ne2024", "sa2024", "eb2024", "ap2024", "xx2024"])("%s is not supported: 400", (value) => {
    expect(errorOf(() => parseLastUpdated(value))).toEqual({ status: 400, code: "not-supported" });
  });

  test("a comma list (OR of dates) is not supported", () => {
    expect(errorOf(() => parseLastUpdated("2024,2025"))).toEqual({ status: 400, code: "not-supported" });
  });

  test("repeated _lastUpdated parameters are ANDed into one range", () => {
    expect(search("_lastUpdated=ge2024-01&_lastUpdated=lt2024-03").lastUpdated).toEqual({
      from: ms("2024-01-01T00:00:00Z"),
      to: ms("2024-03-01T00:00:00Z"),
    });
    expect(search("_lastUpdated=gt2024&_lastUpdated=le2025-06").lastUpdated).toEqual({
      from: ms("2025-01-01T00:00:00Z"),
      to: ms("2025-07-01T00:00:00Z"),
    });
  });
});

describe("contenttype", () => {
  test.each([
    ["application/pdf", [{ essence: "application/pdf", exact: null }]],
    ["Application/PDF", [{ essence: "application/pdf", exact: null }]],
    ["text/plain; charset=UTF-8", [{ essence: "text/plain", exact: "text/plain;charset=utf-8" }]],
    ["text/plain;charset=utf-8", [{ essence: "text/plain", exact: "text/plain;charset=utf-8" }]],
    ["urn:ietf:bcp:13|image/png", [{ essence: "image/png", exact: null }]],
    ["|image/png", [{ essence: "image/png", exact: null }]],
    // Another code system's codes are never MIME types.
    ["http://example.org|image/png", []],
    [
      "application/pdf,image/png",
      [
        { essence: "application/pdf", exact: null },
        { essence: "image/png", exact: null },
      ],
    ],
    // An unescaped `+` arrives as a space.
    ["application/fhir json", [{ essence: "application/fhir+json", exact: null }]],
    // An alternative another one covers is dropped, so none overlap.
    ["text/plain; charset=utf-8,text/plain", [{ essence: "text/plain", exact: null }]],
  ])("%s", (value, types) => {
    expect(search(`contenttype=${encodeURIComponent(value)}`).types).toEqual(types);
  });

  test("repeated contenttype parameters are ANDed", () => {
    expect(search("contenttype=text/plain&contenttype=text/plain;charset=utf-8").types).toEqual([
      { essence: "text/plain", exact: "text/plain;charset=utf-8" },
    ]);
    expect(search("contenttype=text/plain&contenttype=image/png").types).toEqual([]);
  });

  test.each(["pdf", "application/", "image/*"])("%s is not a MIME type: 400", (value) => {
    expect(errorOf(() => search(`contenttype=${value}`))).toEqual({ status: 400, code: "value" });
  });

  test.each(["contenttype:not", "contenttype:missing", "contenttype:text", "_id:exact"])(
    "the modifier %s is refused (R4: SHALL reject unsupported modifiers)",
    (name) => {
      expect(errorOf(() => search(`${name}=application/pdf`))).toEqual({
        status: 400,
        code: "not-supported",
      });
    },
  );

  test.each([
    ["application/pdf", "application/pdf", "application/pdf"],
    ["Text/Plain; Charset=UTF-8", "text/plain", "text/plain;charset=utf-8"],
    ["text/plain; format=flowed; charset=utf-8", "text/plain", "text/plain;charset=utf-8;format=flowed"],
    ['text/plain; charset="utf-8"', "text/plain", "text/plain;charset=utf-8"],
  ])("normaliseContentType(%p)", (value, essence, normalised) => {
    expect(normaliseContentType(value)).toEqual({ essence, normalised });
  });
});

describe("_id, _count, _sort, _summary, _elements", () => {
  test("_id is a comma list; repeated _id parameters intersect", () => {
    expect(search("_id=a,b,a").ids).toEqual(["a", "b"]);
    expect(search("_id=a,b&_id=b,c").ids).toEqual(["b"]);
    expect(search("").ids).toBeNull();
    expect(errorOf(() => search("_id=a,b_c"))).toEqual({ status: 400, code: "value" });
  });

  test.each([
    ["", DEFAULT_COUNT, false],
    ["_count=5", 5, false],
    ["_count=1000", 1000, false],
    ["_count=5000", MAX_COUNT, false],
    ["_count=0", 0, true],
  ])("%p: count %d, count only %p", (query, count, countOnly) => {
    expect(search(query)).toMatchObject({ count, countOnly });
  });

  test.each(["_count=-1", "_count=ten", "_count=1.5"])("%s is a 400", (query) => {
    expect(errorOf(() => search(query))).toEqual({ status: 400, code: "value" });
  });

  test.each([
    ["", { key: "lastUpdated", descending: true }],
    ["_sort=_lastUpdated", { key: "lastUpdated", descending: false }],
    ["_sort=-_lastUpdated", { key: "lastUpdated", descending: true }],
    ["_sort=_id", { key: "id", descending: false }],
    ["_sort=-_id", { key: "id", descending: true }],
    // DSTU2 spelling.
    ["_sort:asc=_lastUpdated", { key: "lastUpdated", descending: false }],
    ["_sort:desc=_id", { key: "id", descending: true }],
  ] as const)("%p sorts by %p", (query, sort) => {
    expect(search(query).sort).toEqual(sort);
  });

  test.each(["_sort=contenttype", "_sort=_lastUpdated,_id", "_sort:desc=-_id", "_sort:up=_id"])(
    "%s is a 400",
    (query) => {
      expect(errorOf(() => search(query))).toEqual({ status: 400, code: "not-supported" });
    },
  );

  test.each([
    ["_summary=true", false],
    ["_summary=text", false],
    ["_summary=false", false],
    ["_summary=count", true],
    // R4 search defines data too; entries stay in summary form, never the payload.
    ["_summary=data", false],
  ])("%s: count only %p", (query, countOnly) => {
    expect(search(query).countOnly).toBe(countOnly);
  });

  test("_summary=maybe is a 400", () => {
    expect(errorOf(() => search("_summary=maybe"))).toEqual({ status: 400, code: "not-supported" });
  });

  test("_elements lists element names, with or without the type prefix", () => {
    expect(search("_elements=contentType,Binary.securityContext").elements).toEqual([
      "contentType",
      "securityContext",
    ]);
    expect(search("").elements).toBeNull();
  });
});

describe("unknown parameters and handling", () => {
  test("lenient: ignored and named, and left out of the links", () => {
    const params = search("contenttype=application/pdf&subject=Patient/1&_include=*&_count=5");
    expect(params.ignored).toEqual(["subject", "_include"]);
    expect(params.links).toEqual([
      ["contenttype", "application/pdf"],
      ["_count", "5"],
    ]);
  });

  test("strict: the first unknown parameter is a 400", () => {
    expect(errorOf(() => search("subject=Patient/1", true))).toEqual({ status: 400, code: "not-supported" });
    expect(search("contenttype=application/pdf", true).ignored).toEqual([]);
  });

  test("empty values are ignored", () => {
    expect(search("contenttype=&_id=&_lastUpdated=")).toMatchObject({
      ids: null,
      types: null,
      lastUpdated: { from: null, to: null },
    });
  });

  test.each([
    ["handling=strict", true],
    ["return=minimal, handling=strict", true],
    ["handling=strict; respond-async", true],
    ['handling="strict"', true],
    ["HANDLING=STRICT", true],
    ["handling=lenient", false],
    ["handling=stricter", false],
    [null, false],
  ])("Prefer: %p is strict: %p", (prefer, strict) => {
    expect(isStrictHandling(prefer)).toBe(strict);
  });

  test("history takes _since and _count; others are ignored, or a 400 when strict", () => {
    const params = parseHistoryParams(new URLSearchParams("_since=2024-03&_count=7&_at=2024"), {
      strict: false,
    });
    expect(params).toMatchObject({ since: ms("2024-03-01T00:00:00Z"), count: 7, ignored: ["_at"] });
    expect(errorOf(() => parseHistoryParams(new URLSearchParams("_at=2024"), { strict: true }))).toEqual({
      status: 400,
      code: "not-supported",
    });
  });
});

describe("the cursor", () => {
  const cursor: Cursor = {
    snapshot: 42,
    direction: "next",
    key: [1700000000123, 7],
    total: 99,
    filters: "abc",
  };

  test("round-trips, and carries the total only for the same filters", () => {
    expect(decodeCursor(encodeCursor(cursor), "lastUpdated", "abc")).toEqual(cursor);
    expect(decodeCursor(encodeCursor(cursor), "lastUpdated", "other")).toEqual({ ...cursor, total: -1 });
    const byId: Cursor = { ...cursor, direction: "previous", key: ["doc-1", 3] };
    expect(decodeCursor(encodeCursor(byId), "id", "abc")).toEqual(byId);
  });

  test.each([
    "garbage",
    Buffer.from("[1,2,3]").toString("base64url"),
    Buffer.from('[1,"x",[1,2],3,"f"]').toString("base64url"),
    Buffer.from('[-1,"n",[1,2],3,"f"]').toString("base64url"),
    Buffer.from('[1,"n",["a",2],3,"f"]').toString("base64url"),
  ])("%p is a 400", (text) => {
    expect(errorOf(() => decodeCursor(text, "lastUpdated", "f"))).toEqual({ status: 400, code: "value" });
  });

  test("a cursor made for another sort key is a 400", () => {
    expect(errorOf(() => decodeCursor(encodeCursor(cursor), "id", "abc"))).toEqual({
      status: 400,
      code: "value",
    });
  });
});
