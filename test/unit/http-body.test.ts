/** Write bodies (fhir-binary-rules.md section 3): the `Prefer: return=` choice and the wrapped size limit. */
import { expect, test } from "bun:test";
import { base64Length } from "../../src/fhir/binary.ts";
import { preferredReturn, wrappedLimit } from "../../src/http/body.ts";

test.each<[string | null, ReturnType<typeof preferredReturn>]>([
  [null, null],
  ["", null],
  ["return=minimal", "minimal"],
  ["return=representation", "representation"],
  ["return=OperationOutcome", "OperationOutcome"],
  ["return=operationoutcome", "OperationOutcome"],
  ["RETURN=MINIMAL", "minimal"],
  ['return="representation"', "representation"],
  ["return = minimal", "minimal"],
  ["respond-async, return=minimal", "minimal"],
  ["handling=strict; return=representation", "representation"],
  ["wait=10,return=OperationOutcome", "OperationOutcome"],
  ["return=full", null],
  ["return=", null],
  ["noreturn=minimal", null],
  ["x-return=minimal", null],
  ["respond-async", null],
  // The token must be the whole value, not a prefix of a longer one.
  ["return=minimalist", null],
  ["return=representations", null],
])("Prefer %p is %p", (header, expected) => {
  expect(preferredReturn(header)).toBe(expected);
});

test.each([
  [0, 64 * 1024],
  [1, 4 + 64 * 1024],
  [3, 4 + 64 * 1024],
  [4, 8 + 64 * 1024],
  [1_000_000, 1_333_336 + 64 * 1024],
  [512 * 2 ** 20, 715_827_884 + 64 * 1024],
])("wrappedLimit(%p) is %p", (maxSize, limit) => {
  expect(wrappedLimit(maxSize)).toBe(limit);
  // Room for the whole base64 payload of a maximal document plus its envelope.
  expect(wrappedLimit(maxSize) - base64Length(maxSize)).toBe(64 * 1024);
});
