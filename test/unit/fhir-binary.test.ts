/**
 * The Binary resource (fhir-binary-rules.md sections 1 and 3): element names per release, the streamed
 * envelope, and Binary resources received as JSON or XML bodies.
 */
import { describe, expect, test } from "bun:test";
import {
  type BinaryHeader,
  base64Length,
  binaryEnvelope,
  binaryStream,
  type ParsedBinary,
  parseBinaryJson,
  parseBinaryXml,
  subsettedTag,
  toBinaryResource,
} from "../../src/fhir/binary.ts";
import type { FhirFormat } from "../../src/fhir/format.ts";
import { FHIR_VERSIONS } from "../../src/fhir/version.ts";
import { errorOf } from "./expect-error.ts";

const { DSTU2, STU3, R4 } = FHIR_VERSIONS;
const LAST_UPDATED = "2024-05-06T07:08:09.123Z";
const HEADER: BinaryHeader & { size: number } = {
  id: "doc-1",
  versionId: 2,
  lastUpdated: LAST_UPDATED,
  contentType: "application/pdf",
  securityContext: "Patient/123",
  size: 12,
};
const META = { versionId: "2", lastUpdated: LAST_UPDATED };
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A deterministic pseudo-random generator (mulberry32), so a failure can be reproduced. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("toBinaryResource", () => {
  test.each([
    [
      "DSTU2",
      DSTU2,
      "QUJD",
      { resourceType: "Binary", id: "doc-1", meta: META, contentType: "application/pdf", content: "QUJD" },
    ],
    [
      "STU3",
      STU3,
      "QUJD",
      {
        resourceType: "Binary",
        id: "doc-1",
        meta: META,
        contentType: "application/pdf",
        securityContext: { reference: "Patient/123" },
        content: "QUJD",
      },
    ],
    [
      "R4 of no bytes, without data",
      R4,
      "",
      {
        resourceType: "Binary",
        id: "doc-1",
        meta: META,
        contentType: "application/pdf",
        securityContext: { reference: "Patient/123" },
      },
    ],
    [
      "DSTU2 summary",
      DSTU2,
      null,
      {
        resourceType: "Binary",
        id: "doc-1",
        meta: { ...META, tag: [subsettedTag(DSTU2)] },
        contentType: "application/pdf",
      },
    ],
    [
      "R4 summary",
      R4,
      null,
      {
        resourceType: "Binary",
        id: "doc-1",
        meta: { ...META, tag: [subsettedTag(R4)] },
        contentType: "application/pdf",
        securityContext: { reference: "Patient/123" },
      },
    ],
  ])("%s", (_name, version, payload, expected) => {
    const resource = toBinaryResource(HEADER, version, payload);
    expect(resource).toEqual(expected);
    // Spec element order, which the XML form relies on.
    expect(Object.keys(resource)).toEqual(Object.keys(expected));
  });

  test("no securityContext element without one", () => {
    expect(toBinaryResource({ ...HEADER, securityContext: null }, STU3, "QUJD")).toEqual({
      resourceType: "Binary",
      id: "doc-1",
      meta: META,
      contentType: "application/pdf",
      content: "QUJD",
    });
  });

  test.each([
    ["DSTU2", DSTU2, "http://hl7.org/fhir/v3/ObservationValue"],
    ["STU3", STU3, "http://hl7.org/fhir/v3/ObservationValue"],
    ["R4", R4, "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"],
  ])("the SUBSETTED tag names the v3 ObservationValue system of %s", (_name, version, system) => {
    expect(subsettedTag(version)).toEqual({
      system,
      code: "SUBSETTED",
      display: "Resource encoded in summary mode",
    });
  });
});

describe("binaryEnvelope", () => {
  const json: FhirFormat = { syntax: "json", mime: "application/fhir+json", version: R4 };
  const xml: FhirFormat = { syntax: "xml", mime: "application/fhir+xml", version: R4 };

  test("R4 JSON, compact", () => {
    expect(binaryEnvelope(HEADER, json, false)).toEqual({
      head:
        `{"resourceType":"Binary","id":"doc-1","meta":{"versionId":"2","lastUpdated":"${LAST_UPDATED}"},` +
        `"contentType":"application/pdf","securityContext":{"reference":"Patient/123"},"data":"`,
      tail: `"}`,
    });
  });

  test("R4 XML, compact", () => {
    expect(binaryEnvelope(HEADER, xml, false)).toEqual({
      head:
        `<?xml version="1.0" encoding="UTF-8"?><Binary xmlns="http://hl7.org/fhir"><id value="doc-1"/>` +
        `<meta><versionId value="2"/><lastUpdated value="${LAST_UPDATED}"/></meta>` +
        `<contentType value="application/pdf"/><securityContext><reference value="Patient/123"/>` +
        `</securityContext><data value="`,
      tail: `"/></Binary>`,
    });
  });

  const cases = [DSTU2, STU3, R4].flatMap((version) =>
    (["json", "xml"] as const).flatMap((syntax) =>
      [false, true].map((pretty) => ({
        name: `${version.name} ${syntax}${pretty ? " pretty" : ""}`,
        format: { syntax, mime: version[syntax], version },
        pretty,
      })),
    ),
  );
  const payload = Buffer.from("Hello, world").toString("base64");

  test.each(cases)("$name wraps the payload into the whole resource", ({ format, pretty }) => {
    const { head, tail } = binaryEnvelope(HEADER, format, pretty);
    const text = head + payload + tail;
    if (format.syntax === "json") {
      expect(JSON.parse(text)).toEqual(toBinaryResource(HEADER, format.version, payload));
    } else {
      expect(parseBinaryXml(text, format.version)).toEqual({
        id: "doc-1",
        contentType: "application/pdf",
        securityContext: format.version.hasSecurityContext ? "Patient/123" : null,
        data: utf8("Hello, world"),
      });
    }
    expect(text.includes("\n")).toBe(pretty);
  });
});

test.each([
  [0, 0],
  [1, 4],
  [2, 4],
  [3, 4],
  [4, 8],
  [5, 8],
  [6, 8],
  [10_000, 13_336],
  [512 * 2 ** 20, 715_827_884],
])("base64Length(%p) is %p", (size, length) => {
  expect(base64Length(size)).toBe(length);
  expect(Buffer.from(new Uint8Array(Math.min(size, 10_000))).toString("base64").length).toBe(
    base64Length(Math.min(size, 10_000)),
  );
});

describe("binaryStream", () => {
  /** A stream of `bytes` cut into chunks of `size` bytes, with an empty chunk after every other one. */
  function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += size) {
      chunks.push(bytes.slice(at, at + size));
      if (chunks.length % 3 === 1) chunks.push(new Uint8Array(0));
    }
    return new ReadableStream({
      pull(controller) {
        const chunk = chunks.shift();
        if (chunk) controller.enqueue(chunk);
        else controller.close();
      },
    });
  }

  const next = random(20240506);
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const bodies = [
    { name: "all 256 byte values", bytes: allBytes },
    { name: "empty", bytes: new Uint8Array(0) },
    ...[1, 2, 3, 4, 5, 0, 0, 0, 0, 0, 0, 0].map((fixed, i) => {
      const size = fixed || Math.floor(next() * 10_001);
      return {
        name: `${size} random bytes (#${i})`,
        bytes: Uint8Array.from({ length: size }, () => Math.floor(next() * 256)),
      };
    }),
  ];
  const cases = bodies.flatMap((body) =>
    [1, 2, 3, 4, 5, 7, 4096, 65_536].map((chunk) => ({ ...body, chunk })),
  );
  const { head, tail } = binaryEnvelope(
    { ...HEADER, contentType: 'text/plain; name="résumé"' },
    { syntax: "json", mime: "application/fhir+json", version: R4 },
    false,
  );

  test.each(cases)("$name in chunks of $chunk", async ({ bytes, chunk }) => {
    const response = new Response(binaryStream(head, chunked(bytes, chunk), tail));
    const out = new Uint8Array(await response.arrayBuffer());
    expect(new TextDecoder().decode(out)).toBe(head + Buffer.from(bytes).toString("base64") + tail);
    expect(out.byteLength).toBe(
      Buffer.byteLength(head) + base64Length(bytes.length) + Buffer.byteLength(tail),
    );
  });
});

describe("parseBinaryJson", () => {
  const parsed = (overrides: Partial<ParsedBinary> = {}): ParsedBinary => ({
    id: null,
    contentType: "text/plain",
    securityContext: null,
    data: utf8("Hello"),
    ...overrides,
  });

  test.each([
    ["STU3 content", { contentType: "text/plain", content: "SGVsbG8=" }, parsed()],
    ["R4 data", { contentType: "text/plain", data: "SGVsbG8=" }, parsed()],
    ["no payload is empty", { contentType: "text/plain" }, parsed({ data: new Uint8Array(0) })],
    ["empty payload", { contentType: "text/plain", data: "" }, parsed({ data: new Uint8Array(0) })],
    [
      "id, securityContext and contentType parameters kept",
      {
        id: "doc-1",
        meta: { versionId: "7" },
        contentType: "text/plain; charset=utf-8",
        securityContext: { reference: "Patient/123" },
        data: "SGVsbG8=",
      },
      parsed({ id: "doc-1", contentType: "text/plain; charset=utf-8", securityContext: "Patient/123" }),
    ],
    [
      "all 256 byte values",
      {
        contentType: "application/octet-stream",
        data: Buffer.from(Uint8Array.from({ length: 256 }, (_, i) => i)).toString("base64"),
      },
      parsed({
        contentType: "application/octet-stream",
        data: Uint8Array.from({ length: 256 }, (_, i) => i),
      }),
    ],
  ])("%s", (_name, body, expected) => {
    expect(parseBinaryJson(JSON.stringify({ resourceType: "Binary", ...body }), R4)).toEqual(expected);
  });

  test.each([
    ['{"resourceType":"Patient","id":"p"}'],
    ['{"contentType":"text/plain","data":"SGVsbG8="}'],
    ['{"resourceType":"binary","contentType":"text/plain"}'],
    ["[]"],
    ['[{"resourceType":"Binary"}]'],
    ["null"],
    ["42"],
    ['"Binary"'],
  ])("%s is not a Binary", (text) => {
    expect(parseBinaryJson(text, R4)).toBeNull();
  });

  test.each([
    ["malformed JSON", "{", 400, "structure"],
    ["empty body", "", 400, "structure"],
    [
      "both content and data",
      { contentType: "text/plain", content: "SGVsbG8=", data: "SGVsbG8=" },
      400,
      "structure",
    ],
    ["data after padding", { contentType: "text/plain", data: "SGVsbG8=SGVsbG8=" }, 400, "value"],
    ["missing padding", { contentType: "text/plain", data: "SGVsbG8" }, 400, "value"],
    ["non-zero padding bits", { contentType: "text/plain", data: "SGVsbG9=" }, 400, "value"],
    ["base64url alphabet", { contentType: "text/plain", data: "-_-_" }, 400, "value"],
    ["not a string payload", { contentType: "text/plain", data: 42 }, 400, "value"],
    // FHIR JSON: "null values are not allowed"; the payload must not silently become empty content.
    ["null payload", { contentType: "text/plain", data: null }, 400, "value"],
    ["missing contentType", { data: "SGVsbG8=" }, 400, "required"],
    ["empty contentType", { contentType: "", data: "SGVsbG8=" }, 400, "required"],
    ["invalid contentType", { contentType: "text", data: "SGVsbG8=" }, 400, "required"],
    ["contentType not a string", { contentType: ["text/plain"], data: "SGVsbG8=" }, 400, "required"],
    ["contentType with a header injection", { contentType: "text/plain\r\nX-A: b" }, 400, "required"],
    [
      "securityContext not an object",
      { contentType: "text/plain", securityContext: "Patient/1" },
      400,
      "value",
    ],
    [
      "securityContext reference with a space",
      { contentType: "text/plain", securityContext: { reference: "Patient 1" } },
      400,
      "value",
    ],
    [
      "securityContext reference not a string",
      { contentType: "text/plain", securityContext: { reference: 1 } },
      400,
      "value",
    ],
    ["id not a string", { id: 7, contentType: "text/plain" }, 400, "value"],
  ])("%s", (_name, body, status, code) => {
    const text = typeof body === "string" ? body : JSON.stringify({ resourceType: "Binary", ...body });
    expect(errorOf(() => parseBinaryJson(text, R4))).toEqual({ status, code });
  });
});

describe("parseBinaryXml", () => {
  const binary = (children: string, root = 'Binary xmlns="http://hl7.org/fhir"'): string =>
    `<?xml version="1.0" encoding="UTF-8"?><${root}>${children}</${root.split(" ")[0]}>`;

  test.each([
    [
      "STU3 content",
      binary('<contentType value="text/plain"/><content value="SGVsbG8="/>'),
      { id: null, contentType: "text/plain", securityContext: null, data: utf8("Hello") },
    ],
    [
      "R4 data, id and securityContext kept",
      binary(
        '<id value="doc-1"/><meta><versionId value="3"/></meta><contentType value="text/plain; charset=&quot;utf-8&quot;"/>' +
          '<securityContext><reference value="Patient/123"/></securityContext><data value="SGVsbG8="/>',
      ),
      {
        id: "doc-1",
        contentType: 'text/plain; charset="utf-8"',
        securityContext: "Patient/123",
        data: utf8("Hello"),
      },
    ],
    [
      "no payload",
      binary('<contentType value="application/pdf"/>'),
      { id: null, contentType: "application/pdf", securityContext: null, data: new Uint8Array(0) },
    ],
  ])("%s", (_name, text, expected) => {
    expect(parseBinaryXml(text, R4)).toEqual(expected);
  });

  test.each([
    ["no namespace", binary('<contentType value="text/plain"/>', "Binary")],
    [
      "another namespace",
      binary('<contentType value="text/plain"/>', 'Binary xmlns="http://example.org/fhir"'),
    ],
    ["another resource", binary('<id value="p"/>', 'Patient xmlns="http://hl7.org/fhir"')],
    ["plain XML", "<note><to>Tove</to></note>"],
  ])("%s is not a Binary", (_name, text) => {
    expect(parseBinaryXml(text, R4)).toBeNull();
  });

  test.each([
    ["DOCTYPE", `<!DOCTYPE Binary>${binary('<contentType value="text/plain"/>')}`, 400, "security"],
    [
      "ENTITY",
      `<!DOCTYPE Binary [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${binary('<contentType value="&xxe;"/>')}`,
      400,
      "security",
    ],
    ["lower-case doctype", `<!doctype Binary>${binary("")}`, 400, "security"],
    ["malformed", binary('<contentType value="text/plain">'), 400, "structure"],
    [
      "both content and data",
      binary('<contentType value="text/plain"/><content value="SGVsbG8="/><data value="SGVsbG8="/>'),
      400,
      "structure",
    ],
    [
      "repeated contentType",
      binary('<contentType value="text/plain"/><contentType value="text/html"/>'),
      400,
      "structure",
    ],
    [
      "repeated securityContext",
      binary('<contentType value="text/plain"/><securityContext/><securityContext/>'),
      400,
      "structure",
    ],
    ["bad base64", binary('<contentType value="text/plain"/><data value="SGVsbG8=SGVsbG8="/>'), 400, "value"],
    // FHIR XML keeps primitives in `value` attributes; text content must not silently become empty content.
    ["payload as text", binary('<contentType value="text/plain"/><data>SGVsbG8=</data>'), 400, "value"],
    ["missing contentType", binary('<data value="SGVsbG8="/>'), 400, "required"],
    ["contentType as text", binary("<contentType>text/plain</contentType>"), 400, "required"],
    ["invalid contentType", binary('<contentType value="text/"/>'), 400, "required"],
    [
      "securityContext without reference value",
      binary('<contentType value="text/plain"/><securityContext>Patient/1</securityContext>'),
      400,
      "value",
    ],
  ])("%s", (_name, text, status, code) => {
    expect(errorOf(() => parseBinaryXml(text, R4))).toEqual({ status, code });
  });
});

describe("elements per release", () => {
  const text = (fields: Record<string, unknown>): string =>
    JSON.stringify({ resourceType: "Binary", ...fields });
  const xmlText = (children: string): string => `<Binary xmlns="http://hl7.org/fhir">${children}</Binary>`;

  test.each([
    ["DSTU2", DSTU2, 400],
    ["STU3", STU3, 400],
    ["R4", R4, null],
  ])("a Binary without content in %s: %p", (_name, version, status) => {
    const json = () => parseBinaryJson(text({ contentType: "text/plain" }), version);
    const xml = () => parseBinaryXml(xmlText('<contentType value="text/plain"/>'), version);
    for (const parse of [json, xml]) {
      if (status === null) expect(parse()?.data).toEqual(new Uint8Array(0));
      else expect(errorOf(parse)).toEqual({ status, code: "required" });
    }
  });

  test.each([
    ["an unknown element", text({ foo: 1, contentType: "text/plain", data: "QQ==" })],
    ["a primitive's extension", text({ contentType: "text/plain", _contentType: {}, data: "QQ==" })],
    ["text, which Binary (not a DomainResource) lacks", text({ text: {}, contentType: "a/b", data: "QQ==" })],
  ])("%s is refused, not dropped (acceptUnknown: no)", (_name, body) => {
    expect(errorOf(() => parseBinaryJson(body, STU3))).toEqual({ status: 400, code: "structure" });
  });

  test("an unknown XML element is refused, not dropped", () => {
    const body = xmlText('<foo value="1"/><contentType value="a/b"/><content value="QQ=="/>');
    expect(errorOf(() => parseBinaryXml(body, STU3))).toEqual({ status: 400, code: "structure" });
  });

  test("meta.tag, implicitRules and language are kept, in JSON and XML alike", () => {
    const elements = {
      implicitRules: "http://example.org/rules",
      language: "en-GB",
      tags: [{ system: "http://example.org/tags", code: "a", display: "A", userSelected: true }],
    };
    const json = parseBinaryJson(
      text({
        meta: {
          versionId: "4",
          tag: [{ userSelected: true, display: "A", code: "a", system: "http://example.org/tags" }],
        },
        implicitRules: "http://example.org/rules",
        language: "en-GB",
        contentType: "text/plain",
        content: "QQ==",
      }),
      STU3,
    );
    const xml = parseBinaryXml(
      xmlText(
        '<meta><tag><system value="http://example.org/tags"/><code value="a"/><display value="A"/>' +
          '<userSelected value="true"/></tag></meta><implicitRules value="http://example.org/rules"/>' +
          '<language value="en-GB"/><contentType value="text/plain"/><content value="QQ=="/>',
      ),
      STU3,
    );
    const expected = {
      id: null,
      contentType: "text/plain",
      securityContext: null,
      ...elements,
      data: utf8("A"),
    };
    expect([json, xml]).toEqual([expected, expected]);
    // Codings in spec element order, whatever order the client used.
    expect(Object.keys(json?.tags?.[0] ?? {})).toEqual(["system", "code", "display", "userSelected"]);
  });

  test("kept elements are rendered in spec order, the client's tags before SUBSETTED", () => {
    const header = {
      ...HEADER,
      implicitRules: "http://example.org/rules",
      language: "fr",
      tags: [{ code: "a" }],
    };
    const resource = toBinaryResource(header, R4, null);
    expect(Object.keys(resource)).toEqual([
      "resourceType",
      "id",
      "meta",
      "implicitRules",
      "language",
      "contentType",
      "securityContext",
    ]);
    expect(resource.meta).toEqual({ ...META, tag: [{ code: "a" }, subsettedTag(R4)] });
  });
});
