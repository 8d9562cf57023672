/**
 * Binary writes over real HTTP (fhir-binary-rules.md section 3): create, update, update-as-create, FHIR and
 * raw bodies, Content-Encoding, the size limit, Prefer, If-Match / If-None-Match, versions, delete, history.
 */
import { describe, expect, test } from "bun:test";
import { deflateSync as zlibDeflateSync } from "node:zlib";
import { startServer, type TestServer } from "../harness.ts";

const FHIR_JSON = "application/fhir+json; charset=utf-8";
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const ID = "[A-Za-z0-9\\-.]{1,64}";

const utf8 = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const bytesOf = async (res: Response): Promise<Uint8Array> => new Uint8Array(await res.arrayBuffer());
const HELLO = utf8("Hello");
const BINARY_BYTES = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80, 0xc3, 0x28, 10, 13]);

/** A write request: method, path under the base, body and headers. */
function send(
  srv: TestServer,
  method: string,
  path: string,
  body: Uint8Array | string | null,
  headers: Record<string, string> = {},
): Promise<Response> {
  return srv.request(path, {
    method,
    body: typeof body === "string" ? utf8(body) : body,
    headers,
  });
}

/** PUT raw bytes, asserting success. */
async function put(
  srv: TestServer,
  id: string,
  body: Uint8Array | string,
  contentType = "application/octet-stream",
  headers: Record<string, string> = {},
): Promise<Response> {
  const res = await send(srv, "PUT", `/Binary/${id}`, body, { "content-type": contentType, ...headers });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT /Binary/${id}: ${res.status}`);
  return res;
}

/** The id out of a create's Location header `[base]/Binary/[id]/_history/[vid]`. */
function idFromLocation(srv: TestServer, res: Response, vid = "1"): string {
  const location = res.headers.get("location") ?? "";
  const escaped = srv.base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const match = new RegExp(`^${escaped}/Binary/(${ID})/_history/${vid}$`).exec(location);
  if (!match?.[1]) throw new Error(`unexpected Location: ${location}`);
  return match[1];
}

/** GET the native representation: status, Content-Type, ETag and bytes. */
async function readNative(srv: TestServer, path: string) {
  const res = await srv.request(path, { headers: { accept: "*/*" } });
  return {
    status: res.status,
    contentType: res.headers.get("content-type"),
    etag: res.headers.get("etag"),
    body: await bytesOf(res),
  };
}

async function expectOutcome(res: Response, status: number): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toStartWith("application/fhir+");
  expect(await res.text()).toContain("OperationOutcome");
}

/** An entry of a history Bundle, as far as these tests look. */
interface HistoryEntry {
  request?: { method?: string };
  resource?: { id?: string; meta?: { versionId?: string }; contentType?: string };
}

/** A FHIR JSON Binary body. */
const binaryBody = (fields: Record<string, unknown>): string =>
  JSON.stringify({ resourceType: "Binary", ...fields });

describe("create", () => {
  test("POST raw: 201, Location, ETag, Last-Modified, and the bytes read back exactly", async () => {
    await using srv = await startServer();
    const before = Math.floor(Date.now() / 1000) * 1000;
    const res = await send(srv, "POST", "/Binary", BINARY_BYTES, {
      "content-type": "application/octet-stream",
    });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    const id = idFromLocation(srv, res);
    expect(res.headers.get("etag")).toBe('W/"1"');
    const lastModified = res.headers.get("last-modified") ?? "";
    expect(lastModified).toMatch(IMF_FIXDATE);
    expect(Date.parse(lastModified)).toBeGreaterThanOrEqual(before);
    expect(await readNative(srv, `/Binary/${id}`)).toEqual({
      status: 200,
      contentType: "application/octet-stream",
      etag: 'W/"1"',
      body: BINARY_BYTES,
    });
  });

  test("server-assigned ids are distinct and random-looking (UUID v4 or similar)", async () => {
    await using srv = await startServer();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await send(srv, "POST", "/Binary", "x", { "content-type": "text/plain" });
      await res.arrayBuffer();
      ids.push(idFromLocation(srv, res));
    }
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) {
      expect(id.length).toBeGreaterThanOrEqual(16);
      expect(id).not.toMatch(/^\d+$/);
    }
  });

  test("--public-url is the base of Location", async () => {
    await using srv = await startServer({ args: ["--public-url", "https://example.org/fhir"] });
    const res = await send(srv, "POST", "/Binary", "x", { "content-type": "text/plain" });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toMatch(
      new RegExp(`^https://example\\.org/fhir/Binary/${ID}/_history/1$`),
    );
  });

  test("PUT to a new id is update-as-create: 201 with Location naming version 1", async () => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/client-id", HELLO, { "content-type": "text/plain" });
    await res.arrayBuffer();
    expect({
      status: res.status,
      location: res.headers.get("location"),
      etag: res.headers.get("etag"),
    }).toEqual({ status: 201, location: `${srv.base}/Binary/client-id/_history/1`, etag: 'W/"1"' });
    expect(res.headers.get("last-modified")).toMatch(IMF_FIXDATE);
  });

  test("PUT to an existing id updates: 200, ETag and Last-Modified of version 2", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    const res = await send(srv, "PUT", "/Binary/doc", "two", { "content-type": "text/csv" });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe('W/"2"');
    expect(res.headers.get("last-modified")).toMatch(IMF_FIXDATE);
    expect(await readNative(srv, "/Binary/doc")).toEqual({
      status: 200,
      contentType: "text/csv",
      etag: 'W/"2"',
      body: utf8("two"),
    });
  });

  test("zero-length content is valid", async () => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/empty", new Uint8Array(0), {
      "content-type": "application/octet-stream",
    });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    const read = await srv.request("/Binary/empty");
    expect(read.headers.get("content-length")).toBe("0");
    expect(await readNative(srv, "/Binary/empty")).toEqual({
      status: 200,
      contentType: "application/octet-stream",
      etag: 'W/"1"',
      body: new Uint8Array(0),
    });
    await read.arrayBuffer();
  });

  test("X-Security-Context sets securityContext", async () => {
    await using srv = await startServer();
    await put(srv, "doc", HELLO, "text/plain", { "x-security-context": "Patient/123" });
    const native = await srv.request("/Binary/doc");
    await native.arrayBuffer();
    expect(native.headers.get("x-security-context")).toBe("Patient/123");
    const fhir = (await (await srv.request("/Binary/doc?_format=json")).json()) as {
      securityContext?: unknown;
    };
    expect(fhir.securityContext).toEqual({ reference: "Patient/123" });
  });

  test.each([
    ["POST", "/Binary"],
    ["PUT", "/Binary/no-type"],
  ])("%s without Content-Type: 400, nothing stored", async (method, path) => {
    await using srv = await startServer();
    const res = await send(srv, method, path, BINARY_BYTES);
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/no-type")).status).toBe(404);
  });

  test.each([
    ["pdf"],
    ["text/"],
    ["/plain"],
    ["text/plain/extra"],
    ["te xt/plain"],
    ["text/pl@in"],
    ["text/plain; charset"],
    ["text/plain; =utf-8"],
    ["(text)/plain"],
    ["text/plain\u00e9"],
  ])("invalid Content-Type %j: 400, nothing stored", async (contentType) => {
    await using srv = await startServer();
    const res = await srv.request("/Binary/bad-type", {
      method: "PUT",
      body: HELLO,
      headers: new Headers([["content-type", contentType]]),
    });
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/bad-type")).status).toBe(404);
  });

  test.each([
    ["x/y"],
    ["application/vnd.example.doc+json"],
    ["text/plain;charset=UTF-8"],
    ['multipart/related; type="application/dicom"; boundary=abc'],
  ])("valid Content-Type %j is stored exactly", async (contentType) => {
    await using srv = await startServer();
    await put(srv, "ok", HELLO, contentType);
    expect(await readNative(srv, "/Binary/ok")).toEqual({
      status: 200,
      contentType,
      etag: 'W/"1"',
      body: HELLO,
    });
  });
});

describe("Content-Encoding", () => {
  const PLAIN = utf8("The quick brown fox jumps over the lazy dog. ".repeat(20));
  test.each([
    ["gzip", Bun.gzipSync(PLAIN)],
    ["deflate (zlib, RFC 9110 8.4.1.2)", zlibDeflateSync(PLAIN)],
    ["deflate (raw, Bun.deflateSync)", Bun.deflateSync(PLAIN)],
    ["GZIP (codings are case-insensitive)", Bun.gzipSync(PLAIN)],
  ])("%s is decoded before storing", async (name, encoded) => {
    await using srv = await startServer();
    const encoding = name.split(" ")[0] ?? "";
    const res = await send(srv, "PUT", "/Binary/enc", encoded, {
      "content-type": "text/plain",
      "content-encoding": encoding,
    });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    expect(await readNative(srv, "/Binary/enc")).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"1"',
      body: PLAIN,
    });
  });

  test.each([
    ["not gzip at all", utf8("plain text, not gzip")],
    ["truncated gzip", Bun.gzipSync(PLAIN).slice(0, 20)],
  ])("Content-Encoding gzip with %s: 400, nothing stored", async (_name, body) => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/enc", body, {
      "content-type": "text/plain",
      "content-encoding": "gzip",
    });
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/enc")).status).toBe(404);
  });

  test.each([["br"], ["compress"], ["zstd"], ["x-unknown"], ["gzip, br"]])(
    "Content-Encoding %s: 415, nothing stored",
    async (encoding) => {
      await using srv = await startServer();
      const res = await send(srv, "PUT", "/Binary/enc", PLAIN, {
        "content-type": "text/plain",
        "content-encoding": encoding,
      });
      await expectOutcome(res, 415);
      expect((await readNative(srv, "/Binary/enc")).status).toBe(404);
    },
  );
});

describe("size limit", () => {
  test.each([
    ["exactly the limit", 1024, 201],
    ["one byte under", 1023, 201],
    ["one byte over", 1025, 413],
    ["far over", 256 * 1024, 413],
  ])("--max-size 1KiB, %s (%d bytes): %d", async (_name, size, status) => {
    await using srv = await startServer({ args: ["--max-size", "1KiB"] });
    const body = new Uint8Array(size).fill(0x41);
    const res = await send(srv, "PUT", "/Binary/big", body, { "content-type": "application/octet-stream" });
    expect(res.status).toBe(status);
    await res.arrayBuffer();
    const read = await readNative(srv, "/Binary/big");
    if (status === 201) expect(read.body).toEqual(body);
    else expect(read.status).toBe(404);
  });

  test("413 on POST stores nothing and the OperationOutcome says so", async () => {
    await using srv = await startServer({ args: ["--max-size", "1KiB"] });
    const res = await send(srv, "POST", "/Binary", new Uint8Array(4096), {
      "content-type": "application/octet-stream",
    });
    await expectOutcome(res, 413);
    expect(res.headers.get("location")).toBeNull();
  });

  test("an update over the limit leaves the current version as it was", async () => {
    await using srv = await startServer({ args: ["--max-size", "1KiB"] });
    await put(srv, "doc", "small", "text/plain");
    const res = await send(srv, "PUT", "/Binary/doc", new Uint8Array(2048), { "content-type": "text/plain" });
    await expectOutcome(res, 413);
    expect(await readNative(srv, "/Binary/doc")).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"1"',
      body: utf8("small"),
    });
  });

  test("the limit applies to the decoded content (a gzip bomb is 413)", async () => {
    await using srv = await startServer({ args: ["--max-size", "1KiB"] });
    const bomb = Bun.gzipSync(new Uint8Array(256 * 1024));
    expect(bomb.length).toBeLessThan(1024);
    const res = await send(srv, "PUT", "/Binary/bomb", bomb, {
      "content-type": "application/octet-stream",
      "content-encoding": "gzip",
    });
    await expectOutcome(res, 413);
    expect((await readNative(srv, "/Binary/bomb")).status).toBe(404);
  });
});

describe("FHIR Binary bodies", () => {
  const XML_HELLO =
    '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="SGVsbG8="/></Binary>';

  test.each([
    ["application/fhir+json", binaryBody({ contentType: "text/plain", content: "SGVsbG8=" })],
    ["application/fhir+json; charset=utf-8", binaryBody({ contentType: "text/plain", content: "SGVsbG8=" })],
    ["application/json+fhir", binaryBody({ contentType: "text/plain", content: "SGVsbG8=" })],
    ["application/fhir+xml", XML_HELLO],
    ["application/xml+fhir", XML_HELLO],
    ["application/fhir+xml", `<?xml version="1.0" encoding="UTF-8"?>\n${XML_HELLO}`],
  ])("POST %s Binary: the payload is stored with its contentType", async (type, body) => {
    await using srv = await startServer();
    const res = await send(srv, "POST", "/Binary", body, { "content-type": type });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    const id = idFromLocation(srv, res);
    expect(await readNative(srv, `/Binary/${id}`)).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"1"',
      body: HELLO,
    });
  });

  test("R4 server: a FHIR JSON Binary with `data` is stored", async () => {
    await using srv = await startServer({ args: ["--fhir-version", "R4"] });
    const res = await send(
      srv,
      "PUT",
      "/Binary/r4",
      binaryBody({ id: "r4", contentType: "image/png", data: b64(BINARY_BYTES) }),
      {
        "content-type": "application/fhir+json",
      },
    );
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    expect(await readNative(srv, "/Binary/r4")).toEqual({
      status: 200,
      contentType: "image/png",
      etag: 'W/"1"',
      body: BINARY_BYTES,
    });
  });

  test.each([
    [
      "JSON",
      "application/fhir+json",
      binaryBody({
        contentType: "text/plain",
        securityContext: { reference: "Patient/9" },
        content: "SGVsbG8=",
      }),
    ],
    [
      "XML",
      "application/fhir+xml",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><securityContext><reference value="Patient/9"/></securityContext><content value="SGVsbG8="/></Binary>',
    ],
  ])("FHIR %s securityContext is kept", async (_name, type, body) => {
    await using srv = await startServer();
    const res = await send(srv, "POST", "/Binary", body, { "content-type": type });
    await res.arrayBuffer();
    const id = idFromLocation(srv, res);
    const native = await srv.request(`/Binary/${id}`);
    expect(native.headers.get("x-security-context")).toBe("Patient/9");
    expect(await native.text()).toBe("Hello");
  });

  test("all byte values survive a FHIR JSON upload", async () => {
    await using srv = await startServer();
    const all = new Uint8Array(Array.from({ length: 256 }, (_, i) => i));
    await put(
      srv,
      "all",
      binaryBody({ id: "all", contentType: "application/octet-stream", content: b64(all) }),
      "application/fhir+json",
    );
    expect((await readNative(srv, "/Binary/all")).body).toEqual(all);
  });

  const BAD_JSON: [string, string][] = [
    ["contentType missing", binaryBody({ content: "SGVsbG8=" })],
    ["contentType empty", binaryBody({ contentType: "", content: "SGVsbG8=" })],
    ["contentType invalid", binaryBody({ contentType: "not a type", content: "SGVsbG8=" })],
    ["contentType not a string", binaryBody({ contentType: 42, content: "SGVsbG8=" })],
    [
      "base64 with padding in the middle",
      binaryBody({ contentType: "text/plain", content: "SGVsbG8=SGVsbG8=" }),
    ],
    ["base64 with a bad character", binaryBody({ contentType: "text/plain", content: "SGV$bG8=" })],
    ["base64url alphabet", binaryBody({ contentType: "text/plain", content: "SGVs-G8_" })],
    ["base64 of one character", binaryBody({ contentType: "text/plain", content: "S" })],
    ["base64 with extra padding", binaryBody({ contentType: "text/plain", content: "SGVsbG8===" })],
    ["content not a string", binaryBody({ contentType: "text/plain", content: 12 })],
    ["truncated JSON", '{"resourceType":"Binary","contentType":"text/plain",'],
    ["not JSON at all", "hello"],
    ["empty body", ""],
  ];

  test.each(BAD_JSON)("FHIR JSON, %s: 400, nothing stored", async (_name, body) => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/bad", body, { "content-type": "application/fhir+json" });
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/bad")).status).toBe(404);
  });

  test.each(BAD_JSON.filter(([name]) => name.startsWith("base64") || name.startsWith("contentType")))(
    "POST FHIR JSON, %s: 400",
    async (_name, body) => {
      await using srv = await startServer();
      const res = await send(srv, "POST", "/Binary", body, { "content-type": "application/fhir+json" });
      await expectOutcome(res, 400);
      expect(res.headers.get("location")).toBeNull();
    },
  );

  const XML_BAD: [string, string][] = [
    ["unclosed root", '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/>'],
    [
      "mismatched tags",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"></content></Binary>',
    ],
    ["not XML", "hello"],
    ["contentType missing", '<Binary xmlns="http://hl7.org/fhir"><content value="SGVsbG8="/></Binary>'],
    [
      "bad base64",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="SGVsbG8=SGVsbG8="/></Binary>',
    ],
    [
      "DOCTYPE with an entity",
      '<?xml version="1.0"?><!DOCTYPE Binary [<!ENTITY x "SGVsbG8=">]><Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="&x;"/></Binary>',
    ],
    [
      "DOCTYPE with an external entity",
      '<!DOCTYPE Binary [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="&xxe;"/></Binary>',
    ],
    ["DOCTYPE before another resource", '<!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"/>'],
    ["lower-case doctype", '<!doctype Patient><Patient xmlns="http://hl7.org/fhir"/>'],
  ];

  test.each(XML_BAD)("FHIR XML, %s: 400, nothing stored", async (_name, body) => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/bad", body, { "content-type": "application/fhir+xml" });
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/bad")).status).toBe(404);
  });

  test.each([
    [
      "JSON with another id",
      "application/fhir+json",
      binaryBody({ id: "other", contentType: "text/plain", content: "SGVsbG8=" }),
    ],
    [
      "JSON without an id",
      "application/fhir+json",
      binaryBody({ contentType: "text/plain", content: "SGVsbG8=" }),
    ],
    [
      "XML with another id",
      "application/fhir+xml",
      '<Binary xmlns="http://hl7.org/fhir"><id value="other"/><contentType value="text/plain"/><content value="SGVsbG8="/></Binary>',
    ],
  ])("PUT FHIR %s: 400 (the body id must equal the URL id)", async (_name, type, body) => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/doc", body, { "content-type": type });
    await expectOutcome(res, 400);
    expect((await readNative(srv, "/Binary/doc")).status).toBe(404);
    expect((await readNative(srv, "/Binary/other")).status).toBe(404);
  });

  test.each([
    [
      "JSON",
      "application/fhir+json",
      binaryBody({ id: "doc", contentType: "text/plain", content: "SGVsbG8=" }),
    ],
    [
      "XML",
      "application/fhir+xml",
      '<Binary xmlns="http://hl7.org/fhir"><id value="doc"/><contentType value="text/plain"/><content value="SGVsbG8="/></Binary>',
    ],
  ])("PUT FHIR %s with the URL id: 201", async (_name, type, body) => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/doc", body, { "content-type": type });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    expect((await readNative(srv, "/Binary/doc")).body).toEqual(HELLO);
  });

  test("POST ignores a body id and meta", async () => {
    await using srv = await startServer();
    const body = binaryBody({
      id: "client-chosen",
      meta: { versionId: "7", lastUpdated: "2001-01-01T00:00:00Z" },
      contentType: "text/plain",
      content: "SGVsbG8=",
    });
    const res = await send(srv, "POST", "/Binary", body, { "content-type": "application/fhir+json" });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    const id = idFromLocation(srv, res);
    expect(id).not.toBe("client-chosen");
    expect(res.headers.get("etag")).toBe('W/"1"');
    expect((await readNative(srv, "/Binary/client-chosen")).status).toBe(404);
    const fhir = (await (await srv.request(`/Binary/${id}?_format=json`)).json()) as {
      meta: { versionId: string; lastUpdated: string };
    };
    expect(fhir.meta.versionId).toBe("1");
    expect(fhir.meta.lastUpdated).not.toStartWith("2001");
  });

  test.each([
    ["FHIR JSON of another resource type", "application/fhir+json", '{"resourceType":"Patient","id":"p1"}'],
    [
      "FHIR JSON without resourceType",
      "application/fhir+json",
      '{"contentType":"text/plain","content":"SGVsbG8="}',
    ],
    [
      "FHIR XML of another resource type",
      "application/fhir+xml",
      '<Patient xmlns="http://hl7.org/fhir"><id value="p1"/></Patient>',
    ],
    [
      "a Binary root outside the FHIR namespace",
      "application/fhir+xml",
      '<Binary xmlns="urn:other"><x/></Binary>',
    ],
    [
      "a Binary in generic application/json",
      "application/json",
      binaryBody({ contentType: "text/plain", content: "SGVsbG8=" }),
    ],
    ["malformed generic application/json", "application/json", '{"not": json'],
    [
      "a Binary in generic application/xml",
      "application/xml",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/></Binary>',
    ],
    ["a DOCTYPE in generic text/html", "text/html", "<!DOCTYPE html><p>hi</p>"],
  ])("%s is stored as is, with the request Content-Type", async (_name, type, body) => {
    await using srv = await startServer();
    const res = await send(srv, "POST", "/Binary", body, { "content-type": type });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
    const id = idFromLocation(srv, res);
    expect(await readNative(srv, `/Binary/${id}`)).toEqual({
      status: 200,
      contentType: type,
      etag: 'W/"1"',
      body: utf8(body),
    });
  });
});

describe("methods", () => {
  test.each([
    ["POST", "/Binary/doc"],
    ["PATCH", "/Binary/doc"],
    ["PATCH", "/Binary/never"],
  ])("%s %s: 405 with Allow, nothing changed", async (method, path) => {
    await using srv = await startServer();
    await put(srv, "doc", "original", "text/plain");
    const res = await send(srv, method, path, "changed", { "content-type": "text/plain" });
    expect(res.status).toBe(405);
    const allow = (res.headers.get("allow") ?? "").split(",").map((m) => m.trim());
    expect(allow).toEqual(expect.arrayContaining(["GET", "PUT", "DELETE"]));
    expect(allow).not.toContain(method);
    await res.arrayBuffer();
    expect(await readNative(srv, "/Binary/doc")).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"1"',
      body: utf8("original"),
    });
  });
});

describe("Prefer", () => {
  const CASES: [string, string][] = [
    ["POST", "/Binary"],
    ["PUT (create)", "/Binary/doc"],
    ["PUT (update)", "/Binary/doc"],
  ];

  for (const [name, path] of CASES) {
    const method = name.split(" ")[0] ?? "";
    const update = name.includes("update");
    const prepare = async (srv: TestServer): Promise<void> => {
      if (update) await put(srv, "doc", "before", "text/plain");
    };
    const status = update ? 200 : 201;
    const versionId = update ? "2" : "1";

    test(`${name}, no Prefer: the resource in _summary form, no payload`, async () => {
      await using srv = await startServer();
      await prepare(srv);
      const res = await send(srv, method, path, HELLO, {
        "content-type": "text/plain",
        "x-security-context": "Patient/1",
      });
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe(FHIR_JSON);
      const body = (await res.json()) as { content?: string; data?: string };
      expect(body).toMatchObject({
        resourceType: "Binary",
        id: expect.stringMatching(new RegExp(`^${ID}$`)),
        meta: { versionId, lastUpdated: expect.stringMatching(INSTANT) },
        contentType: "text/plain",
        securityContext: { reference: "Patient/1" },
      });
      expect(body.content).toBeUndefined();
      expect(body.data).toBeUndefined();
    });

    test(`${name}, Prefer: return=minimal: empty body`, async () => {
      await using srv = await startServer();
      await prepare(srv);
      const res = await send(srv, method, path, HELLO, {
        "content-type": "text/plain",
        prefer: "return=minimal",
      });
      expect(res.status).toBe(status);
      expect(res.headers.get("etag")).toBe(`W/"${versionId}"`);
      expect((await bytesOf(res)).length).toBe(0);
    });

    test(`${name}, Prefer: return=representation: the full resource`, async () => {
      await using srv = await startServer();
      await prepare(srv);
      const res = await send(srv, method, path, HELLO, {
        "content-type": "text/plain",
        prefer: "return=representation",
      });
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe(FHIR_JSON);
      expect(await res.json()).toEqual({
        resourceType: "Binary",
        id: expect.stringMatching(new RegExp(`^${ID}$`)),
        meta: { versionId, lastUpdated: expect.stringMatching(INSTANT) },
        contentType: "text/plain",
        content: "SGVsbG8=",
      });
    });

    test(`${name}, Prefer: return=OperationOutcome`, async () => {
      await using srv = await startServer();
      await prepare(srv);
      const res = await send(srv, method, path, HELLO, {
        "content-type": "text/plain",
        prefer: "return=OperationOutcome",
      });
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe(FHIR_JSON);
      expect(await res.json()).toMatchObject({
        resourceType: "OperationOutcome",
        issue: [expect.any(Object)],
      });
    });
  }
});

describe("preconditions", () => {
  test("PUT If-Match with the current version: 200, next version", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    await put(srv, "doc", "two", "text/plain");
    const res = await send(srv, "PUT", "/Binary/doc", "three", {
      "content-type": "text/plain",
      "if-match": 'W/"2"',
    });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toBe('W/"3"');
  });

  test.each([['W/"1"'], ['W/"3"'], ['W/"0"']])(
    "PUT If-Match %s against version 2: 412, nothing changed",
    async (ifMatch) => {
      await using srv = await startServer();
      await put(srv, "doc", "one", "text/plain");
      await put(srv, "doc", "two", "text/plain");
      const res = await send(srv, "PUT", "/Binary/doc", "three", {
        "content-type": "text/plain",
        "if-match": ifMatch,
      });
      await expectOutcome(res, 412);
      expect(await readNative(srv, "/Binary/doc")).toEqual({
        status: 200,
        contentType: "text/plain",
        etag: 'W/"2"',
        body: utf8("two"),
      });
      // The failed write took no version number.
      expect((await put(srv, "doc", "three", "text/plain")).headers.get("etag")).toBe('W/"3"');
    },
  );

  test("PUT If-Match on an id that does not exist: 412, nothing created", async () => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/doc", "x", {
      "content-type": "text/plain",
      "if-match": 'W/"1"',
    });
    await expectOutcome(res, 412);
    expect((await readNative(srv, "/Binary/doc")).status).toBe(404);
  });

  test("DELETE If-Match mismatch: 412, still readable", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    await put(srv, "doc", "two", "text/plain");
    const res = await send(srv, "DELETE", "/Binary/doc", null, { "if-match": 'W/"1"' });
    await expectOutcome(res, 412);
    expect((await readNative(srv, "/Binary/doc")).body).toEqual(utf8("two"));
  });

  test("DELETE If-Match with the current version: 204, then 410", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    const res = await send(srv, "DELETE", "/Binary/doc", null, { "if-match": 'W/"1"' });
    expect(res.status).toBe(204);
    await res.arrayBuffer();
    expect((await readNative(srv, "/Binary/doc")).status).toBe(410);
  });

  test("PUT If-None-Match: * when the resource exists: 412, nothing changed", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    const res = await send(srv, "PUT", "/Binary/doc", "two", {
      "content-type": "text/plain",
      "if-none-match": "*",
    });
    await expectOutcome(res, 412);
    expect(await readNative(srv, "/Binary/doc")).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"1"',
      body: utf8("one"),
    });
  });

  test("PUT If-None-Match: * on a new id: 201", async () => {
    await using srv = await startServer();
    const res = await send(srv, "PUT", "/Binary/doc", "one", {
      "content-type": "text/plain",
      "if-none-match": "*",
    });
    await res.arrayBuffer();
    expect(res.status).toBe(201);
  });
});

describe("versions", () => {
  test("every write adds exactly one version: 1, 2, 3, each readable by vread", async () => {
    await using srv = await startServer();
    const bodies = ["first", "second", "third"];
    const etags: (string | null)[] = [];
    for (const body of bodies) etags.push((await put(srv, "doc", body, "text/plain")).headers.get("etag"));
    expect(etags).toEqual(['W/"1"', 'W/"2"', 'W/"3"']);
    for (const [i, body] of bodies.entries()) {
      expect(await readNative(srv, `/Binary/doc/_history/${i + 1}`)).toEqual({
        status: 200,
        contentType: "text/plain",
        etag: `W/"${i + 1}"`,
        body: utf8(body),
      });
    }
    expect((await readNative(srv, "/Binary/doc/_history/4")).status).toBe(404);
  });

  test("concurrent PUTs to one id: every one succeeds with its own version, 1..n, none lost", async () => {
    await using srv = await startServer();
    const n = 12;
    const responses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        send(srv, "PUT", "/Binary/race", `writer ${i}`, { "content-type": "text/plain" }),
      ),
    );
    for (const res of responses) await res.arrayBuffer();
    // The first to commit created the resource (201); the others updated it (200).
    expect(responses.map((res) => res.status).sort()).toEqual([200, ...Array(n - 2).fill(200), 201]);
    const etags = responses.map((res) => res.headers.get("etag")).sort();
    expect(etags).toEqual(Array.from({ length: n }, (_, i) => `W/"${i + 1}"`).sort());
    const bodies = new Set<string>();
    for (let vid = 1; vid <= n; vid++) {
      bodies.add(new TextDecoder().decode((await readNative(srv, `/Binary/race/_history/${vid}`)).body));
    }
    expect(bodies).toEqual(new Set(Array.from({ length: n }, (_, i) => `writer ${i}`)));
  });

  test("concurrent PUTs with the same If-Match: exactly one wins, the others get 412", async () => {
    await using srv = await startServer();
    await put(srv, "race", "v1", "text/plain");
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        send(srv, "PUT", "/Binary/race", `writer ${i}`, {
          "content-type": "text/plain",
          "if-match": 'W/"1"',
        }),
      ),
    );
    for (const res of responses) await res.arrayBuffer();
    expect(responses.map((res) => res.status).sort()).toEqual([200, 412, 412, 412, 412, 412, 412, 412]);
    expect((await readNative(srv, "/Binary/race")).etag).toBe('W/"2"');
    expect((await readNative(srv, "/Binary/race/_history/3")).status).toBe(404);
  });

  test("failed writes (400, 413, 415, 412) take no version number", async () => {
    await using srv = await startServer({ args: ["--max-size", "1KiB"] });
    await put(srv, "doc", "one", "text/plain");
    const failures = [
      await send(srv, "PUT", "/Binary/doc", "x", {}),
      await send(srv, "PUT", "/Binary/doc", new Uint8Array(2000), { "content-type": "text/plain" }),
      await send(srv, "PUT", "/Binary/doc", "x", { "content-type": "text/plain", "content-encoding": "br" }),
      await send(srv, "PUT", "/Binary/doc", "x", { "content-type": "text/plain", "if-match": 'W/"5"' }),
    ];
    expect(failures.map((res) => res.status)).toEqual([400, 413, 415, 412]);
    for (const res of failures) await res.arrayBuffer();
    expect((await put(srv, "doc", "two", "text/plain")).headers.get("etag")).toBe('W/"2"');
  });
});

describe("delete", () => {
  test("DELETE: 204, empty body; reads then 410 with the deletion's ETag", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    const res = await send(srv, "DELETE", "/Binary/doc", null);
    expect(res.status).toBe(204);
    expect((await bytesOf(res)).length).toBe(0);
    for (const accept of ["*/*", "application/fhir+json", "application/fhir+xml"]) {
      const read = await srv.request("/Binary/doc", { headers: { accept } });
      expect({ status: read.status, etag: read.headers.get("etag") }).toEqual({ status: 410, etag: 'W/"2"' });
      await read.arrayBuffer();
    }
  });

  test.each([
    ["never existed", false],
    ["already deleted", true],
  ])("DELETE of an id that %s: 204", async (_name, existed) => {
    await using srv = await startServer();
    if (existed) {
      await put(srv, "doc", "one", "text/plain");
      (await send(srv, "DELETE", "/Binary/doc", null)).body?.cancel();
    }
    const res = await send(srv, "DELETE", "/Binary/doc", null);
    expect(res.status).toBe(204);
    await res.arrayBuffer();
    expect((await readNative(srv, "/Binary/doc")).status).toBe(existed ? 410 : 404);
  });

  test("history survives: vread of older versions works, vread of the deletion is 410", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    await put(srv, "doc", "two", "text/plain");
    (await send(srv, "DELETE", "/Binary/doc", null)).body?.cancel();
    const reads = await Promise.all([1, 2, 3].map((vid) => readNative(srv, `/Binary/doc/_history/${vid}`)));
    expect(reads.map((read) => read.status)).toEqual([200, 200, 410]);
    expect(reads[0]?.body).toEqual(utf8("one"));
    expect(reads[1]?.body).toEqual(utf8("two"));
  });

  test("a later PUT brings the id back with the next version: 201", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    (await send(srv, "DELETE", "/Binary/doc", null)).body?.cancel();
    const res = await send(srv, "PUT", "/Binary/doc", "again", { "content-type": "text/plain" });
    await res.arrayBuffer();
    expect({
      status: res.status,
      etag: res.headers.get("etag"),
      location: res.headers.get("location"),
    }).toEqual({ status: 201, etag: 'W/"3"', location: `${srv.base}/Binary/doc/_history/3` });
    expect(await readNative(srv, "/Binary/doc")).toEqual({
      status: 200,
      contentType: "text/plain",
      etag: 'W/"3"',
      body: utf8("again"),
    });
  });
});

describe("history", () => {
  test("a history Bundle, newest first, with the deletion as a DELETE entry", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    await put(srv, "doc", "two", "text/csv");
    (await send(srv, "DELETE", "/Binary/doc", null)).body?.cancel();
    await put(srv, "doc", "four", "text/plain");
    const res = await srv.request("/Binary/doc/_history");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(FHIR_JSON);
    const bundle = (await res.json()) as { entry?: HistoryEntry[] };
    expect(bundle).toMatchObject({ resourceType: "Bundle", type: "history" });
    const entries = bundle.entry ?? [];
    expect(
      entries.map((entry) =>
        entry.request?.method === "DELETE"
          ? { deleted: true }
          : {
              id: entry.resource?.id,
              versionId: entry.resource?.meta?.versionId,
              type: entry.resource?.contentType,
            },
      ),
    ).toEqual([
      { id: "doc", versionId: "4", type: "text/plain" },
      { deleted: true },
      { id: "doc", versionId: "2", type: "text/csv" },
      { id: "doc", versionId: "1", type: "text/plain" },
    ]);
  });

  test("history of an id that is not deleted has no DELETE entries", async () => {
    await using srv = await startServer();
    await put(srv, "doc", "one", "text/plain");
    await put(srv, "doc", "two", "text/plain");
    const bundle = (await (await srv.request("/Binary/doc/_history")).json()) as {
      type?: string;
      entry?: HistoryEntry[];
    };
    expect(bundle.type).toBe("history");
    const methods = (bundle.entry ?? []).map((entry) => entry.request?.method);
    expect(methods).toHaveLength(2);
    expect(methods).not.toContain("DELETE");
  });
});
