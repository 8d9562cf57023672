/**
 * Issue 7: `/docs/json` is an OpenAPI 3 document describing every route of the FHIR API, and `/docs` loads
 * only assets fhirbin serves itself (the browser check is test/browser/docs.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { DOCS_SCRIPT_PATH } from "../../src/http/docs.ts";
import { createStore } from "../../src/store/index.ts";
import { startServer, TEST_TOKEN } from "../harness.ts";

interface OpenApi {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
}
interface Operation {
  summary?: string;
  operationId?: string;
  parameters?: ({ $ref: string } | { name: string; in: string })[];
  responses: Record<string, { description?: string; $ref?: string }>;
}

const METHODS = ["get", "head", "post", "put", "patch", "delete"];

/** The routes of the real app (method and OpenAPI path), leaving out the docs and the demo web app. */
async function apiRoutes(args: string[] = []): Promise<string[]> {
  const config = loadConfig(["--token", TEST_TOKEN, ...args], {});
  const store = await createStore("memory:");
  const app = createApp({ config, store, log: () => {} });
  const routes = app.routes
    .filter((route) => !/^\/(docs(\/|$)|app\/|app-config\.json$|$)/.test(route.path))
    // Routes hidden from the docs on purpose (the FHIR base itself, which only points elsewhere).
    .filter((route) => (route.hooks as { detail?: { hide?: boolean } } | undefined)?.detail?.hide !== true)
    .filter((route) => METHODS.includes(route.method.toLowerCase()))
    .map((route) => `${route.method.toUpperCase()} ${route.path.replace(/:(\w+)/g, "{$1}")}`);
  await store.close();
  return [...new Set(routes)].sort();
}

/** Every `$ref` in a document. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) refs(item, out);
  else if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key === "$ref" && typeof item === "string") out.push(item);
      else refs(item, out);
    }
  }
  return out;
}

describe("/docs/json", () => {
  test("is an OpenAPI 3 document served without a token", async () => {
    await using server = await startServer();
    const answer = await fetch(`${server.origin}/docs/json`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toStartWith("application/json");
    const doc = (await answer.json()) as OpenApi;
    expect(doc.openapi).toMatch(/^3\.0\.\d$/);
    expect(doc.info.title).toBe("fhirbin FHIR Binary API");
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: "http", scheme: "bearer" }),
    });
  });

  test("lists every route of the API, each with a summary and described responses", async () => {
    await using server = await startServer();
    const doc = (await (await fetch(`${server.origin}/docs/json`)).json()) as OpenApi;
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((method) => METHODS.includes(method))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
    const routes = await apiRoutes();
    // Every Binary route there is, and nothing that is not a route.
    expect(routes.filter((route) => route.includes("/Binary")).length).toBeGreaterThanOrEqual(16);
    expect(documented).toEqual(routes);
    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect({ where, summary: typeof operation.summary }).toEqual({ where, summary: "string" });
        expect({ where, id: operationIds.has(operation.operationId ?? "") }).toEqual({ where, id: false });
        operationIds.add(operation.operationId ?? "");
        const responses = Object.entries(operation.responses ?? {});
        expect({ where, responses: responses.length > 0 }).toEqual({ where, responses: true });
        for (const [status, answer] of responses) {
          expect({ where, status, described: Boolean(answer.description || answer.$ref) }).toEqual({
            where,
            status,
            described: true,
          });
        }
        // Each {param} of the path is declared.
        for (const [, name] of path.matchAll(/\{(\w+)\}/g)) {
          const declared = (operation.parameters ?? []).some((parameter) =>
            "$ref" in parameter
              ? parameter.$ref === `#/components/parameters/${name}`
              : parameter.name === name,
          );
          expect({ where, name, declared }).toEqual({ where, name, declared: true });
        }
      }
    }
  });

  test("documents the headers and parameters of reads and writes, and every $ref resolves", async () => {
    await using server = await startServer();
    const doc = (await (await fetch(`${server.origin}/docs/json`)).json()) as OpenApi;
    const parameters = doc.components.parameters as Record<string, { name: string; in: string }>;
    const names = (operation: Operation | undefined) =>
      (operation?.parameters ?? []).map((parameter) =>
        "$ref" in parameter ? parameters[parameter.$ref.split("/").pop() ?? ""]?.name : parameter.name,
      );
    const read = doc.paths["/fhir/Binary/{id}"]?.get;
    expect(names(read)).toEqual(
      expect.arrayContaining(["id", "_format", "_summary", "Range", "If-None-Match", "If-Modified-Since"]),
    );
    expect(Object.keys(read?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "206", "304", "401", "404", "410", "416"]),
    );
    expect(names(doc.paths["/fhir/Binary/{id}"]?.put)).toEqual(
      expect.arrayContaining([
        "If-Match",
        "If-None-Match",
        "X-Security-Context",
        "Content-Encoding",
        "Prefer",
      ]),
    );
    expect(names(doc.paths["/fhir/Binary"]?.get)).toEqual(
      expect.arrayContaining(["_id", "contenttype", "_lastUpdated", "_sort", "_count", "_cursor"]),
    );
    for (const target of new Set(refs(doc))) {
      const [, section, name] = /^#\/components\/(\w+)\/(.+)$/.exec(target) ?? [];
      expect({ target, found: Boolean(section && name && doc.components[section]?.[name]) }).toEqual({
        target,
        found: true,
      });
    }
  });

  test("follows the configured base path", async () => {
    await using server = await startServer({ args: ["--base-path", "/api/r3"] });
    const doc = (await (await fetch(`${server.origin}/docs/json`)).json()) as OpenApi;
    expect(Object.keys(doc.paths)).toContain("/api/r3/Binary/{id}/_history/{vid}");
    expect(Object.keys(doc.paths).some((path) => path.startsWith("/fhir/"))).toBe(false);
    const routes = await apiRoutes(["--base-path", "/api/r3"]);
    expect(routes).toContain("GET /api/r3/Binary/{id}/_history/{vid}");
  });
});

describe("/docs", () => {
  test("is HTML that loads only fhirbin's own assets, served without a token", async () => {
    await using server = await startServer();
    const answer = await fetch(`${server.origin}/docs`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toStartWith("text/html");
    const html = await answer.text();
    const sources = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)].map((match) => match[1]);
    expect(sources).toEqual([DOCS_SCRIPT_PATH]);
    expect(html).toContain('data-url="docs/json"');
    // No remote URL anywhere in the page (the fonts option included).
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).toContain('"withDefaultFonts":false');
  });

  test("serves the embedded API reference script", async () => {
    await using server = await startServer();
    const answer = await fetch(server.origin + DOCS_SCRIPT_PATH);
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const script = await answer.text();
    expect(script.length).toBeGreaterThan(1_000_000);
    expect(script).toContain("@scalar/api-reference");
  });
});
