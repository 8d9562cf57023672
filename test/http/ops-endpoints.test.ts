/**
 * Operations through the real app on port 0: /healthz, /readyz, /metrics without a token, the request log
 * (text and JSON, no query string) and X-Request-ID accepted or generated and echoed.
 */
import { describe, expect, test } from "bun:test";
import { createApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import type { ReadinessCheck } from "../../src/http/ops.ts";
import { createStore } from "../../src/store/index.ts";
import type { Store } from "../../src/store/types.ts";
import { TEST_TOKEN, tempDir } from "../harness.ts";

interface OpsServer extends AsyncDisposable {
  origin: string;
  base: string;
  lines: string[];
  fetch(path: string, init?: RequestInit): Promise<Response>;
}

async function startOps(
  args: string[] = [],
  options: { ready?: Record<string, ReadinessCheck>; store?: (store: Store) => Store } = {},
): Promise<OpsServer> {
  const dir = tempDir();
  const config = loadConfig(["--port", "0", "--data", dir.path, "--token", TEST_TOKEN, ...args], {});
  const raw = await createStore(config.dataDir);
  // A new store's index catches up in the background; /readyz says "not ready" until it has.
  await raw.ready();
  const store = options.store ? options.store(raw) : raw;
  const lines: string[] = [];
  const app = createApp({
    config,
    store,
    log: (line) => lines.push(line),
    ...(options.ready ? { ready: options.ready } : {}),
  });
  app.listen({ hostname: "127.0.0.1", port: 0 });
  const origin = `http://127.0.0.1:${app.server?.port}`;
  return {
    origin,
    base: origin + config.basePath,
    lines,
    fetch: (path, init) => fetch(origin + path, init),
    async [Symbol.asyncDispose]() {
      await app.stop();
      await raw.close();
      dir[Symbol.dispose]();
    },
  };
}

const AUTH = { authorization: `Bearer ${TEST_TOKEN}` };

/** Waits until the log has `count` lines (onAfterResponse runs once the response is sent). */
async function logged(server: OpsServer, count: number): Promise<string[]> {
  const end = performance.now() + 2000;
  while (server.lines.length < count && performance.now() < end) await Bun.sleep(5);
  return server.lines;
}

describe("health and readiness", () => {
  test("/healthz answers 200 without a token", async () => {
    await using server = await startOps();
    const res = await server.fetch("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  test("/readyz is 200 while the store is writable", async () => {
    await using server = await startOps();
    const res = await server.fetch("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready", checks: { searchIndex: true, store: true } });
  });

  test("/readyz is 503 when the store is not writable", async () => {
    await using server = await startOps([], {
      store: (store) => ({ ...store, writable: async () => false }),
    });
    const res = await server.fetch("/readyz");
    expect(res.status).toBe(503);
    // The spread copies the index's catchingUp getter as a plain value, so only the store check is asserted.
    expect(await res.json()).toMatchObject({ status: "not ready", checks: { store: false } });
  });

  test("/readyz runs the extra checks; one that fails or throws makes it 503", async () => {
    let indexReady = false;
    await using server = await startOps([], {
      ready: {
        index: () => indexReady,
        broken: () => {
          throw new Error("boom");
        },
      },
    });
    const before = await server.fetch("/readyz");
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({
      status: "not ready",
      checks: { searchIndex: true, store: true, index: false, broken: false },
    });
    indexReady = true;
    expect((await server.fetch("/readyz")).status).toBe(503);
  });

  test("the ops routes are at the server root, not below the FHIR base", async () => {
    await using server = await startOps();
    const res = await fetch(`${server.base}/healthz`, { headers: AUTH });
    expect(res.status).toBe(404);
    await res.arrayBuffer();
  });
});

describe("request log", () => {
  test("one text line per request: time, id, method, path without query, status, bytes, ms", async () => {
    await using server = await startOps();
    const res = await fetch(`${server.base}/Binary?access_token=SECRET123&x=1`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "text/plain", "x-request-id": "req-42" },
      body: "hello",
    });
    expect(res.status).toBe(201);
    await res.arrayBuffer();
    const [line] = await logged(server, 1);
    expect(line).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z req-42 POST \/fhir\/Binary 201 (\d+|-) \d+(\.\d)?ms$/,
    );
    expect(line).not.toContain("SECRET123");
  });

  test("--log-format json writes one JSON object per request, errors included", async () => {
    await using server = await startOps(["--log-format", "json"]);
    const read = await fetch(`${server.base}/Binary/nope?token=SECRET`, { headers: AUTH });
    expect(read.status).toBe(404);
    await read.arrayBuffer();
    const unrouted = await server.fetch("/no/such/route");
    expect(unrouted.status).toBe(404);
    await unrouted.arrayBuffer();
    const health = await server.fetch("/healthz", { headers: { "x-request-id": "abc" } });
    await health.arrayBuffer();
    const lines = (await logged(server, 3)).map((line) => JSON.parse(line));
    expect(lines.map(({ method, path, status }) => ({ method, path, status }))).toEqual([
      { method: "GET", path: "/fhir/Binary/nope", status: 404 },
      { method: "GET", path: "/no/such/route", status: 404 },
      { method: "GET", path: "/healthz", status: 200 },
    ]);
    expect(lines[2]).toEqual({
      time: expect.any(String),
      requestId: "abc",
      method: "GET",
      path: "/healthz",
      status: 200,
      bytes: 16,
      ms: expect.any(Number),
    });
    expect(JSON.stringify(lines)).not.toContain("SECRET");
  });

  test("--log-format off logs nothing", async () => {
    await using server = await startOps(["--log-format", "off"]);
    await (await server.fetch("/healthz")).arrayBuffer();
    await Bun.sleep(20);
    expect(server.lines).toEqual([]);
  });
});

describe("X-Request-ID", () => {
  test("a sane id is echoed, on successes and on errors", async () => {
    await using server = await startOps();
    for (const [path, status] of [
      ["/healthz", 200],
      ["/fhir/Binary/x", 401],
      ["/nowhere", 404],
    ] as const) {
      const res = await server.fetch(path, { headers: { "x-request-id": "trace-1.2_3:4" } });
      expect(res.status).toBe(status);
      expect(res.headers.get("x-request-id")).toBe("trace-1.2_3:4");
      await res.arrayBuffer();
    }
  });

  test("a missing, too long or odd id is replaced by a generated UUID", async () => {
    await using server = await startOps();
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const header of [undefined, "x".repeat(129), "a b", "<script>", ""]) {
      const res = await server.fetch(
        "/healthz",
        header === undefined ? {} : { headers: { "x-request-id": header } },
      );
      expect(res.headers.get("x-request-id")).toMatch(uuid);
      await res.arrayBuffer();
    }
    const one = (await server.fetch("/healthz")).headers.get("x-request-id");
    const two = (await server.fetch("/healthz")).headers.get("x-request-id");
    expect(one).not.toBe(two);
  });
});

describe("metrics", () => {
  test("/metrics counts requests by interaction and status, latency, bytes and stored documents", async () => {
    await using server = await startOps(["--log-format", "off"]);
    const body = "x".repeat(1000);
    const created = await fetch(`${server.base}/Binary`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "text/plain" },
      body,
    });
    expect(created.status).toBe(201);
    await created.arrayBuffer();
    const id = /Binary\/([^/]+)\//.exec(created.headers.get("location") ?? "")?.[1];
    const read = await fetch(`${server.base}/Binary/${id}`, { headers: AUTH });
    expect(await read.text()).toBe(body);
    const missing = await fetch(`${server.base}/Binary/missing`, { headers: AUTH });
    await missing.arrayBuffer();
    const removed = await fetch(`${server.base}/Binary/${id}`, { method: "DELETE", headers: AUTH });
    expect(removed.status).toBe(204);
    await Bun.sleep(20);

    const res = await server.fetch("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    const value = (name: string): number | undefined => {
      const line = text.split("\n").find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.slice(name.length + 1));
    };
    expect(value('fhirbin_http_requests_total{interaction="create",status="201"}')).toBe(1);
    expect(value('fhirbin_http_requests_total{interaction="read",status="200"}')).toBe(1);
    expect(value('fhirbin_http_requests_total{interaction="read",status="404"}')).toBe(1);
    expect(value('fhirbin_http_requests_total{interaction="delete",status="204"}')).toBe(1);
    expect(value('fhirbin_http_request_duration_seconds_count{interaction="read"}')).toBe(2);
    expect(value('fhirbin_http_request_duration_seconds_bucket{interaction="read",le="+Inf"}')).toBe(2);
    expect(value('fhirbin_http_request_duration_seconds_bucket{interaction="read",le="10"}')).toBe(2);
    expect(value("fhirbin_http_request_bytes_total")).toBe(1000);
    expect(value("fhirbin_http_response_bytes_total")).toBeGreaterThanOrEqual(1000);
    expect(value("fhirbin_store_documents_created_total")).toBe(1);
    expect(value("fhirbin_store_documents_deleted_total")).toBe(1);
    expect(value("fhirbin_store_versions_written_total")).toBe(1);
    expect(value("fhirbin_store_content_bytes_written_total")).toBe(1000);
    expect(text).toContain("# TYPE fhirbin_http_request_duration_seconds histogram\n");
  });
});
