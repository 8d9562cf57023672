/**
 * Import and export through the compiled executable, as an outside review found them: re-runs of an
 * `--id-from-filename` import that put one file on top of another, and the README's logical copy (`export
 * --all` then `import`) that imported the metadata files instead of the documents. The README's own commands
 * are read from README.md and run as a user would paste them.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { scanIds } from "../../src/search/fs-scan.ts";
import {
  ROOT,
  importRecords as records,
  requireExe,
  runFhirbin,
  type Server,
  spawnShell,
  startFhirbin,
  tempDir,
} from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";
const PDF = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 1, 2, 3]);

/** The [file name, status] of every record. */
function statuses(stdout: string): Array<[string, unknown]> {
  return records(stdout).map((r) => [String(r.file).split("/").pop() as string, r.status]);
}

/** The current content of `id` in a stopped data directory, or null when export says it is not known. */
async function exported(data: string, id: string): Promise<string | null> {
  const result = await runFhirbin(["export", id, "--data", data]);
  return result.exitCode === 0 ? result.stdout : null;
}

describe("re-running an import never puts a different file on top of an earlier one", () => {
  test("letter-1.pdf and letter-1.txt clash: both are refused on every run, and named in the summary", async () => {
    using dir = tempDir();
    const source = join(dir.path, "letters");
    mkdirSync(source);
    writeFileSync(join(source, "letter-1.pdf"), PDF);
    writeFileSync(join(source, "letter-1.txt"), "the letter as text");
    writeFileSync(join(source, "letter-2.txt"), "another letter");
    const data = join(dir.path, "store");
    const args = ["import", source, "--data", data, "--id-from-filename", "--json"];
    const clash = [join(source, "letter-1.pdf"), join(source, "letter-1.txt")];
    for (const run of [1, 2, 3]) {
      const result = await runFhirbin(args);
      expect(result.exitCode).toBe(1);
      expect(
        records(result.stdout).map(({ file, status, id, clash }) => ({ file, status, id, clash })),
      ).toEqual([
        { file: clash[0], status: "refused", id: "letter-1", clash },
        { file: clash[1], status: "refused", id: "letter-1", clash },
        {
          file: join(source, "letter-2.txt"),
          status: run === 1 ? "imported" : "skipped",
          id: "letter-2",
          clash: undefined,
        },
      ]);
      expect(result.stderr).toContain(
        `clash: id letter-1 is given by 2 files: ${clash.join(", ")}: none imported`,
      );
      expect(result.stderr).toContain(
        `imported ${run === 1 ? 1 : 0}, skipped ${run === 1 ? 0 : 1} already stored, refused 2 (ids in a clash: 1), failed 0`,
      );
      expect(await exported(data, "letter-1")).toBeNull();
    }
  });

  test("a file named twice on the command line is imported once, not a clash with itself", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    writeFileSync(join(source, "letter-3.txt"), "once");
    const data = join(dir.path, "store");
    const result = await runFhirbin([
      "import",
      source,
      join(source, "letter-3.txt"),
      "--data",
      data,
      "--id-from-filename",
      "--json",
    ]);
    expect(result.exitCode).toBe(0);
    expect(statuses(result.stdout)).toEqual([["letter-3.txt", "imported"]]);
  });

  test("with --force a clash imports the first file in byte order of the paths, on every run", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    // Both names give the id `x--`. By UTF-8 bytes U+FF01 (EF BC 81) comes before U+1F600 (F0 9F 98 80);
    // by UTF-16 code units (JavaScript's default sort) the emoji's surrogate D83D comes first.
    const first = join(source, "x\uff01\uff01.txt");
    const second = join(source, "x\u{1f600}.txt");
    writeFileSync(first, "fullwidth");
    writeFileSync(second, "emoji");
    const data = join(dir.path, "store");
    for (const run of [1, 2]) {
      const result = await runFhirbin([
        "import",
        source,
        "--data",
        data,
        "--id-from-filename",
        "--json",
        "--force",
      ]);
      expect(result.exitCode).toBe(1);
      expect(statuses(result.stdout)).toEqual([
        [first.split("/").pop() as string, run === 1 ? "imported" : "skipped"],
        [second.split("/").pop() as string, "refused"],
      ]);
      expect(result.stderr).toContain(
        `clash: id x-- is given by 2 files: ${first}, ${second}: imported the first only`,
      );
      expect(await exported(data, "x--")).toBe("fullwidth");
    }
  });

  test("a file whose id holds other content is refused, an identical re-run is a no-op, --force adds a version", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    const note = join(source, "note.txt");
    writeFileSync(note, "first");
    const data = join(dir.path, "store");
    const args = ["import", source, "--data", data, "--id-from-filename", "--json"];
    expect(records((await runFhirbin(args)).stdout).map((r) => [r.status, r.versionId])).toEqual([
      ["imported", 1],
    ]);
    const again = await runFhirbin(args);
    expect(again.exitCode).toBe(0);
    expect(statuses(again.stdout)).toEqual([["note.txt", "skipped"]]);

    writeFileSync(note, "second");
    const changed = await runFhirbin(args);
    expect(changed.exitCode).toBe(1);
    const [record] = records(changed.stdout);
    expect(record?.status).toBe("refused");
    expect(record?.error).toBe(
      "Binary/note version 1 has another content: not stored on top of it (--force stores it as a new version)",
    );
    expect(changed.stderr).toContain(`refused: ${note}: Binary/note version 1 has another content`);
    expect(changed.stderr).toContain("imported 0, skipped 0 already stored, refused 1, failed 0");
    expect(await exported(data, "note")).toBe("first");

    // A different security context is a difference too: it is not silently left unapplied.
    const context = await runFhirbin([...args, "--security-context", "Patient/1"]);
    expect(records(context.stdout)[0]?.error).toContain("has another content, securityContext (none)");

    const forced = await runFhirbin([...args, "--force"]);
    expect(forced.exitCode).toBe(0);
    expect(records(forced.stdout).map((r) => [r.status, r.versionId])).toEqual([["imported", 2]]);
    expect(await exported(data, "note")).toBe("second");
    const forcedAgain = await runFhirbin([...args, "--force"]);
    expect(statuses(forcedAgain.stdout)).toEqual([["note.txt", "skipped"]]);
  });
});

/** The README's logical copy commands, in the order it gives them. */
function readmeLogicalCopy(): { exportAll: string; importData: string; importUrl: string } {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n");
  const line = (prefix: string, contains: string): string => {
    const found = lines.find((text) => text.startsWith(prefix) && text.includes(contains));
    if (!found) throw new Error(`README.md has no command starting ${prefix} with ${contains}`);
    return found;
  };
  return {
    exportAll: line("fhirbin export --all ./copy", "--data /var/lib/fhirbin"),
    importData: line("fhirbin import ./copy", "--data /srv/fhirbin-new"),
    importUrl: line("fhirbin import ./copy", "--url http://127.0.0.1:8080/fhir"),
  };
}

/** Runs a README command in `cwd` with `fhirbin` on the PATH, as a user pasting it; resolves with its result. */
async function runReadme(command: string, cwd: string, env: Record<string, string> = {}) {
  await using shell = spawnShell(command, {
    cwd,
    env: { PATH: `${dirname(requireExe())}:${process.env.PATH ?? ""}`, ...env },
  });
  const exitCode = await shell.exited();
  return { exitCode, stdout: shell.stdout.text, stderr: shell.stderr.text };
}

interface Document {
  body: string;
  contentType: string | null;
  securityContext: string | null;
}

/** The documents the source store is given: ids with dots, JSON named like its metadata, a security context. */
const DOCUMENTS: Record<string, Document> = {
  "letter-1": { body: PDF, contentType: "application/pdf", securityContext: "Patient/9000000009" },
  note: { body: "version two", contentType: "text/plain; charset=utf-8", securityContext: null },
  report: { body: '{"resourceType":"Other"}', contentType: "application/json", securityContext: "Patient/2" },
  "scan.2024": { body: PNG.toString("latin1"), contentType: "image/png", securityContext: "Group/ward-7" },
  odd: { body: "custom", contentType: "application/x-custom; profile=a", securityContext: null },
};

/** The versions before the current ones: `note` is at version 2, `gone` was deleted (version 2). */
const NOTE_1: Document = { body: "version one", contentType: "text/plain", securityContext: "Patient/1" };
const GONE_1: Document = { body: "deleted later", contentType: "text/plain", securityContext: null };

/** Every version of the filled store by `<id>/<versionId>`: its status and, when there is one, its content. */
const HISTORY: Record<string, { status: number } & Partial<Document>> = {
  ...Object.fromEntries(Object.entries(DOCUMENTS).map(([id, doc]) => [`${id}/1`, { status: 200, ...doc }])),
  "note/1": { status: 200, ...NOTE_1 },
  "note/2": { status: 200, ...DOCUMENTS.note },
  "gone/1": { status: 200, ...GONE_1 },
  "gone/2": { status: 410 },
};

/** Fills a store through a running server: the documents above, an older version of `note`, a deletion. */
async function fillStore(data: string): Promise<void> {
  await using server = await startFhirbin(["--port", "0", "--data", data, "--token", TOKEN]);
  const put = async (id: string, doc: Document): Promise<void> => {
    const headers: Record<string, string> = { "content-type": doc.contentType ?? "" };
    if (doc.securityContext) headers["x-security-context"] = doc.securityContext;
    const response = await server.request(
      `/Binary/${id}`,
      { method: "PUT", headers, body: Buffer.from(doc.body, "latin1") },
      TOKEN,
    );
    expect([200, 201]).toContain(response.status);
  };
  await put("note", NOTE_1);
  await put("gone", GONE_1);
  expect((await server.request("/Binary/gone", { method: "DELETE" }, TOKEN)).status).toBe(204);
  for (const [id, doc] of Object.entries(DOCUMENTS)) await put(id, doc);
  expect(await server.stop()).toBe(0);
}

/** Every current document of a running server by id, read back natively. */
async function documentsOf(server: Server, ids: readonly string[]): Promise<Record<string, Document>> {
  const documents: Record<string, Document> = {};
  for (const id of ids) {
    const response = await server.request(`/Binary/${id}`, {}, TOKEN);
    expect(response.status).toBe(200);
    documents[id] = {
      body: Buffer.from(await response.arrayBuffer()).toString("latin1"),
      contentType: response.headers.get("content-type"),
      securityContext: response.headers.get("x-security-context"),
    };
  }
  return documents;
}

/** Every version of every id of HISTORY, read back natively by vread (until a version is not found). */
async function historyOf(server: Server): Promise<typeof HISTORY> {
  const history: typeof HISTORY = {};
  for (const id of new Set(Object.keys(HISTORY).map((key) => key.split("/")[0] as string))) {
    for (let versionId = 1; ; versionId++) {
      const response = await server.request(`/Binary/${id}/_history/${versionId}`, {}, TOKEN);
      if (response.status === 404) break;
      const body = Buffer.from(await response.arrayBuffer()).toString("latin1");
      history[`${id}/${versionId}`] =
        response.status === 200
          ? {
              status: 200,
              body,
              contentType: response.headers.get("content-type"),
              securityContext: response.headers.get("x-security-context"),
            }
          : { status: response.status };
    }
  }
  return history;
}

async function idsOf(data: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const { id } of scanIds(data)) ids.push(id);
  return ids.sort();
}

describe("the README's logical copy gives back the same documents", () => {
  test("export --all then import --id-from-filename --data: ids, bytes, types, security contexts, every version", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    const copy = join(dir.path, "new");
    await fillStore(source);
    const readme = readmeLogicalCopy();
    const exportAll = await runReadme(readme.exportAll.replace("/var/lib/fhirbin", source), dir.path);
    expect(exportAll.exitCode).toBe(0);
    expect(exportAll.stderr).toContain("exported 5 current documents and 1 deleted (8 versions) to ");
    const command = readme.importData.replace("/srv/fhirbin-new", copy);
    const imported = await runReadme(command, dir.path);
    expect(imported.stderr).toContain("imported 6, skipped 0 already stored, refused 0, failed 0 (6 files");
    expect(imported.exitCode).toBe(0);
    // Run again: everything is already stored, nothing is written.
    const again = await runReadme(command, dir.path);
    expect(again.stderr).toContain("imported 0, skipped 6 already stored, refused 0, failed 0");
    expect(again.exitCode).toBe(0);

    expect(await idsOf(copy)).toEqual([...Object.keys(DOCUMENTS), "gone"].sort());
    await using server = await startFhirbin(["--port", "0", "--data", copy, "--token", TOKEN]);
    expect(await documentsOf(server, Object.keys(DOCUMENTS))).toEqual(DOCUMENTS);
    expect(await historyOf(server)).toEqual(HISTORY);
    expect(await server.stop()).toBe(0);
  });

  test("export --all then import --id-from-filename --url --token into a running server, every version", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    await fillStore(source);
    const readme = readmeLogicalCopy();
    expect((await runReadme(readme.exportAll.replace("/var/lib/fhirbin", source), dir.path)).exitCode).toBe(
      0,
    );
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      join(dir.path, "new"),
      "--token",
      TOKEN,
    ]);
    const command = readme.importUrl.replace("http://127.0.0.1:8080/fhir", server.base);
    const imported = await runReadme(command, dir.path, { TOKEN });
    expect(imported.stderr).toContain("imported 6, skipped 0 already stored, refused 0, failed 0 (6 files");
    expect(imported.exitCode).toBe(0);
    const again = await runReadme(command, dir.path, { TOKEN });
    expect(again.stderr).toContain("imported 0, skipped 6 already stored, refused 0, failed 0");
    expect(await documentsOf(server, Object.keys(DOCUMENTS))).toEqual(DOCUMENTS);
    expect(await historyOf(server)).toEqual(HISTORY);
    expect(await server.stop()).toBe(0);
  });

  test("an export folder imports only what its metadata describes, and only content that still matches it", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    await fillStore(source);
    const folder = join(dir.path, "copy");
    expect((await runFhirbin(["export", "--all", folder, "--data", source])).exitCode).toBe(0);
    writeFileSync(join(folder, "note.txt"), "edited after the export");
    writeFileSync(join(folder, "stray.txt"), "put there by hand");
    const copy = join(dir.path, "new");
    const result = await runFhirbin(["import", folder, "--data", copy, "--json"]);
    expect(result.exitCode).toBe(1);
    expect(statuses(result.stdout)).toEqual([
      ["gone.json", "imported"],
      ["letter-1.pdf", "imported"],
      ["note.txt", "failed"],
      ["odd.bin", "imported"],
      ["report.json", "imported"],
      ["scan.2024.png", "imported"],
      ["stray.txt", "refused"],
    ]);
    expect(result.stderr).toContain(
      `refused: ${join(folder, "stray.txt")}: not described by the export's _metadata/`,
    );
    expect(await idsOf(copy)).toEqual(["gone", "letter-1", "odd", "report", "scan.2024"]);

    const withContext = await runFhirbin([
      "import",
      folder,
      "--data",
      copy,
      "--security-context",
      "Patient/1",
    ]);
    expect(withContext.exitCode).toBe(2);
    expect(withContext.stderr).toContain("an export folder's metadata gives each document's own");
  });

  test("a document the export has deleted is not deleted where it is current, unless --force", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    await fillStore(source);
    const folder = join(dir.path, "copy");
    expect((await runFhirbin(["export", "--all", folder, "--data", source])).exitCode).toBe(0);
    const copy = join(dir.path, "new");
    const alive = join(dir.path, "alive");
    mkdirSync(alive);
    writeFileSync(join(alive, "gone.txt"), "still wanted here");
    expect((await runFhirbin(["import", alive, "--data", copy, "--id-from-filename"])).exitCode).toBe(0);
    const args = ["import", folder, "--data", copy, "--json"];
    const refused = await runFhirbin(args);
    expect(refused.exitCode).toBe(1);
    expect(records(refused.stdout).find((r) => r.id === "gone")).toEqual({
      file: join(folder, "_metadata", "gone.json"),
      status: "refused",
      id: "gone",
      error: "Binary/gone version 1 is current, the export has it deleted (--force deletes it)",
    });
    expect(await exported(copy, "gone")).toBe("still wanted here");
    const forced = await runFhirbin([...args, "--force"]);
    expect(forced.exitCode).toBe(0);
    expect(records(forced.stdout).find((r) => r.id === "gone")).toMatchObject({
      status: "imported",
      versionId: 2,
    });
    expect(await exported(copy, "gone")).toBeNull();
  });

  test("an export folder written before exports kept the history imports its current versions", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    await fillStore(source);
    const folder = join(dir.path, "copy");
    expect((await runFhirbin(["export", "--all", folder, "--data", source])).exitCode).toBe(0);
    // The earlier format: the current version's metadata alone, no `versions`, no deleted documents.
    rmSync(join(folder, "_versions"), { recursive: true });
    rmSync(join(folder, "_metadata", "gone.json"));
    for (const id of Object.keys(DOCUMENTS)) {
      const path = join(folder, "_metadata", `${id}.json`);
      const { versions: _, ...current } = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
      writeFileSync(path, JSON.stringify(current));
    }
    const copy = join(dir.path, "new");
    const result = await runFhirbin(["import", folder, "--data", copy]);
    expect(result.stderr).toContain("imported 5, skipped 0 already stored, refused 0, failed 0 (5 files");
    expect(result.exitCode).toBe(0);
    await using server = await startFhirbin(["--port", "0", "--data", copy, "--token", TOKEN]);
    expect(await documentsOf(server, Object.keys(DOCUMENTS))).toEqual(DOCUMENTS);
    expect(await server.stop()).toBe(0);
  });

  test("export --all into a folder that is not empty is refused: a stale document would be imported back", async () => {
    using dir = tempDir();
    const source = join(dir.path, "source");
    await fillStore(source);
    const folder = join(dir.path, "copy");
    mkdirSync(folder);
    writeFileSync(join(folder, "gone.txt"), "left from an earlier export");
    const result = await runFhirbin(["export", "--all", folder, "--data", source]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`${folder} is not empty: --all writes into a new or empty folder`);
  });
});
