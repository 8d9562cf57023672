/**
 * Patient data is for the store's owner only: whatever the umask, the compiled server makes its data
 * directory and everything in it owner-only, and files that root writes into a service account's store
 * stay that account's, so the server running as it can read them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { INDEX_FILE } from "../../src/search/search-index.ts";
import { type Child, requireExe, runFhirbin, spawnShell, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";
const NOBODY = 65534;
/** Running the server as another user needs root and util-linux's setpriv (both in the CI container). */
const CAN_SWITCH_USER = process.geteuid?.() === 0 && Bun.which("setpriv") !== null;

/** Every entry under `root` (root included) whose permission bits are not 0700 (directories) or 0600. */
function notOwnerOnly(root: string): Array<{ path: string; mode: string }> {
  const wrong: Array<{ path: string; mode: string }> = [];
  const visit = (path: string): void => {
    const info = lstatSync(path);
    const mode = info.mode & 0o777;
    if (mode !== (info.isDirectory() ? 0o700 : 0o600)) {
      wrong.push({ path: relative(root, path) || ".", mode: mode.toString(8) });
    }
    if (info.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
  return wrong;
}

/** Every path under `root` (root included) not owned by `uid`. */
function notOwnedBy(root: string, uid: number): string[] {
  const wrong: string[] = [];
  const visit = (path: string): void => {
    const info = lstatSync(path);
    if (info.uid !== uid) wrong.push(relative(root, path) || ".");
    if (info.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
  };
  visit(root);
  return wrong;
}

// The servers spawned inherit the test process's umask: 022 is the usual one, 000 takes nothing away.
describe.each(["022", "000"])("under umask %s", (mask) => {
  let umask = 0;
  beforeAll(() => {
    umask = process.umask(Number.parseInt(mask, 8));
  });
  afterAll(() => {
    process.umask(umask);
  });

  test("the tree that serve, writes and searches create is owner-only: directories 0700, files 0600", async () => {
    using dir = tempDir();
    const data = join(dir.path, "store");
    // No token configured: the server generates auth-token; the audit trail records every request.
    await using server = await startFhirbin(["--port", "0", "--data", data]);
    const token = (await Bun.file(join(data, "auth-token")).text()).trim();
    const auth = { authorization: `Bearer ${token}` };
    const created = await server.request("/Binary", {
      method: "POST",
      headers: { ...auth, "content-type": "text/plain", "x-security-context": "Patient/9000000009" },
      body: "a letter about a patient",
    });
    expect(created.status).toBe(201);
    await created.arrayBuffer();
    for (const [method, body] of [
      ["PUT", "v1"],
      ["PUT", "v2"],
      ["DELETE", null],
    ] as const) {
      const res = await server.request("/Binary/note-1", {
        method,
        headers: { ...auth, "content-type": "text/plain" },
        ...(body === null ? {} : { body }),
      });
      expect(res.ok).toBe(true);
      await res.arrayBuffer();
    }
    const search = await server.request("/Binary?_summary=count", { headers: auth });
    expect(await search.json()).toMatchObject({ total: 1 });

    // While it runs: the lock, the index with its -wal and -shm, tmp/, the audit day file.
    const names = readdirSync(data);
    expect(names).toEqual(
      expect.arrayContaining([".lock", "auth-token", "audit", "binary", "blobs", "tmp", INDEX_FILE]),
    );
    expect(names).toEqual(expect.arrayContaining([`${INDEX_FILE}-wal`, `${INDEX_FILE}-shm`]));
    expect(notOwnerOnly(data)).toEqual([]);
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(notOwnerOnly(data)).toEqual([]);
  });

  test("a data directory an earlier version left readable by others (0755) is made owner-only at start", async () => {
    using dir = tempDir();
    const data = join(dir.path, "store");
    mkdirSync(join(data, "binary"), { recursive: true, mode: 0o755 });
    chmodSync(data, 0o755);
    await using server = await startFhirbin(["--port", "0", "--data", data, "--token", TOKEN]);
    expect(statSync(data).mode & 0o777).toBe(0o700);
    expect(server.stderr.text).toContain(`made the data directory ${data} owner-only (it was 755)`);
    expect(await server.stop("SIGTERM")).toBe(0);
  });
});

describe.skipIf(!CAN_SWITCH_USER)("a store owned by a service account (nobody), written to by root", () => {
  test("a document root imports is owned by the account, and the server running as it serves it (200, not 500) and writes beside it", async () => {
    using dir = tempDir();
    // The service account must be able to reach its store (mkdtemp makes the parent root's, 0700).
    chmodSync(dir.path, 0o711);
    const data = join(dir.path, "store");
    mkdirSync(data, { mode: 0o700 });
    chownSync(data, NOBODY, NOBODY);
    const letter = join(dir.path, "letter.txt");
    writeFileSync(letter, "a letter about a patient");

    const imported = await runFhirbin(["import", letter, "--data", data, "--id-from-filename"]);
    expect(imported.exitCode).toBe(0);
    expect(notOwnedBy(data, NOBODY)).toEqual([]);

    await using server = await serveAs(NOBODY, ["--port", "0", "--data", data, "--token", TOKEN]);
    const auth = { authorization: `Bearer ${TOKEN}` };
    const read = await fetch(`${server.base}/Binary/letter`, { headers: auth });
    expect({ status: read.status, body: await read.text() }).toEqual({
      status: 200,
      body: "a letter about a patient",
    });
    const update = await fetch(`${server.base}/Binary/letter`, {
      method: "PUT",
      headers: { ...auth, "content-type": "text/plain" },
      body: "a second version",
    });
    expect(update.status).toBe(200);
    await update.arrayBuffer();
    const search = await fetch(`${server.base}/Binary?_id=letter`, { headers: auth });
    expect(await search.json()).toMatchObject({ total: 1 });
    server.process.kill("SIGTERM");
    expect(await server.exited()).toBe(0);
    expect(notOwnedBy(data, NOBODY)).toEqual([]);
  });
});

/** The compiled server run as `uid` (setpriv execs it: the process is the server itself), once listening. */
async function serveAs(uid: number, args: readonly string[]): Promise<Child & { base: string }> {
  const command = [
    "exec setpriv",
    `--reuid=${uid}`,
    `--regid=${uid}`,
    "--clear-groups",
    requireExe(),
    ...args,
  ].join(" ");
  const child = spawnShell(command);
  const [, base = ""] = await child.stdout
    .waitFor(/^listening on (\S+)$/m, "the `listening on` line")
    .catch(async (error: Error) => {
      await child[Symbol.asyncDispose]();
      throw new Error(`${error.message}\nstderr:\n${child.stderr.text}`);
    });
  return Object.assign(child, { base });
}
