/**
 * `POST [base]/Binary/[id]/$expunge` over real HTTP: both modes, who may call it, the content files it
 * erases (and those it must keep because another version, of any id, still references them), and the
 * reads, histories, searches and audit trail afterwards.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { type AuditEvent, createAuditLog, readAuditEvents } from "../../src/security/audit.ts";
import { layout } from "../../src/store/fs-layout.ts";
import { verifyStore } from "../../src/store/verify.ts";
import { startServer, type TestServer, tempDir } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const FHIR_JSON = "application/fhir+json";

const dir = tempDir();
const auditDir = join(dir.path, "audit");
const sink = createAuditLog(auditDir, (line) => {
  throw new Error(line);
});
let srv: TestServer;
let memory: TestServer;
let counter = 0;

const sha256 = (text: string): string => new Bun.CryptoHasher("sha256").update(text).digest("hex");
const blobExists = (server: TestServer, text: string): boolean =>
  existsSync(layout(server.dataDir).blob(sha256(text)));

/** A fresh id for a test (ids are shared by the whole file's store). */
const fresh = (name: string): string => `${name}-${++counter}`;

async function put(server: TestServer, id: string, text: string, context?: string): Promise<number> {
  const res = await server.request(`/Binary/${id}`, {
    method: "PUT",
    body: text,
    headers: { "content-type": "text/plain", ...(context ? { "x-security-context": context } : {}) },
  });
  await res.arrayBuffer();
  return res.status;
}

async function remove(server: TestServer, id: string): Promise<void> {
  const res = await server.request(`/Binary/${id}`, { method: "DELETE" });
  expect(res.status).toBe(204);
}

/** The Parameters body of an `$expunge`. */
function parameters(flags: Record<string, unknown>): string {
  return JSON.stringify({
    resourceType: "Parameters",
    parameter: Object.entries(flags).map(([name, valueBoolean]) => ({ name, valueBoolean })),
  });
}

async function expunge(
  server: TestServer,
  id: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await server.request(`/Binary/${id}/$expunge`, {
    method: "POST",
    body,
    headers: { "content-type": FHIR_JSON, ...headers },
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const previousVersions = parameters({ expungePreviousVersions: true });
const deletedResources = parameters({ expungeDeletedResources: true });
const count = (n: number) => ({
  resourceType: "Parameters",
  parameter: [{ name: "count", valueInteger: n }],
});

async function status(server: TestServer, path: string): Promise<number> {
  const res = await server.request(path);
  await res.arrayBuffer();
  return res.status;
}

/** The version ids an instance history lists, newest first. */
async function historyOf(server: TestServer, id: string): Promise<number[]> {
  const res = await server.request(`/Binary/${id}/_history`, { headers: { accept: FHIR_JSON } });
  if (res.status === 404) return [];
  const bundle = (await res.json()) as { entry?: { resource?: { meta?: { versionId?: string } } }[] };
  return (bundle.entry ?? []).map((entry) => Number(entry.resource?.meta?.versionId));
}

/** The version ids of `id` in the type-level history, newest first. */
async function typeHistoryOf(server: TestServer, id: string): Promise<number[]> {
  const res = await server.request("/Binary/_history?_count=1000", { headers: { accept: FHIR_JSON } });
  const bundle = (await res.json()) as {
    entry?: { request?: { url?: string }; resource?: { id?: string; meta?: { versionId?: string } } }[];
  };
  return (bundle.entry ?? [])
    .filter((entry) => entry.resource?.id === id || entry.request?.url === `Binary/${id}`)
    .map((entry) => Number(entry.resource?.meta?.versionId ?? Number.NaN));
}

async function total(server: TestServer, query: string): Promise<number> {
  const res = await server.request(`/Binary${query}`, { headers: { accept: FHIR_JSON } });
  return ((await res.json()) as { total: number }).total;
}

const tokenFor = (scope: string, claims: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT({ sub: "operator", scope, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET));

beforeAll(async () => {
  srv = await startServer({ args: ["--jwt-secret", SECRET], audit: sink });
  memory = await startServer({ driver: "memory" });
});
afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
  await memory?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

for (const driver of ["fs", "memory"] as const) {
  const server = (): TestServer => (driver === "fs" ? srv : memory);

  describe(`$expunge (${driver} store)`, () => {
    test("expungePreviousVersions leaves only the current version: older vreads 404, histories show one", async () => {
      const id = fresh("misfiled");
      expect(await put(server(), id, `${id} to the wrong patient`, "Patient/wrong")).toBe(201);
      expect(await put(server(), id, `${id} corrected`, "Patient/right")).toBe(200);
      expect(await put(server(), id, `${id} corrected again`, "Patient/right")).toBe(200);
      expect(await expunge(server(), id, previousVersions)).toEqual({ status: 200, body: count(2) });
      expect(await status(server(), `/Binary/${id}/_history/1`)).toBe(404);
      expect(await status(server(), `/Binary/${id}/_history/2`)).toBe(404);
      expect(await status(server(), `/Binary/${id}/_history/3`)).toBe(200);
      expect(await (await server().request(`/Binary/${id}`)).text()).toBe(`${id} corrected again`);
      expect(await historyOf(server(), id)).toEqual([3]);
      expect(await typeHistoryOf(server(), id)).toEqual([3]);
      // The id goes on from its current version.
      expect(await put(server(), id, `${id} fourth`)).toBe(200);
      expect(await historyOf(server(), id)).toEqual([4, 3]);
      // Once more: only the newest is left.
      expect(await expunge(server(), id, previousVersions)).toEqual({ status: 200, body: count(1) });
      expect(await historyOf(server(), id)).toEqual([4]);
      expect(await expunge(server(), id, previousVersions)).toEqual({ status: 200, body: count(0) });
    });

    test("expungeDeletedResources removes every version: the id reads 404, not 410, and a PUT starts at 1", async () => {
      const id = fresh("retired");
      expect(await put(server(), id, `${id} one`)).toBe(201);
      expect(await put(server(), id, `${id} two`)).toBe(200);
      await remove(server(), id);
      expect(await status(server(), `/Binary/${id}`)).toBe(410);
      expect(await expunge(server(), id, deletedResources)).toEqual({ status: 200, body: count(3) });
      expect(await status(server(), `/Binary/${id}`)).toBe(404);
      for (const n of [1, 2, 3]) expect(await status(server(), `/Binary/${id}/_history/${n}`)).toBe(404);
      expect(await status(server(), `/Binary/${id}/_history`)).toBe(404);
      expect(await typeHistoryOf(server(), id)).toEqual([]);
      expect(await put(server(), id, `${id} reused`)).toBe(201);
      expect(await historyOf(server(), id)).toEqual([1]);
      expect(await (await server().request(`/Binary/${id}/_history/1`)).text()).toBe(`${id} reused`);
    });

    test("a deleted Binary whose previous versions were expunged can then be expunged whole", async () => {
      const id = fresh("twice");
      expect(await put(server(), id, `${id} one`)).toBe(201);
      expect(await put(server(), id, `${id} two`)).toBe(200);
      await remove(server(), id);
      expect(await expunge(server(), id, previousVersions)).toEqual({ status: 200, body: count(2) });
      expect(await status(server(), `/Binary/${id}`)).toBe(410);
      expect(await expunge(server(), id, deletedResources)).toEqual({ status: 200, body: count(1) });
      expect(await status(server(), `/Binary/${id}`)).toBe(404);
    });

    test("expungeDeletedResources on a live Binary is a 409 and removes nothing", async () => {
      const id = fresh("live");
      expect(await put(server(), id, `${id} one`)).toBe(201);
      expect(await put(server(), id, `${id} two`)).toBe(200);
      for (const body of [
        deletedResources,
        parameters({ expungeDeletedResources: true, expungePreviousVersions: true }),
      ]) {
        const answer = await expunge(server(), id, body);
        expect(answer.status).toBe(409);
        expect(JSON.stringify(answer.body)).toContain("is not deleted");
      }
      expect(await historyOf(server(), id)).toEqual([2, 1]);
    });

    test("an $expunge that asks for nothing, or for something unknown, is a 400", async () => {
      const id = fresh("nothing");
      expect(await put(server(), id, "x")).toBe(201);
      for (const body of [
        parameters({}),
        parameters({ expungePreviousVersions: false, expungeDeletedResources: false }),
        parameters({ expungeEverything: true }),
        parameters({ expungePreviousVersions: "true" }),
        JSON.stringify({ resourceType: "Binary" }),
        "{not json",
      ]) {
        expect((await expunge(server(), id, body)).status).toBe(400);
      }
      expect((await expunge(server(), id, previousVersions, { "content-type": "text/plain" })).status).toBe(
        415,
      );
      expect((await expunge(server(), fresh("never"), previousVersions)).status).toBe(404);
      expect((await expunge(server(), "a%20b", previousVersions)).status).toBe(400);
    });

    test("an $expunge with an unsupported _format is a 406 that removes nothing", async () => {
      const id = fresh("format");
      expect(await put(server(), id, `${id} one`)).toBe(201);
      expect(await put(server(), id, `${id} two`)).toBe(200);
      const res = await server().request(`/Binary/${id}/$expunge?_format=text/csv`, {
        method: "POST",
        body: previousVersions,
        headers: { "content-type": FHIR_JSON },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(406);
      expect(await historyOf(server(), id)).toEqual([2, 1]);
    });

    test("a FHIR XML Parameters body is read as the JSON one", async () => {
      const id = fresh("xml");
      expect(await put(server(), id, `${id} one`)).toBe(201);
      expect(await put(server(), id, `${id} two`)).toBe(200);
      const res = await server().request(`/Binary/${id}/$expunge`, {
        method: "POST",
        headers: { "content-type": "application/fhir+xml" },
        body:
          '<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="expungePreviousVersions"/>' +
          '<valueBoolean value="true"/></parameter></Parameters>',
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<valueInteger value="1"/>');
      expect(await historyOf(server(), id)).toEqual([2]);
    });

    test("search totals and the type history forget expunged versions", async () => {
      const type = `application/x-expunge-${driver}`;
      const id = fresh("counted");
      const before = await total(server(), "/_history?_summary=count");
      for (const text of ["a", "b", "c"]) {
        const res = await server().request(`/Binary/${id}`, {
          method: "PUT",
          body: `${id} ${text}`,
          headers: { "content-type": type },
        });
        await res.arrayBuffer();
      }
      expect(await total(server(), `?contenttype=${type}&_summary=count`)).toBe(1);
      expect(await total(server(), "/_history?_summary=count")).toBe(before + 3);
      expect((await expunge(server(), id, previousVersions)).status).toBe(200);
      expect(await total(server(), `?contenttype=${type}&_summary=count`)).toBe(1);
      expect(await total(server(), "/_history?_summary=count")).toBe(before + 1);
      await remove(server(), id);
      expect(await total(server(), `?contenttype=${type}&_summary=count`)).toBe(0);
      expect((await expunge(server(), id, deletedResources)).status).toBe(200);
      expect(await total(server(), "/_history?_summary=count")).toBe(before);
      expect(await total(server(), `?_id=${id}&_summary=count`)).toBe(0);
    });
  });
}

describe("$expunge erases content no remaining version references (fs store)", () => {
  test("content shared with a kept version of the same id or another id stays; the rest is gone from blobs/", async () => {
    const id = fresh("shared");
    const other = fresh("other");
    const [unique, sharedWithOther, sameAsCurrent] = ["only here", "also elsewhere", "back again"].map(
      (text) => `${id} ${text}`,
    ) as [string, string, string];
    expect(await put(srv, id, unique)).toBe(201);
    expect(await put(srv, id, sharedWithOther)).toBe(200);
    expect(await put(srv, id, sameAsCurrent)).toBe(200);
    expect(await put(srv, id, sameAsCurrent)).toBe(200);
    expect(await put(srv, other, sharedWithOther)).toBe(201);
    for (const text of [unique, sharedWithOther, sameAsCurrent]) expect(blobExists(srv, text)).toBe(true);
    // Read twice: small content is then also held in memory.
    for (let i = 0; i < 2; i++) await (await srv.request(`/Binary/${id}/_history/1`)).arrayBuffer();

    expect(await expunge(srv, id, previousVersions)).toEqual({ status: 200, body: count(3) });
    expect(blobExists(srv, unique)).toBe(false);
    expect(blobExists(srv, sharedWithOther)).toBe(true);
    expect(blobExists(srv, sameAsCurrent)).toBe(true);
    expect(await (await srv.request(`/Binary/${other}`)).text()).toBe(sharedWithOther);
    expect(await (await srv.request(`/Binary/${id}`)).text()).toBe(sameAsCurrent);
    // Written again, erased content is stored afresh (not answered from a cache of the erased file).
    expect(await put(srv, fresh("again"), unique)).toBe(201);
    expect(blobExists(srv, unique)).toBe(true);

    await remove(srv, other);
    expect(await expunge(srv, other, deletedResources)).toEqual({ status: 200, body: count(2) });
    expect(blobExists(srv, sharedWithOther)).toBe(false);

    const report = await verifyStore(srv.dataDir);
    expect(report.findings).toEqual([]);
    expect(report.orphans.filter((orphan) => orphan.kind === "blob")).toEqual([]);
    // The first kept version is recorded next to the sidecars; no purge journal is left.
    expect(readdirSync(join(srv.dataDir, "purges"))).toEqual([]);
  });
});

describe("who may $expunge", () => {
  const cases: [string, string | null, number][] = [
    ["the static token", "static", 200],
    ["system/Binary.d", "system/Binary.d", 200],
    ["system/Binary.*", "system/Binary.*", 200],
    ["system/*.*", "system/*.*", 200],
    ["system/Binary.cruds", "system/Binary.cruds", 200],
    ["system/Binary.write (v1)", "system/Binary.write", 200],
    ["system/Binary.rs (no delete)", "system/Binary.rs", 403],
    ["user/Binary.d", "user/Binary.d", 403],
    ["user/*.*", "user/*.*", 403],
    ["patient/Binary.* of its own patient", "patient/Binary.*", 403],
    ["no token", null, 401],
  ];
  for (const [name, scope, expected] of cases) {
    test(`${name}: ${expected}`, async () => {
      const id = fresh("perm");
      expect(await put(srv, id, `${id} one`, "Patient/p1")).toBe(201);
      expect(await put(srv, id, `${id} two`, "Patient/p1")).toBe(200);
      const headers: Record<string, string> =
        scope === "static"
          ? {}
          : scope === null
            ? { authorization: "" }
            : { authorization: `Bearer ${await tokenFor(scope, { patient: "p1" })}` };
      const res = await srv.request(`/Binary/${id}/$expunge`, {
        method: "POST",
        body: previousVersions,
        headers: { "content-type": FHIR_JSON, ...headers },
        ...(scope === null ? { auth: false } : {}),
      });
      await res.arrayBuffer();
      expect(res.status).toBe(expected);
      expect(await historyOf(srv, id)).toEqual(expected === 200 ? [2] : [2, 1]);
    });
  }
});

describe("$expunge is audited", () => {
  test("an expunge's AuditEvent is in the trail before the answer, with the operation code", async () => {
    const id = fresh("audited");
    expect(await put(srv, id, `${id} one`)).toBe(201);
    expect(await put(srv, id, `${id} two`)).toBe(200);
    const requestId = `expunge-${id}`;
    const res = await srv.request(`/Binary/${id}/$expunge`, {
      method: "POST",
      body: previousVersions,
      headers: { "content-type": FHIR_JSON, "x-request-id": requestId },
    });
    await res.arrayBuffer();
    const events = await readAuditEvents(auditDir, {});
    const event = events.find((e: AuditEvent) => e.id === requestId);
    expect(
      event && { code: event.subtype[0]?.code, action: event.action, what: event.entity?.[0]?.what },
    ).toEqual({
      code: "operation",
      action: "D",
      what: { reference: `Binary/${id}` },
    });
  });
});
