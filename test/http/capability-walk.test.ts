/**
 * The CapabilityStatement against the routes: every interaction and operation it lists for Binary answers
 * (neither 404 nor 405), and every Binary route of the app that answers (not 405) is listed, in each FHIR
 * release's shape (R4 lists operations per resource, DSTU2 and STU3 per server).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { IndexedStore } from "../../src/search/indexed-store.ts";
import { createStore } from "../../src/store/index.ts";
import { TEST_TOKEN } from "../harness.ts";

const PARAMETERS = JSON.stringify({
  resourceType: "Parameters",
  parameter: [{ name: "expungePreviousVersions", valueBoolean: true }],
});

/** What each Binary route of the app is, as the CapabilityStatement names it (`$name` for an operation). */
const ROUTE_CODES: Readonly<Record<string, string>> = {
  "GET /Binary/:id": "read",
  "HEAD /Binary/:id": "read",
  "GET /Binary/:id/_history/:vid": "vread",
  "HEAD /Binary/:id/_history/:vid": "vread",
  "GET /Binary/:id/_history": "history-instance",
  "PUT /Binary/:id": "update",
  "DELETE /Binary/:id": "delete",
  "POST /Binary": "create",
  "GET /Binary": "search-type",
  "POST /Binary/_search": "search-type",
  "GET /Binary/_history": "history-type",
  "POST /Binary/:id/$expunge": "$expunge",
};

let app: ReturnType<typeof createApp>;
let store: IndexedStore;
let base: string;
let counter = 0;

/** Sends `method route` with a Binary that exists (a fresh one with two versions). */
async function call(method: string, route: string): Promise<number> {
  const id = `walk-${++counter}`;
  for (const text of ["one", "two"]) {
    const res = await fetch(`${base}/Binary/${id}`, {
      method: "PUT",
      body: text,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "text/plain" },
    });
    await res.arrayBuffer();
  }
  const path = route.replace(":id", id).replace(":vid", "1");
  const body =
    method === "POST" || method === "PUT" || method === "PATCH"
      ? route.endsWith("$expunge")
        ? PARAMETERS
        : route.endsWith("_search")
          ? ""
          : "content"
      : null;
  const type = route.endsWith("$expunge")
    ? "application/fhir+json"
    : route.endsWith("_search")
      ? "application/x-www-form-urlencoded"
      : "text/plain";
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TEST_TOKEN}`, ...(body === null ? {} : { "content-type": type }) },
    ...(body === null ? {} : { body }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** The Binary interactions and operations of a CapabilityStatement in the release `fhirVersion` names. */
async function listed(fhirVersion: string): Promise<Set<string>> {
  const res = await fetch(`${base}/metadata`, {
    headers: { accept: `application/fhir+json; fhirVersion=${fhirVersion}` },
  });
  const statement = (await res.json()) as {
    rest: {
      operation?: { name: string }[];
      resource: { type: string; interaction: { code: string }[]; operation?: { name: string }[] }[];
    }[];
  };
  const rest = statement.rest[0];
  const binary = rest?.resource.find((resource) => resource.type === "Binary");
  return new Set([
    ...(binary?.interaction ?? []).map((interaction) => interaction.code),
    ...[...(binary?.operation ?? []), ...(rest?.operation ?? [])].map((operation) => `$${operation.name}`),
  ]);
}

beforeAll(async () => {
  const config = loadConfig(["--port", "0", "--token", TEST_TOKEN], {});
  store = await createStore("memory:");
  app = createApp({ config, store, log: () => {} });
  const server = app.listen({ hostname: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${server.server?.port}${config.basePath}`;
});
afterAll(async () => {
  await app?.stop();
  await store?.close();
});

describe("the CapabilityStatement and the routes agree", () => {
  for (const fhirVersion of ["1.0", "3.0", "4.0"]) {
    test(`every interaction and operation listed for Binary answers (fhirVersion ${fhirVersion})`, async () => {
      const codes = await listed(fhirVersion);
      expect(codes.has("$expunge")).toBe(true);
      for (const code of codes) {
        const routes = Object.entries(ROUTE_CODES).filter(([, listedAs]) => listedAs === code);
        expect({ code, routes: routes.length > 0 }).toEqual({ code, routes: true });
        for (const [route] of routes) {
          const [method = "", path = ""] = route.split(" ");
          const status = await call(method, path);
          expect({ route, answered: status !== 404 && status !== 405 }).toEqual({ route, answered: true });
        }
      }
    });

    test(`every Binary route that answers is listed (fhirVersion ${fhirVersion})`, async () => {
      const codes = await listed(fhirVersion);
      const prefix = new URL(base).pathname;
      const routes = app.routes
        .filter((route) => route.path.startsWith(`${prefix}/Binary`))
        .map((route) => `${route.method} ${route.path.slice(prefix.length)}`);
      expect(routes.length).toBeGreaterThan(10);
      for (const route of new Set(routes)) {
        const [method = "", path = ""] = route.split(" ");
        const status = await call(method, path);
        if (status === 405) continue;
        const code = ROUTE_CODES[route] ?? "not listed";
        expect({ route, listed: codes.has(code) }).toEqual({ route, listed: true });
      }
    });
  }
});
