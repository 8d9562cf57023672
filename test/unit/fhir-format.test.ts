/**
 * Content negotiation (fhir-binary-rules.md sections 1 and 2): `_format` beats `Accept`, FHIR only when the
 * most preferred Accept entry is a FHIR MIME type (a tie goes to FHIR), native otherwise, fhirVersion picks
 * the release, and a legacy DSTU2 MIME type gets the same type back.
 */
import { describe, expect, test } from "bun:test";
import {
  type FhirFormat,
  negotiateBinary,
  negotiateResource,
  parseAccept,
  parseFormatParameter,
  type Representation,
} from "../../src/fhir/format.ts";
import { FHIR_VERSIONS, type FhirVersionName, R4B, R5 } from "../../src/fhir/version.ts";
import { errorOf } from "./expect-error.ts";

const { DSTU2, STU3, R4 } = FHIR_VERSIONS;

const fhir = (syntax: "json" | "xml", mime: string, version: FhirVersionName): FhirFormat => ({
  syntax,
  mime,
  version: FHIR_VERSIONS[version],
});

describe("parseFormatParameter", () => {
  // The whole alias table of rule 2.1, with the server default STU3.
  test.each([
    ["json", fhir("json", "application/fhir+json", "STU3")],
    ["JSON", fhir("json", "application/fhir+json", "STU3")],
    ["application/json", fhir("json", "application/fhir+json", "STU3")],
    ["text/json", fhir("json", "application/fhir+json", "STU3")],
    ["application/fhir+json", fhir("json", "application/fhir+json", "STU3")],
    ["Application/FHIR+JSON", fhir("json", "application/fhir+json", "STU3")],
    ["application/json+fhir", fhir("json", "application/json+fhir", "DSTU2")],
    ["xml", fhir("xml", "application/fhir+xml", "STU3")],
    ["application/xml", fhir("xml", "application/fhir+xml", "STU3")],
    ["text/xml", fhir("xml", "application/fhir+xml", "STU3")],
    ["application/fhir+xml", fhir("xml", "application/fhir+xml", "STU3")],
    ["application/xml+fhir", fhir("xml", "application/xml+fhir", "DSTU2")],
    // A `+` sent unescaped in a query string arrives as a space.
    ["application/fhir json", fhir("json", "application/fhir+json", "STU3")],
    ["application/fhir xml", fhir("xml", "application/fhir+xml", "STU3")],
    ["application/json fhir", fhir("json", "application/json+fhir", "DSTU2")],
    ["application/xml fhir", fhir("xml", "application/xml+fhir", "DSTU2")],
    [" application/fhir json ", fhir("json", "application/fhir+json", "STU3")],
    // fhirVersion as a MIME parameter, including the space-for-plus form.
    ["application/fhir+json; fhirVersion=4.0", fhir("json", "application/fhir+json", "R4")],
    ["application/fhir json; fhirVersion=4.0", fhir("json", "application/fhir+json", "R4")],
    ["application/fhir+xml;fhirVersion=1.0", fhir("xml", "application/fhir+xml", "DSTU2")],
    ["application/json;fhirVersion=3.0", fhir("json", "application/fhir+json", "STU3")],
  ])("%p", (value, expected) => {
    expect(parseFormatParameter(value, STU3)).toEqual(expected);
  });

  test.each([
    ["json", "R4", fhir("json", "application/fhir+json", "R4")],
    ["xml", "R4", fhir("xml", "application/fhir+xml", "R4")],
    ["json", "DSTU2", fhir("json", "application/json+fhir", "DSTU2")],
    ["xml", "DSTU2", fhir("xml", "application/xml+fhir", "DSTU2")],
    ["application/fhir+json", "DSTU2", fhir("json", "application/fhir+json", "DSTU2")],
  ] as const)("%p with server default %p", (value, fallback, expected) => {
    expect(parseFormatParameter(value, FHIR_VERSIONS[fallback])).toEqual(expected);
  });

  test.each([
    "",
    "html",
    "text/html",
    "application/pdf",
    "fhir+json",
    "jsonx",
    "application/fhir+jsonx",
    "application/",
    "*/*",
    "application/fhir+json; fhirVersion=2.0",
    "application/fhir+json; fhirVersion=6.0",
    "application/fhir+json; fhirVersion=four",
  ])("%p is 406 not-supported", (value) => {
    expect(errorOf(() => parseFormatParameter(value, STU3))).toEqual({ status: 406, code: "not-supported" });
  });
});

describe("parseAccept", () => {
  test.each([
    ["application/fhir+json", [{ essence: "application/fhir+json", params: new Map(), q: 1 }]],
    [
      "Application/FHIR+XML; Q=0.5; fhirVersion=4.0",
      [
        {
          essence: "application/fhir+xml",
          params: new Map([
            ["q", "0.5"],
            ["fhirversion", "4.0"],
          ]),
          q: 0.5,
        },
      ],
    ],
    [
      "text/html, application/pdf;q=0.2",
      [
        { essence: "text/html", params: new Map(), q: 1 },
        { essence: "application/pdf", params: new Map([["q", "0.2"]]), q: 0.2 },
      ],
    ],
    // Malformed entries and impossible q-values are skipped.
    [
      "garbage, text/plain;q=2, text/plain;q=-1, text/plain;q=x, image/png;q=0",
      [{ essence: "image/png", params: new Map([["q", "0"]]), q: 0 }],
    ],
    ["", []],
  ])("%p", (header, expected) => {
    expect(parseAccept(header)).toEqual(expected);
  });

  test("media ranges are entries, so their q-values count (RFC 9110 section 12.5.1)", () => {
    expect(parseAccept("*/*;q=0.1, text/*, image/*;q=0.3").map((entry) => entry.q)).toEqual([0.1, 1, 0.3]);
  });
});

describe("negotiateBinary", () => {
  const native: Representation = { kind: "native" };
  const asFhir = (syntax: "json" | "xml", mime: string, version: FhirVersionName): Representation => ({
    kind: "fhir",
    ...fhir(syntax, mime, version),
  });
  const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

  test.each([
    // Rule 2.3: no _format, no Accept.
    [null, null, native],
    [null, "", native],
    // Rule 2.2: generic and other types are native, never 406.
    [null, "application/json", native],
    [null, "application/xml", native],
    [null, "text/xml", native],
    [null, "*/*", native],
    [null, browser, native],
    [null, "application/pdf", native],
    [null, "image/png, text/plain;q=0.5", native],
    [null, "application/pdf; fhirVersion=9.9", native],
    [null, "application/fhir+json;q=0", native],
    [null, "application/fhir+json;q=0.9, application/pdf", native],
    [null, "application/fhir+json;q=0.5, */*", native],
    [null, "application/fhir+json;q=0.5, text/*", native],
    // Rule 2.2: FHIR when the most preferred entry is a FHIR MIME type; a tie goes to FHIR.
    [null, "application/fhir+json", asFhir("json", "application/fhir+json", "STU3")],
    [null, "application/fhir+xml", asFhir("xml", "application/fhir+xml", "STU3")],
    [null, "APPLICATION/FHIR+JSON; charset=utf-8", asFhir("json", "application/fhir+json", "STU3")],
    [null, "application/pdf;q=0.5, application/fhir+xml", asFhir("xml", "application/fhir+xml", "STU3")],
    [null, "application/pdf, application/fhir+json", asFhir("json", "application/fhir+json", "STU3")],
    [null, "*/*, application/fhir+xml", asFhir("xml", "application/fhir+xml", "STU3")],
    [
      null,
      "text/plain;q=0.5, application/fhir+xml;q=0.5, application/fhir+json;q=0.5",
      asFhir("xml", "application/fhir+xml", "STU3"),
    ],
    // A legacy DSTU2 MIME type gets the same type back, with DSTU2 names.
    [null, "application/json+fhir", asFhir("json", "application/json+fhir", "DSTU2")],
    [null, "application/xml+fhir", asFhir("xml", "application/xml+fhir", "DSTU2")],
    // fhirVersion: 1.0 -> DSTU2, 3.0 -> STU3, 4.0 -> R4; 4.3 and 5.0 are R4B and R5, with R4 naming.
    [null, "application/fhir+json; fhirVersion=1.0", asFhir("json", "application/fhir+json", "DSTU2")],
    [null, "application/fhir+json; fhirVersion=3.0", asFhir("json", "application/fhir+json", "STU3")],
    [null, "application/fhir+json; fhirVersion=3.0.2", asFhir("json", "application/fhir+json", "STU3")],
    [null, "application/fhir+json; fhirVersion=4.0", asFhir("json", "application/fhir+json", "R4")],
    [
      null,
      "application/fhir+xml; fhirVersion=4.3",
      { ...asFhir("xml", "application/fhir+xml", "R4"), version: R4B },
    ],
    [
      null,
      'application/fhir+json; fhirVersion="5.0"',
      { ...asFhir("json", "application/fhir+json", "R4"), version: R5 },
    ],
    [null, "application/json+fhir; fhirVersion=4.0", asFhir("json", "application/json+fhir", "R4")],
    // Rule 2.1: _format always beats Accept.
    ["json", "application/pdf", asFhir("json", "application/fhir+json", "STU3")],
    ["xml", "application/fhir+json", asFhir("xml", "application/fhir+xml", "STU3")],
    ["application/fhir json", null, asFhir("json", "application/fhir+json", "STU3")],
    ["application/xml+fhir", "*/*", asFhir("xml", "application/xml+fhir", "DSTU2")],
  ])("_format %p, Accept %p", (format, accept, expected) => {
    expect(negotiateBinary(format, accept, STU3)).toEqual(expected);
  });

  test.each([
    ["html", null],
    ["pdf", "application/fhir+json"],
    [null, "application/fhir+json; fhirVersion=2.0"],
    [null, "application/fhir+xml; fhirVersion=6.0"],
    [null, "application/fhir+json; fhirVersion=latest"],
  ])("_format %p, Accept %p is 406", (format, accept) => {
    expect(errorOf(() => negotiateBinary(format, accept, STU3))).toEqual({
      status: 406,
      code: "not-supported",
    });
  });

  test.each([
    [R4, "application/fhir+json", asFhir("json", "application/fhir+json", "R4")],
    [DSTU2, "application/fhir+json", asFhir("json", "application/fhir+json", "DSTU2")],
    [DSTU2, "application/fhir+json; fhirVersion=4.0", asFhir("json", "application/fhir+json", "R4")],
  ])("server default %#", (fallback, accept, expected) => {
    expect(negotiateBinary(null, accept, fallback)).toEqual(expected);
  });
});

describe("negotiateResource", () => {
  test.each([
    [null, null, null, fhir("json", "application/fhir+json", "STU3")],
    [null, "*/*", null, fhir("json", "application/fhir+json", "STU3")],
    [null, "text/html", "text/plain", fhir("json", "application/fhir+json", "STU3")],
    // Generic JSON / XML Accept entries count for resources, by q.
    [null, "application/xml", null, fhir("xml", "application/fhir+xml", "STU3")],
    [null, "text/xml", null, fhir("xml", "application/fhir+xml", "STU3")],
    [
      null,
      "application/json;q=0.4, application/fhir+xml;q=0.6",
      null,
      fhir("xml", "application/fhir+xml", "STU3"),
    ],
    [null, "application/xml;q=0, application/json", null, fhir("json", "application/fhir+json", "STU3")],
    [null, "application/xml+fhir", null, fhir("xml", "application/xml+fhir", "DSTU2")],
    [null, "application/fhir+json; fhirVersion=4.0", null, fhir("json", "application/fhir+json", "R4")],
    // Else the request body's FHIR syntax.
    [null, "*/*", "application/fhir+xml", fhir("xml", "application/fhir+xml", "STU3")],
    [null, null, "application/json+fhir; charset=utf-8", fhir("json", "application/json+fhir", "DSTU2")],
    [null, null, "application/fhir+xml; fhirVersion=4.0", fhir("xml", "application/fhir+xml", "R4")],
    [null, null, "application/xml", fhir("json", "application/fhir+json", "STU3")],
    [null, null, "not a type", fhir("json", "application/fhir+json", "STU3")],
    // _format first.
    ["xml", "application/fhir+json", "application/fhir+json", fhir("xml", "application/fhir+xml", "STU3")],
  ])("_format %p, Accept %p, body %p", (format, accept, body, expected) => {
    expect(negotiateResource(format, accept, body, STU3)).toEqual(expected);
  });

  test("the server default names the fallback", () => {
    expect(negotiateResource(null, null, null, DSTU2)).toEqual(
      fhir("json", "application/json+fhir", "DSTU2"),
    );
    expect(negotiateResource(null, "application/xml", null, R4)).toEqual(
      fhir("xml", "application/fhir+xml", "R4"),
    );
  });

  test("an unknown _format is 406", () => {
    expect(errorOf(() => negotiateResource("yaml", null, null, STU3))).toEqual({
      status: 406,
      code: "not-supported",
    });
  });
});
