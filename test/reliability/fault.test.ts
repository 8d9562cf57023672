/**
 * Fault injection (issue 3) on an 8 MiB tmpfs mounted by the test, as root: a full disk answers 507 and
 * leaves no partial file or sidecar, a read-only disk answers 503, reads keep working through both, and a
 * data directory that cannot be written stops the server at start with a clear message. Skipped, with a
 * notice, where mounting is not allowed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, fstatSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountProblem, run } from "../tmpfs.ts";
import { Fhirbin, filesBelow, runFhirbin, sha256Hex, TOKEN, verifyDataDir } from "./exe.ts";

/**
 * The store's files: the audit trail is left out, since it records the refused writes too (and its day file
 * may be created by them when the first event of the day is still being appended as the disk fills up).
 */
async function storeFiles(dataDir: string): Promise<string[]> {
  return (await filesBelow(dataDir)).filter((file) => !file.startsWith("audit/"));
}

const problem = mountProblem();
if (problem) console.warn(`NOTICE: fault injection tests SKIPPED: cannot mount a tmpfs (${problem})`);

/** An 8 MiB tmpfs mounted for one describe block, with a server on a data directory inside it. */
function withSmallDisk(): { mount: string; dataDir: string; server: () => Fhirbin } {
  const mount = mkdtempSync(join(tmpdir(), "fhirbin-fault-"));
  const dataDir = join(mount, "data");
  let server: Fhirbin | null = null;
  beforeAll(async () => {
    expect(run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mount)).toBeNull();
    server = await Fhirbin.start({ dataDir });
  });
  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
    // Lazy unmounts cannot fail on a busy mount; the read-only bind mount of the data directory goes first.
    if (run("mountpoint", "-q", dataDir) === null) run("umount", "-l", dataDir);
    run("umount", "-l", mount);
    rmSync(mount, { recursive: true, force: true });
  });
  return {
    mount,
    dataDir,
    server: () => {
      if (!server) throw new Error("the server did not start");
      return server;
    },
  };
}

async function write(
  server: Fhirbin,
  path: string,
  body: Uint8Array | string,
  method = "PUT",
): Promise<Response> {
  return server.request(path, { method, body, headers: { "content-type": "application/octet-stream" } });
}

/** Reads `path` natively and as FHIR JSON, expecting `content` both ways. */
async function expectReadable(server: Fhirbin, path: string, content: Uint8Array): Promise<void> {
  const native = await server.request(path);
  expect(native.status).toBe(200);
  expect(sha256Hex(await native.arrayBuffer())).toBe(sha256Hex(content));
  const fhir = await server.request(`${path}?_format=json`);
  expect(fhir.status).toBe(200);
  expect(((await fhir.json()) as { content: string }).content).toBe(content.toBase64());
}

/** Expects an OperationOutcome error with `status` and issue `code`. */
async function expectOutcome(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(await res.json()).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code }] });
}

describe.skipIf(problem !== null)("a full disk", () => {
  const disk = withSmallDisk();
  const kept = crypto.getRandomValues(new Uint8Array(10_000));
  const filler = (): string => join(disk.mount, "filler");

  test("the upload that does not fit gets 507 and leaves nothing behind; reads keep working", async () => {
    const server = disk.server();
    expect((await write(server, "/Binary/kept", kept)).status).toBe(201);
    // Fill every page that is left.
    const fd = openSync(filler(), "w");
    try {
      const chunk = new Uint8Array(64 * 1024);
      for (;;) writeSync(fd, chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      closeSync(fd);
    }
    const before = await storeFiles(disk.dataDir);

    await expectOutcome(await write(server, "/Binary", new Uint8Array(64 * 1024), "POST"), 507, "no-store");
    await expectOutcome(await write(server, "/Binary/kept", "v2"), 507, "no-store");
    expect(await storeFiles(disk.dataDir)).toEqual(before);
    await expectReadable(server, "/Binary/kept", kept);
  });

  test("when only the content fits, the sidecar fails with 507: no sidecar, no temp file, no torn blob", async () => {
    const server = disk.server();
    // One free page (tmpfs counts whole pages): the content takes it, the sidecar finds none.
    const fd = openSync(filler(), "r+");
    ftruncateSync(fd, fstatSync(fd).size - 4096);
    closeSync(fd);
    const before = await storeFiles(disk.dataDir);
    const content = crypto.getRandomValues(new Uint8Array(1000));

    await expectOutcome(await write(server, "/Binary/kept", content), 507, "no-store");
    const added = (await storeFiles(disk.dataDir)).filter((file) => !before.includes(file));
    // At most the complete content, as an orphan blob named by its hash: storage.md "A crash leaves at most
    // orphans", and verify lists it without a finding.
    expect(
      added.every((file) => file === `blobs/sha256/${sha256Hex(content).slice(0, 2)}/${sha256Hex(content)}`),
    ).toBe(true);
    expect(await expectVerified(disk.dataDir)).toBe(added.length);
    await expectReadable(server, "/Binary/kept", kept);
  });

  test("after space is freed, uploads succeed again", async () => {
    const server = disk.server();
    rmSync(filler());
    const content = crypto.getRandomValues(new Uint8Array(1024 * 1024));
    expect((await write(server, "/Binary/kept", content)).status).toBe(200);
    await expectReadable(server, "/Binary/kept", content);
    await expectReadable(server, "/Binary/kept/_history/1", kept);
  });
});

/** Runs `fhirbin verify` (read-only, so fine while the server runs): no finding; resolves with the orphans. */
async function expectVerified(dataDir: string): Promise<number> {
  const { exitCode, report } = await verifyDataDir(dataDir);
  expect(report.findings).toEqual([]);
  expect(exitCode).toBe(0);
  return report.orphans.length;
}

/**
 * Makes the data directory read-only with a read-only bind mount over it: every new open through its path
 * gets EROFS, as after `mount -o remount,ro`. A plain remount of the tmpfs is refused (EBUSY) while any file
 * on it is open for writing, as the SQLite search index keeps its files, so it only serves once the server
 * has stopped.
 */
function setReadOnly(dataDir: string, readOnly: boolean): void {
  if (readOnly && run("mountpoint", "-q", dataDir) !== null)
    expect(run("mount", "--bind", dataDir, dataDir)).toBeNull();
  expect(run("mount", "-o", `remount,bind,${readOnly ? "ro" : "rw"}`, dataDir)).toBeNull();
}

describe.skipIf(problem !== null)("a read-only disk", () => {
  const disk = withSmallDisk();
  const kept = crypto.getRandomValues(new Uint8Array(10_000));

  test("writes get 503 with an OperationOutcome; reads keep working", async () => {
    const server = disk.server();
    expect((await write(server, "/Binary/kept", kept)).status).toBe(201);
    setReadOnly(disk.dataDir, true);

    await expectOutcome(await write(server, "/Binary/kept", "v2"), 503, "transient");
    await expectOutcome(await write(server, "/Binary", "new", "POST"), 503, "transient");
    await expectOutcome(await server.request("/Binary/kept", { method: "DELETE" }), 503, "transient");
    await expectReadable(server, "/Binary/kept", kept);
    expect((await server.request("/Binary/kept/_history")).status).toBe(200);
    const readiness = await fetch(new URL("/readyz", server.base));
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toMatchObject({ status: "not ready", checks: { store: false } });
  });

  test("writable again, writes succeed again", async () => {
    const server = disk.server();
    setReadOnly(disk.dataDir, false);
    expect((await write(server, "/Binary/kept", "v2")).status).toBe(200);
    expect(await (await server.request("/Binary/kept")).text()).toBe("v2");
    expect((await fetch(new URL("/readyz", server.base))).status).toBe(200);
  });

  test("a data directory that cannot be written stops the server at start with a clear message", async () => {
    expect(await disk.server().stop("SIGTERM")).toBe(0);
    setReadOnly(disk.dataDir, true);
    const existing = await runFhirbin(["--port", "0", "--data", disk.dataDir, "--token", TOKEN], 5_000);
    // With the server gone nothing is open for writing, so the whole file system can be remounted read-only.
    expect(run("umount", disk.dataDir)).toBeNull();
    expect(run("mount", "-o", "remount,ro", disk.mount)).toBeNull();
    const fresh = join(disk.mount, "new");
    const created = await runFhirbin(["--port", "0", "--data", fresh, "--token", TOKEN], 5_000);
    const expected = (message: string) => ({
      exitCode: 1,
      stdout: "",
      stderr: `fhirbin: ${message}: permission denied or read-only file system\n`,
    });
    expect([existing, created]).toEqual([
      expected(`cannot write to the data directory ${disk.dataDir}`),
      expected(`cannot create the data directory ${fresh}`),
    ]);
  });
});
