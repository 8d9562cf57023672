/**
 * Hostile input, with bounded counts so it runs in `npm test`: fuzzed ids, contentTypes and base64, JSON
 * bombs, XML attacks and oversized bodies. Each must be refused cleanly (4xx, an OperationOutcome, fast),
 * never a 500 and never a file outside the data directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { startServer, type TestServer } from "../harness.ts";

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ args: ["--max-size", "64KiB"] });
});
afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
});

/** Every file below a directory, relative to it. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1));
}

/** Sends raw bytes over TCP (for header values fetch refuses to send) and returns the status code. */
function rawStatus(head: string, body = ""): Promise<number> {
  const url = new URL(srv.origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(Buffer.concat([Buffer.from(head, "latin1"), Buffer.from(body)]));
    });
    let data = "";
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      const match = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (match) {
        resolve(Number(match[1]));
        socket.destroy();
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
  });
}

const fhirJson = (resource: string): RequestInit => ({
  method: "POST",
  body: resource,
  headers: { "content-type": "application/fhir+json" },
});
const fhirXml = (resource: string): RequestInit => ({
  method: "POST",
  body: resource,
  headers: { "content-type": "application/fhir+xml" },
});

async function statusOf(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string; ms: number }> {
  const start = performance.now();
  const res = await srv.request(path, init);
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - start };
}

describe("ids fuzzed after URL decoding", () => {
  const HOSTILE = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fauth-token",
    "a%2Fb",
    "%2F",
    "%5C",
    "..%5C..%5Cauth-token",
    "%00",
    "a%00b",
    "a%0Ab",
    "%C3%A9",
    "%F0%9F%98%80",
    "%E2%80%AE",
    "a".repeat(65),
    "%252e%252e",
    "a_b",
    "a%20b",
    "~",
  ];

  test.each(HOSTILE)("%s: 400 or 404 for every method, nothing written", async (id) => {
    const before = filesBelow(srv.dataDir);
    for (const method of ["GET", "HEAD", "PUT", "DELETE"]) {
      const init: RequestInit =
        method === "PUT" ? { method, body: "x", headers: { "content-type": "text/plain" } } : { method };
      for (const path of [`/Binary/${id}`, `/Binary/${id}/_history`, `/Binary/ok/_history/${id}`]) {
        const { status, text } = await statusOf(path, init);
        // 405: a decoded "/" can land on another route (e.g. PUT /Binary/_history); never a success.
        expect({ path, method, ok: [400, 404, 405].includes(status) }).toEqual({ path, method, ok: true });
        if (method !== "HEAD") expect(text).toContain("OperationOutcome");
      }
    }
    expect(filesBelow(srv.dataDir)).toEqual(before);
  });

  // fetch resolves dot segments before sending, so these go over a raw socket for the server to see them.
  test.each(["..", "%2e%2e", "%2E%2e", ".%2e", "..%2F..", "%2e%2e%2fauth-token"])(
    "the raw path segment %s: 400, 404 or 405 for every method, nothing written",
    async (id) => {
      const before = filesBelow(srv.dataDir);
      const statuses: number[] = [];
      for (const method of ["GET", "PUT", "DELETE"]) {
        for (const path of [
          `/fhir/Binary/${id}`,
          `/fhir/Binary/${id}/_history`,
          `/fhir/Binary/ok/_history/${id}`,
        ]) {
          statuses.push(
            await rawStatus(
              `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\n` +
                "Content-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
              "x",
            ),
          );
        }
      }
      expect(statuses.filter((status) => ![400, 404, 405].includes(status))).toEqual([]);
      expect(filesBelow(srv.dataDir)).toEqual(before);
    },
  );

  test("legal but tricky ids (CON, a., case pairs) stay distinct resources inside the data directory", async () => {
    const ids = ["CON", "con", "NUL", "a.", "a..b", "Abc", "abc", "-", ".a"];
    for (const id of ids) {
      const put = await statusOf(`/Binary/${id}`, {
        method: "PUT",
        body: `content of ${id}`,
        headers: { "content-type": "text/plain" },
      });
      expect({ id, status: put.status }).toEqual({ id, status: 201 });
    }
    for (const id of ids) {
      expect(await statusOf(`/Binary/${id}`).then((r) => r.text)).toBe(`content of ${id}`);
    }
  });
});

describe("contentType fuzz", () => {
  const BAD = [
    "text/plain\r\nX-Evil: 1",
    "text/plain\n",
    "text/plain\u0000",
    "text/pl\u00e4in",
    "text",
    "text/",
    "/plain",
    "",
    " ",
    "a/b c",
    'text/plain; charset="x',
  ];

  test.each(BAD.map((type) => [JSON.stringify(type), type]))(
    "FHIR JSON contentType %s: 400",
    async (_name, type) => {
      const { status, text } = await statusOf(
        "/Binary",
        fhirJson(JSON.stringify({ resourceType: "Binary", contentType: type, content: "eA==" })),
      );
      expect(status).toBe(400);
      expect(text).toContain("OperationOutcome");
    },
  );

  test.each([
    ["NUL", "text/pl\u0000ain"],
    ["non-ASCII", "text/pl\u00e4in"],
    ["no subtype", "text"],
    ["a bare CR", "text/plain\rX-Evil: 1"],
  ])("a native Content-Type with %s is refused, never stored", async (_name, type) => {
    const before = filesBelow(srv.dataDir);
    const status = await rawStatus(
      `POST /fhir/Binary HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${srv.token}\r\nContent-Type: ${type}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n`,
      "x",
    );
    expect([400, 415]).toContain(status);
    expect(filesBelow(srv.dataDir)).toEqual(before);
  });
});

describe("base64 fuzz", () => {
  const BAD = [
    "a",
    "abc",
    "ab=c",
    "a===",
    "====",
    "@@@@",
    "YQ==YQ==",
    "YQ=\u00e9",
    "YQ\u0000=",
    "Y Q = =x",
    "-_-_",
  ];
  test.each(BAD.map((content) => [JSON.stringify(content), content]))(
    "content %s: 400",
    async (_name, content) => {
      const json = await statusOf(
        "/Binary",
        fhirJson(JSON.stringify({ resourceType: "Binary", contentType: "text/plain", content })),
      );
      expect(json.status).toBe(400);
    },
  );
});

describe("JSON bombs", () => {
  // Bodies that are well-formed JSON but not a Binary are stored as is (fhir-binary-rules.md section 4):
  // what matters is a quick answer with bounded work, and no prototype pollution.
  test.each([
    [
      "deep nesting in an unknown element",
      `{"resourceType":"Binary","x":${"[".repeat(30_000)}${"]".repeat(30_000)}}`,
      [400],
    ],
    ["deep nesting as the body", `${"[".repeat(30_000)}${"]".repeat(30_000)}`, [201]],
    ["deep objects", `${'{"a":'.repeat(10_000)}1${"}".repeat(10_000)}`, [201]],
    [
      "many keys",
      `{"resourceType":"Binary",${Array.from({ length: 8_000 }, (_, i) => `"k${i}":1`).join(",")}}`,
      [400],
    ],
    [
      "__proto__",
      '{"resourceType":"Binary","__proto__":{"contentType":"text/html"},"content":"eA=="}',
      [400],
    ],
    [
      "constructor.prototype",
      '{"resourceType":"Binary","contentType":"text/plain","content":"eA==","constructor":{"prototype":{"polluted":1}}}',
      [201, 400],
    ],
    ["malformed deep nesting", `{"resourceType":"Binary","x":${"[".repeat(30_000)}}`, [400]],
  ] as [string, string, number[]][])("%s: answered quickly, no pollution", async (_name, body, expected) => {
    const { status, ms } = await statusOf("/Binary", fhirJson(body));
    expect(expected).toContain(status);
    expect(ms).toBeLessThan(2_000);
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
    expect(({} as { contentType?: string }).contentType).toBeUndefined();
  });

  // Found by this suite, not fixed here (src/fhir/binary*.ts is another change in flight): JSON.parse keeps
  // the last of duplicate keys, so a proxy that validates the first contentType can be bypassed.
  test("duplicate keys in a Binary (contentType twice): 400", async () => {
    const body =
      '{"resourceType":"Binary","contentType":"text/plain","contentType":"text/html","content":"SGk="}';
    const { status } = await statusOf("/Binary", fhirJson(body));
    expect(status).toBe(400);
  });

  test("a JSON body over the limit is a 413 whatever its shape", async () => {
    const body = `{"resourceType":"Binary","contentType":"text/plain","content":"${"A".repeat(200 * 1024)}"}`;
    const { status } = await statusOf("/Binary", fhirJson(body));
    expect(status).toBe(413);
  });
});

describe("XML attacks", () => {
  const LOL = `<!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? "" : i};`.repeat(10)}">`).join("")}]>`;
  test.each([
    ["billion laughs", `${LOL}<Binary xmlns="http://hl7.org/fhir"><contentType value="&lol9;"/></Binary>`],
    [
      "external entity",
      '<!DOCTYPE Binary [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Binary xmlns="http://hl7.org/fhir"><contentType value="&xxe;"/></Binary>',
    ],
    [
      "parameter entity",
      '<!DOCTYPE Binary [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x"> %p;]><Binary xmlns="http://hl7.org/fhir"/>',
    ],
    [
      "DOCTYPE after a comment",
      '<?xml version="1.0"?><!-- x --><!DOCTYPE Binary><Binary xmlns="http://hl7.org/fhir"/>',
    ],
    ["lower-case doctype", '<!doctype Binary><Binary xmlns="http://hl7.org/fhir"/>'],
    [
      "an undeclared entity",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="&xxe;"/><content value="eA=="/></Binary>',
    ],
    [
      "a numeric-entity flood",
      `<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="${"&#x26;".repeat(8_000)}"/></Binary>`,
    ],
    ["a processing-instruction flood", `${"<?pi x?>".repeat(5_000)}<Binary xmlns="http://hl7.org/fhir"/>`],
    [
      "deep nesting",
      `<Binary xmlns="http://hl7.org/fhir">${"<x>".repeat(5_000)}${"</x>".repeat(5_000)}</Binary>`,
    ],
  ])("%s: 400, fast", async (_name, body) => {
    const { status, text, ms } = await statusOf("/Binary", fhirXml(body));
    expect(status).toBe(400);
    expect(ms).toBeLessThan(2_000);
    expect(text).not.toContain("root:");
  });
});

describe("request bodies over the limit", () => {
  const BIG = new Uint8Array(100 * 1024).fill(120);

  test("a Content-Length over the limit: 413", async () => {
    const { status, text } = await statusOf("/Binary", {
      method: "POST",
      body: BIG,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(status).toBe(413);
    expect(text).toContain("OperationOutcome");
  });

  test("a chunked body over the limit: 413, nothing stored", async () => {
    const before = filesBelow(srv.dataDir);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(BIG.subarray(0, 10 * 1024));
        controller.close();
      },
    });
    const { status } = await statusOf("/Binary/chunked", {
      method: "PUT",
      body,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(status).toBe(413);
    expect(
      filesBelow(srv.dataDir).filter((file) => !before.includes(file) && file.includes("chunked")),
    ).toEqual([]);
  });
});

describe("--deny-types", () => {
  test("denied media types are refused with 415, raw or FHIR-wrapped, any case or parameters", async () => {
    await using denying = await startServer({
      args: ["--deny-types", "application/x-msdownload", "--deny-types", "Application/X-Sh"],
    });
    const statuses: number[] = [];
    for (const type of [
      "application/x-msdownload",
      "APPLICATION/X-MSDOWNLOAD; name=a.exe",
      "application/x-sh",
    ]) {
      const raw = await denying.request("/Binary", {
        method: "POST",
        body: "MZ",
        headers: { "content-type": type },
      });
      await raw.arrayBuffer();
      const wrapped = await denying.request("/Binary/wrapped", {
        method: "PUT",
        body: JSON.stringify({ resourceType: "Binary", id: "wrapped", contentType: type, content: "TVo=" }),
        headers: { "content-type": "application/fhir+json" },
      });
      await wrapped.arrayBuffer();
      statuses.push(raw.status, wrapped.status);
    }
    const allowed = await denying.request("/Binary", {
      method: "POST",
      body: "x",
      headers: { "content-type": "text/plain" },
    });
    await allowed.arrayBuffer();
    expect({ statuses, allowed: allowed.status }).toEqual({
      statuses: [415, 415, 415, 415, 415, 415],
      allowed: 201,
    });
    const wrapped = await denying.request("/Binary/wrapped");
    await wrapped.arrayBuffer();
    expect(wrapped.status).toBe(404);
  });
});
