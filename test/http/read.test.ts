/**
 * Binary read over real HTTP (fhir-binary-rules.md sections 1 and 2): native bytes, the FHIR JSON and XML
 * representations, `_format` and Accept negotiation, fhirVersion, conditional reads, Range, 404/410/400.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { XMLParser } from "fast-xml-parser";
import { startServer, type TestServer } from "../harness.ts";

const FHIR_NS = "http://hl7.org/fhir";
const FHIR_JSON = "application/fhir+json; charset=utf-8";
const FHIR_XML = "application/fhir+xml; charset=utf-8";
const LEGACY_JSON = "application/json+fhir; charset=utf-8";
const LEGACY_XML = "application/xml+fhir; charset=utf-8";
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Every byte value, then sequences that are not valid UTF-8 (a text decoder would mangle them). */
const ALL_BYTES = new Uint8Array([
  ...Array.from({ length: 256 }, (_, i) => i),
  ...[0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0x00],
]);
const PDF = new TextEncoder().encode("%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n");
const LATIN1 = new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]); // "café\n" in ISO-8859-1
const PATIENT_JSON = new TextEncoder().encode('{"resourceType":"Patient","id":"p1","active":true}');

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const bytesOf = async (res: Response): Promise<Uint8Array> => new Uint8Array(await res.arrayBuffer());

/** PUTs raw bytes (update-as-create), failing the calling test when the server does not accept them. */
async function put(
  srv: TestServer,
  id: string,
  body: Uint8Array,
  contentType: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body,
    headers: { "content-type": contentType, ...headers },
  });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT /Binary/${id}: ${res.status}`);
  return res;
}

/** The expected FHIR JSON Binary. */
function binaryJson(
  id: string,
  versionId: string,
  contentType: string,
  bytes: Uint8Array,
  options: { payload?: "content" | "data"; securityContext?: string } = {},
): Record<string, unknown> {
  return {
    resourceType: "Binary",
    id,
    meta: { versionId, lastUpdated: expect.stringMatching(INSTANT) },
    contentType,
    ...(options.securityContext ? { securityContext: { reference: options.securityContext } } : {}),
    [options.payload ?? "content"]: b64(bytes),
  };
}

interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}

const xmlParser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: true,
});

/** Parses XML into element nodes in document order (text and the XML declaration dropped). */
function parseXml(text: string): XmlNode {
  const convert = (items: Record<string, unknown>[]): XmlNode[] =>
    items.flatMap((item) => {
      const name = Object.keys(item).find((key) => key !== ":@");
      if (!name || name === "#text" || name.startsWith("?")) return [];
      return [
        {
          name,
          attrs: (item[":@"] as Record<string, string> | undefined) ?? {},
          children: convert(item[name] as Record<string, unknown>[]),
        },
      ];
    });
  const roots = convert(xmlParser.parse(text) as Record<string, unknown>[]);
  if (roots.length !== 1 || !roots[0]) throw new Error(`not one root element: ${text.slice(0, 200)}`);
  return roots[0];
}

const el = (name: string, attrs: Record<string, unknown> = {}, children: XmlNode[] = []): XmlNode =>
  ({ name, attrs, children }) as XmlNode;

/** The expected FHIR XML Binary, in spec element order. */
function binaryXml(
  id: string,
  versionId: string,
  contentType: string,
  bytes: Uint8Array,
  options: { payload?: "content" | "data"; securityContext?: string } = {},
): XmlNode {
  return el("Binary", { xmlns: FHIR_NS }, [
    el("id", { value: id }),
    el("meta", {}, [
      el("versionId", { value: versionId }),
      el("lastUpdated", { value: expect.stringMatching(INSTANT) }),
    ]),
    el("contentType", { value: contentType }),
    ...(options.securityContext
      ? [el("securityContext", {}, [el("reference", { value: options.securityContext })])]
      : []),
    el(options.payload ?? "content", { value: b64(bytes) }),
  ]);
}

/** Lower-cased essence and parameters of a Content-Type header. */
function mediaType(header: string | null): { essence: string; params: Record<string, string> } {
  const [essence = "", ...rest] = (header ?? "").split(";");
  const params: Record<string, string> = {};
  for (const part of rest) {
    const [name = "", value = ""] = part.split("=");
    params[name.trim().toLowerCase()] = value.trim().toLowerCase();
  }
  return { essence: essence.trim().toLowerCase(), params };
}

/** Asserts an OperationOutcome error body in FHIR JSON. */
async function expectJsonOutcome(res: Response): Promise<void> {
  expect(res.headers.get("content-type")).toBe(FHIR_JSON);
  const body = await res.json();
  expect(body).toMatchObject({ resourceType: "OperationOutcome", issue: [{ severity: "error" }] });
}

/** Asserts an OperationOutcome error body in FHIR XML. */
async function expectXmlOutcome(res: Response): Promise<void> {
  expect(res.headers.get("content-type")).toBe(FHIR_XML);
  const root = parseXml(await res.text());
  expect(root.name).toBe("OperationOutcome");
  expect(root.attrs).toEqual({ xmlns: FHIR_NS });
  expect(root.children[0]?.name).toBe("issue");
  expect(root.children[0]?.children.find((child) => child.name === "severity")?.attrs).toEqual({
    value: "error",
  });
}

interface RawResponse {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

/** One HTTP/1.1 request over a plain socket, for what fetch cannot send (e.g. no Accept header at all). */
function rawRequest(origin: string, method: string, path: string, headers: Record<string, string>) {
  const url = new URL(origin);
  return new Promise<RawResponse>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname, () => {
      const lines = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, "Connection: close"];
      for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      const [statusLine = "", ...headerLines] = all.subarray(0, end).toString("latin1").split("\r\n");
      const responseHeaders = new Headers();
      for (const line of headerLines) {
        const colon = line.indexOf(":");
        responseHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      let body = all.subarray(end + 4);
      if (responseHeaders.get("transfer-encoding")?.includes("chunked")) {
        const parts: Buffer[] = [];
        let at = 0;
        for (;;) {
          const lineEnd = body.indexOf("\r\n", at);
          const size = Number.parseInt(body.subarray(at, lineEnd).toString("latin1"), 16);
          if (!size) break;
          parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
        }
        body = Buffer.concat(parts);
      }
      resolve({
        status: Number(statusLine.split(" ")[1]),
        headers: responseHeaders,
        body: new Uint8Array(body),
      });
    });
  });
}

let srv: TestServer;
let started: number;

beforeAll(async () => {
  started = Math.floor(Date.now() / 1000) * 1000;
  srv = await startServer();
  await put(srv, "all-bytes", ALL_BYTES, "application/octet-stream");
  await put(srv, "pdf", PDF, "application/pdf");
  await put(srv, "secured", PDF, "application/pdf", { "x-security-context": "Patient/example" });
  await put(srv, "latin1", LATIN1, "text/plain; charset=iso-8859-1");
  await put(srv, "csv", LATIN1, "text/csv; charset=utf-8; header=present");
  await put(srv, "plain", new TextEncoder().encode("hello"), "text/plain");
  await put(srv, "fhir-doc", PATIENT_JSON, "application/fhir+json");
  await put(srv, "versioned", new TextEncoder().encode("one"), "text/plain");
  await put(srv, "versioned", new TextEncoder().encode("two!"), "text/plain");
  await put(srv, "gone", new TextEncoder().encode("soon deleted"), "text/plain");
  const deleted = await srv.request("/Binary/gone", { method: "DELETE" });
  if (deleted.status !== 204) throw new Error(`DELETE /Binary/gone: ${deleted.status}`);
});

afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
});

describe("native read", () => {
  test.each([
    ["all 256 byte values and invalid UTF-8", "all-bytes", ALL_BYTES, "application/octet-stream"],
    ["a PDF", "pdf", PDF, "application/pdf"],
    ["Latin-1 text with its charset parameter", "latin1", LATIN1, "text/plain; charset=iso-8859-1"],
    ["a type with two parameters", "csv", LATIN1, "text/csv; charset=utf-8; header=present"],
    ["text/plain with nothing appended", "plain", new TextEncoder().encode("hello"), "text/plain"],
    ["a stored FHIR JSON document", "fhir-doc", PATIENT_JSON, "application/fhir+json"],
  ])("%s comes back byte-exact with the stored Content-Type", async (_name, id, bytes, contentType) => {
    const res = await srv.request(`/Binary/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(contentType);
    expect(await bytesOf(res)).toEqual(bytes);
  });

  test("no Accept header at all gets the native bytes (CC Query 1, MUST)", async () => {
    const res = await rawRequest(srv.origin, "GET", "/fhir/Binary/all-bytes", {
      Authorization: `Bearer ${srv.token}`,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.body).toEqual(ALL_BYTES);
  });

  test("metadata headers: ETag, Last-Modified, Content-Length, Accept-Ranges, Content-Location", async () => {
    const res = await srv.request("/Binary/all-bytes");
    await res.arrayBuffer();
    expect({
      status: res.status,
      etag: res.headers.get("etag"),
      contentLength: res.headers.get("content-length"),
      acceptRanges: res.headers.get("accept-ranges"),
      contentLocation: res.headers.get("content-location"),
      securityContext: res.headers.get("x-security-context"),
    }).toEqual({
      status: 200,
      etag: 'W/"1"',
      contentLength: String(ALL_BYTES.length),
      acceptRanges: "bytes",
      contentLocation: `${srv.base}/Binary/all-bytes/_history/1`,
      securityContext: null,
    });
    const lastModified = res.headers.get("last-modified") ?? "";
    expect(lastModified).toMatch(IMF_FIXDATE);
    expect(Date.parse(lastModified)).toBeGreaterThanOrEqual(started);
    expect(Date.parse(lastModified)).toBeLessThanOrEqual(Date.now());
  });

  test("X-Security-Context carries the stored securityContext reference", async () => {
    const res = await srv.request("/Binary/secured");
    expect(res.status).toBe(200);
    expect(res.headers.get("x-security-context")).toBe("Patient/example");
    expect(await bytesOf(res)).toEqual(PDF);
  });

  test("the current version of an updated resource: ETag and Content-Location name version 2", async () => {
    const res = await srv.request("/Binary/versioned");
    expect({
      etag: res.headers.get("etag"),
      contentLocation: res.headers.get("content-location"),
      body: await res.text(),
    }).toEqual({ etag: 'W/"2"', contentLocation: `${srv.base}/Binary/versioned/_history/2`, body: "two!" });
  });

  test.each([
    ["1", "one"],
    ["2", "two!"],
  ])("vread of version %s has the same rules and headers", async (vid, text) => {
    const res = await srv.request(`/Binary/versioned/_history/${vid}`);
    expect({
      status: res.status,
      contentType: res.headers.get("content-type"),
      etag: res.headers.get("etag"),
      contentLength: res.headers.get("content-length"),
      contentLocation: res.headers.get("content-location"),
      body: await res.text(),
    }).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: `W/"${vid}"`,
      contentLength: String(text.length),
      contentLocation: `${srv.base}/Binary/versioned/_history/${vid}`,
      body: text,
    });
  });

  test("vread of a version that never existed: 404", async () => {
    const res = await srv.request("/Binary/versioned/_history/3");
    expect(res.status).toBe(404);
    await expectJsonOutcome(res);
  });

  test("_summary does not apply to native reads", async () => {
    const res = await srv.request("/Binary/all-bytes?_summary=true");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(await bytesOf(res)).toEqual(ALL_BYTES);
  });

  test("Last-Modified of the native read equals meta.lastUpdated of the FHIR read (to the second)", async () => {
    const native = await srv.request("/Binary/pdf");
    await native.arrayBuffer();
    const fhir = (await (await srv.request("/Binary/pdf?_format=json")).json()) as {
      meta: { lastUpdated: string };
    };
    const lastUpdated = Date.parse(fhir.meta.lastUpdated);
    expect(Date.parse(native.headers.get("last-modified") ?? "")).toBe(Math.floor(lastUpdated / 1000) * 1000);
  });

  test("--public-url is the base of Content-Location", async () => {
    await using pub = await startServer({ args: ["--public-url", "https://example.org/fhir"] });
    await put(pub, "doc", PDF, "application/pdf");
    const res = await pub.request("/Binary/doc");
    await res.arrayBuffer();
    expect(res.headers.get("content-location")).toBe("https://example.org/fhir/Binary/doc/_history/1");
  });
});

describe("HEAD", () => {
  const HEADERS = [
    "content-type",
    "etag",
    "last-modified",
    "content-length",
    "accept-ranges",
    "content-location",
    "x-security-context",
    "x-content-type-options",
    "content-disposition",
    "content-security-policy",
  ];
  const pick = (res: Response) => Object.fromEntries(HEADERS.map((name) => [name, res.headers.get(name)]));

  test.each([
    ["a native read", "/Binary/secured", {}],
    ["a native read of an active type", "/Binary/all-bytes", {}],
    ["a vread", "/Binary/versioned/_history/1", {}],
    ["a FHIR JSON read", "/Binary/secured", { accept: "application/fhir+json" }],
    ["a FHIR XML read", "/Binary/secured?_format=xml", {}],
  ])("HEAD on %s returns the headers GET would, and no body", async (_name, path, headers) => {
    const get = await srv.request(path, { headers });
    const getBody = await bytesOf(get);
    const head = await srv.request(path, { method: "HEAD", headers });
    expect(head.status).toBe(200);
    expect(pick(head)).toEqual(pick(get));
    expect(head.headers.get("content-length")).toBe(String(getBody.length));
    expect((await bytesOf(head)).length).toBe(0);
  });

  test.each([
    ["never existed", "/Binary/nothing-here", 404],
    ["deleted", "/Binary/gone", 410],
    ["invalid id", "/Binary/a_b", 400],
  ])("HEAD of %s has the GET status", async (_name, path, status) => {
    const res = await srv.request(path, { method: "HEAD" });
    expect(res.status).toBe(status);
    expect((await bytesOf(res)).length).toBe(0);
  });
});

describe("_format", () => {
  const ROWS: [string, "json" | "xml", string][] = [
    ["json", "json", FHIR_JSON],
    ["application/json", "json", FHIR_JSON],
    ["text/json", "json", FHIR_JSON],
    ["application/fhir+json", "json", FHIR_JSON],
    ["application/json+fhir", "json", LEGACY_JSON],
    ["xml", "xml", FHIR_XML],
    ["application/xml", "xml", FHIR_XML],
    ["text/xml", "xml", FHIR_XML],
    ["application/fhir+xml", "xml", FHIR_XML],
    ["application/xml+fhir", "xml", LEGACY_XML],
  ];
  // Sent escaped, and with the `+` unescaped (it then arrives as a space), and with a literal %20.
  const CASES: [string, "json" | "xml", string][] = [
    ...ROWS.map(([value, syntax, type]): [string, "json" | "xml", string] => [
      encodeURIComponent(value),
      syntax,
      type,
    ]),
    ...ROWS.filter(([value]) => value.includes("+")).flatMap(
      ([value, syntax, type]): [string, "json" | "xml", string][] => [
        [value, syntax, type],
        [value.replace("+", "%20"), syntax, type],
      ],
    ),
  ];

  test.each(CASES)("_format=%s gives FHIR %s as %s", async (query, syntax, type) => {
    const res = await srv.request(`/Binary/pdf?_format=${query}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(type);
    if (syntax === "json") expect(await res.json()).toEqual(binaryJson("pdf", "1", "application/pdf", PDF));
    else expect(parseXml(await res.text())).toEqual(binaryXml("pdf", "1", "application/pdf", PDF));
  });

  test.each([
    ["html"],
    ["text/html"],
    ["yaml"],
    ["ttl"],
    ["application/fhir+turtle"],
    ["application/pdf"], // even the stored type: _format only names FHIR formats
    ["jsonx"],
  ])("_format=%s is unknown: 406 with an OperationOutcome", async (value) => {
    const res = await srv.request(`/Binary/pdf?_format=${encodeURIComponent(value)}`);
    expect(res.status).toBe(406);
    await expectJsonOutcome(res);
  });

  test.each([
    ["xml", "application/fhir+json", "xml"],
    ["json", "application/fhir+xml", "json"],
    ["json", "application/pdf", "json"],
    ["xml", "*/*", "xml"],
    ["json", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json"],
  ])("_format=%s beats Accept: %s", async (format, accept, syntax) => {
    const res = await srv.request(`/Binary/pdf?_format=${format}`, { headers: { accept } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(syntax === "json" ? FHIR_JSON : FHIR_XML);
    await res.arrayBuffer();
  });

  test("an unknown _format is 406 even with a FHIR Accept", async () => {
    const res = await srv.request("/Binary/pdf?_format=html", {
      headers: { accept: "application/fhir+json" },
    });
    expect(res.status).toBe(406);
    await expectJsonOutcome(res);
  });
});

describe("Accept", () => {
  type Outcome = "native" | "json" | "xml" | "legacy-json" | "legacy-xml";
  const BROWSER =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8";
  const ROWS: [string, Outcome][] = [
    ["application/fhir+json", "json"],
    ["application/fhir+xml", "xml"],
    ["application/json+fhir", "legacy-json"],
    ["application/xml+fhir", "legacy-xml"],
    ["application/fhir+json; charset=utf-8", "json"],
    ["application/fhir+xml;q=1", "xml"],
    ["application/FHIR+JSON", "json"], // media types are case-insensitive; the CC seed writes fhir+JSON
    ["application/pdf, application/fhir+json", "json"], // a tie goes to FHIR
    ["*/*, application/fhir+json", "json"],
    ["application/fhir+xml, application/pdf", "xml"],
    ["application/pdf;q=0.5, application/fhir+xml", "xml"],
    ["*/*;q=0.1, application/fhir+json;q=0.2", "json"],
    ["application/fhir+json;q=0.8, application/fhir+xml;q=0.9", "xml"],
    ["application/fhir+json;q=0.9, application/pdf", "native"],
    ["application/fhir+json;q=0.5, */*", "native"],
    ["application/fhir+xml;q=0.9, */*;q=1.0", "native"],
    ["application/fhir+json;q=0.5, application/*", "native"],
    ["application/fhir+json;q=0, */*", "native"],
    ["application/json", "native"],
    ["application/xml", "native"],
    ["text/xml", "native"],
    ["text/json", "native"],
    ["*/*", "native"],
    [BROWSER, "native"],
    ["application/pdf", "native"],
    ["image/png", "native"], // mismatched: still the native bytes, never 406
    ["text/html", "native"],
    ["application/*", "native"],
    ["garbage", "native"],
  ];

  test.each(ROWS)("Accept: %s gives %s", async (accept, outcome) => {
    const res = await srv.request("/Binary/pdf", { headers: { accept } });
    expect(res.status).toBe(200);
    const type = res.headers.get("content-type");
    switch (outcome) {
      case "native":
        expect(type).toBe("application/pdf");
        expect(await bytesOf(res)).toEqual(PDF);
        break;
      case "json":
      case "legacy-json":
        expect(type).toBe(outcome === "json" ? FHIR_JSON : LEGACY_JSON);
        expect(await res.json()).toEqual(binaryJson("pdf", "1", "application/pdf", PDF));
        break;
      default:
        expect(type).toBe(outcome === "xml" ? FHIR_XML : LEGACY_XML);
        expect(parseXml(await res.text())).toEqual(binaryXml("pdf", "1", "application/pdf", PDF));
    }
  });

  test.each([
    ["application/fhir+json", "json"],
    ["application/fhir+xml", "xml"],
    ["application/json", "native"],
    ["*/*", "native"],
  ])("a stored application/fhir+json document asked for with %s comes back %s", async (accept, outcome) => {
    const res = await srv.request("/Binary/fhir-doc", { headers: { accept } });
    expect(res.status).toBe(200);
    if (outcome === "native") {
      expect(res.headers.get("content-type")).toBe("application/fhir+json");
      expect(await bytesOf(res)).toEqual(PATIENT_JSON);
    } else if (outcome === "json") {
      expect(res.headers.get("content-type")).toBe(FHIR_JSON);
      expect(await res.json()).toEqual(binaryJson("fhir-doc", "1", "application/fhir+json", PATIENT_JSON));
    } else {
      expect(res.headers.get("content-type")).toBe(FHIR_XML);
      expect(parseXml(await res.text())).toEqual(
        binaryXml("fhir-doc", "1", "application/fhir+json", PATIENT_JSON),
      );
    }
  });
});

describe("FHIR representations", () => {
  test("FHIR JSON: securityContext, base64 that decodes to the exact bytes", async () => {
    const res = await srv.request("/Binary/secured", { headers: { accept: "application/fhir+json" } });
    expect(res.headers.get("content-type")).toBe(FHIR_JSON);
    expect(await res.json()).toEqual(
      binaryJson("secured", "1", "application/pdf", PDF, { securityContext: "Patient/example" }),
    );
  });

  test("FHIR JSON of all 256 byte values decodes to the exact bytes", async () => {
    const body = (await (await srv.request("/Binary/all-bytes?_format=json")).json()) as { content: string };
    expect(new Uint8Array(Buffer.from(body.content, "base64"))).toEqual(ALL_BYTES);
    expect(body as unknown).toEqual(binaryJson("all-bytes", "1", "application/octet-stream", ALL_BYTES));
  });

  test("FHIR XML: root, namespace, value attributes and spec element order", async () => {
    const res = await srv.request("/Binary/secured", { headers: { accept: "application/fhir+xml" } });
    expect(res.headers.get("content-type")).toBe(FHIR_XML);
    const text = await res.text();
    expect(text).toMatch(/^(<\?xml[^>]*\?>\s*)?<Binary xmlns="http:\/\/hl7\.org\/fhir">/);
    expect(parseXml(text)).toEqual(
      binaryXml("secured", "1", "application/pdf", PDF, { securityContext: "Patient/example" }),
    );
  });

  test("FHIR XML of a content type with parameters and quotes is escaped correctly", async () => {
    const body = await (await srv.request("/Binary/csv?_format=xml")).text();
    expect(parseXml(body)).toEqual(binaryXml("csv", "1", "text/csv; charset=utf-8; header=present", LATIN1));
  });

  test("vread as FHIR names the version in meta.versionId", async () => {
    const res = await srv.request("/Binary/versioned/_history/1?_format=json");
    expect(await res.json()).toEqual(
      binaryJson("versioned", "1", "text/plain", new TextEncoder().encode("one")),
    );
  });

  test.each([
    ["json", "application/fhir+json"],
    ["xml", "application/fhir+xml"],
  ])("_summary=true as %s: no payload element, meta.tag SUBSETTED", async (syntax, accept) => {
    const res = await srv.request("/Binary/secured?_summary=true", { headers: { accept } });
    expect(res.status).toBe(200);
    const subsetted = expect.arrayContaining([expect.objectContaining({ code: "SUBSETTED" })]);
    if (syntax === "json") {
      expect(await res.json()).toEqual({
        resourceType: "Binary",
        id: "secured",
        meta: { versionId: "1", lastUpdated: expect.stringMatching(INSTANT), tag: subsetted },
        contentType: "application/pdf",
        securityContext: { reference: "Patient/example" },
      });
    } else {
      const root = parseXml(await res.text());
      expect(root.children.map((child) => child.name)).toEqual([
        "id",
        "meta",
        "contentType",
        "securityContext",
      ]);
      const tags = root.children[1]?.children.filter((child) => child.name === "tag") ?? [];
      const codes = tags.map((tag) => tag.children.find((child) => child.name === "code")?.attrs.value);
      expect(codes).toContain("SUBSETTED");
    }
  });

  test("_summary=false is the full resource", async () => {
    const res = await srv.request("/Binary/pdf?_summary=false&_format=json");
    expect(await res.json()).toEqual(binaryJson("pdf", "1", "application/pdf", PDF));
  });

  test.each([["json"], ["xml"]])("_pretty=true indents %s and says the same thing", async (format) => {
    const compact = await (await srv.request(`/Binary/secured?_format=${format}`)).text();
    const pretty = await (await srv.request(`/Binary/secured?_format=${format}&_pretty=true`)).text();
    expect(pretty).toMatch(/\n\s+\S/);
    if (format === "json") expect(JSON.parse(pretty)).toEqual(JSON.parse(compact));
    else expect(parseXml(pretty)).toEqual(parseXml(compact));
  });

  test("_pretty=false is not indented", async () => {
    const text = await (await srv.request("/Binary/secured?_format=json&_pretty=false")).text();
    expect(text).not.toMatch(/\n\s+\S/);
  });
});

describe("fhirVersion", () => {
  type Expectation = { syntax: "json" | "xml"; payload: "content" | "data"; securityContext: boolean } | 406;
  const ROWS: [string, string[], string, Expectation][] = [
    ["STU3", [], "application/fhir+json", { syntax: "json", payload: "content", securityContext: true }],
    [
      "STU3",
      [],
      "application/fhir+json; fhirVersion=3.0",
      { syntax: "json", payload: "content", securityContext: true },
    ],
    [
      "STU3",
      [],
      "application/fhir+json; fhirVersion=4.0",
      { syntax: "json", payload: "data", securityContext: true },
    ],
    [
      "STU3",
      [],
      "application/fhir+json; fhirVersion=4.3",
      { syntax: "json", payload: "data", securityContext: true },
    ],
    [
      "STU3",
      [],
      "application/fhir+json; fhirVersion=5.0",
      { syntax: "json", payload: "data", securityContext: true },
    ],
    [
      "STU3",
      [],
      "application/fhir+json; fhirVersion=1.0",
      { syntax: "json", payload: "content", securityContext: false },
    ],
    [
      "STU3",
      [],
      "application/fhir+xml; fhirVersion=4.0",
      { syntax: "xml", payload: "data", securityContext: true },
    ],
    ["STU3", [], "application/fhir+json; fhirVersion=9.9", 406],
    ["STU3", [], "application/fhir+xml; fhirVersion=2.0", 406],
    [
      "R4",
      ["--fhir-version", "R4"],
      "application/fhir+json",
      { syntax: "json", payload: "data", securityContext: true },
    ],
    [
      "R4",
      ["--fhir-version", "R4"],
      "application/fhir+xml",
      { syntax: "xml", payload: "data", securityContext: true },
    ],
    [
      "R4",
      ["--fhir-version", "R4"],
      "application/fhir+json; fhirVersion=3.0",
      { syntax: "json", payload: "content", securityContext: true },
    ],
    [
      "DSTU2",
      ["--fhir-version", "DSTU2"],
      "application/json+fhir",
      { syntax: "json", payload: "content", securityContext: false },
    ],
    [
      "DSTU2",
      ["--fhir-version", "DSTU2"],
      "application/xml+fhir",
      { syntax: "xml", payload: "content", securityContext: false },
    ],
  ];

  test.each(ROWS)("%s server, Accept: %s", async (_version, args, accept, expected) => {
    await using server = await startServer({ args });
    await put(server, "doc", PDF, "application/pdf", { "x-security-context": "Patient/example" });
    const res = await server.request("/Binary/doc", { headers: { accept } });
    if (expected === 406) {
      expect(res.status).toBe(406);
      expect(res.headers.get("content-type")).toStartWith("application/");
      expect(await res.text()).toContain("OperationOutcome");
      return;
    }
    expect(res.status).toBe(200);
    const type = mediaType(res.headers.get("content-type"));
    expect(type.essence).toBe(mediaType(accept).essence.toLowerCase());
    expect(type.params.charset).toBe("utf-8");
    const options = {
      payload: expected.payload,
      securityContext: expected.securityContext ? "Patient/example" : undefined,
    };
    if (expected.syntax === "json")
      expect(await res.json()).toEqual(binaryJson("doc", "1", "application/pdf", PDF, options));
    else expect(parseXml(await res.text())).toEqual(binaryXml("doc", "1", "application/pdf", PDF, options));
  });
});

describe("conditional read", () => {
  const ROWS: [string, Record<string, string>, number][] = [
    ["If-None-Match with the ETag", { "if-none-match": 'W/"1"' }, 304],
    ["If-None-Match strong form (weak comparison)", { "if-none-match": '"1"' }, 304],
    ["If-None-Match list containing the ETag", { "if-none-match": 'W/"7", W/"1"' }, 304],
    ["If-None-Match: *", { "if-none-match": "*" }, 304],
    ["If-None-Match with another version", { "if-none-match": 'W/"2"' }, 200],
    ["If-Modified-Since far in the future", { "if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT" }, 304],
    ["If-Modified-Since long ago", { "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT" }, 200],
    ["If-Modified-Since unparseable", { "if-modified-since": "yesterday" }, 200],
  ];

  test.each(ROWS)("%s: %#", async (_name, headers, status) => {
    const res = await srv.request("/Binary/pdf", { headers });
    expect(res.status).toBe(status);
    const body = await bytesOf(res);
    if (status === 304) {
      expect(body.length).toBe(0);
      // RFC 9110 15.4.5: a 304 carries the ETag a 200 would have.
      expect(res.headers.get("etag")).toBe('W/"1"');
    } else expect(body).toEqual(PDF);
  });

  test("If-Modified-Since equal to Last-Modified: 304", async () => {
    const first = await srv.request("/Binary/pdf");
    await first.arrayBuffer();
    const res = await srv.request("/Binary/pdf", {
      headers: { "if-modified-since": first.headers.get("last-modified") ?? "" },
    });
    expect(res.status).toBe(304);
    expect((await bytesOf(res)).length).toBe(0);
  });

  test("If-Modified-Since one second before Last-Modified: 200", async () => {
    const first = await srv.request("/Binary/pdf");
    await first.arrayBuffer();
    const earlier = new Date(Date.parse(first.headers.get("last-modified") ?? "") - 1000).toUTCString();
    const res = await srv.request("/Binary/pdf", { headers: { "if-modified-since": earlier } });
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(PDF);
  });

  test("after an update the old ETag no longer matches", async () => {
    const res = await srv.request("/Binary/versioned", { headers: { "if-none-match": 'W/"1"' } });
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe('W/"2"');
    expect(await res.text()).toBe("two!");
  });

  test.each([
    ["json", { "if-none-match": 'W/"1"' }],
    ["xml", { "if-none-match": 'W/"1"' }],
    ["json", { "if-modified-since": "Fri, 01 Jan 2100 00:00:00 GMT" }],
  ])("a FHIR %s read is conditional too: %o", async (format, headers) => {
    const res = await srv.request(`/Binary/pdf?_format=${format}`, { headers });
    expect(res.status).toBe(304);
    expect((await bytesOf(res)).length).toBe(0);
  });
});

describe("Range", () => {
  const size = ALL_BYTES.length;
  const RANGES: [string, number, number][] = [
    ["bytes=0-9", 0, 9],
    ["bytes=10-19", 10, 19],
    [`bytes=${size - 6}-`, size - 6, size - 1],
    ["bytes=-6", size - 6, size - 1],
    [`bytes=0-${size + 100}`, 0, size - 1],
    ["bytes=255-255", 255, 255],
  ];

  test.each(RANGES)("Range: %s gives 206 with bytes %d-%d", async (range, first, last) => {
    const res = await srv.request("/Binary/all-bytes", { headers: { range } });
    expect({
      status: res.status,
      contentRange: res.headers.get("content-range"),
      contentLength: res.headers.get("content-length"),
      contentType: res.headers.get("content-type"),
      etag: res.headers.get("etag"),
    }).toEqual({
      status: 206,
      contentRange: `bytes ${first}-${last}/${size}`,
      contentLength: String(last - first + 1),
      contentType: "application/octet-stream",
      etag: 'W/"1"',
    });
    expect(await bytesOf(res)).toEqual(ALL_BYTES.slice(first, last + 1));
  });

  test.each([[`bytes=${size}-`], [`bytes=${size + 10}-${size + 20}`]])(
    "unsatisfiable Range: %s gives 416 with Content-Range bytes */size",
    async (range) => {
      const res = await srv.request("/Binary/all-bytes", { headers: { range } });
      expect(res.status).toBe(416);
      expect(res.headers.get("content-range")).toBe(`bytes */${size}`);
      await res.arrayBuffer();
    },
  );

  test.each([["bytes=abc"], ["bytes=9-2"], ["items=0-5"], ["bytes 0-5"], ["bytes="], ["bytes=--1"]])(
    "malformed Range: %s is ignored (200, all bytes)",
    async (range) => {
      const res = await srv.request("/Binary/all-bytes", { headers: { range } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-range")).toBeNull();
      expect(await bytesOf(res)).toEqual(ALL_BYTES);
    },
  );

  test("If-Range with the current Last-Modified: 206", async () => {
    const first = await srv.request("/Binary/all-bytes");
    await first.arrayBuffer();
    const res = await srv.request("/Binary/all-bytes", {
      headers: { range: "bytes=0-3", "if-range": first.headers.get("last-modified") ?? "" },
    });
    expect(res.status).toBe(206);
    expect(await bytesOf(res)).toEqual(ALL_BYTES.slice(0, 4));
  });

  test.each([
    ["an older date", "Thu, 01 Jan 1970 00:00:00 GMT"],
    ["another version's ETag", 'W/"9"'],
    ["another strong ETag", '"9"'],
  ])("If-Range with %s: the whole representation (200)", async (_name, ifRange) => {
    const res = await srv.request("/Binary/all-bytes", {
      headers: { range: "bytes=0-3", "if-range": ifRange },
    });
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(ALL_BYTES);
  });

  test.each([
    ["_format=json", "/Binary/all-bytes?_format=json", {}],
    ["Accept FHIR XML", "/Binary/all-bytes", { accept: "application/fhir+xml" }],
  ])("a FHIR read (%s) ignores Range", async (_name, path, headers) => {
    const res = await srv.request(path, { headers: { ...headers, range: "bytes=0-9" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBeNull();
    const text = await res.text();
    if (path.includes("json"))
      expect(JSON.parse(text)).toEqual(binaryJson("all-bytes", "1", "application/octet-stream", ALL_BYTES));
    else expect(parseXml(text)).toEqual(binaryXml("all-bytes", "1", "application/octet-stream", ALL_BYTES));
  });
});

describe("status and error bodies", () => {
  test("never existed: 404 with an OperationOutcome", async () => {
    const res = await srv.request("/Binary/never-existed");
    expect(res.status).toBe(404);
    await expectJsonOutcome(res);
  });

  test("deleted: 410 with the deletion's ETag", async () => {
    const res = await srv.request("/Binary/gone");
    expect(res.status).toBe(410);
    expect(res.headers.get("etag")).toBe('W/"2"');
    await expectJsonOutcome(res);
  });

  test("deleted, read as FHIR: 410 too", async () => {
    const res = await srv.request("/Binary/gone?_format=json");
    expect(res.status).toBe(410);
    await expectJsonOutcome(res);
  });

  test.each([["a_b"], ["a*b"], ["x".repeat(65)]])("invalid id %s: 400", async (id) => {
    const res = await srv.request(`/Binary/${id}`);
    expect(res.status).toBe(400);
    await expectJsonOutcome(res);
  });

  const NEGOTIATED: [string, string, Record<string, string>, number, "json" | "xml"][] = [
    ["404, native request (*/*)", "/Binary/never-existed", { accept: "*/*" }, 404, "json"],
    [
      "404, Accept of the type asked for",
      "/Binary/never-existed",
      { accept: "application/pdf" },
      404,
      "json",
    ],
    ["404, browser Accept", "/Binary/never-existed", { accept: "text/html,*/*;q=0.8" }, 404, "json"],
    ["404, _format=xml", "/Binary/never-existed?_format=xml", {}, 404, "xml"],
    ["404, Accept FHIR XML", "/Binary/never-existed", { accept: "application/fhir+xml" }, 404, "xml"],
    ["410, Accept image/png", "/Binary/gone", { accept: "image/png" }, 410, "json"],
    ["410, Accept FHIR XML", "/Binary/gone", { accept: "application/fhir+xml" }, 410, "xml"],
    ["400, _format=xml", "/Binary/a_b?_format=xml", {}, 400, "xml"],
    ["400, Accept text/html", "/Binary/a_b", { accept: "text/html" }, 400, "json"],
  ];

  test.each(NEGOTIATED)(
    "%s: the OperationOutcome is FHIR %s",
    async (_name, path, headers, status, syntax) => {
      const res = await srv.request(path, { headers });
      expect(res.status).toBe(status);
      if (syntax === "json") await expectJsonOutcome(res);
      else await expectXmlOutcome(res);
    },
  );

  test("an error on a stored text/html id is never served as text/html", async () => {
    await put(srv, "html-doc", new TextEncoder().encode("<p>x</p>"), "text/html");
    const res = await srv.request("/Binary/html-doc/_history/5", { headers: { accept: "text/html" } });
    expect(res.status).toBe(404);
    await expectJsonOutcome(res);
  });
});
