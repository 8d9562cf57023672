/**
 * Security over real HTTP (fhir-binary-rules.md section 5): bearer tokens on every request but metadata,
 * active-content headers on native reads, and errors that never leak internals.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { startServer, type TestServer } from "../harness.ts";

const WWW_AUTHENTICATE = 'Bearer realm="fhirbin", error="invalid_token"';
// RFC 6750 section 3.1: no error code for a request without (bearer) credentials.
const NO_CREDENTIALS = 'Bearer realm="fhirbin"';
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

async function put(srv: TestServer, id: string, body: string, contentType: string): Promise<void> {
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body: utf8(body),
    headers: { "content-type": contentType },
  });
  await res.arrayBuffer();
  if (res.status !== 201 && res.status !== 200) throw new Error(`PUT /Binary/${id}: ${res.status}`);
}

/** Asserts a 401 with the bearer challenge and an OperationOutcome (HEAD: no body). */
async function expectUnauthorized(res: Response, method: string, challenge = NO_CREDENTIALS): Promise<void> {
  expect({ status: res.status, challenge: res.headers.get("www-authenticate") }).toEqual({
    status: 401,
    challenge,
  });
  const text = await res.text();
  if (method === "HEAD") expect(text).toBe("");
  else
    expect(JSON.parse(text)).toMatchObject({
      resourceType: "OperationOutcome",
      issue: [{ severity: "error" }],
    });
}

describe("bearer token", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
    await put(srv, "exists", "original", "text/plain");
    await put(srv, "gone", "x", "text/plain");
    (await srv.request("/Binary/gone", { method: "DELETE" })).body?.cancel();
  });
  afterAll(async () => {
    await srv?.[Symbol.asyncDispose]();
  });

  const ROUTES: [string, string][] = [
    ["GET", "/Binary/exists"],
    ["HEAD", "/Binary/exists"],
    ["GET", "/Binary/exists?_format=json"],
    ["GET", "/Binary/exists/_history"],
    ["GET", "/Binary/exists/_history/1"],
    ["GET", "/Binary/never-existed"],
    ["GET", "/Binary/gone"],
    ["GET", "/Binary/gone/_history/2"],
    ["GET", "/Binary/a_b"],
    ["POST", "/Binary"],
    ["PUT", "/Binary/exists"],
    ["PUT", "/Binary/brand-new"],
    ["DELETE", "/Binary/exists"],
    ["DELETE", "/Binary/never-existed"],
    ["POST", "/Binary/exists"],
    ["PATCH", "/Binary/exists"],
  ];

  test.each(ROUTES)("%s %s without a token: 401", async (method, path) => {
    const hasBody = ["POST", "PUT", "PATCH"].includes(method);
    const res = await srv.request(path, {
      method,
      auth: false,
      ...(hasBody ? { body: utf8("changed"), headers: { "content-type": "text/plain" } } : {}),
    });
    await expectUnauthorized(res, method);
  });

  test("nothing was changed by the requests without a token", async () => {
    // Runs after the table above (bun runs tests in order): the same routes, now with the token.
    const exists = await srv.request("/Binary/exists");
    expect({ status: exists.status, etag: exists.headers.get("etag"), body: await exists.text() }).toEqual({
      status: 200,
      etag: 'W/"1"',
      body: "original",
    });
    const brandNew = await srv.request("/Binary/brand-new");
    expect(brandNew.status).toBe(404);
    await brandNew.arrayBuffer();
  });

  // A bearer token that was sent and refused is invalid_token; another scheme is no bearer credentials.
  const BAD_AUTHORIZATION: [string, string, string][] = [
    ["a wrong token", "Bearer wrong-token", WWW_AUTHENTICATE],
    ["an empty token", "Bearer ", WWW_AUTHENTICATE],
    ["the scheme alone", "Bearer", WWW_AUTHENTICATE],
    ["the token with a suffix", `Bearer test-token-0123456789abcdef0`, WWW_AUTHENTICATE],
    ["a prefix of the token", "Bearer test-token-0123456789abcde", WWW_AUTHENTICATE],
    ["the token without a scheme", "test-token-0123456789abcdef", NO_CREDENTIALS],
    ["another scheme", "Token test-token-0123456789abcdef", NO_CREDENTIALS],
    ["Basic with the token as password", `Basic ${btoa("user:test-token-0123456789abcdef")}`, NO_CREDENTIALS],
    ["two tokens", "Bearer wrong-token, Bearer test-token-0123456789abcdef", WWW_AUTHENTICATE],
  ];

  test.each(BAD_AUTHORIZATION)("Authorization with %s: 401", async (_name, authorization, challenge) => {
    const res = await srv.request("/Binary/exists", { headers: { authorization } });
    await expectUnauthorized(res, "GET", challenge);
  });

  test("the misspelled Authorisation header (as in the CC seed's curl) is not accepted", async () => {
    const res = await srv.request("/Binary/exists", {
      auth: false,
      headers: { authorisation: `Bearer ${srv.token}` },
    });
    await expectUnauthorized(res, "GET");
  });

  test("a token in the query string is not accepted", async () => {
    const res = await srv.request(`/Binary/exists?access_token=${srv.token}`, { auth: false });
    await expectUnauthorized(res, "GET");
  });

  test.each([["Bearer"], ["bearer"], ["BEARER"]])(
    "the auth scheme is case-insensitive (RFC 9110 11.1): %s <token> is accepted",
    async (scheme) => {
      const res = await srv.request("/Binary/exists", {
        headers: { authorization: `${scheme} ${srv.token}` },
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("original");
    },
  );

  test("GET /metadata without a token: 200", async () => {
    const res = await srv.request("/metadata", { auth: false });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { resourceType?: string }).resourceType).toBe("CapabilityStatement");
  });
});

describe("--auth off", () => {
  test("anonymous create, read, update, delete and history work", async () => {
    await using srv = await startServer({ args: ["--auth", "off"] });
    const anonymous = { auth: false } as const;
    const created = await srv.request("/Binary", {
      ...anonymous,
      method: "POST",
      body: utf8("anon"),
      headers: { "content-type": "text/plain" },
    });
    await created.arrayBuffer();
    expect(created.status).toBe(201);
    const location = created.headers.get("location") ?? "";
    const id = location.split("/Binary/")[1]?.split("/")[0] ?? "";
    const read = await srv.request(`/Binary/${id}`, anonymous);
    expect({ status: read.status, body: await read.text() }).toEqual({ status: 200, body: "anon" });
    const updated = await srv.request(`/Binary/${id}`, {
      ...anonymous,
      method: "PUT",
      body: utf8("anon 2"),
      headers: { "content-type": "text/plain" },
    });
    await updated.arrayBuffer();
    expect(updated.status).toBe(200);
    const history = await srv.request(`/Binary/${id}/_history`, anonymous);
    expect(history.status).toBe(200);
    await history.arrayBuffer();
    const deleted = await srv.request(`/Binary/${id}`, { ...anonymous, method: "DELETE" });
    expect(deleted.status).toBe(204);
    await deleted.arrayBuffer();
  });
});

describe("active content", () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(async () => {
    await srv?.[Symbol.asyncDispose]();
  });

  const ACTIVE = [
    "text/html",
    "text/html; charset=utf-8",
    "TEXT/HTML",
    "application/xhtml+xml",
    "image/svg+xml",
    "image/svg+xml; charset=utf-8",
    "application/xml",
    "text/xml",
    "application/fhir+xml",
    "application/javascript",
    "text/javascript",
    "application/ecmascript",
    "application/x-unknown-thing",
    "application/octet-stream",
    "x/y",
  ];
  const PASSIVE = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/plain; charset=utf-8",
    "audio/mpeg",
    "audio/ogg",
    "video/mp4",
    "video/webm",
  ];
  // Well-formed XML (a FHIR XML Content-Type requires it) that scripts as HTML, XHTML and SVG alike.
  const SCRIPT =
    '<html xmlns="http://www.w3.org/1999/xhtml"><body><script>alert(document.domain)</script>' +
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/></body></html>';

  test.each(ACTIVE)("%s is served as an attachment in a sandbox, nosniff (GET and HEAD)", async (type) => {
    const id = `active-${ACTIVE.indexOf(type)}`;
    await put(srv, id, SCRIPT, type);
    for (const method of ["GET", "HEAD"]) {
      const res = await srv.request(`/Binary/${id}`, { method });
      const body = await res.text();
      expect({
        method,
        status: res.status,
        type: res.headers.get("content-type"),
        nosniff: res.headers.get("x-content-type-options"),
        attachment: /^attachment\b/i.test(res.headers.get("content-disposition") ?? ""),
        csp: res.headers.get("content-security-policy"),
      }).toEqual({
        method,
        status: 200,
        type,
        nosniff: "nosniff",
        attachment: true,
        csp: "sandbox; default-src 'none'",
      });
      if (method === "GET") expect(body).toBe(SCRIPT);
    }
  });

  test.each(PASSIVE)("%s is not forced to be an attachment; nosniff", async (type) => {
    const id = `passive-${PASSIVE.indexOf(type)}`;
    await put(srv, id, "passive bytes", type);
    const res = await srv.request(`/Binary/${id}`);
    expect({
      status: res.status,
      type: res.headers.get("content-type"),
      nosniff: res.headers.get("x-content-type-options"),
      attachment: /^attachment\b/i.test(res.headers.get("content-disposition") ?? ""),
      body: await res.text(),
    }).toEqual({ status: 200, type, nosniff: "nosniff", attachment: false, body: "passive bytes" });
  });

  test.each([
    ["a vread", "/Binary/html-v/_history/1", {}],
    ["a range request", "/Binary/html-v", { range: "bytes=0-3" }],
  ])("%s of HTML is guarded too", async (_name, path, headers) => {
    await put(srv, "html-v", SCRIPT, "text/html");
    const res = await srv.request(path, { headers });
    await res.arrayBuffer();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-disposition") ?? "").toMatch(/^attachment\b/i);
    expect(res.headers.get("content-security-policy")).toBe("sandbox; default-src 'none'");
  });
});

describe("errors leak nothing", () => {
  const LEAKS = [
    /\bat .+:\d+:\d+/,
    /node_modules/,
    /\/src\//,
    /\.ts\b/,
    /\/tmp\//,
    /\/work\//,
    /ENOENT|EACCES|ENOTDIR|EISDIR/,
  ];

  const expectNoLeak = (text: string, dataDir: string): void => {
    expect(text).not.toContain(dataDir);
    for (const pattern of LEAKS) expect(text).not.toMatch(pattern);
  };

  const REQUESTS: [string, string, string, RequestInit & { auth?: boolean }, number[]][] = [
    ["404", "GET", "/Binary/never-existed", {}, [404]],
    ["400 invalid id", "GET", "/Binary/a_b", {}, [400]],
    ["400 traversal id", "GET", "/Binary/..%2F..%2Fetc%2Fpasswd", {}, [400, 404]],
    [
      "400 malformed FHIR JSON",
      "POST",
      "/Binary",
      { body: '{"resourceType":', headers: { "content-type": "application/fhir+json" } },
      [400],
    ],
    [
      "400 malformed FHIR XML",
      "POST",
      "/Binary",
      { body: "<Binary xmlns=", headers: { "content-type": "application/fhir+xml" } },
      [400],
    ],
    [
      "400 DOCTYPE",
      "POST",
      "/Binary",
      {
        body: '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        headers: { "content-type": "application/fhir+xml" },
      },
      [400],
    ],
    [
      "400 bad base64",
      "POST",
      "/Binary",
      {
        body: '{"resourceType":"Binary","contentType":"text/plain","content":"SGVsbG8=SGVsbG8="}',
        headers: { "content-type": "application/fhir+json" },
      },
      [400],
    ],
    [
      "400 bad gzip",
      "POST",
      "/Binary",
      { body: "not gzip at all", headers: { "content-type": "text/plain", "content-encoding": "gzip" } },
      [400, 415],
    ],
    ["401", "GET", "/Binary/x", { auth: false }, [401]],
    [
      "405",
      "PATCH",
      "/Binary/x",
      { body: "{}", headers: { "content-type": "application/json-patch+json" } },
      [405],
    ],
    ["406", "GET", "/Binary/x?_format=yaml", {}, [406]],
    [
      "415",
      "POST",
      "/Binary",
      { body: "x", headers: { "content-type": "text/plain", "content-encoding": "br" } },
      [415],
    ],
  ];

  test.each(REQUESTS)(
    "%s: %s %s answers an OperationOutcome without stack, path or cause",
    async (_name, method, path, init, status) => {
      await using srv = await startServer();
      if (path.includes("?_format")) await put(srv, "x", "x", "text/plain");
      const res = await srv.request(path, { ...init, method });
      expect(status).toContain(res.status);
      const text = await res.text();
      expect(text).toContain("OperationOutcome");
      expectNoLeak(text, srv.dataDir);
    },
  );

  test("a store failure is a generic 500 that names no path and no system error", async () => {
    await using srv = await startServer();
    await put(srv, "before", "x", "text/plain");
    // Replace the data directory by a plain file: every file operation below it now fails.
    rmSync(srv.dataDir, { recursive: true, force: true });
    writeFileSync(srv.dataDir, "not a directory");
    try {
      const write = await srv.request("/Binary/after", {
        method: "PUT",
        body: utf8("x"),
        headers: { "content-type": "text/plain" },
      });
      const writeText = await write.text();
      expect(write.status).toBeGreaterThanOrEqual(500);
      expect(writeText).toContain("OperationOutcome");
      expectNoLeak(writeText, srv.dataDir);
      const read = await srv.request("/Binary/never-cached");
      const readText = await read.text();
      expect([404, 500, 503]).toContain(read.status);
      expectNoLeak(readText, srv.dataDir);
    } finally {
      rmSync(srv.dataDir, { force: true });
      mkdirSync(srv.dataDir);
    }
  });
});
