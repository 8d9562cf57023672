/**
 * `fhirbin import` and `fhirbin export` through the compiled executable: a folder of 1,000 files imported
 * with a progress bar on a terminal and skipped on the second run, content types from magic bytes and
 * extensions, imports into a running server, and exports of one version, of stdout and of everything.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  importRecords as records,
  requireExe,
  runFhirbin,
  spawnShell,
  startFhirbin,
  tempDir,
} from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";

const PDF = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

describe("fhirbin import", () => {
  // Each write is fsynced several times, so 1,000 of them take a few seconds on a slow disk.
  test("a folder of 1,000 files: a progress bar on a terminal, then every file skipped on the second run", async () => {
    const exe = requireExe();
    using dir = tempDir();
    const source = join(dir.path, "letters");
    for (let i = 0; i < 1000; i++) {
      const folder = join(source, `batch-${i % 10}`);
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, `letter-${i}.txt`), `letter number ${i}\n`);
    }
    const data = join(dir.path, "store");
    // script(1) (util-linux, in every Debian) gives the import a pseudo-terminal, as a user running it by
    // hand has; without it, --progress prints the same line without redrawing it.
    const tty = Bun.which("script") !== null;
    await using first = tty
      ? spawnShell(`script -qfec '${exe} import ${source} --data ${data}' /dev/null`)
      : spawnShell(`'${exe}' import '${source}' --data '${data}' --progress 2>&1`);
    expect(await first.exited(60_000)).toBe(0);
    const screen = first.stdout.text;
    if (tty) expect(screen).toContain("\r\u001b[K[");
    expect(screen).toMatch(/\[#{20}\] 1000\/1000 files {2}\S+ KiB\/\S+ KiB {2}\d+ files\/s {2}ETA 0s/);
    expect(screen).toContain("imported 1000, skipped 0 already stored, refused 0, failed 0 (1000 files");

    const second = await runFhirbin(["import", source, "--data", data, "--json"]);
    expect(second.exitCode).toBe(0);
    const lines = records(second.stdout);
    expect(lines).toHaveLength(1000);
    expect(lines.filter((line) => line.status === "skipped")).toHaveLength(1000);
    expect(second.stderr).toContain("imported 0, skipped 1000 already stored, refused 0, failed 0");
    // Not a terminal: no progress line unless --progress asks for one.
    expect(second.stderr).not.toContain("files/s");
  }, 60_000);

  test("content types from magic bytes, then the extension; --json, --security-context, --force", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    writeFileSync(join(source, "scan"), PDF);
    writeFileSync(join(source, "photo.dat"), PNG);
    writeFileSync(join(source, "note.txt"), "hello");
    writeFileSync(join(source, "blob.xyz"), "??");
    const data = join(dir.path, "store");
    const args = ["import", source, "--data", data, "--json", "--security-context", "Patient/9000000009"];
    const first = await runFhirbin([...args, "--progress"]);
    expect(first.exitCode).toBe(0);
    // --progress without a terminal: plain lines on stderr, the last one complete.
    expect(first.stderr).toMatch(/^\[#{20}\] 4\/4 files {2}\S+ B\/\S+ B {2}\d+ files\/s {2}ETA 0s$/m);
    const byFile: Record<string, Record<string, unknown>> = Object.fromEntries(
      records(first.stdout).map((r) => [String(r.file).split("/").pop(), r]),
    );
    expect(
      Object.fromEntries(Object.entries(byFile).map(([name, r]) => [name, [r.status, r.contentType]])),
    ).toEqual({
      scan: ["imported", "application/pdf"],
      "photo.dat": ["imported", "image/png"],
      "note.txt": ["imported", "text/plain; charset=utf-8"],
      "blob.xyz": ["imported", "application/octet-stream"],
    });
    const note = byFile["note.txt"] as Record<string, unknown>;
    expect(note).toEqual({
      file: join(source, "note.txt"),
      status: "imported",
      id: String(note.sha256).slice(0, 32),
      versionId: 1,
      contentType: "text/plain; charset=utf-8",
      size: 5,
      sha256: new Bun.CryptoHasher("sha256").update("hello").digest("hex"),
    });
    // --force writes no version identical to the current one, only one that differs (here: the context).
    const same = await runFhirbin([...args, "--force"]);
    expect(records(same.stdout).map((r) => r.status)).toEqual(Array(4).fill("skipped"));
    const forced = await runFhirbin([...args.slice(0, -1), "Patient/9000000010", "--force"]);
    expect(forced.exitCode).toBe(0);
    expect(records(forced.stdout).map((r) => [r.status, r.versionId])).toEqual(
      Array(4).fill(["imported", 2]),
    );

    // The security context was stored: read it back through a server.
    await using server = await startFhirbin(["--port", "0", "--data", data, "--token", TOKEN]);
    const read = await server.request(`/Binary/${note.id}`, {}, TOKEN);
    expect(read.headers.get("x-security-context")).toBe("Patient/9000000010");
    expect(await read.text()).toBe("hello");
    expect(await server.stop()).toBe(0);
  });

  test("into a running server with --id-from-filename: a changed file is refused, with --force a new version", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    writeFileSync(join(source, "referral-1.txt"), "first");
    writeFileSync(join(source, "bad name!.txt"), "odd");
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      join(dir.path, "store"),
      "--token",
      TOKEN,
    ]);
    const args = ["import", source, "--url", server.base, "--token", TOKEN, "--id-from-filename", "--json"];
    const first = await runFhirbin(args);
    expect(first.exitCode).toBe(0);
    expect(records(first.stdout).map((r) => [r.id, r.status, r.versionId])).toEqual([
      ["bad-name-", "imported", 1],
      ["referral-1", "imported", 1],
    ]);
    const again = await runFhirbin(args);
    expect(records(again.stdout).map((r) => [r.id, r.status])).toEqual([
      ["bad-name-", "skipped"],
      ["referral-1", "skipped"],
    ]);
    writeFileSync(join(source, "referral-1.txt"), "second");
    const changed = await runFhirbin(args);
    expect(changed.exitCode).toBe(1);
    expect(records(changed.stdout).map((r) => [r.id, r.status, r.versionId])).toEqual([
      ["bad-name-", "skipped", undefined],
      ["referral-1", "refused", undefined],
    ]);
    expect(await (await server.request("/Binary/referral-1", {}, TOKEN)).text()).toBe("first");
    const forced = await runFhirbin([...args, "--force"]);
    expect(records(forced.stdout).map((r) => [r.id, r.status, r.versionId])).toEqual([
      ["bad-name-", "skipped", undefined],
      ["referral-1", "imported", 2],
    ]);
    const read = await server.request("/Binary/referral-1", {}, TOKEN);
    expect(await read.text()).toBe("second");

    const denied = await runFhirbin([
      "import",
      source,
      "--url",
      server.base,
      "--token",
      "wrong-token-0123456789",
    ]);
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr).toBe(
      "fhirbin import: the server refused the token given by --token or FHIRBIN_TOKEN\n",
    );
    expect(await server.stop()).toBe(0);
  });

  test("a data directory held by a running server is refused; bad usage exits 2", async () => {
    using dir = tempDir();
    const data = join(dir.path, "store");
    writeFileSync(join(dir.path, "a.txt"), "a");
    await using server = await startFhirbin(["--port", "0", "--data", data, "--token", TOKEN]);
    const held = await runFhirbin(["import", join(dir.path, "a.txt"), "--data", data]);
    expect(held.exitCode).toBe(1);
    expect(held.stderr).toContain(`is in use by process ${server.pid}`);
    expect(await server.stop()).toBe(0);

    const usage = await runFhirbin(["import", "--data", data]);
    expect(usage.exitCode).toBe(2);
    expect(usage.stderr).toContain("give at least one file or folder to import");
  });
});

describe("fhirbin export", () => {
  test("one document, a given version, stdout, and --all with metadata", async () => {
    using dir = tempDir();
    const data = join(dir.path, "store");
    const source = join(dir.path, "in");
    mkdirSync(source);
    writeFileSync(join(source, "letter.pdf"), PDF);
    writeFileSync(join(source, "note.txt"), "v1");
    expect((await runFhirbin(["import", source, "--data", data, "--id-from-filename"])).exitCode).toBe(0);
    writeFileSync(join(source, "note.txt"), "v2");
    expect(
      (await runFhirbin(["import", source, "--data", data, "--id-from-filename", "--force"])).exitCode,
    ).toBe(0);

    const out = join(dir.path, "out.txt");
    const one = await runFhirbin(["export", "note", "--data", data, "-o", out]);
    expect(one.exitCode).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v2");
    const old = await runFhirbin(["export", "note", "--version", "1", "--data", data, "-o", out]);
    expect(old.exitCode).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("v1");
    const piped = await runFhirbin(["export", "letter", "--data", data]);
    expect(piped.stdout).toBe(PDF);
    const missing = await runFhirbin(["export", "nope", "--data", data]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("Binary/nope is not known");

    const target = join(dir.path, "export");
    const all = await runFhirbin(["export", "--all", target, "--data", data]);
    expect(all.exitCode).toBe(0);
    expect(readdirSync(target).sort()).toEqual(["_metadata", "_versions", "letter.pdf", "note.txt"]);
    expect(readFileSync(join(target, "_versions", "note.1.txt"), "utf8")).toBe("v1");
    expect(readFileSync(join(target, "letter.pdf"), "utf8")).toBe(PDF);
    const version = (versionId: number, text: string, file: string) => ({
      versionId,
      lastUpdated: expect.any(String),
      contentType: "text/plain; charset=utf-8",
      securityContext: null,
      size: text.length,
      sha256: new Bun.CryptoHasher("sha256").update(text).digest("hex"),
      file,
      // The name of the file each version was imported from.
      fileName: "note.txt",
    });
    expect(JSON.parse(readFileSync(join(target, "_metadata", "note.json"), "utf8"))).toEqual({
      id: "note",
      ...version(2, "v2", "note.txt"),
      versions: [version(1, "v1", "_versions/note.1.txt"), version(2, "v2", "note.txt")],
    });
    expect(all.stderr).toContain(`exported 2 current documents (3 versions) to ${target}`);
  });

  test("from a running server with --url", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      join(dir.path, "store"),
      "--token",
      TOKEN,
    ]);
    const put = await server.request(
      "/Binary/remote-1",
      { method: "PUT", headers: { "content-type": "text/plain" }, body: "over http" },
      TOKEN,
    );
    expect(put.status).toBe(201);
    const out = join(dir.path, "remote.txt");
    const result = await runFhirbin([
      "export",
      "remote-1",
      "--url",
      server.base,
      "--token",
      TOKEN,
      "-o",
      out,
    ]);
    expect(result.exitCode).toBe(0);
    expect(existsSync(out) && readFileSync(out, "utf8")).toBe("over http");
    expect(await server.stop()).toBe(0);
  });
});
