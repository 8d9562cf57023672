/**
 * Ids (fhir-binary-rules.md section 4): `[A-Za-z0-9\-\.]{1,64}`, case-sensitive, ids made only of dots
 * refused; version ids are 1, 2, 3...
 */
import { expect, test } from "bun:test";
import { isValidId, parseVersionId } from "../../src/fhir/id.ts";

test.each([
  ["a", true],
  ["Z", true],
  ["0", true],
  ["-", true],
  ["a.b", true],
  [".a", true],
  ["a.", true],
  ["..a", true],
  ["A-z.0-9", true],
  ["123e4567-e89b-12d3-a456-426614174000", true],
  ["x".repeat(64), true],
  ["x".repeat(65), false],
  ["", false],
  [".", false],
  ["..", false],
  ["....", false],
  ["a/b", false],
  ["../etc", false],
  ["a\\b", false],
  ["a%2Fb", false],
  ["%2e%2e", false],
  ["a b", false],
  ["a_b", false],
  ["a:b", false],
  ["abc\n", false],
  ["\nabc", false],
  ["a\0", false],
  ["é", false],
  ["ａ", false],
  ["İ", false],
  ["😀", false],
])("isValidId %p is %p", (id, valid) => {
  expect(isValidId(id)).toBe(valid);
});

test.each([
  ["1", 1],
  ["2", 2],
  ["10", 10],
  ["999999999999999", 999_999_999_999_999],
  ["9999999999999999", null],
  ["0", null],
  ["01", null],
  ["-1", null],
  ["+1", null],
  ["1.0", null],
  ["1e3", null],
  [" 1", null],
  ["1 ", null],
  ["1\n", null],
  ["", null],
  ["a", null],
  ["١", null],
])("parseVersionId %p is %p", (vid, expected) => {
  expect(parseVersionId(vid)).toBe(expected);
});
