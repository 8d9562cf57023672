/**
 * The search index through the compiled executable: `fhirbin reindex` rebuilds it from the sidecars (and
 * refuses while a server holds the directory), and after a kill -9 between a sidecar commit and the index
 * update the next start catches up in the background while already answering requests.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { INDEX_FILE } from "../../src/search/search-index.ts";
import { decodeId, groupSidecars, isFanName } from "../../src/store/fs-layout.ts";
import { createStore } from "../../src/store/index.ts";
import { runFhirbin, type Server, startFhirbin, tempDir, waitUntil, withDeadline } from "./spawn.ts";

const TOKEN = "exe-search-token-0123456789";

interface Bundle {
  total?: number;
  link: { relation: string; url: string }[];
  entry?: { resource: { id: string; meta: { versionId: string } }; search?: { mode: string } }[];
}

const serverArgs = (dir: string): string[] => ["--port", "0", "--data", dir, "--token", TOKEN];

async function put(server: Server, id: string, body = id): Promise<Response> {
  return server.request(
    `/Binary/${id}`,
    { method: "PUT", body, headers: { "content-type": "text/plain" } },
    TOKEN,
  );
}

/** Every current `id/version` the server's search finds, following next links. */
async function searchAll(server: Server): Promise<string[]> {
  const found: string[] = [];
  let url: string | undefined = `${server.base}/Binary?_sort=_id&_count=1000`;
  while (url) {
    const res: Response = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    // While the index catches up, an outcome entry says the results may be incomplete.
    for (const entry of bundle.entry ?? [])
      if (entry.search?.mode === "match") found.push(`${entry.resource.id}/${entry.resource.meta.versionId}`);
    url = bundle.link.find((l) => l.relation === "next")?.url;
  }
  return found;
}

/** Every current `id/version` the sidecars on disk hold (deletions included: the burst never deletes). */
function onDisk(dir: string): string[] {
  const binary = join(dir, "binary");
  const latest = new Map<string, number>();
  for (const fan of readdirSync(binary).filter(isFanName)) {
    for (const [encoded, versions] of groupSidecars(readdirSync(join(binary, fan))).versions) {
      const id = decodeId(encoded);
      if (id) latest.set(id, Math.max(...versions));
    }
  }
  return [...latest].map(([id, n]) => `${id}/${n}`);
}

const byId = (list: string[]): string[] =>
  list.toSorted((a, b) => {
    const [x = "", y = ""] = [a.split("/")[0], b.split("/")[0]];
    return x < y ? -1 : x > y ? 1 : 0;
  });

describe("fhirbin reindex", () => {
  test("rebuilds a deleted or damaged index from the sidecars", async () => {
    using dir = tempDir();
    {
      await using server = await startFhirbin(serverArgs(dir.path));
      for (const id of ["a", "b", "c"]) expect((await put(server, id)).status).toBe(201);
      expect((await put(server, "a", "second")).status).toBe(200);
      expect((await server.request("/Binary/b", { method: "DELETE" }, TOKEN)).status).toBe(204);
      expect(await server.stop()).toBe(0);
    }
    for (const damage of ["delete", "garbage"]) {
      const index = join(dir.path, INDEX_FILE);
      if (damage === "delete")
        for (const suffix of ["", "-wal", "-shm"]) Bun.spawnSync(["rm", "-f", index + suffix]);
      else writeFileSync(index, "this is not a database");

      const result = await runFhirbin(["reindex", "--data", dir.path]);
      expect(result).toEqual({
        exitCode: 0,
        stdout: expect.stringMatching(
          new RegExp(`^reindexed ${dir.path}: 5 versions in [0-9.]+ s, index [0-9.]+ MiB\\n$`),
        ),
        stderr: "",
      });
      expect(existsSync(index)).toBe(true);

      await using server = await startFhirbin(serverArgs(dir.path));
      // A rebuilt index is trusted at once: nothing to catch up, nothing logged about it.
      expect(await searchAll(server)).toEqual(["a/2", "c/1"]);
      const history = (await (await server.request("/Binary/_history", {}, TOKEN)).json()) as Bundle;
      expect(history.total).toBe(5);
      expect(await server.stop()).toBe(0);
      expect(server.stderr.text).not.toContain("search index");
    }
  });

  test("refuses while a server holds the data directory, and on a directory that is not a store", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(serverArgs(dir.path));
    const busy = await runFhirbin(["reindex", "--data", dir.path]);
    expect(busy.exitCode).toBe(1);
    expect(busy.stderr).toStartWith(
      `fhirbin reindex: the data directory ${dir.path} is in use by process ${server.pid}`,
    );
    expect(busy.stdout).toBe("");
    // The server is unharmed.
    expect((await put(server, "still-here")).status).toBe(201);

    using empty = tempDir();
    const none = await runFhirbin(["reindex", "--data", join(empty.path, "nothing")]);
    expect(none).toEqual({
      exitCode: 1,
      stdout: "",
      stderr: `fhirbin reindex: ${join(empty.path, "nothing")} is not a fhirbin data directory (no binary/ in it)\n`,
    });
    const usage = await runFhirbin(["reindex", "--color"]);
    expect(usage.exitCode).toBe(2);
  });
});

describe("recovery after kill -9", () => {
  test("a version committed but not indexed when the process died is found once the index caught up", async () => {
    using dir = tempDir();
    // The state a kill -9 between a sidecar commit and the index update leaves: the write journalled and
    // committed, the index never told, no clean stop.
    const store = await createStore(dir.path);
    await store.update("indexed", {
      contentType: "text/plain",
      securityContext: null,
      body: new Uint8Array(1),
      maxSize: 10,
    });
    store.index.journal(["committed-not-indexed"], []);
    await store.inner.update("committed-not-indexed", {
      contentType: "application/pdf",
      securityContext: null,
      body: new Uint8Array(2),
      maxSize: 10,
    });
    store.index.close();
    await store.inner.close();

    await using server = await startFhirbin(serverArgs(dir.path));
    await withDeadline(
      server.stderr.waitFor(/^caught up the search index: 1 versions added in \d+ ms$/m, "the catch-up line"),
      "the catch-up",
    );
    expect(await searchAll(server)).toEqual(["committed-not-indexed/1", "indexed/1"]);
    expect(await server.stop()).toBe(0);
  });

  test("killed during a burst of writes: after a restart search finds every committed version", async () => {
    using dir = tempDir();
    const acknowledged = new Set<string>();
    {
      await using server = await startFhirbin(serverArgs(dir.path));
      let stop = false;
      const writers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const id = `w${w}-${i % 5}`;
          const res = await put(server, id, `${i}`).catch(() => null);
          if (!res) return;
          const version = res.headers.get("etag")?.match(/\d+/)?.[0];
          if (res.ok && version) acknowledged.add(`${id}/${version}`);
        }
      });
      await waitUntil(() => acknowledged.size >= 40, "40 acknowledged writes");
      server.process.kill("SIGKILL");
      stop = true;
      await server.process.exited;
      await Promise.all(writers);
    }

    await using server = await startFhirbin(serverArgs(dir.path));
    const disk = onDisk(dir.path);
    // Every acknowledged write is on disk, and search converges on exactly what the sidecars hold.
    for (const write of acknowledged) {
      const [id = "", version = "0"] = write.split("/");
      const current = disk.find((entry) => entry.startsWith(`${id}/`)) ?? "";
      expect(Number(current.split("/")[1])).toBeGreaterThanOrEqual(Number(version));
    }
    let found: string[] = [];
    const expected = byId(disk);
    const end = performance.now() + 4_000;
    while (performance.now() < end) {
      found = await searchAll(server);
      if (JSON.stringify(found) === JSON.stringify(expected)) break;
    }
    expect(found).toEqual(expected);
    expect(await server.stop()).toBe(0);
  });
});
