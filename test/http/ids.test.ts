/**
 * Resource ids over real HTTP (fhir-binary-rules.md section 4): `[A-Za-z0-9\-\.]{1,64}`, case-sensitive,
 * validated after URL decoding, only-dots rejected; an id never reaches the file system outside the store.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { startServer, type TestServer } from "../harness.ts";

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

async function put(srv: TestServer, path: string, body: string): Promise<Response> {
  const res = await srv.request(path, {
    method: "PUT",
    body: utf8(body),
    headers: { "content-type": "text/plain" },
  });
  await res.arrayBuffer();
  return res;
}

async function get(
  srv: TestServer,
  path: string,
): Promise<{ status: number; body: string; location: string | null }> {
  const res = await srv.request(path);
  return { status: res.status, location: res.headers.get("content-location"), body: await res.text() };
}

interface RawResponse {
  status: number;
  body: string;
}

/** One HTTP/1.1 request over a plain socket: the path goes out exactly as given (fetch would normalise it). */
function rawRequest(srv: TestServer, method: string, path: string, body = ""): Promise<RawResponse> {
  const url = new URL(srv.origin);
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(Number(url.port), url.hostname, () => {
      const head = [
        `${method} ${path} HTTP/1.1`,
        `Host: ${url.host}`,
        `Authorization: Bearer ${srv.token}`,
        "Content-Type: text/plain",
        `Content-Length: ${Buffer.byteLength(body)}`,
        "Connection: close",
      ];
      socket.write(`${head.join("\r\n")}\r\n\r\n${body}`);
    });
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      const status = Number(text.split(" ")[1]);
      resolvePromise({ status, body: text.slice(text.indexOf("\r\n\r\n") + 4) });
    });
  });
}

/** Every regular file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

/** Files directly in the directories above the data dir (where a traversal would land) holding `marker`. */
function markerOutsideDataDir(dataDir: string, marker: string): string[] {
  const found: string[] = [];
  let dir = dataDir;
  for (let depth = 0; depth < 3 && dir !== dirname(dir); depth++) {
    dir = dirname(dir);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.includes(marker)) found.push(path);
      try {
        const stat = statSync(path);
        if (stat.isFile() && stat.size < 1_000_000 && readFileSync(path).includes(marker)) found.push(path);
      } catch {
        // vanished or unreadable: not ours
      }
    }
  }
  return found;
}

describe("valid ids", () => {
  const VALID = [
    "a",
    "Z",
    "0",
    "-",
    "abc-DEF.123",
    "a.b",
    ".a",
    "a.",
    "a..",
    "..a",
    "-.-",
    "0123456789",
    "x".repeat(64),
    "CON",
    "nul",
    "COM1",
    "LPT1.txt",
    "aux",
  ];

  test.each(VALID)("id %j: PUT 201, GET returns the bytes, Content-Location names it", async (id) => {
    await using srv = await startServer();
    const res = await put(srv, `/Binary/${id}`, `content of ${id}`);
    expect(res.status).toBe(201);
    expect(res.headers.get("location")).toBe(`${srv.base}/Binary/${id}/_history/1`);
    expect(await get(srv, `/Binary/${id}`)).toEqual({
      status: 200,
      location: `${srv.base}/Binary/${id}/_history/1`,
      body: `content of ${id}`,
    });
  });

  test("ids are case-sensitive and never collide: each is its own document", async () => {
    await using srv = await startServer();
    const ids = ["Abc", "abc", "ABC", "aBc", "a", "A", "a.", "A.", "a..", "con", "CON", "Con"];
    const statuses: number[] = [];
    for (const id of ids) statuses.push((await put(srv, `/Binary/${id}`, `doc ${id}`)).status);
    expect(statuses).toEqual(ids.map(() => 201));
    const bodies: string[] = [];
    for (const id of ids) bodies.push((await get(srv, `/Binary/${id}`)).body);
    expect(bodies).toEqual(ids.map((id) => `doc ${id}`));
  });

  test("an id differing only in case does not exist: 404", async () => {
    await using srv = await startServer();
    await put(srv, "/Binary/lower", "x");
    expect((await get(srv, "/Binary/LOWER")).status).toBe(404);
    expect((await get(srv, "/Binary/Lower")).status).toBe(404);
  });

  test.each([
    ["a.b", "a%2Eb"],
    ["Abc", "%41bc"],
    ["a-b", "a%2db"],
  ])("id %s is validated after URL decoding: %s names the same document", async (id, encoded) => {
    await using srv = await startServer();
    await put(srv, `/Binary/${id}`, "same");
    expect((await get(srv, `/Binary/${encoded}`)).body).toBe("same");
  });
});

describe("invalid ids", () => {
  // [path segment as sent, statuses allowed]: 404 only where the URL cannot route to /Binary/[id] at all.
  const INVALID: [string, number[]][] = [
    ["x".repeat(65), [400]],
    ["...", [400]],
    ["....", [400]],
    ["a_b", [400]],
    ["a%20b", [400]],
    ["%20", [400]],
    ["a+b", [400]],
    ["a*b", [400]],
    ["a~b", [400]],
    ["a:b", [400]],
    ["a%25b", [400]],
    ["a%5Cb", [400]],
    ["..%5C..%5Cpasswd", [400]],
    ["a%00b", [400]],
    ["%00", [400]],
    ["a%0Ab", [400]],
    ["caf%C3%A9", [400]],
    ["%E2%80%8B", [400]],
    ["%EF%BC%A1", [400]],
    ["%FF", [400, 404]],
    ["a%2Fb", [400, 404]],
    ["%2F", [400, 404]],
    ["..%2F..%2Fetc%2Fpasswd", [400, 404]],
    ["..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd", [400, 404]],
    [`${"x".repeat(60)}%2E%2E%2E%2E%2E`, [400]],
  ];

  test.each(INVALID)(
    "id %s: GET, HEAD, PUT, DELETE, vread and history all refuse it",
    async (segment, allowed) => {
      await using srv = await startServer();
      const marker = `fhirbin-marker-${crypto.randomUUID()}`;
      const results: Record<string, number> = {};
      for (const [method, suffix] of [
        ["GET", ""],
        ["HEAD", ""],
        ["PUT", ""],
        ["DELETE", ""],
        ["GET", "/_history/1"],
        ["GET", "/_history"],
      ] as const) {
        const res = await srv.request(`/Binary/${segment}${suffix}`, {
          method,
          ...(method === "PUT" ? { body: utf8(marker), headers: { "content-type": "text/plain" } } : {}),
        });
        const body = await res.text();
        expect(body).not.toContain("root:");
        results[`${method} ${suffix}`] = res.status;
      }
      for (const [request, status] of Object.entries(results))
        expect({ request, status, ok: allowed.includes(status) }).toEqual({ request, status, ok: true });
      // Nothing was stored anywhere: not in the store, not beside it.
      expect(filesUnder(srv.dataDir).filter((path) => readFileSync(path).includes(marker))).toEqual([]);
      expect(markerOutsideDataDir(srv.dataDir, marker)).toEqual([]);
    },
  );

  test.each([["a_b"], ["..."], ["%2E%2E%2E"]])(
    "PUT of a FHIR Binary whose id %s is invalid in both URL and body: 400",
    async (segment) => {
      await using srv = await startServer();
      const res = await srv.request(`/Binary/${segment}`, {
        method: "PUT",
        body: utf8(
          JSON.stringify({
            resourceType: "Binary",
            id: decodeURIComponent(segment),
            contentType: "text/plain",
            content: "SGk=",
          }),
        ),
        headers: { "content-type": "application/fhir+json" },
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("OperationOutcome");
    },
  );

  // Dot segments: fetch would resolve them away, so they go out over a raw socket exactly as written.
  const DOT_SEGMENTS = [
    ".",
    "..",
    "%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
  ];

  test.each(DOT_SEGMENTS)(
    "dot-segment id %s: 400 or 404, nothing read or written outside the store",
    async (segment) => {
      await using srv = await startServer();
      await put(srv, "/Binary/keep", "kept");
      const marker = `fhirbin-marker-${crypto.randomUUID()}`;
      const statuses: number[] = [];
      for (const method of ["GET", "DELETE"]) {
        const res = await rawRequest(srv, method, `/fhir/Binary/${segment}`);
        expect(res.body).not.toContain("root:");
        statuses.push(res.status);
      }
      const write = await rawRequest(srv, "PUT", `/fhir/Binary/${segment}`, marker);
      statuses.push(write.status);
      const vread = await rawRequest(srv, "GET", `/fhir/Binary/${segment}/_history/1`);
      statuses.push(vread.status);
      for (const status of statuses) expect([400, 404]).toContain(status);
      expect(filesUnder(srv.dataDir).filter((path) => readFileSync(path).includes(marker))).toEqual([]);
      expect(markerOutsideDataDir(srv.dataDir, marker)).toEqual([]);
      // The store is intact.
      expect((await get(srv, "/Binary/keep")).body).toBe("kept");
    },
  );

  test("a traversal id never reads a file beside the store", async () => {
    await using srv = await startServer();
    // A file where a naive `join(dataDir, id)` or `join(dataDir, "binary", id)` would look.
    const target = resolve(srv.dataDir, "..", "fhirbin-outside.txt");
    await Bun.write(target, "SECRET-OUTSIDE");
    try {
      for (const segment of [
        "..%2Ffhirbin-outside.txt",
        "..%2F..%2Ffhirbin-outside.txt",
        "..%2F..%2F..%2Ffhirbin-outside.txt",
      ]) {
        const res = await srv.request(`/Binary/${segment}`);
        expect([400, 404]).toContain(res.status);
        expect(await res.text()).not.toContain("SECRET-OUTSIDE");
      }
    } finally {
      await Bun.file(target).delete();
    }
  });
});
