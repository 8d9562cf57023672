/**
 * Test harness: the real app on port 0 against a temporary store, spoken to over real HTTP,
 * and the compiled executable spawned as a user would run it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import type { AuditSink } from "../src/security/audit.ts";
import { createStore } from "../src/store/index.ts";

/** The token every in-process test server accepts. */
export const TEST_TOKEN = "test-token-0123456789abcdef";

/** A temporary directory removed when disposed. */
export function tempDir(prefix = "fhirbin-test-"): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

export interface TestServer extends AsyncDisposable {
  /** FHIR base URL, e.g. http://127.0.0.1:40123/fhir */
  base: string;
  /** Server origin, e.g. http://127.0.0.1:40123 */
  origin: string;
  token: string;
  dataDir: string;
  /** fetch(base + path) with `Authorization: Bearer <token>` unless `auth: false` (or an explicit Authorization header). */
  request(path: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
}

/**
 * Starts the real app in-process on 127.0.0.1 port 0 with a fresh temporary data directory.
 * `args` are extra CLI flags (e.g. ["--max-size", "1KiB"]); `driver: "memory"` uses the in-memory store.
 */
export async function startServer(
  options: {
    args?: string[];
    env?: Record<string, string>;
    driver?: "fs" | "memory";
    /** Receives the audit trail (none by default). */
    audit?: AuditSink;
    /** Receives the operational log lines (dropped by default). */
    log?: (line: string) => void;
  } = {},
): Promise<TestServer> {
  const dir = tempDir();
  const config = loadConfig(
    ["--port", "0", "--data", dir.path, "--token", TEST_TOKEN, ...(options.args ?? [])],
    options.env ?? {},
  );
  const store = await createStore(options.driver === "memory" ? "memory:" : config.dataDir);
  const app = createApp({
    config,
    store,
    log: options.log ?? (() => {}),
    ...(options.audit ? { audit: options.audit } : {}),
  });
  const server = app.listen({ hostname: config.host, port: config.port });
  const origin = `http://127.0.0.1:${server.server?.port}`;
  const base = origin + config.basePath;
  return {
    base,
    origin,
    token: TEST_TOKEN,
    dataDir: dir.path,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.auth !== false && !headers.has("authorization"))
        headers.set("authorization", `Bearer ${TEST_TOKEN}`);
      return fetch(base + path, { ...init, headers });
    },
    async [Symbol.asyncDispose]() {
      await app.stop();
      await store.close();
      dir[Symbol.dispose]();
    },
  };
}
