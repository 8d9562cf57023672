/**
 * Validators and ranges (RFC 9110 sections 8.8, 13 and 14; fhir-binary-rules.md sections 2 and 3): ETag
 * `W/"<versionId>"`, weak comparison for If-None-Match, whole-second dates, single byte ranges.
 */
import { describe, expect, test } from "bun:test";
import { FhirError } from "../../src/fhir/errors.ts";
import {
  etagOf,
  httpDate,
  ifRangeHolds,
  noneMatchHits,
  notModifiedSince,
  parseIfMatch,
  parseRange,
  type RangeResult,
} from "../../src/http/conditional.ts";

const LAST_UPDATED = "2024-05-06T07:08:09.678Z";
const LAST_MODIFIED = "Mon, 06 May 2024 07:08:09 GMT";

test.each([
  [1, 'W/"1"'],
  [42, 'W/"42"'],
])("etagOf(%p) is %p", (versionId, etag) => {
  expect(etagOf(versionId)).toBe(etag);
});

test.each([
  [LAST_UPDATED, LAST_MODIFIED],
  ["2024-01-02T03:04:05Z", "Tue, 02 Jan 2024 03:04:05 GMT"],
  ["2024-02-29T23:59:59.999+00:00", "Thu, 29 Feb 2024 23:59:59 GMT"],
  ["2024-01-01T01:00:00+02:00", "Sun, 31 Dec 2023 23:00:00 GMT"],
])("httpDate(%p) is %p", (iso, date) => {
  expect(httpDate(iso)).toBe(date);
});

test.each([
  ['W/"3"', true],
  ['"3"', true],
  [' W/"3" ', true],
  ['W/"1", W/"3"', true],
  ['"1","2","3"', true],
  ["*", true],
  [" * ", true],
  ['W/"4"', false],
  ['W/"1", "2"', false],
  ['W/"33"', false],
  ['W/"03"', false],
  ["3", false],
  ["W/3", false],
  ["", false],
  // A quoted `*` is an entity-tag whose opaque value is `*`, not the wildcard (RFC 9110 section 8.8.3).
  ['"*"', false],
])("If-None-Match %p against version 3: %p", (header, hit) => {
  expect(noneMatchHits(header, 3)).toBe(hit);
});

test.each([
  // HTTP dates have whole seconds: 07:08:09.678 is not modified since 07:08:09.
  [LAST_MODIFIED, true],
  ["Mon, 06 May 2024 07:08:10 GMT", true],
  ["Tue, 07 May 2024 00:00:00 GMT", true],
  ["Mon, 06 May 2024 07:08:08 GMT", false],
  ["Sun, 05 May 2024 07:08:09 GMT", false],
  ["not a date", false],
  ["", false],
])("If-Modified-Since %p: not modified %p", (header, notModified) => {
  expect(notModifiedSince(header, LAST_UPDATED)).toBe(notModified);
});

describe("parseIfMatch", () => {
  test.each<[string, number | "*"]>([
    ['W/"3"', 3],
    ['"3"', 3],
    [' W/"12" ', 12],
    ["*", "*"],
    [" * ", "*"],
    // A well-formed tag that names no version fhirbin issues matches nothing (0): a 412, not a 400.
    ['W/"0"', 0],
    ['W/"03"', 0],
    ['W/"abc"', 0],
    ['W/""', 0],
    ['W/"-1"', 0],
    // A quoted `*` is an entity-tag, not the wildcard (RFC 9110 section 8.8.3).
    ['"*"', 0],
  ])("%p is %p", (header, expected) => {
    expect(parseIfMatch(header)).toBe(expected);
  });

  test.each(["", "3", "W/3", "abc", 'W/"1", W/"2"'])("%p is 400", (header) => {
    let error: unknown;
    try {
      parseIfMatch(header);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(FhirError);
    expect(error).toEqual(expect.objectContaining({ status: 400, code: "value" }));
  });
});

test.each([
  ['W/"3"', true],
  ['"3"', true],
  [` ${LAST_MODIFIED} `, true],
  [LAST_MODIFIED, true],
  ['W/"2"', false],
  ['"4"', false],
  // A date matches only when it is exactly the Last-Modified value.
  ["Mon, 06 May 2024 07:08:10 GMT", false],
  ["Tue, 07 May 2024 00:00:00 GMT", false],
  [LAST_UPDATED, false],
  ["", false],
  ["garbage", false],
])("If-Range %p for version 3: %p", (header, holds) => {
  expect(ifRangeHolds(header, 3, LAST_UPDATED)).toBe(holds);
});

describe("parseRange", () => {
  test.each<[string, number, RangeResult]>([
    ["bytes=0-4", 10, { start: 0, end: 4 }],
    ["bytes=5-", 10, { start: 5, end: 9 }],
    ["bytes=-3", 10, { start: 7, end: 9 }],
    ["bytes=0-0", 10, { start: 0, end: 0 }],
    ["bytes=9-9", 10, { start: 9, end: 9 }],
    ["bytes=0-", 10, { start: 0, end: 9 }],
    ["BYTES = 2 - 3", 10, { start: 2, end: 3 }],
    // A last position beyond the end, or a suffix longer than the document, is clamped.
    ["bytes=5-100", 10, { start: 5, end: 9 }],
    ["bytes=-30", 10, { start: 0, end: 9 }],
    ["bytes=-10", 10, { start: 0, end: 9 }],
    // Unsatisfiable: 416.
    ["bytes=10-", 10, "unsatisfiable"],
    ["bytes=10-20", 10, "unsatisfiable"],
    ["bytes=99999999999999999999-", 10, "unsatisfiable"],
    ["bytes=-0", 10, "unsatisfiable"],
    ["bytes=0-4", 0, "unsatisfiable"],
    ["bytes=0-", 0, "unsatisfiable"],
    ["bytes=-3", 0, "unsatisfiable"],
    // Malformed or several ranges: ignored, the whole document is served.
    ["bytes=5-4", 10, null],
    ["bytes=0-1,3-4", 10, null],
    ["bytes=0-1, 3-4", 10, null],
    ["bytes=-", 10, null],
    ["bytes=", 10, null],
    ["bytes 0-4", 10, null],
    ["items=0-4", 10, null],
    ["bytes=a-b", 10, null],
    ["bytes=1.5-2", 10, null],
    ["bytes=--3", 10, null],
    ["", 10, null],
  ])("%p of %p bytes", (header, size, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
});
