/** sameSecret: the constant-time comparison of static tokens. */
import { expect, test } from "bun:test";
import { sameSecret } from "../../src/http/auth.ts";

test.each([
  ["token-0123456789abcdef", "token-0123456789abcdef", true],
  ["token-0123456789abcdef", "token-0123456789abcdeF", false],
  ["token-0123456789abcdef", "Token-0123456789abcdef", false],
  ["token-0123456789abcdef", "token-0123456789abcde", false],
  ["token-0123456789abcdef", "token-0123456789abcdefg", false],
  ["", "", true],
  ["é", "e", false],
])("sameSecret(%p, %p) is %p", (a, b, expected) => {
  expect(sameSecret(a, b)).toBe(expected);
  expect(sameSecret(b, a)).toBe(expected);
});
