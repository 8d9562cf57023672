/**
 * A damaged search index through the real app on port 0: sidecars that cannot be indexed are left out and
 * reported (log, search warning, `fhirbin verify`) while the rest is indexed and /readyz becomes ready; an
 * `index.sqlite` that is garbage before the start or while the server runs is moved aside and rebuilt
 * from the sidecars, and no search answers a silent, wrong total meanwhile.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { createApp } from "../../src/app.ts";
import { runCli } from "../../src/cli.ts";
import { loadConfig } from "../../src/config.ts";
import { INDEX_FILE } from "../../src/search/search-index.ts";
import { createFsStore } from "../../src/store/fs.ts";
import { layout } from "../../src/store/fs-layout.ts";
import { createStore } from "../../src/store/index.ts";
import { withDeadline } from "../deadline.ts";
import { TEST_TOKEN, tempDir } from "../harness.ts";

/** `text` as a regular expression source that matches it literally. */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const DOCUMENTS = Array.from({ length: 8 }, (_, i) => `doc-${i}`);
const WAIT_MS = 15_000;

interface Bundle {
  resourceType: string;
  total?: number;
  entry?: {
    resource: {
      resourceType: string;
      id?: string;
      issue?: { severity: string; code: string; diagnostics: string }[];
    };
    search?: { mode: string };
  }[];
}

interface Served extends AsyncDisposable {
  origin: string;
  /** What the server logged. */
  lines: string[];
  request(path: string, init?: RequestInit): Promise<Response>;
  /** Every id a search finds (one page of up to 100) and the warnings of its outcome entry. */
  search(): Promise<{ status: number; bundle: Bundle; ids: string[]; warnings: string[] }>;
  /** Resolves once /readyz answers 200. */
  ready(): Promise<void>;
}

/** Serves the existing data directory `dir` with the real app on port 0, as `fhirbin --data dir` would. */
async function serve(dir: string): Promise<Served> {
  const config = loadConfig(["--port", "0", "--data", dir, "--token", TEST_TOKEN, "--log-format", "off"], {});
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
  };
  const store = await createStore(config.dataDir, { log });
  const app = createApp({ config, store, log });
  app.listen({ hostname: "127.0.0.1", port: 0 });
  const origin = `http://127.0.0.1:${app.server?.port}`;
  const request = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(origin + config.basePath + path, {
      ...init,
      headers: { authorization: `Bearer ${TEST_TOKEN}`, ...init.headers },
    });
  return {
    origin,
    lines,
    request,
    async search() {
      const res = await request("/Binary?_count=100&_sort=_id");
      const bundle = (await res.json()) as Bundle;
      const ids = (bundle.entry ?? [])
        .filter((e) => e.search?.mode === "match")
        .map((e) => e.resource.id ?? "");
      const outcome = bundle.entry?.find((e) => e.search?.mode === "outcome");
      const warnings = (outcome?.resource.issue ?? []).map((issue) => `${issue.code}: ${issue.diagnostics}`);
      return { status: res.status, bundle, ids, warnings };
    },
    async ready() {
      const polled = (async () => {
        while ((await fetch(`${origin}/readyz`)).status !== 200) await Bun.sleep(10);
      })();
      await withDeadline(polled, "/readyz to answer 200", WAIT_MS);
    },
    async [Symbol.asyncDispose]() {
      await app.stop();
      await store.close();
    },
  };
}

/** Writes the eight documents straight into the store's sidecars, with no index (a restored backup). */
async function seed(dir: string): Promise<void> {
  const store = await createFsStore(dir);
  for (const id of DOCUMENTS) {
    await store.update(id, {
      contentType: "text/plain",
      securityContext: null,
      body: new TextEncoder().encode(id),
      maxSize: 1024,
    });
  }
  await store.close();
}

/** Writes `text` as the sidecar of version 1 of `id`; returns its path inside the data directory. */
function badSidecar(dir: string, id: string, text: string): string {
  const paths = layout(dir);
  mkdirSync(paths.fanDir(id), { recursive: true });
  writeFileSync(paths.sidecar(id, 1), text);
  return relative(dir, paths.sidecar(id, 1));
}

/**
 * Overwrites the index of a running server with random bytes, once everything is in the file itself (as
 * after SQLite's own checkpoints); returns its path.
 */
function overwriteIndex(dir: string): string {
  const index = join(dir, INDEX_FILE);
  const other = new Database(index);
  other.run("PRAGMA wal_checkpoint(TRUNCATE)");
  other.close();
  writeFileSync(index, randomBytes(statSync(index).size));
  return index;
}

/** `fhirbin verify --data dir`, in process: its exit status and output lines. */
async function verify(dir: string): Promise<{ status: number; out: string[] }> {
  const out: string[] = [];
  const status = await runCli(
    ["verify", "--data", dir],
    {},
    { out: (line) => out.push(line), err: () => {} },
  );
  return { status, out };
}

describe("sidecars the index cannot read", () => {
  test("a corrupt sidecar does not stop the rebuild: search finds the other 8 with a warning, /readyz is ready, verify lists it", async () => {
    using dir = tempDir();
    await seed(dir.path);
    const notJson = badSidecar(dir.path, "broken-json", '{"id": "broken-json", "versionId": 1, ');
    const noFields = badSidecar(dir.path, "missing-fields", '{"id": "missing-fields", "versionId": 1}');
    {
      await using server = await serve(dir.path);
      await server.ready();
      const { status, ids, warnings } = await server.search();
      expect(status).toBe(200);
      expect(ids).toEqual(DOCUMENTS);
      expect(warnings).toEqual([
        "incomplete: 2 stored sidecar(s) could not be indexed (damaged or unreadable): results may be incomplete; `fhirbin verify` lists them",
      ]);
      // One line per bad file, naming it (in the order of the scan, by fan-out directory), then the summary.
      const about = (path: string): string[] =>
        server.lines.slice(0, 2).filter((line) => line.includes(path));
      expect(about(notJson)).toEqual([
        expect.stringMatching(
          new RegExp(`^the search index left out ${literal(notJson)}: it is not valid JSON \\(.+\\)$`),
        ),
      ]);
      expect(about(noFields)).toEqual([
        `the search index left out ${noFields}: it has no valid lastUpdated (undefined)`,
      ]);
      expect(server.lines.slice(2)).toEqual([
        expect.stringMatching(
          /^rebuilt the search index from the sidecars: 8 versions added in \d+ ms; 2 sidecar\(s\) could not be indexed \(fhirbin verify lists them\)$/,
        ),
      ]);
      const checked = await verify(dir.path);
      expect(checked.status).toBe(1);
      const findings = checked.out.filter((line) => line.startsWith("finding:"));
      expect(findings).toHaveLength(2);
      expect(findings).toContainEqual(
        expect.stringMatching(new RegExp(`^finding: ${literal(notJson)}: is not valid JSON`)),
      );
      expect(findings).toContainEqual(`finding: ${noFields}: has no valid lastUpdated (undefined)`);
    }
    // A clean restart trusts the index, which remembers that it is incomplete.
    await using again = await serve(dir.path);
    await again.ready();
    const { ids, warnings } = await again.search();
    expect(ids).toEqual(DOCUMENTS);
    expect(warnings).toEqual([
      expect.stringMatching(/^incomplete: 2 stored sidecar\(s\) could not be indexed/),
    ]);
  });

  test("fhirbin reindex leaves a corrupt sidecar out and names it instead of failing; the server then warns", async () => {
    using dir = tempDir();
    await seed(dir.path);
    const notJson = badSidecar(dir.path, "broken-json", "not json at all");
    const out: string[] = [];
    const err: string[] = [];
    const status = await runCli(
      ["reindex", "--data", dir.path],
      {},
      {
        out: (line) => out.push(line),
        err: (line) => err.push(line),
      },
    );
    expect({ status, out, err }).toEqual({
      status: 0,
      out: [
        expect.stringMatching(
          new RegExp(
            `^reindexed ${literal(dir.path)}: 8 versions in [0-9.]+ s, index [0-9.]+ MiB; 1 sidecar\\(s\\) could not be indexed \\(fhirbin verify lists them\\)$`,
          ),
        ),
      ],
      err: [
        expect.stringMatching(
          new RegExp(`^fhirbin reindex: left out ${literal(notJson)}: it is not valid JSON`),
        ),
      ],
    });
    await using server = await serve(dir.path);
    await server.ready();
    const { ids, warnings } = await server.search();
    expect(ids).toEqual(DOCUMENTS);
    expect(warnings).toEqual([
      expect.stringMatching(/^incomplete: 1 stored sidecar\(s\) could not be indexed/),
    ]);
    // A rebuilt index is trusted: nothing rebuilt again, nothing logged.
    expect(server.lines).toEqual([]);
  });
});

describe("a damaged index.sqlite", () => {
  test("garbage in index.sqlite before the start is moved aside, logged and rebuilt from the sidecars", async () => {
    using dir = tempDir();
    await seed(dir.path);
    const index = join(dir.path, INDEX_FILE);
    for (const damage of ["every byte", "all but the first two pages"]) {
      {
        await using server = await serve(dir.path);
        await server.ready();
      }
      // The clean stop checkpointed everything into the file.
      const bytes = readFileSync(index);
      const kept = damage === "every byte" ? 0 : 2 * 4096;
      expect(bytes.length).toBeGreaterThan(kept);
      writeFileSync(index, Buffer.concat([bytes.subarray(0, kept), randomBytes(bytes.length - kept)]));

      await using server = await serve(dir.path);
      await server.ready();
      const { status, ids, warnings } = await server.search();
      expect({ damage, status, ids, warnings }).toEqual({
        damage,
        status: 200,
        ids: DOCUMENTS,
        warnings: [],
      });
      expect(server.lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^the search index ${literal(index)} (could not be used|is damaged) \\(.+\\): moved aside to ${literal(index)}\\.damaged; rebuilding it from the sidecars$`,
          ),
        ),
        expect.stringMatching(/^rebuilt the search index from the sidecars: 8 versions added in \d+ ms$/),
      ]);
      expect(existsSync(`${index}.damaged`)).toBe(true);
    }
  });

  test("garbage written over index.sqlite while the server runs never gives a silent wrong total: 503 or a warning, then rebuilt", async () => {
    using dir = tempDir();
    await seed(dir.path);
    await using server = await serve(dir.path);
    await server.ready();
    expect((await server.search()).ids).toEqual(DOCUMENTS);

    const index = overwriteIndex(dir.path);

    const first = await server.request("/Binary?_count=100");
    expect(first.status).toBe(503);
    expect(first.headers.get("retry-after")).toBe("10");
    expect(await first.json()).toEqual({
      resourceType: "OperationOutcome",
      issue: [
        {
          severity: "fatal",
          code: "transient",
          diagnostics:
            "The search index was found damaged and is being rebuilt from the stored documents; try again shortly",
        },
      ],
    });
    // Writes go on meanwhile, journalled in the new index.
    const put = await server.request("/Binary/written-meanwhile", {
      method: "PUT",
      body: "new",
      headers: { "content-type": "text/plain" },
    });
    expect(put.status).toBe(201);
    // Until the rebuild is over, every answer is a 503 or says it may be incomplete; never a silent short list.
    const expected = [...DOCUMENTS, "written-meanwhile"];
    for (let i = 0; i < 200; i++) {
      if ((await fetch(`${server.origin}/readyz`)).status === 200) break;
      const { status, ids, warnings } = await server.search();
      if (status === 200 && warnings.length === 0) expect(ids).toEqual(expected);
      else if (status !== 200) expect(status).toBe(503);
    }
    await server.ready();
    const after = await server.search();
    expect({ status: after.status, ids: after.ids, warnings: after.warnings }).toEqual({
      status: 200,
      ids: expected,
      warnings: [],
    });
    expect(server.lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^the search index ${literal(index)} is damaged \\(.+\\): moved aside to ${literal(index)}\\.damaged; rebuilding it from the sidecars$`,
        ),
      ),
    );
  });

  test("a write that finds index.sqlite damaged while the server runs is stored, and found once the index is rebuilt", async () => {
    using dir = tempDir();
    await seed(dir.path);
    await using server = await serve(dir.path);
    await server.ready();
    overwriteIndex(dir.path);

    const put = await server.request("/Binary/first-after-damage", {
      method: "PUT",
      body: "new",
      headers: { "content-type": "text/plain" },
    });
    expect(put.status).toBe(201);
    await server.ready();
    const { status, ids, warnings } = await server.search();
    expect({ status, ids, warnings }).toEqual({
      status: 200,
      ids: [...DOCUMENTS, "first-after-damage"].sort(),
      warnings: [],
    });
    expect(server.lines).toContainEqual(expect.stringMatching(/^the search index .+ is damaged \(.+\)/));
  });
});
