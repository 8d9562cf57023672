/**
 * Large documents over real HTTP (issue 4): SHA-256 of what went in against what came out, natively, via
 * FHIR JSON and FHIR XML (uploaded and downloaded wrapped, both streamed), and via Range pieces reassembled;
 * the Range rules; and FHIR-wrapped uploads refused after their payload leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, type TestServer, tempDir } from "../harness.ts";

// Above the 8 MiB in-memory wrapping threshold, and not a multiple of 3, so every streaming path and the
// base64 remainder are exercised.
const SIZE = 24 * 1024 * 1024 + 1;
const CONTENT = new Uint8Array(randomBytes(SIZE));
const sha256 = (bytes: Uint8Array): string => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
const EXPECTED = sha256(CONTENT);
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A request body streamed in uneven chunks (so scanners see tokens split across chunks). */
function streamed(parts: (string | Uint8Array)[], chunk = 65_531): ReadableStream<Uint8Array> {
  const pieces = parts.map((part) => (typeof part === "string" ? utf8(part) : part));
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = pieces.shift();
      if (!next) return controller.close();
      if (next.length > chunk) pieces.unshift(next.subarray(chunk));
      controller.enqueue(next.subarray(0, chunk));
    },
  });
}

/** The base64 of CONTENT wrapped every 76 characters, as MIME encoders write it (FHIR allows whitespace). */
const BASE64 = CONTENT.toBase64();
const wrappedBase64 = (newline: string): string => (BASE64.match(/.{1,76}/g) ?? []).join(newline);

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ args: ["--max-size", "64MiB"] });
});
afterAll(async () => {
  await srv[Symbol.asyncDispose]();
});

const put = async (id: string, body: RequestInit["body"], contentType: string): Promise<Response> => {
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body,
    headers: { "content-type": contentType },
  });
  await res.arrayBuffer();
  return res;
};
const nativeSha = async (id: string): Promise<string> => {
  const res = await srv.request(`/Binary/${id}`);
  expect(res.status).toBe(200);
  return sha256(new Uint8Array(await res.arrayBuffer()));
};
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));

describe("round trips (SHA-256 in = SHA-256 out)", () => {
  test("native upload, native download; HEAD gives the exact length", async () => {
    expect((await put("native", streamed([CONTENT]), "application/pdf")).status).toBe(201);
    expect(await nativeSha("native")).toBe(EXPECTED);
    const head = await srv.request("/Binary/native", { method: "HEAD" });
    expect([head.status, head.headers.get("content-length"), await head.text()]).toEqual([
      200,
      String(SIZE),
      "",
    ]);
  });

  test("FHIR JSON upload (payload streamed, contentType after it, `\\/` and `\\n` escapes) and download", async () => {
    const payload = wrappedBase64("\\n").replaceAll("/", "\\/");
    const body = streamed([
      '{"resourceType":"Binary","id":"json","data":"',
      payload,
      '","contentType":"application/pdf","securityContext":{"reference":"Patient/9"}}',
    ]);
    expect((await put("json", body, "application/fhir+json")).status).toBe(201);
    expect(await nativeSha("json")).toBe(EXPECTED);
    const res = await srv.request("/Binary/json", {
      headers: { accept: "application/fhir+json; fhirVersion=4.0" },
    });
    const resource = (await res.json()) as { contentType: string; securityContext: unknown; data: string };
    expect([resource.contentType, resource.securityContext]).toEqual([
      "application/pdf",
      { reference: "Patient/9" },
    ]);
    expect(sha256(Uint8Array.fromBase64(resource.data))).toBe(EXPECTED);
  });

  test("FHIR XML upload (payload streamed, line-wrapped with &#10;) and download", async () => {
    const body = streamed([
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment -->\n<Binary xmlns="http://hl7.org/fhir">',
      '<id value="xml"/><content value="',
      wrappedBase64("&#10;"),
      '"/><contentType value="image/tiff"/></Binary>\n',
    ]);
    expect((await put("xml", body, "application/fhir+xml")).status).toBe(201);
    expect(await nativeSha("xml")).toBe(EXPECTED);
    const res = await srv.request("/Binary/xml", { headers: { accept: "application/fhir+xml" } });
    const text = await res.text();
    expect(text).toContain('<contentType value="image/tiff"/>');
    const payload = /<content value="([^"]*)"/.exec(text)?.[1] ?? "";
    expect(sha256(Uint8Array.fromBase64(payload))).toBe(EXPECTED);
  });

  // Read whole, so only up to the 4 MiB parse cap (hardening-body.test.ts: larger ones are a 413).
  test("a FHIR JSON Binary with resourceType after the payload is still read (whole-body path)", async () => {
    const small = CONTENT.subarray(0, 2 * 1024 * 1024 + 1);
    const body = JSON.stringify({
      id: "late",
      contentType: "application/pdf",
      data: small.toBase64(),
      resourceType: "Binary",
    });
    expect((await put("late", body, "application/fhir+json")).status).toBe(201);
    expect(await nativeSha("late")).toBe(sha256(small));
  });

  test("Range pieces reassembled", async () => {
    const pieces: Uint8Array[] = [];
    const step = 7 * 1024 * 1024 + 3;
    for (let start = 0; start < SIZE; start += step) {
      const res = await srv.request("/Binary/native", {
        headers: { range: `bytes=${start}-${start + step - 1}` },
      });
      expect(res.status).toBe(206);
      pieces.push(new Uint8Array(await res.arrayBuffer()));
    }
    expect(sha256(Buffer.concat(pieces))).toBe(EXPECTED);
  });
});

describe("Range on native reads", () => {
  const range = async (headers: Record<string, string>, method = "GET") => {
    const res = await srv.request("/Binary/native", { method, headers });
    const body = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      contentRange: res.headers.get("content-range"),
      length: res.headers.get("content-length"),
      body: method === "HEAD" ? body.length : sha256(body),
    };
  };
  const part = (start: number, end: number): string => sha256(CONTENT.subarray(start, end + 1));

  test("206 with Content-Range for a closed range", async () => {
    expect(await range({ range: "bytes=1000-1999" })).toEqual({
      status: 206,
      contentRange: `bytes 1000-1999/${SIZE}`,
      length: "1000",
      body: part(1000, 1999),
    });
  });

  test("suffix range: the last n bytes", async () => {
    expect(await range({ range: "bytes=-500" })).toEqual({
      status: 206,
      contentRange: `bytes ${SIZE - 500}-${SIZE - 1}/${SIZE}`,
      length: "500",
      body: part(SIZE - 500, SIZE - 1),
    });
  });

  test("open range: from n to the end", async () => {
    const start = SIZE - 3 * 1024 * 1024;
    expect(await range({ range: `bytes=${start}-` })).toEqual({
      status: 206,
      contentRange: `bytes ${start}-${SIZE - 1}/${SIZE}`,
      length: String(SIZE - start),
      body: part(start, SIZE - 1),
    });
  });

  test("416 with Content-Range: bytes */size past the end", async () => {
    const res = await srv.request("/Binary/native", { headers: { range: `bytes=${SIZE}-` } });
    await res.arrayBuffer();
    expect([res.status, res.headers.get("content-range")]).toEqual([416, `bytes */${SIZE}`]);
  });

  test("If-Range with the ETag or the date: match gives 206, mismatch the whole document (200)", async () => {
    const head = await srv.request("/Binary/native", { method: "HEAD" });
    const etag = head.headers.get("etag") ?? "";
    const date = head.headers.get("last-modified") ?? "";
    const ranged = { range: "bytes=0-9" };
    expect((await range({ ...ranged, "if-range": etag })).status).toBe(206);
    expect((await range({ ...ranged, "if-range": date })).status).toBe(206);
    const whole = { status: 200, contentRange: null, length: String(SIZE), body: EXPECTED };
    expect(await range({ ...ranged, "if-range": 'W/"999"' })).toEqual(whole);
    expect(await range({ ...ranged, "if-range": "Mon, 01 Jan 2001 00:00:00 GMT" })).toEqual(whole);
  });

  test("HEAD with a Range: the 206 headers, no body", async () => {
    expect(await range({ range: "bytes=10-19" }, "HEAD")).toEqual({
      status: 206,
      contentRange: `bytes 10-19/${SIZE}`,
      length: "10",
      body: 0,
    });
  });
});

describe("FHIR-wrapped uploads refused after the payload leave nothing stored", () => {
  const json = (tail: string): ReadableStream<Uint8Array> =>
    streamed(['{"resourceType":"Binary","id":"bad","data":"', BASE64, tail]);
  test.each([
    ["a bad contentType", json('","contentType":"pdf"}'), "application/fhir+json"],
    [
      "an id that is not the URL id",
      json('","id":"other","contentType":"text/plain"}'),
      "application/fhir+json",
    ],
    ["malformed JSON after the payload", json('","contentType":"text/plain"'), "application/fhir+json"],
    ["a bad base64 tail", json('A","contentType":"text/plain"}'), "application/fhir+json"],
    [
      "malformed XML after the payload",
      streamed([
        '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><data value="',
        BASE64,
        '"/>',
      ]),
      "application/fhir+xml",
    ],
  ])("%s: 400", async (_name, body, contentType) => {
    const before = filesUnder(join(srv.dataDir, "blobs")).length;
    expect((await put("bad", body, contentType)).status).toBe(400);
    expect((await srv.request("/Binary/bad")).status).toBe(404);
    expect(filesUnder(join(srv.dataDir, "blobs")).length).toBe(before);
    expect(filesUnder(join(srv.dataDir, "tmp"))).toEqual([]);
  });
});

describe("a patient-scoped token streaming a FHIR JSON Binary", () => {
  // The securityContext of a streamed Binary is only known after its payload: it is checked then.
  test("a securityContext of another patient after the payload is 403 and nothing is stored", async () => {
    using dir = tempDir();
    const file = join(dir.path, "tokens");
    writeFileSync(file, "patient-token-0123456789abcdef patient/Binary.cruds patient=p1\n");
    await using scoped = await startServer({ args: ["--token-file", file] });
    const upload = async (id: string, patient: string): Promise<number> => {
      const res = await scoped.request(`/Binary/${id}`, {
        method: "PUT",
        headers: {
          authorization: "Bearer patient-token-0123456789abcdef",
          "content-type": "application/fhir+json",
        },
        body: streamed([
          `{"resourceType":"Binary","id":"${id}","data":"`,
          BASE64.slice(0, 4 * 1024 * 1024),
          `","contentType":"text/plain","securityContext":{"reference":"Patient/${patient}"}}`,
        ]),
      });
      await res.arrayBuffer();
      return res.status;
    };
    expect({ own: await upload("own", "p1"), other: await upload("other", "p2") }).toEqual({
      own: 201,
      other: 403,
    });
    const other = await scoped.request("/Binary/other", {
      auth: false,
      headers: { authorization: "Bearer patient-token-0123456789abcdef" },
    });
    await other.arrayBuffer();
    expect(other.status).toBe(404);
  });
});
