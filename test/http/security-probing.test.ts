/**
 * What a caller may learn about documents it may not read, over real HTTP: preconditions on writes, deleted
 * ids of other patients, paging cursors, and the Host header copied into URLs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { SignJWT } from "jose";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { layout } from "../../src/store/fs-layout.ts";
import { createStore } from "../../src/store/index.ts";
import { startServer, TEST_TOKEN, type TestServer, tempDir } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const secret = new TextEncoder().encode(SECRET);
const ARGS = ["--jwt-secret", SECRET];

/** A JWT with these scopes, for patient `p1` unless told otherwise. */
const tokenFor = (scope: string, patient = "p1"): Promise<string> =>
  new SignJWT({ sub: "prober", scope, patient })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("10m")
    .sign(secret);

interface Answer {
  status: number;
  text: string;
}

async function answer(res: Response): Promise<Answer> {
  return { status: res.status, text: await res.text() };
}

/** PUTs a text document with the full-access token; resolves once it is stored. */
async function seed(srv: TestServer, id: string, securityContext: string | null): Promise<void> {
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body: `content of ${id}`,
    headers: {
      "content-type": "text/plain",
      ...(securityContext ? { "x-security-context": securityContext } : {}),
    },
  });
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`seed ${id}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

/** Every way of writing a document with an id, as the given token, with these precondition headers. */
function writes(
  id: string,
  token: string,
  securityContext: string,
  preconditions: Record<string, string>,
): [string, string, RequestInit][] {
  // Answers in FHIR JSON whatever the body's syntax, so that every outcome reads the same way.
  const authorization = `Bearer ${token}`;
  const extra = { accept: "application/fhir+json", ...preconditions };
  const json = JSON.stringify({
    resourceType: "Binary",
    id,
    contentType: "text/plain",
    securityContext: { reference: securityContext },
    content: "aGVsbG8=",
  });
  const xml =
    `<Binary xmlns="http://hl7.org/fhir"><id value="${id}"/><contentType value="text/plain"/>` +
    `<securityContext><reference value="${securityContext}"/></securityContext><content value="aGVsbG8="/></Binary>`;
  return [
    [
      "raw PUT",
      `/Binary/${id}`,
      {
        method: "PUT",
        body: "hello",
        headers: {
          authorization,
          "content-type": "text/plain",
          "x-security-context": securityContext,
          ...extra,
        },
      },
    ],
    [
      "FHIR JSON PUT",
      `/Binary/${id}`,
      {
        method: "PUT",
        body: json,
        headers: { authorization, "content-type": "application/fhir+json", ...extra },
      },
    ],
    [
      "FHIR XML PUT",
      `/Binary/${id}`,
      {
        method: "PUT",
        body: xml,
        headers: { authorization, "content-type": "application/fhir+xml", ...extra },
      },
    ],
  ];
}

/** Runs every write of `writes` and gives each one's status and diagnostics. */
async function tryWrites(srv: TestServer, attempts: [string, string, RequestInit][]): Promise<string[]> {
  const got: string[] = [];
  for (const [name, path, init] of attempts) {
    const { status, text } = await answer(await srv.request(path, init));
    got.push(
      `${name}: ${status} ${(JSON.parse(text) as { issue?: { diagnostics?: string }[] }).issue?.[0]?.diagnostics ?? ""}`,
    );
  }
  return got;
}

/** The first issue's diagnostics of an OperationOutcome. */
function diagnostics(text: string): string {
  return (JSON.parse(text) as { issue: { diagnostics: string }[] }).issue[0]?.diagnostics ?? "";
}

const OTHERS_WRITE = "A patient-scoped token may only write Binaries whose securityContext is Patient/p1";

describe("preconditions never answer before the caller may write", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ args: ARGS });
  });
  afterAll(async () => {
    await srv?.[Symbol.asyncDispose]();
  });

  test("a patient token's If-Match or If-None-Match on another patient's document is a 403 that names no version", async () => {
    await seed(srv, "theirs", "Patient/p2");
    const token = await tokenFor("patient/Binary.cruds");
    const got = [
      ...(await tryWrites(srv, writes("theirs", token, "Patient/p1", { "if-match": 'W/"99"' }))),
      ...(await tryWrites(srv, writes("theirs", token, "Patient/p1", { "if-none-match": "*" }))),
    ];
    expect(got).toEqual([
      `raw PUT: 403 ${OTHERS_WRITE}`,
      `FHIR JSON PUT: 403 ${OTHERS_WRITE}`,
      `FHIR XML PUT: 403 ${OTHERS_WRITE}`,
      `raw PUT: 403 ${OTHERS_WRITE}`,
      `FHIR JSON PUT: 403 ${OTHERS_WRITE}`,
      `FHIR XML PUT: 403 ${OTHERS_WRITE}`,
    ]);
  });

  test("a patient token's DELETE with If-Match on another patient's document is the 404 a read gets", async () => {
    await seed(srv, "theirs-too", "Patient/p2");
    const token = await tokenFor("patient/Binary.cruds");
    const read = await answer(
      await srv.request("/Binary/theirs-too", { headers: { authorization: `Bearer ${token}` } }),
    );
    const removal = await answer(
      await srv.request("/Binary/theirs-too", {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}`, "if-match": 'W/"99"' },
      }),
    );
    expect({ status: removal.status, diagnostics: diagnostics(removal.text) }).toEqual({
      status: read.status,
      diagnostics: diagnostics(read.text),
    });
    expect(read.status).toBe(404);
  });

  test("a 412 names the current version only to a caller that may read it", async () => {
    await seed(srv, "versioned", "Patient/p1");
    const ifMatch = { "if-match": 'W/"99"' };
    const statusOf = async (token: string): Promise<string[]> =>
      (await tryWrites(srv, writes("versioned", token, "Patient/p1", ifMatch))).map((line) =>
        line.split(": ").slice(1).join(": "),
      );
    const mismatch = "412 If-Match 99 does not match the current version";
    expect({
      writeOnly: await statusOf(await tokenFor("system/Binary.cu")),
      patientWriteOnly: await statusOf(await tokenFor("patient/Binary.cu")),
      reader: await statusOf(await tokenFor("user/Binary.cru")),
      patientReader: await statusOf(await tokenFor("patient/Binary.cru")),
    }).toEqual({
      writeOnly: [mismatch, mismatch, mismatch],
      patientWriteOnly: [mismatch, mismatch, mismatch],
      reader: Array(3).fill(`${mismatch} (version 1)`),
      patientReader: Array(3).fill(`${mismatch} (version 1)`),
    });
    const removal = await answer(
      await srv.request("/Binary/versioned", {
        method: "DELETE",
        headers: { authorization: `Bearer ${await tokenFor("system/Binary.d")}`, ...ifMatch },
      }),
    );
    expect({ status: removal.status, diagnostics: diagnostics(removal.text) }).toEqual({
      status: 412,
      diagnostics: "If-Match 99 does not match the current version",
    });
  });
});

describe("a deleted id keeps its patient", () => {
  for (const driver of ["fs", "memory"] as const) {
    test(`a patient token cannot take over another patient's deleted id (${driver} store)`, async () => {
      await using srv = await startServer({ args: ARGS, driver });
      await seed(srv, "gone", "Patient/p2");
      (await srv.request("/Binary/gone", { method: "DELETE" })).body?.cancel();
      const token = await tokenFor("patient/Binary.cruds");
      expect(await tryWrites(srv, writes("gone", token, "Patient/p1", {}))).toEqual([
        `raw PUT: 403 ${OTHERS_WRITE}`,
        `FHIR JSON PUT: 403 ${OTHERS_WRITE}`,
        `FHIR XML PUT: 403 ${OTHERS_WRITE}`,
      ]);
      const read = await srv.request("/Binary/gone");
      await read.arrayBuffer();
      expect(read.status).toBe(410);
    });
  }

  test("a patient token may still bring back its own deleted id", async () => {
    await using srv = await startServer({ args: ARGS });
    await seed(srv, "mine", "Patient/p1");
    (await srv.request("/Binary/mine", { method: "DELETE" })).body?.cancel();
    const token = await tokenFor("patient/Binary.cruds");
    const [raw] = writes("mine", token, "Patient/p1", {});
    const res = await srv.request(raw?.[1] ?? "", raw?.[2]);
    await res.arrayBuffer();
    expect(res.status).toBe(201);
  });

  test("the tombstone sidecar records the securityContext of the version it deleted", async () => {
    await using srv = await startServer({ args: ARGS });
    await seed(srv, "kept", "Patient/p2");
    (await srv.request("/Binary/kept", { method: "DELETE" })).body?.cancel();
    const tombstone = JSON.parse(readFileSync(layout(srv.dataDir).sidecar("kept", 2), "utf8"));
    expect(tombstone).toMatchObject({
      id: "kept",
      versionId: 2,
      deleted: true,
      securityContext: "Patient/p2",
    });
  });

  test("a tombstone written without a securityContext takes the one of the version it deleted", async () => {
    using dir = tempDir();
    const token = await tokenFor("patient/Binary.cruds");
    const ids = { theirs: "Patient/p2", mine: "Patient/p1" };
    {
      await using srv = await startAt(dir.path);
      for (const [id, context] of Object.entries(ids)) {
        await seed(srv, id, context);
        (await srv.request(`/Binary/${id}`, { method: "DELETE" })).body?.cancel();
      }
    }
    // As the tombstones of an earlier fhirbin were written.
    for (const id of Object.keys(ids)) {
      const path = layout(dir.path).sidecar(id, 2);
      const { securityContext: _dropped, ...legacy } = JSON.parse(readFileSync(path, "utf8"));
      writeFileSync(path, JSON.stringify(legacy));
    }
    await using srv = await startAt(dir.path);
    const [theirs] = await tryWrites(srv, writes("theirs", token, "Patient/p1", {}));
    const [mine] = await tryWrites(srv, writes("mine", token, "Patient/p1", {}));
    expect([theirs, mine]).toEqual([`raw PUT: 403 ${OTHERS_WRITE}`, "raw PUT: 201 "]);
  });
});

/** Starts the real app on port 0 over an existing data directory (kept when the server stops). */
async function startAt(dataDir: string): Promise<TestServer> {
  const config = loadConfig(["--port", "0", "--data", dataDir, "--token", TEST_TOKEN, ...ARGS], {});
  const store = await createStore(config.dataDir);
  const app = createApp({ config, store, log: () => {} });
  const server = app.listen({ hostname: config.host, port: config.port });
  const origin = `http://127.0.0.1:${server.server?.port}`;
  return {
    base: origin + config.basePath,
    origin,
    token: TEST_TOKEN,
    dataDir,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TEST_TOKEN}`);
      return fetch(origin + config.basePath + path, { ...init, headers });
    },
    async [Symbol.asyncDispose]() {
      await app.stop();
      await store.close();
    },
  };
}

interface Bundle {
  total?: number;
  link: { relation: string; url: string }[];
  entry?: { resource: { id: string } }[];
}

/** A search as the given token (the full-access one by default). */
async function search(srv: TestServer, query: string, token = TEST_TOKEN): Promise<Answer> {
  return answer(await srv.request(`/Binary?${query}`, { headers: { authorization: `Bearer ${token}` } }));
}

/** The `_cursor` of a Bundle's next link. */
function nextCursor(text: string): string {
  const next = (JSON.parse(text) as Bundle).link.find((link) => link.relation === "next");
  return new URL(next?.url ?? "http://none/").searchParams.get("_cursor") ?? "";
}

describe("paging cursors", () => {
  test("a patient's cursor is opaque and the same length however many versions the store holds", async () => {
    await using srv = await startServer({ args: ARGS });
    const token = await tokenFor("patient/Binary.rs");
    for (const id of ["p-a", "p-b"]) await seed(srv, id, "Patient/p1");
    const small = nextCursor((await search(srv, "_count=1", token)).text);
    for (let i = 0; i < 20; i++) await seed(srv, `other-${i}`, "Patient/p2");
    const large = nextCursor((await search(srv, "_count=1", token)).text);
    expect(small).not.toBe("");
    expect(large.length).toBe(small.length);
    for (const cursor of [small, large]) {
      expect(() => JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))).toThrow();
    }
  });

  test("a cursor with any byte changed is refused with 400", async () => {
    await using srv = await startServer({ args: ARGS });
    for (const id of ["c-a", "c-b", "c-c"]) await seed(srv, id, null);
    const cursor = Buffer.from(nextCursor((await search(srv, "_count=1")).text), "base64url");
    expect((await search(srv, `_count=1&_cursor=${cursor.toString("base64url")}`)).status).toBe(200);
    const statuses = new Set<number>();
    for (let at = 0; at < cursor.length; at++) {
      const tampered = Buffer.from(cursor);
      tampered[at] = (tampered[at] ?? 0) ^ 1;
      statuses.add((await search(srv, `_count=1&_cursor=${tampered.toString("base64url")}`)).status);
    }
    expect([...statuses]).toEqual([400]);
  });

  test("a cursor made for a full-access search is refused to a patient token", async () => {
    await using srv = await startServer({ args: ARGS });
    for (const id of ["s-a", "s-b"]) await seed(srv, id, "Patient/p1");
    for (const id of ["s-c", "s-d", "s-e"]) await seed(srv, id, "Patient/p2");
    const cursor = nextCursor((await search(srv, "_count=1")).text);
    const token = await tokenFor("patient/Binary.rs");
    const reused = await search(srv, `_count=1&_cursor=${cursor}`, token);
    expect({ status: reused.status, diagnostics: diagnostics(reused.text) }).toEqual({
      status: 400,
      diagnostics: "_cursor is not a cursor this server made; start again from the first page",
    });
  });

  test("the cursor key is kept owner-only in the data directory, so cursors survive a restart", async () => {
    using dir = tempDir();
    let cursor: string;
    {
      await using srv = await startAt(dir.path);
      for (const id of ["r-a", "r-b"]) await seed(srv, id, null);
      cursor = nextCursor((await search(srv, "_count=1")).text);
    }
    expect(statSync(join(dir.path, "cursor-key")).mode & 0o777).toBe(0o600);
    await using srv = await startAt(dir.path);
    const page = await search(srv, `_count=1&_cursor=${cursor}`);
    expect(page.status).toBe(200);
    expect((JSON.parse(page.text) as Bundle).total).toBe(2);
  });
});

/** One HTTP/1.1 request with exactly these header lines, over a plain socket (fetch would fix the Host). */
function rawRequest(
  origin: string,
  head: string,
  body = "",
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        `${head}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const split = text.indexOf("\r\n\r\n");
      const [statusLine = "", ...lines] = text.slice(0, split).split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body: text.slice(split + 4) });
    });
  });
}

describe("the Host header", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ args: ARGS });
    await seed(srv, "doc", null);
  });
  afterAll(async () => {
    await srv?.[Symbol.asyncDispose]();
  });

  const requests = (host: string): [string, string, string][] => {
    const lines = (line: string) => `${line}\r\nHost: ${host}\r\nAuthorization: Bearer ${TEST_TOKEN}`;
    return [
      ["metadata", lines("GET /fhir/metadata HTTP/1.1"), ""],
      ["read", lines("GET /fhir/Binary/doc HTTP/1.1"), ""],
      ["search", lines("GET /fhir/Binary?_count=1 HTTP/1.1"), ""],
      ["create", `${lines("POST /fhir/Binary HTTP/1.1")}\r\nContent-Type: text/plain`, "x"],
    ];
  };

  test.each([
    "user@evil.example",
    "evil.example/path",
    "evil.example?q",
    "evil.example#f",
    "evil example",
    '"evil.example"',
    "evil.example:99999",
    "evil.example:",
    "a,b",
    "evil%2eexample",
    "[not-ipv6]",
  ])("a Host of %p is refused with 400 and copied nowhere", async (host) => {
    const got: string[] = [];
    for (const [name, head, body] of requests(host)) {
      const res = await rawRequest(srv.origin, head, body);
      got.push(
        `${name}: ${res.status} ${res.body.includes("evil") || JSON.stringify(res.headers).includes("evil")}`,
      );
    }
    expect(got).toEqual(["metadata: 400 false", "read: 400 false", "search: 400 false", "create: 400 false"]);
  });

  test.each(["fhir.example", "fhir.example:8443", "10.1.2.3:80", "[::1]:8080", "[2001:db8::7]"])(
    "a plain Host of %p is the base of Location, Content-Location, paging links and the CapabilityStatement",
    async (host) => {
      const base = `http://${host}/fhir`;
      const [metadata, read, searched, created] = await Promise.all(
        requests(host).map(([, head, body]) => rawRequest(srv.origin, head, body)),
      );
      expect({
        metadata: (JSON.parse(metadata?.body ?? "{}") as { implementation?: { url?: string } }).implementation
          ?.url,
        read: read?.headers["content-location"],
        search: (JSON.parse(searched?.body ?? "{}") as Bundle).link.find((link) => link.relation === "self")
          ?.url,
        created: created?.headers.location?.startsWith(`${base}/Binary/`),
      }).toEqual({
        metadata: base,
        read: `${base}/Binary/doc/_history/1`,
        search: `${base}/Binary?_count=1`,
        created: true,
      });
    },
  );
});
