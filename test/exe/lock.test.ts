/**
 * The single-instance lock against a race: executables started at the same moment on the lock a `kill -9`
 * left behind. The lock is held by the operating system for the life of the process, so a crash leaves
 * nothing that a newcomer must judge stale, and of two newcomers exactly one gets it.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Child, runFhirbin, spawnFhirbin, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";
/** Pairs started together: with the lock judged stale by reading it, 5 of 40 had both serving. */
const PAIRS = 20;

/** "serving" once the process prints its `listening on` line, else its exit status. */
async function outcome(child: Child): Promise<"serving" | number | null> {
  const serving = await child.stdout.waitFor(/^listening on /m, "the `listening on` line").then(
    () => true,
    () => false,
  );
  return serving ? "serving" : await child.exited();
}

/** Kills a server as a crash would (no clean stop: its lock is left behind). */
async function crash(child: Child): Promise<void> {
  child.process.kill("SIGKILL");
  await child.process.exited;
}

// Two starts of the executable per pair on a loaded 2-core machine: more than npm test's 30 s.
const RACE_MS = 180_000;

test(
  "of two servers started at the same moment on a lock left by kill -9, exactly one serves and the other exits 1 saying the directory is in use; after kill -9 of the holder a restart succeeds at once",
  async () => {
    using dir = tempDir();
    const args = ["--port", "0", "--data", dir.path, "--token", TOKEN];
    const lock = join(dir.path, ".lock");
    await crash(await startFhirbin(args));

    const pairs: Array<{ outcomes: Array<"serving" | number | null>; refusal: string }> = [];
    for (let pair = 0; pair < PAIRS; pair++) {
      // The lock left by the previous holder's crash still names it.
      const stale = (JSON.parse(readFileSync(lock, "utf8")) as { pid: number }).pid;
      await using first = spawnFhirbin(args);
      await using second = spawnFhirbin(args);
      const outcomes = await Promise.all([outcome(first), outcome(second)]);
      const winner = outcomes[0] === "serving" ? first : second;
      const loser = winner === first ? second : first;
      const named = `the data directory ${dir.path} is in use by process ${winner.pid} on ${hostname()}`;
      pairs.push({
        outcomes: outcomes.toSorted(),
        refusal: loser.stderr.text.includes(named) ? "names the holder" : loser.stderr.text,
      });
      expect(stale).not.toBe(winner.pid);
      await crash(winner);
    }
    expect(pairs).toEqual(Array(PAIRS).fill({ outcomes: [1, "serving"], refusal: "names the holder" }));

    await using restarted = await startFhirbin(args);
    const res = await fetch(`${restarted.base}/metadata`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await restarted.stop("SIGTERM")).toBe(0);
  },
  RACE_MS,
);

test("the tools that open a data directory are refused while a server holds it and work after its kill -9", async () => {
  using dir = tempDir();
  const data = join(dir.path, "store");
  const note = join(dir.path, "note.txt");
  await Bun.write(note, "a note");
  const tools = [
    ["import", note, "--data", data, "--id-from-filename"],
    ["export", "note", "-o", join(dir.path, "out.txt"), "--data", data],
    ["reindex", "--data", data],
    ["verify", "--gc", "--data", data],
  ];
  const server = await startFhirbin(["--port", "0", "--data", data, "--token", TOKEN]);
  for (const tool of tools) {
    const result = await runFhirbin(tool);
    expect({
      tool: tool[0],
      exitCode: result.exitCode,
      inUse: result.stderr.includes(`in use by process ${server.pid}`),
    }).toEqual({ tool: tool[0], exitCode: 1, inUse: true });
  }
  await crash(server);
  for (const tool of tools) {
    const result = await runFhirbin(tool);
    expect({ tool: tool[0], exitCode: result.exitCode, stderr: result.stderr }).toMatchObject({
      tool: tool[0],
      exitCode: 0,
    });
  }
  expect(readFileSync(join(dir.path, "out.txt"), "utf8")).toBe("a note");
});
