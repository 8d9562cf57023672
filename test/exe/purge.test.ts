/**
 * Purge through the compiled executable: `fhirbin purge` on a stopped store, and the server killed with
 * SIGKILL while it runs `$expunge` on many large versions, restarted on the same data directory: every id
 * is then in its state before the purge or after it, and `verify` finds nothing.
 */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { layout } from "../../src/store/fs-layout.ts";
import { runFhirbin, type Server, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "purge-exe-token-0123456789abcdef";
const PREVIOUS = JSON.stringify({
  resourceType: "Parameters",
  parameter: [{ name: "expungePreviousVersions", valueBoolean: true }],
});
const DELETED = JSON.stringify({
  resourceType: "Parameters",
  parameter: [{ name: "expungeDeletedResources", valueBoolean: true }],
});

const serverArgs = (data: string): string[] => ["--port", "0", "--data", data, "--token", TOKEN];

async function put(server: Server, id: string, body: Uint8Array | string): Promise<void> {
  const res = await server.request(
    `/Binary/${id}`,
    { method: "PUT", body, headers: { "content-type": "application/octet-stream" } },
    TOKEN,
  );
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 201) throw new Error(`PUT ${id}: ${res.status}`);
}

async function statusOf(server: Server, path: string, init: RequestInit = {}): Promise<number> {
  const res = await server.request(path, init, TOKEN);
  await res.arrayBuffer();
  return res.status;
}

/** The version ids of an instance history, newest first; empty for a 404. */
async function historyOf(server: Server, id: string): Promise<number[]> {
  const res = await server.request(
    `/Binary/${id}/_history`,
    { headers: { accept: "application/fhir+json" } },
    TOKEN,
  );
  if (res.status === 404) return [];
  const bundle = (await res.json()) as { entry?: { response?: { etag?: string } }[] };
  return (bundle.entry ?? []).map((entry) => Number(/^W\/"(\d+)"$/.exec(entry.response?.etag ?? "")?.[1]));
}

async function verifyFindings(data: string): Promise<unknown[]> {
  const result = await runFhirbin(["verify", "--json", "--data", data]);
  return (JSON.parse(result.stdout) as { findings: unknown[] }).findings;
}

const sha256 = (bytes: Uint8Array | string): string =>
  new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

describe("fhirbin purge", () => {
  test("--help lists both modes", async () => {
    const result = await runFhirbin(["purge", "--help"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("--previous-versions");
    expect(result.stdout).toContain("--deleted");
  });

  test("bad usage exits 2: no id, two ids, neither mode or both", async () => {
    using dir = tempDir();
    for (const args of [[], ["a", "b", "--deleted"], ["a"], ["a", "--deleted", "--previous-versions"]]) {
      const result = await runFhirbin(["purge", ...args, "--data", dir.path]);
      expect({ args, exitCode: result.exitCode }).toEqual({ args, exitCode: 2 });
    }
  });

  test("purges a stopped store as $expunge does; refused while a server holds the lock", async () => {
    using dir = tempDir();
    {
      await using server = await startFhirbin(serverArgs(dir.path));
      for (const text of ["a one", "a two", "a three"]) await put(server, "a", text);
      await put(server, "b", "b one");
      expect(await statusOf(server, "/Binary/b", { method: "DELETE" })).toBe(204);
      const refused = await runFhirbin(["purge", "a", "--previous-versions", "--data", dir.path]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain("fhirbin purge:");
      expect(await server.stop()).toBe(0);
    }
    const purged = await runFhirbin(["purge", "a", "--previous-versions", "--data", dir.path]);
    expect({ exitCode: purged.exitCode, stdout: purged.stdout.trim() }).toEqual({
      exitCode: 0,
      stdout: "purged Binary/a: version(s) 1, 2 removed, 2 content file(s) erased",
    });
    expect((await runFhirbin(["purge", "b", "--deleted", "--data", dir.path])).exitCode).toBe(0);
    const live = await runFhirbin(["purge", "a", "--deleted", "--data", dir.path]);
    expect(live.exitCode).toBe(1);
    expect(live.stderr).toContain("is not deleted");
    const unknown = await runFhirbin(["purge", "nope", "--deleted", "--data", dir.path]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain("Binary/nope is not known");
    for (const text of ["a one", "a two", "b one"])
      expect(existsSync(layout(dir.path).blob(sha256(text)))).toBe(false);
    expect(await verifyFindings(dir.path)).toEqual([]);

    await using server = await startFhirbin(serverArgs(dir.path));
    expect(await historyOf(server, "a")).toEqual([3]);
    expect(await statusOf(server, "/Binary/a/_history/1")).toBe(404);
    expect(await statusOf(server, "/Binary/b")).toBe(404);
    // The search index forgot them too.
    const res = await server.request("/Binary/_history?_summary=count", {}, TOKEN);
    expect(((await res.json()) as { total: number }).total).toBe(1);
  });
});

describe("kill -9 during $expunge", () => {
  const ROUNDS = 4;
  const IDS = 4;
  const VERSIONS = 8;
  const SIZE = 256 * 1024;

  test("after a SIGKILL in the middle of purges each id is old or new, erased content is gone, verify is clean", async () => {
    using dir = tempDir();
    const seen = { old: 0, new: 0, finished: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const ids = Array.from({ length: IDS }, (_, i) => `r${round}-${i}`);
      // Even ids keep their current version, odd ones are deleted and purged whole.
      const contents = new Map<string, Uint8Array[]>();
      const acknowledged = new Set<string>();
      {
        await using server = await startFhirbin(serverArgs(dir.path));
        for (const id of ids) {
          const versions = Array.from({ length: VERSIONS }, () =>
            crypto.getRandomValues(new Uint8Array(SIZE)),
          );
          contents.set(id, versions);
          for (const body of versions) await put(server, id, body);
          if (ids.indexOf(id) % 2 === 1)
            expect(await statusOf(server, `/Binary/${id}`, { method: "DELETE" })).toBe(204);
        }
        const purges = ids.map((id, i) =>
          server
            .request(
              `/Binary/${id}/$expunge`,
              {
                method: "POST",
                body: i % 2 === 0 ? PREVIOUS : DELETED,
                headers: { "content-type": "application/fhir+json" },
              },
              TOKEN,
            )
            .then(async (res) => {
              await res.arrayBuffer();
              if (res.status === 200) acknowledged.add(id);
            })
            .catch(() => {}),
        );
        // A moment at random while the purges run (they take some tens of ms here, fsyncs included); in
        // the last round, once they are answered.
        if (round === ROUNDS - 1) await Promise.all(purges);
        else await Bun.sleep(Math.random() * 60);
        server.process.kill("SIGKILL");
        await server.exited();
        await Promise.all(purges);
        if (round === ROUNDS - 1) expect(acknowledged.size).toBe(IDS);
      }
      await using server = await startFhirbin(serverArgs(dir.path));
      // Purges the kill cut short, finished by the start before it listened.
      seen.finished += server.stderr.text.split("a crash had cut short").length - 1;
      for (const [i, id] of ids.entries()) {
        const versions = contents.get(id) ?? [];
        const history = await historyOf(server, id);
        const all = Array.from(
          { length: versions.length + (i % 2) },
          (_, n) => versions.length + (i % 2) - n,
        );
        const purged = i % 2 === 0 ? [VERSIONS] : [];
        expect({ id, history }).toEqual({ id, history: history.length === all.length ? all : purged });
        const state = history.length === all.length ? "old" : "new";
        seen[state]++;
        // An answered purge survives the crash.
        if (acknowledged.has(id)) expect({ id, state }).toEqual({ id, state: "new" });
        if (i % 2 === 0) {
          const current = new Uint8Array(
            await (await server.request(`/Binary/${id}`, {}, TOKEN)).arrayBuffer(),
          );
          expect(sha256(current)).toBe(sha256(versions.at(-1) ?? new Uint8Array()));
        } else {
          expect(await statusOf(server, `/Binary/${id}`)).toBe(state === "old" ? 410 : 404);
        }
        if (state === "new") {
          const erased = i % 2 === 0 ? versions.slice(0, -1) : versions;
          for (const body of erased) expect(existsSync(layout(dir.path).blob(sha256(body)))).toBe(false);
        }
      }
      expect(await server.stop()).toBe(0);
      expect(await verifyFindings(dir.path)).toEqual([]);
    }
    console.log(
      `kill -9 during $expunge: ${seen.old} ids found in their old state, ${seen.new} in the new one; ` +
        `${seen.finished} purges cut short were finished by the next start`,
    );
  });
});
