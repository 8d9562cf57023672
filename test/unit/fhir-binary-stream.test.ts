/**
 * The streaming Binary readers (JSON and XML) and the streaming base64 decoder: whatever the chunking, they
 * agree with the whole-body readers (parseBinaryJson, parseBinaryXml, Uint8Array.fromBase64 strict).
 */
import { describe, expect, test } from "bun:test";
import { createBase64Decoder } from "../../src/fhir/base64-stream.ts";
import { parseBinaryJson, parseBinaryXml } from "../../src/fhir/binary.ts";
import { createBinaryJsonScanner } from "../../src/fhir/binary-json-stream.ts";
import { createBinaryXmlScanner } from "../../src/fhir/binary-xml-stream.ts";
import { FhirError } from "../../src/fhir/errors.ts";
import { FHIR_VERSIONS, type FhirVersion } from "../../src/fhir/version.ts";

const CHUNK_SIZES = [1, 2, 3, 5, 7, 64, Number.MAX_SAFE_INTEGER];
// `content` is 1..1 in STU3 and `data` 0..1 in R4: the readers agree in both.
const VERSIONS = [FHIR_VERSIONS.STU3, FHIR_VERSIONS.R4];
const { R4 } = FHIR_VERSIONS;
const utf8 = new TextEncoder();

type Outcome = { state: string; binary?: unknown; error?: { status: number; code: string } };

function outcomeOf(run: () => Outcome): Outcome {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof FhirError)) throw error;
    return { state: "error", error: { status: error.status, code: error.code } };
  }
}

/** Runs a scanner over `text` cut into `size`-byte chunks; "other" when it hands over to the whole-body path. */
function scan(
  create: typeof createBinaryJsonScanner,
  version: FhirVersion,
  text: string,
  size: number,
): Outcome {
  return outcomeOf(() => {
    const scanner = create(version);
    const bytes = utf8.encode(text);
    const data: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += size) data.push(...scanner.push(bytes.subarray(at, at + size)));
    if (scanner.state !== "binary") return { state: "other" };
    return { state: "binary", binary: { ...scanner.end(), data: new Uint8Array(Buffer.concat(data)) } };
  });
}

/** What the whole-body reader says: the Binary, "other" (null: stored raw), or its error. */
function whole(
  parse: (text: string, version: FhirVersion) => unknown,
  version: FhirVersion,
  text: string,
): Outcome {
  return outcomeOf(() => {
    const binary = parse(text, version);
    return binary ? { state: "binary", binary } : { state: "other" };
  });
}

const json = (fields: Record<string, unknown>): string =>
  JSON.stringify({ resourceType: "Binary", ...fields });

describe("createBinaryJsonScanner agrees with parseBinaryJson", () => {
  test.each([
    ["STU3 content", json({ contentType: "text/plain", content: "SGVsbG8=" })],
    ["R4 data", json({ contentType: "text/plain", data: "SGVsbG8=" })],
    [
      "metadata after the payload",
      '{"resourceType":"Binary","data":"SGVsbG8=","contentType":"text/plain","id":"a"}',
    ],
    [
      "every element",
      json({
        id: "doc-1",
        meta: { versionId: "7", tag: [{ code: "x,}]" }] },
        contentType: 'text/plain; charset="utf-8"',
        securityContext: { reference: "Patient/123" },
        data: "SGVs bG8=",
      }),
    ],
    [
      "escapes in the payload",
      '{"resourceType":"Binary","contentType":"a/b","data":"AA\\/\\/\\n\\u0041A=="}',
    ],
    [
      "whitespace around tokens",
      '\n{ "resourceType" : "Binary" ,\n "contentType" : "a/b" , "data" : "QQ==" }\n',
    ],
    ["no payload", json({ contentType: "text/plain" })],
    ["empty payload", json({ contentType: "text/plain", data: "" })],
    ["both payloads", json({ contentType: "text/plain", content: "QQ==", data: "QQ==" })],
    ["data after padding", json({ contentType: "text/plain", data: "SGVsbG8=SGVsbG8=" })],
    ["missing padding", json({ contentType: "text/plain", data: "SGVsbG8" })],
    ["non-zero padding bits", json({ contentType: "text/plain", data: "SGVsbG9=" })],
    ["base64url", json({ contentType: "text/plain", data: "-_-_" })],
    ["escaped quote in the payload", '{"resourceType":"Binary","contentType":"a/b","data":"QQ\\"=="}'],
    ["raw newline in the payload", '{"resourceType":"Binary","contentType":"a/b","data":"QQ\n=="}'],
    ["null payload", json({ contentType: "text/plain", data: null })],
    ["number payload", json({ contentType: "text/plain", data: 42 })],
    ["missing contentType", json({ data: "QQ==" })],
    ["invalid contentType after the payload", '{"resourceType":"Binary","data":"QQ==","contentType":"pdf"}'],
    ["securityContext not an object", json({ contentType: "a/b", securityContext: "Patient/1" })],
    ["id not a string", json({ id: 7, contentType: "a/b" })],
    ["unclosed object", '{"resourceType":"Binary","contentType":"a/b","data":"QQ=="'],
    ["trailing garbage", `${json({ contentType: "a/b" })}x`],
    ["trailing comma", '{"resourceType":"Binary","contentType":"a/b",}'],
    ["malformed small member", '{"resourceType":"Binary","contentType":"a/b","meta":{"a":}}'],
    ["another resource", '{"resourceType":"Patient","id":"p"}'],
    ["resourceType after the payload", '{"contentType":"a/b","data":"QQ==","resourceType":"Binary"}'],
    ["no resourceType", '{"contentType":"a/b"}'],
    ["an array", '[{"resourceType":"Binary"}]'],
    ["malformed", "{"],
    ["empty", ""],
    ["an unknown element", json({ foo: 1, contentType: "text/plain", data: "QQ==" })],
    [
      "an unknown element after the payload",
      '{"resourceType":"Binary","data":"QQ==","contentType":"a/b","_data":{}}',
    ],
    [
      "meta.tag, language and implicitRules",
      json({
        meta: { tag: [{ system: "http://example.org", code: "a", userSelected: true }] },
        implicitRules: "http://example.org/rules",
        language: "en-GB",
        contentType: "text/plain",
        data: "QQ==",
      }),
    ],
    ["a tag with an unknown element", json({ meta: { tag: [{ code: "a", foo: "b" }] }, contentType: "a/b" })],
    ["an invalid language", json({ language: "en GB", contentType: "a/b", data: "QQ==" })],
  ])("%s", (_name, text) => {
    for (const version of VERSIONS) {
      const expected = whole(parseBinaryJson, version, text);
      for (const size of CHUNK_SIZES) {
        const streamed = scan(createBinaryJsonScanner, version, text, size);
        // Handing over is always right: the whole-body path then gives exactly the expected outcome.
        if (streamed.state !== "other")
          expect({ version: version.name, size, ...streamed }).toEqual({
            version: version.name,
            size,
            ...expected,
          });
      }
    }
  });

  test("a Binary with resourceType first is decided in the first chunk and streams", () => {
    const scanner = createBinaryJsonScanner(R4);
    const out = scanner.push(utf8.encode('{"resourceType":"Binary","data":"SGVs'));
    expect([scanner.state, out]).toEqual(["binary", [utf8.encode("Hel")]]);
  });

  test("a member other than the payload over 64 KiB is a 413", () => {
    const scanner = createBinaryJsonScanner(R4);
    scanner.push(utf8.encode('{"resourceType":"Binary","meta":"'));
    expect(outcomeOf(() => ({ state: String(scanner.push(new Uint8Array(70_000).fill(0x61))) }))).toEqual({
      state: "error",
      error: { status: 413, code: "too-long" },
    });
  });
});

const xml = (children: string, root = 'Binary xmlns="http://hl7.org/fhir"'): string =>
  `<?xml version="1.0" encoding="UTF-8"?><${root}>${children}</${root.split(" ")[0]}>`;

describe("createBinaryXmlScanner agrees with parseBinaryXml", () => {
  test.each([
    ["STU3 content", xml('<contentType value="text/plain"/><content value="SGVsbG8="/>')],
    [
      "every element, metadata after the payload",
      xml(
        '<id value="doc-1"/><meta><versionId value="3"/></meta><data value="SGVs&#10;bG8="/>' +
          '<contentType value="text/plain; charset=&quot;utf-8&quot;"/>' +
          "<securityContext><reference value='Patient/123'/></securityContext>",
      ),
    ],
    [
      "comments and whitespace",
      `<!-- c -->\n${xml('\n  <!-- <data value="x"/> -->\n  <contentType value="a/b"/>\n')}\n`,
    ],
    ["no payload", xml('<contentType value="application/pdf"/>')],
    ["both payloads", xml('<contentType value="a/b"/><content value="QQ=="/><data value="QQ=="/>')],
    ["bad base64", xml('<contentType value="text/plain"/><data value="SGVsbG8=SGVsbG8="/>')],
    ["repeated contentType", xml('<contentType value="a/b"/><contentType value="c/d"/>')],
    ["missing contentType", xml('<data value="QQ=="/>')],
    ["invalid contentType", xml('<contentType value="text/"/>')],
    ["DOCTYPE", `<!DOCTYPE Binary>${xml('<contentType value="a/b"/>')}`],
    ["unclosed", xml('<contentType value="a/b">')],
    ["truncated after the payload", xml('<contentType value="a/b"/><data value="QQ=="/>').slice(0, -9)],
    ["another namespace", xml('<contentType value="a/b"/>', 'Binary xmlns="http://example.org/fhir"')],
    ["another resource", xml('<id value="p"/>', 'Patient xmlns="http://hl7.org/fhir"')],
    ["plain XML", "<note><to>Tove</to></note>"],
    ["an unknown element", xml('<foo value="1"/><contentType value="a/b"/><data value="QQ=="/>')],
    ["an unknown element after the payload", xml('<contentType value="a/b"/><data value="QQ=="/><text/>')],
    [
      "meta.tag, language and implicitRules",
      xml(
        '<meta><versionId value="3"/><tag><system value="http://example.org"/><code value="a"/>' +
          '<userSelected value="true"/></tag><tag><code value="b"/></tag></meta>' +
          '<implicitRules value="http://example.org/rules"/><language value="en-GB"/>' +
          '<contentType value="text/plain"/><content value="QQ=="/>',
      ),
    ],
    [
      "a tag with an unknown element",
      xml('<meta><tag><foo value="b"/></tag></meta><contentType value="a/b"/>'),
    ],
  ])("%s", (_name, text) => {
    for (const version of VERSIONS) {
      const expected = whole(parseBinaryXml, version, text);
      for (const size of CHUNK_SIZES) {
        const streamed = scan(createBinaryXmlScanner, version, text, size);
        if (streamed.state !== "other")
          expect({ version: version.name, size, ...streamed }).toEqual({
            version: version.name,
            size,
            ...expected,
          });
      }
    }
  });

  test("a Binary in the FHIR namespace streams its payload", () => {
    const scanner = createBinaryXmlScanner(R4);
    const out = scanner.push(utf8.encode('<Binary xmlns="http://hl7.org/fhir"><data value="SGVs'));
    expect([scanner.state, out]).toEqual(["binary", [utf8.encode("Hel")]]);
  });
});

describe("createBase64Decoder agrees with the strict whole-string decoder", () => {
  test.each([
    ["", true],
    ["QQ==", true],
    ["QUI=", true],
    ["QUJD", true],
    ["QU JD\nRA==", true],
    ["QQ", false],
    ["QQ==QQ==", false],
    ["QQ=", false],
    ["QR==", false],
    ["Q===", false],
    ["QUJD!", false],
  ])("%p", (text, valid) => {
    for (const size of CHUNK_SIZES) {
      const decoder = createBase64Decoder();
      const outcome = outcomeOf(() => {
        const parts: Uint8Array[] = [];
        for (let at = 0; at < text.length; at += size) parts.push(decoder.push(text.slice(at, at + size)));
        parts.push(decoder.end());
        return { state: "ok", binary: new Uint8Array(Buffer.concat(parts)) };
      });
      expect(outcome).toEqual(
        valid
          ? { state: "ok", binary: Uint8Array.fromBase64(text) }
          : { state: "error", error: { status: 400, code: "value" } },
      );
    }
  });
});
