/**
 * SMART scopes and securityContext over real HTTP: the full matrix of scope context (patient, user,
 * system) x permissions (each v2 letter, all of them, and the v1 forms) x interaction x target Binary, with
 * the expected answer of every cell computed independently; no cell may allow more than expected.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { startServer, type TestServer, tempDir } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const PATIENT = "p1";
const INSUFFICIENT = 'Bearer realm="fhirbin", error="insufficient_scope"';

type Context = "patient" | "user" | "system";
type Interaction = "read" | "head" | "vread" | "history" | "create" | "update" | "upsert" | "delete";
type Target = "own" | "other" | "none";

/** The letters each interaction needs; a PUT that creates (upsert) is both an update and a create. */
const NEEDS: Record<Interaction, string> = {
  read: "r",
  head: "r",
  vread: "r",
  history: "r",
  create: "c",
  update: "u",
  upsert: "cu",
  delete: "d",
};
const SUCCESS: Record<Interaction, number> = {
  read: 200,
  head: 200,
  vread: 200,
  history: 200,
  create: 201,
  update: 200,
  upsert: 201,
  delete: 204,
};
/** Permission strings and the letters they grant (v1 read covers search, v1 write covers c u d). */
const PERMISSIONS: [string, string][] = [
  ["c", "c"],
  ["r", "r"],
  ["u", "u"],
  ["d", "d"],
  ["s", "s"],
  ["rs", "rs"],
  ["cruds", "cruds"],
  ["read", "rs"],
  ["write", "cud"],
  ["*", "cruds"],
];
const CONTEXTS: Context[] = ["patient", "user", "system"];
const INTERACTIONS = Object.keys(NEEDS) as Interaction[];
const TARGETS: Target[] = ["own", "other", "none"];
const SECURITY_CONTEXT: Record<Target, string | null> = {
  own: `Patient/${PATIENT}`,
  other: "Patient/p2",
  none: null,
};

/** True when the granted letters cover every letter the interaction needs. */
const grants = (letters: string, interaction: Interaction): boolean =>
  [...NEEDS[interaction]].every((letter) => letters.includes(letter));

/** What the server must answer, derived from the rules, not from the implementation. */
function expected(context: Context, letters: string, interaction: Interaction, target: Target): number {
  if (!grants(letters, interaction)) return 403;
  if (context !== "patient" || target === "own") return SUCCESS[interaction];
  // Writes that would leave the patient's compartment are refused; reads and deletes hide the resource.
  return interaction === "create" || interaction === "update" || interaction === "upsert" ? 403 : 404;
}

const secret = new TextEncoder().encode(SECRET);
const tokenFor = (scope: string, claims: Record<string, unknown> = {}): Promise<string> =>
  new SignJWT({ sub: "tester", scope, patient: PATIENT, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("10m")
    .sign(secret);

let srv: TestServer;
let counter = 0;

/** Puts a fresh Binary with the target's securityContext using the full-access static token. */
async function seed(target: Target): Promise<string> {
  const id = `m${++counter}`;
  const context = SECURITY_CONTEXT[target];
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body: "content",
    headers: { "content-type": "text/plain", ...(context ? { "x-security-context": context } : {}) },
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`seed ${id}: ${res.status}`);
  return id;
}

async function attempt(token: string, interaction: Interaction, target: Target): Promise<Response> {
  const authorization = `Bearer ${token}`;
  const context = SECURITY_CONTEXT[target];
  const body = {
    body: "changed",
    headers: {
      authorization,
      "content-type": "text/plain",
      ...(context ? { "x-security-context": context } : {}),
    },
  };
  if (interaction === "create") return srv.request("/Binary", { method: "POST", ...body });
  if (interaction === "upsert") return srv.request(`/Binary/new${++counter}`, { method: "PUT", ...body });
  const id = await seed(target);
  const headers = { authorization };
  switch (interaction) {
    case "read":
      return srv.request(`/Binary/${id}`, { headers });
    case "head":
      return srv.request(`/Binary/${id}`, { method: "HEAD", headers });
    case "vread":
      return srv.request(`/Binary/${id}/_history/1`, { headers });
    case "history":
      return srv.request(`/Binary/${id}/_history`, { headers });
    case "update":
      return srv.request(`/Binary/${id}`, { method: "PUT", ...body });
    case "delete":
      return srv.request(`/Binary/${id}`, { method: "DELETE", headers });
  }
}

const dir = tempDir();
beforeAll(async () => {
  srv = await startServer({ args: ["--jwt-secret", SECRET] });
});
afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

describe("the scope matrix", () => {
  for (const context of CONTEXTS) {
    for (const [permission, letters] of PERMISSIONS) {
      const scope = `${context}/Binary.${permission}`;
      test(`${scope}: every interaction on own, other and no securityContext`, async () => {
        const token = await tokenFor(scope);
        const got: string[] = [];
        const want: string[] = [];
        for (const interaction of INTERACTIONS) {
          for (const target of TARGETS) {
            const res = await attempt(token, interaction, target);
            await res.arrayBuffer();
            const status = expected(context, letters, interaction, target);
            // A missing scope carries the insufficient_scope challenge; a securityContext refusal does not.
            const scopeDenied = !grants(letters, interaction);
            got.push(`${interaction} ${target}: ${res.status} ${res.headers.get("www-authenticate")}`);
            want.push(`${interaction} ${target}: ${status} ${scopeDenied ? INSUFFICIENT : null}`);
          }
        }
        expect(got).toEqual(want);
      });
    }
  }

  test("the wildcard resource type grants like Binary", async () => {
    const token = await tokenFor("user/*.r");
    const res = await attempt(token, "read", "none");
    await res.arrayBuffer();
    expect(res.status).toBe(200);
  });
});

describe("what grants nothing", () => {
  test.each([
    ["no scope claim", {}],
    ["scopes for other resources", { scope: "user/Patient.read user/Observation.cruds openid launch" }],
    ["a query-narrowed scope", { scope: "user/Binary.r?category=x" }],
    ["letters out of order", { scope: "user/Binary.rc" }],
    ["a patient scope without a patient claim", { scope: "patient/Binary.cruds", patient: undefined }],
  ])("%s: 403 insufficient_scope with an OperationOutcome", async (_name, claims) => {
    const { scope = "", ...rest } = claims as { scope?: string };
    const token = await tokenFor(scope, rest);
    const id = await seed("own");
    const res = await srv.request(`/Binary/${id}`, { headers: { authorization: `Bearer ${token}` } });
    expect({ status: res.status, challenge: res.headers.get("www-authenticate") }).toEqual({
      status: 403,
      challenge: INSUFFICIENT,
    });
    expect(await res.json()).toMatchObject({
      resourceType: "OperationOutcome",
      issue: [{ code: "forbidden" }],
    });
  });
});

describe("securityContext edge cases for patient scopes", () => {
  test("a patient cannot move its own Binary to another patient", async () => {
    const token = await tokenFor("patient/Binary.cruds");
    const id = await seed("own");
    const res = await srv.request(`/Binary/${id}`, {
      method: "PUT",
      body: "moved",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "text/plain",
        "x-security-context": "Patient/p2",
      },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(403);
  });

  test("a version that belonged to another patient stays hidden (vread and history)", async () => {
    const token = await tokenFor("patient/Binary.r");
    const id = await seed("other");
    const moved = await srv.request(`/Binary/${id}`, {
      method: "PUT",
      body: "now mine",
      headers: { "content-type": "text/plain", "x-security-context": `Patient/${PATIENT}` },
    });
    await moved.arrayBuffer();
    const headers = { authorization: `Bearer ${token}` };
    const statuses = [];
    for (const path of [
      `/Binary/${id}`,
      `/Binary/${id}/_history/2`,
      `/Binary/${id}/_history/1`,
      `/Binary/${id}/_history`,
    ]) {
      const res = await srv.request(path, { headers });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 200, 404, 404]);
  });

  test("a deleted Binary answers 404, not 410, to a patient token", async () => {
    const token = await tokenFor("patient/Binary.r");
    const id = await seed("own");
    (await srv.request(`/Binary/${id}`, { method: "DELETE" })).body?.cancel();
    const res = await srv.request(`/Binary/${id}`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    expect(res.status).toBe(404);
  });

  test("an absolute reference to the same patient id is not the patient's (fail closed)", async () => {
    const token = await tokenFor("patient/Binary.r");
    const res = await srv.request("/Binary/abs", {
      method: "PUT",
      body: "x",
      headers: {
        "content-type": "text/plain",
        "x-security-context": `https://elsewhere/fhir/Patient/${PATIENT}`,
      },
    });
    await res.arrayBuffer();
    const read = await srv.request("/Binary/abs", { headers: { authorization: `Bearer ${token}` } });
    await read.arrayBuffer();
    expect(read.status).toBe(404);
  });
});

describe("--token-file", () => {
  const LINES = [
    "# static tokens with scopes",
    "reader-token-0123456789abcdef user/Binary.rs label=reader",
    "patient-token-0123456789abcdef patient/Binary.cruds patient=p1 label=portal",
    "",
  ].join("\n");

  test("scoped static tokens are limited like JWTs; plain --token keeps full access", async () => {
    const file = join(dir.path, "tokens");
    writeFileSync(file, LINES);
    await using scoped = await startServer({ args: ["--token-file", file] });
    const put = await scoped.request("/Binary/mine", {
      method: "PUT",
      body: "x",
      headers: { "content-type": "text/plain", "x-security-context": "Patient/p1" },
    });
    await put.arrayBuffer();
    expect(put.status).toBe(201);
    const as = async (token: string, init: RequestInit & { path: string }): Promise<number> => {
      const res = await scoped.request(init.path, {
        ...init,
        headers: { ...init.headers, authorization: `Bearer ${token}` },
      });
      await res.arrayBuffer();
      return res.status;
    };
    const write = {
      method: "PUT",
      body: "y",
      headers: { "content-type": "text/plain", "x-security-context": "Patient/p1" },
    };
    expect({
      readerRead: await as("reader-token-0123456789abcdef", { path: "/Binary/mine" }),
      readerWrite: await as("reader-token-0123456789abcdef", { path: "/Binary/mine", ...write }),
      patientWrite: await as("patient-token-0123456789abcdef", { path: "/Binary/mine", ...write }),
      patientOther: await as("patient-token-0123456789abcdef", {
        path: "/Binary/other",
        ...write,
        headers: { "content-type": "text/plain", "x-security-context": "Patient/p2" },
      }),
      unknown: await as("not-listed-token-0123456789", { path: "/Binary/mine" }),
    }).toEqual({ readerRead: 200, readerWrite: 403, patientWrite: 200, patientOther: 403, unknown: 401 });
  });
});

describe("search and type history", () => {
  const searchAs = async (scope: string, query: string): Promise<{ status: number; ids: string[] }> => {
    const res = await srv.request(`/Binary?${query}`, {
      headers: { authorization: `Bearer ${await tokenFor(scope)}` },
    });
    if (res.status !== 200) {
      await res.arrayBuffer();
      return { status: res.status, ids: [] };
    }
    const bundle = (await res.json()) as { entry?: { resource?: { id?: string } }[] };
    return { status: 200, ids: (bundle.entry ?? []).map((entry) => entry.resource?.id ?? "").sort() };
  };

  test("search needs s; a patient scope finds only its patient's Binaries", async () => {
    const own = await seed("own");
    const other = await seed("other");
    const none = await seed("none");
    const query = `_id=${own},${other},${none}`;
    expect({
      read: await searchAs("user/Binary.r", query),
      patient: await searchAs("patient/Binary.s", query),
      user: await searchAs("user/Binary.s", query),
      v1: await searchAs("system/Binary.read", query),
    }).toEqual({
      read: { status: 403, ids: [] },
      patient: { status: 200, ids: [own] },
      user: { status: 200, ids: [own, other, none].sort() },
      v1: { status: 200, ids: [own, other, none].sort() },
    });
  });

  test("the type history is refused to patient scopes and to tokens without r", async () => {
    const statusAs = async (scope: string): Promise<number> => {
      const res = await srv.request("/Binary/_history", {
        headers: { authorization: `Bearer ${await tokenFor(scope)}` },
      });
      await res.arrayBuffer();
      return res.status;
    };
    expect([
      await statusAs("patient/Binary.r"),
      await statusAs("user/Binary.s"),
      await statusAs("user/Binary.r"),
    ]).toEqual([403, 403, 200]);
  });
});
