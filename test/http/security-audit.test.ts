/**
 * The audit trail over real HTTP: one AuditEvent line per Binary request, allowed or denied, naming the
 * caller by subject or token label and never containing a token; and `fhirbin audit` reading it back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { type AuditEvent, createAuditLog, readAuditEvents, runAudit } from "../../src/security/audit.ts";
import { tokenLabel } from "../../src/security/token-file.ts";
import { startServer, type TestServer, tempDir } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const SCOPED = "scoped-reader-token-0123456789";

const dir = tempDir();
const auditDir = join(dir.path, "audit");
const sink = createAuditLog(auditDir, (line) => {
  throw new Error(line);
});
let srv: TestServer;
let jwt: string;

/** One request with a known request id; the body is drained. */
async function call(
  requestId: string,
  path: string,
  init: RequestInit & { auth?: boolean } = {},
): Promise<number> {
  const res = await srv.request(path, { ...init, headers: { ...init.headers, "x-request-id": requestId } });
  await res.arrayBuffer();
  return res.status;
}

/** The trail, which holds the event of `requestId`: a request is answered only once its event is appended. */
async function eventsWith(requestId: string): Promise<AuditEvent[]> {
  const events = await readAuditEvents(auditDir, {});
  expect(events.map((event) => event.id)).toContain(requestId);
  return events;
}

/** The parts of an event a test compares. */
const brief = (event: AuditEvent) => ({
  id: event.id,
  code: event.subtype[0]?.code,
  action: event.action,
  outcome: event.outcome,
  desc: event.outcomeDesc,
  who: event.agent[0]?.who.display,
  address: event.agent[0]?.network?.address,
  what: event.entity?.[0]?.what.reference ?? null,
});

beforeAll(async () => {
  writeFileSync(join(dir.path, "tokens"), `${SCOPED} user/Binary.r label=reader\n`);
  srv = await startServer({
    args: ["--jwt-secret", SECRET, "--token-file", join(dir.path, "tokens")],
    audit: sink,
  });
  jwt = await new SignJWT({ sub: "dr-who", scope: "user/Binary.cruds" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode(SECRET));
});
afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

describe("the audit trail", () => {
  test("every Binary interaction, allowed or denied, is one AuditEvent line", async () => {
    const text = { "content-type": "text/plain" };
    const asJwt = { authorization: `Bearer ${jwt}` };
    const asReader = { authorization: `Bearer ${SCOPED}` };
    const statuses = [
      await call("a1", "/Binary/doc", { method: "PUT", body: "v1", headers: { ...text, ...asJwt } }),
      await call("a2", "/Binary", { method: "POST", body: "new", headers: text }),
      await call("a3", "/Binary/doc", { headers: asReader }),
      await call("a4", "/Binary/doc/_history/1", { headers: asJwt }),
      await call("a5", "/Binary/doc", { method: "PUT", body: "v2", headers: { ...text, ...asJwt } }),
      await call("a6", "/Binary/doc/_history"),
      await call("a7", "/Binary/doc", { auth: false }),
      await call("a8", "/Binary/doc", { headers: { authorization: "Bearer not-a-valid-token-0123456789" } }),
      await call("a9", "/Binary/doc", { method: "DELETE", headers: asReader }),
      await call("a10", "/Binary/doc", { method: "DELETE", headers: asJwt }),
      await call("a11", "/Binary/doc"),
      await call("a12", "/Binary/missing"),
      await call("a13", "/metadata", { auth: false }),
      await call("a14", "/Binary/doc", { method: "PATCH", body: "{}", headers: text }),
    ];
    expect(statuses).toEqual([201, 201, 200, 200, 200, 200, 401, 401, 403, 204, 410, 404, 200, 405]);
    const events = await eventsWith("a12");
    const label = tokenLabel(srv.token);
    const created = events.find((event) => event.id === "a2")?.entity?.[0]?.what.reference ?? "";
    expect(created).toMatch(/^Binary\/[A-Za-z0-9.-]+\/_history\/1$/);
    expect(events.map(brief)).toEqual([
      {
        id: "a1",
        code: "update",
        action: "U",
        outcome: "0",
        desc: "HTTP 201",
        who: "dr-who",
        address: "127.0.0.1",
        what: "Binary/doc/_history/1",
      },
      {
        id: "a2",
        code: "create",
        action: "C",
        outcome: "0",
        desc: "HTTP 201",
        who: label,
        address: "127.0.0.1",
        what: created,
      },
      {
        id: "a3",
        code: "read",
        action: "R",
        outcome: "0",
        desc: "HTTP 200",
        who: "reader",
        address: "127.0.0.1",
        what: "Binary/doc/_history/1",
      },
      {
        id: "a4",
        code: "vread",
        action: "R",
        outcome: "0",
        desc: "HTTP 200",
        who: "dr-who",
        address: "127.0.0.1",
        what: "Binary/doc/_history/1",
      },
      {
        id: "a5",
        code: "update",
        action: "U",
        outcome: "0",
        desc: "HTTP 200",
        who: "dr-who",
        address: "127.0.0.1",
        what: "Binary/doc/_history/2",
      },
      {
        id: "a6",
        code: "history-instance",
        action: "R",
        outcome: "0",
        desc: "HTTP 200",
        who: label,
        address: "127.0.0.1",
        what: "Binary/doc",
      },
      {
        id: "a7",
        code: "read",
        action: "R",
        outcome: "4",
        desc: "HTTP 401",
        who: "unauthenticated",
        address: "127.0.0.1",
        what: "Binary/doc",
      },
      {
        id: "a8",
        code: "read",
        action: "R",
        outcome: "4",
        desc: "HTTP 401",
        who: "unauthenticated",
        address: "127.0.0.1",
        what: "Binary/doc",
      },
      {
        id: "a9",
        code: "delete",
        action: "D",
        outcome: "4",
        desc: "HTTP 403",
        who: "reader",
        address: "127.0.0.1",
        what: "Binary/doc",
      },
      {
        id: "a10",
        code: "delete",
        action: "D",
        outcome: "0",
        desc: "HTTP 204",
        who: "dr-who",
        address: "127.0.0.1",
        what: "Binary/doc/_history/3",
      },
      {
        id: "a11",
        code: "read",
        action: "R",
        outcome: "4",
        desc: "HTTP 410",
        who: label,
        address: "127.0.0.1",
        what: "Binary/doc/_history/3",
      },
      {
        id: "a12",
        code: "read",
        action: "R",
        outcome: "4",
        desc: "HTTP 404",
        who: label,
        address: "127.0.0.1",
        what: "Binary/missing",
      },
    ]);
  });

  test("searches and the type history are audited too, without their query", async () => {
    expect([
      await call("s1", "/Binary?_id=doc&_content=secret-words"),
      await call("s2", "/Binary/_history"),
      await call("s3", "/Binary?_id=doc", { headers: { authorization: `Bearer ${SCOPED}` } }),
    ]).toEqual([200, 200, 403]);
    const events = (await eventsWith("s3")).filter((event) => event.id.startsWith("s"));
    expect(
      events
        .map(brief)
        .map(({ id, code, action, desc, who, what }) => ({ id, code, action, desc, who, what })),
    ).toEqual([
      {
        id: "s1",
        code: "search-type",
        action: "E",
        desc: "HTTP 200",
        who: tokenLabel(srv.token),
        what: null,
      },
      {
        id: "s2",
        code: "history-type",
        action: "R",
        desc: "HTTP 200",
        who: tokenLabel(srv.token),
        what: null,
      },
      { id: "s3", code: "search-type", action: "E", desc: "HTTP 403", who: "reader", what: null },
    ]);
    expect(JSON.stringify(events)).not.toContain("secret-words");
  });

  test("the trail is one file per UTC day, owner-only, and holds no token", () => {
    const names = readdirSync(auditDir);
    expect(names.every((name) => /^\d{4}-\d{2}-\d{2}\.ndjson$/.test(name))).toBe(true);
    const text = names.map((name) => readFileSync(join(auditDir, name), "utf8")).join("");
    for (const secret of [srv.token, SCOPED, jwt, jwt.split(".")[2] ?? "", "not-a-valid-token", SECRET]) {
      expect(text).not.toContain(secret);
    }
    expect(
      text
        .trim()
        .split("\n")
        .every((line) => JSON.parse(line).resourceType === "AuditEvent"),
    ).toBe(true);
  });
});

describe("fhirbin audit", () => {
  const run = async (args: string[]): Promise<{ status: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const status = await runAudit(args, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { status, out, err };
  };

  test("--id prints the events of one Binary, every version, oldest first", async () => {
    await sink.flush();
    const { status, out } = await run(["--data", dir.path, "--id", "doc"]);
    expect(status).toBe(0);
    expect(out.map((line) => (JSON.parse(line) as AuditEvent).id)).toEqual([
      "a1",
      "a3",
      "a4",
      "a5",
      "a6",
      "a7",
      "a8",
      "a9",
      "a10",
      "a11",
    ]);
  });

  test("--since in the future prints nothing; in the past prints everything", async () => {
    const future = await run(["--data", dir.path, "--since", "2999-01-01"]);
    const past = await run(["--data", dir.path, "--since", "2000-01-01T00:00:00Z"]);
    expect({ future: future.out.length, past: past.out.length }).toEqual({ future: 0, past: 15 });
  });

  test("bad arguments are all reported, exit 2", async () => {
    const { status, err } = await run(["--id", "../x", "--since", "yesterday", "--frob", "extra"]);
    expect({ status, problems: err.length - 1 }).toEqual({ status: 2, problems: 4 });
  });

  test("a data directory without a trail prints nothing", async () => {
    using empty = tempDir();
    expect(await run(["--data", empty.path])).toEqual({ status: 0, out: [], err: [] });
  });
});
