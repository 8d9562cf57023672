/**
 * Media types (RFC 6838 section 4.2, RFC 9110 sections 5.6 and 8.3.1) and what fhirbin derives from them:
 * FHIR syntax, passive (inline-safe) types and file extensions (fhir-binary-rules.md sections 1, 3 and 5).
 */
import { describe, expect, test } from "bun:test";
import {
  extensionFor,
  fhirSyntaxOf,
  isLegacyFhirMime,
  isPassiveType,
  parseMediaType,
} from "../../src/fhir/mime.ts";

describe("parseMediaType", () => {
  test.each([
    ["text/plain", "text/plain", {}],
    ["TEXT/Plain", "text/plain", {}],
    ["  application/pdf\t", "application/pdf", {}],
    ["application/fhir+json", "application/fhir+json", {}],
    ["application/vnd.ms-excel", "application/vnd.ms-excel", {}],
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded", {}],
    ["image/svg+xml", "image/svg+xml", {}],
    ["text/plain;charset=utf-8", "text/plain", { charset: "utf-8" }],
    ["text/plain ; Charset=UTF-8", "text/plain", { charset: "UTF-8" }],
    ['text/plain; charset="utf-8"', "text/plain", { charset: "utf-8" }],
    ['text/plain; x="a;b,c d"', "text/plain", { x: "a;b,c d" }],
    ['text/plain; x="say \\"hi\\""', "text/plain", { x: 'say "hi"' }],
    ['text/plain; x=""', "text/plain", { x: "" }],
    [
      "application/fhir+json; fhirVersion=4.0; q=0.5",
      "application/fhir+json",
      { fhirversion: "4.0", q: "0.5" },
    ],
    [`a/${"b".repeat(127)}`, `a/${"b".repeat(127)}`, {}],
  ])("%p", (value, essence, params) => {
    expect(parseMediaType(value)).toEqual({ essence, params: new Map(Object.entries(params)) });
  });

  test.each([
    "",
    "text",
    "text/",
    "/plain",
    "text/plain/extra",
    "text /plain",
    "text/ plain",
    "*/*",
    "-text/plain",
    `a/${"b".repeat(128)}`,
    "text/plain;",
    "text/plain; charset",
    "text/plain; charset=",
    "text/plain; charset=utf 8",
    'text/plain; charset="utf-8',
    "text/plain; chär=x",
    "text/plain, text/html",
    // Control characters and non-ASCII anywhere, including the ends (RFC 9110 OWS is SP and HTAB only).
    "text/plain\r\nX-Injected: yes",
    "text/plain; a=b\r\n",
    "text/plain\r\n",
    "\r\ntext/plain",
    "text/plain\n",
    "text/plain\0",
    "text/pl\0ain",
    "text/plaın",
    "tëxt/plain",
    'text/plain; x="é"',
    "text/plain\u00a0",
    "\ufefftext/plain",
    "text/plain\u2028",
  ])("%p is not a media type", (value) => {
    expect(parseMediaType(value)).toBeNull();
  });
});

test.each<[string, "json" | "xml" | null, boolean]>([
  ["application/fhir+json", "json", false],
  ["application/json+fhir", "json", true],
  ["application/fhir+xml", "xml", false],
  ["application/xml+fhir", "xml", true],
  ["application/json", null, false],
  ["application/xml", null, false],
  ["text/xml", null, false],
  ["text/plain", null, false],
])("fhirSyntaxOf / isLegacyFhirMime %p", (essence, syntax, legacy) => {
  expect([fhirSyntaxOf(essence), isLegacyFhirMime(essence)]).toEqual([syntax, legacy]);
});

test.each([
  ["application/pdf", true],
  ["image/png", true],
  ["image/jpeg", true],
  ["image/gif", true],
  ["image/webp", true],
  ["text/plain", true],
  ["audio/mpeg", true],
  ["video/mp4", true],
  // Anything that can carry script, and anything unknown, is not passive (rule 5).
  ["text/html", false],
  ["application/xhtml+xml", false],
  ["image/svg+xml", false],
  ["application/xml", false],
  ["text/xml", false],
  ["application/fhir+xml", false],
  ["application/javascript", false],
  ["text/javascript", false],
  ["application/json", false],
  ["application/octet-stream", false],
  ["application/x-unknown", false],
  ["image/x-icon", false],
])("isPassiveType %p is %p", (essence, passive) => {
  expect(isPassiveType(essence)).toBe(passive);
});

test.each([
  ["application/pdf", "pdf"],
  ["image/png", "png"],
  ["image/jpeg", "jpg"],
  ["image/gif", "gif"],
  ["image/webp", "webp"],
  ["image/svg+xml", "svg"],
  ["text/plain", "txt"],
  ["text/html", "html"],
  ["application/xhtml+xml", "xhtml"],
  ["application/xml", "xml"],
  ["text/xml", "xml"],
  ["application/json", "json"],
  ["application/fhir+json", "json"],
  ["application/fhir+xml", "xml"],
  ["application/dicom", "dcm"],
  ["application/zip", "zip"],
  ["application/octet-stream", "bin"],
  ["x/unknown", "bin"],
])("extensionFor %p is %p", (essence, extension) => {
  expect(extensionFor(essence)).toBe(extension);
});
