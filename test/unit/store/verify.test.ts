/**
 * `fhirbin verify` (storage.md "Integrity tooling"): each kind of damage is a finding, the orphans a crash
 * legitimately leaves are not, and `--gc` removes orphans only, never while a server holds the store.
 */
import { afterAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { EXIT, runCli } from "../../../src/cli.ts";
import { parseDuration } from "../../../src/config.ts";
import { createFsStore } from "../../../src/store/fs.ts";
import { layout } from "../../../src/store/fs-layout.ts";
import type { StoredVersion } from "../../../src/store/types.ts";
import { collectGarbage, VerifyError, verifyStore } from "../../../src/store/verify.ts";
import { tempDir } from "../../harness.ts";

const dirs: Disposable[] = [];
afterAll(() => {
  for (const dir of dirs) dir[Symbol.dispose]();
});

const HOUR = 3_600_000;

/** A closed store with `doc` at versions 1..3 (the last a deletion) and `other` at version 1. */
async function populated(): Promise<{
  root: string;
  paths: ReturnType<typeof layout>;
  doc: StoredVersion[];
}> {
  const dir = tempDir("fhirbin-verify-");
  dirs.push(dir);
  const store = await createFsStore(dir.path);
  const put = async (id: string, text: string): Promise<StoredVersion> =>
    (
      await store.update(id, {
        contentType: "text/plain",
        securityContext: null,
        body: new TextEncoder().encode(text),
        maxSize: 1024,
      })
    ).version;
  const doc = [await put("doc", "first version"), await put("doc", "second version")];
  await store.delete("doc");
  await put("other", "another document");
  await store.close();
  return { root: dir.path, paths: layout(dir.path), doc };
}

/** The findings of a full verification, as path: problem lines. */
async function findings(root: string): Promise<string[]> {
  return (await verifyStore(root)).findings.map(({ path, problem }) => `${path}: ${problem}`);
}

describe("verify: a sound store", () => {
  test("has no findings and is counted", async () => {
    const { root } = await populated();
    const report = await verifyStore(root);
    expect({ ...report, elapsedMs: 0 }).toEqual({
      ids: 2,
      versions: 4,
      deletions: 1,
      blobs: 3,
      bytes: "first version".length + "second version".length + "another document".length,
      hashed: 3,
      findings: [],
      orphans: [],
      elapsedMs: 0,
    });
  });

  test("a directory that is not a data directory is refused", async () => {
    using dir = tempDir("fhirbin-verify-");
    await expect(verifyStore(dir.path)).rejects.toThrow(VerifyError);
    await expect(verifyStore(join(dir.path, "absent"))).rejects.toThrow(/not a fhirbin data directory/);
  });
});

describe("verify: damage is a finding", () => {
  test("a flipped byte in a blob", async () => {
    const { root, paths, doc } = await populated();
    const blob = paths.blob(doc[0]?.sha256 ?? "");
    const bytes = readFileSync(blob);
    bytes[3] = (bytes[3] ?? 0) ^ 0x01;
    writeFileSync(blob, bytes);
    expect(await findings(root)).toEqual([
      expect.stringMatching(/^blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}: content does not match its name/),
    ]);
    // Sampling 0% checks sizes only, so it cannot see a flipped byte.
    expect((await verifyStore(root, { sample: 0 })).findings).toEqual([]);
  });

  test("a missing blob", async () => {
    const { root, paths, doc } = await populated();
    rmSync(paths.blob(doc[1]?.sha256 ?? ""));
    expect(await findings(root)).toEqual([
      expect.stringMatching(/: missing; referenced by binary\/[0-9a-f]{2}\/_doc\.2\.json$/),
    ]);
  });

  test("a truncated blob, even when not sampled", async () => {
    const { root, paths, doc } = await populated();
    truncateSync(paths.blob(doc[0]?.sha256 ?? ""), 5);
    const report = await verifyStore(root, { sample: 0 });
    expect(report.findings.map((f) => f.problem)).toEqual([
      expect.stringMatching(/^has 5 bytes, binary\/[0-9a-f]{2}\/_doc\.1\.json says 13$/),
    ]);
  });

  test("a sidecar that is not JSON, or not of its file", async () => {
    const { root, paths } = await populated();
    writeFileSync(paths.sidecar("other", 1), '{"id": "other", "versionId"');
    writeFileSync(
      paths.sidecar("doc", 1),
      readFileSync(paths.sidecar("doc", 1), "utf8").replace('"versionId": 1', '"versionId": 7'),
    );
    expect(await findings(root)).toEqual([
      expect.stringMatching(/_doc\.1\.json: has versionId 7, the file name says 1$/),
      expect.stringMatching(/_other\.1\.json: is not valid JSON/),
    ]);
  });

  test("a sidecar of the wrong shape or named for another id; stray entries", async () => {
    const { root, paths } = await populated();
    const record = JSON.parse(readFileSync(paths.sidecar("other", 1), "utf8"));
    writeFileSync(paths.sidecar("other", 1), JSON.stringify({ ...record, sha256: "abc" }));
    mkdirSync(paths.fanDir("moved"), { recursive: true });
    writeFileSync(paths.sidecar("moved", 1), JSON.stringify(record));
    writeFileSync(join(paths.fanDir("moved"), "notes.txt"), "");
    mkdirSync(join(paths.fanDir("moved"), "_old"));
    expect(await findings(root)).toEqual([
      expect.stringMatching(
        /\/_old: a directory of an earlier fhirbin's layout \(start fhirbin once to convert the store\)$/,
      ),
      expect.stringMatching(/\/notes\.txt: unexpected entry \(only <id>\.<n>\.json sidecars belong here\)$/),
      expect.stringMatching(
        /_moved\.1\.json: belongs to id "other", whose sidecars are [0-9a-f]{2}\/_other\.<n>\.json$/,
      ),
      expect.stringMatching(/_other\.1\.json: has no valid sha256 \("abc"\)$/),
    ]);
  });

  test("a sidecar's fileName: optional, and when present a file name without path or control characters", async () => {
    const { root, paths } = await populated();
    const record = JSON.parse(readFileSync(paths.sidecar("other", 1), "utf8"));
    writeFileSync(paths.sidecar("other", 1), JSON.stringify({ ...record, fileName: "Referral letter.pdf" }));
    expect(await findings(root)).toEqual([]);
    for (const [fileName, problem] of [
      [42, "is not a string"],
      ["../secret.pdf", "has a path"],
      ["a\r\nb.pdf", "has control characters"],
    ] as const) {
      writeFileSync(paths.sidecar("other", 1), JSON.stringify({ ...record, fileName }));
      expect(await findings(root)).toEqual([
        expect.stringMatching(new RegExp(`_other\\.1\\.json: has a fileName that ${problem}$`)),
      ]);
    }
  });

  test("a version gap", async () => {
    const { root, paths } = await populated();
    rmSync(paths.sidecar("doc", 2));
    expect(await findings(root)).toEqual([
      expect.stringMatching(/^binary\/[0-9a-f]{2}\/_doc: versions must be 1\.\.n; missing 2$/),
    ]);
  });
});

describe("verify: orphans are garbage, not findings", () => {
  /** A store with one orphan of each kind: a temp file, an unreferenced blob. */
  async function withOrphans() {
    const store = await populated();
    const { paths } = store;
    const unreferenced = "f".repeat(64);
    mkdirSync(paths.blobDir(unreferenced), { recursive: true });
    writeFileSync(paths.blob(unreferenced), "torn upload that never got a sidecar");
    writeFileSync(join(paths.tmp, "0b6f6c2e"), "partial");
    return { ...store, unreferenced };
  }

  test("they are listed and the store stays sound", async () => {
    const { root } = await withOrphans();
    const report = await verifyStore(root);
    expect(report.findings).toEqual([]);
    expect(report.orphans.map(({ kind, path }) => `${kind} ${path}`).sort()).toEqual([
      expect.stringMatching(/^blob blobs\/sha256\/ff\/f{64}$/),
      "temp tmp/0b6f6c2e",
    ]);
  });

  test("--gc removes only orphans, and only those older than the grace period", async () => {
    const { root, paths, unreferenced } = await withOrphans();
    const before = await verifyStore(root);

    const young = await collectGarbage(root, { graceMs: HOUR });
    // Temp files go with the lock, as on a server start; young blobs stay.
    expect(young.removed.map((o) => o.path)).toEqual(["tmp/0b6f6c2e"]);
    expect(young.kept.map((o) => o.kind)).toEqual(["blob"]);

    const old = new Date(Date.now() - 2 * HOUR);
    utimesSync(paths.blob(unreferenced), old, old);
    const aged = await collectGarbage(root, { graceMs: HOUR });
    expect(aged).toMatchObject({ kept: [], removed: [{ kind: "blob" }] });

    const after = await verifyStore(root);
    expect(after).toMatchObject({ findings: [], orphans: [] });
    expect({ ...after, elapsedMs: 0 }).toEqual({ ...before, orphans: [], elapsedMs: 0 });
    expect(existsSync(join(root, ".lock"))).toBe(false);
  });

  test("--gc is refused while a server holds the store, and when there are findings", async () => {
    const { root, paths, doc, unreferenced } = await withOrphans();
    const server = await createFsStore(root);
    await expect(collectGarbage(root, { graceMs: 0 })).rejects.toThrow(/is in use by process/);
    await server.close();

    rmSync(paths.blob(doc[0]?.sha256 ?? ""));
    await expect(collectGarbage(root, { graceMs: 0 })).rejects.toThrow(/1 finding/);
    expect(existsSync(paths.blob(unreferenced))).toBe(true);
  });
});

describe("fhirbin verify (the command)", () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const status = await runCli(argv, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { status, out, err };
  };

  test("exit status 0 when sound, 1 on a finding, with a summary and --json", async () => {
    const { root, paths } = await populated();
    writeFileSync(join(paths.tmp, "leftover"), "x");
    const sound = await run(["verify", "--data", root]);
    expect(sound.status).toBe(EXIT.ok);
    expect(sound.out.at(-1)).toMatch(
      /^verified .* 2 ids, 4 versions \(1 deletions\), 3 blobs of 43 B, 3 hashed \(sample 100%\); 0 findings, 1 orphans \(1 B\)$/,
    );

    rmSync(paths.sidecar("doc", 1));
    const broken = await run(["verify", "--data", root, "--json"]);
    expect(broken.status).toBe(EXIT.failure);
    expect(JSON.parse(broken.out.join("\n"))).toMatchObject({
      dataDir: root,
      findings: [{ problem: "versions must be 1..n; missing 1" }],
      // The blob only the removed sidecar referenced is now an orphan too.
      orphans: [{ kind: "blob" }, { kind: "temp", path: "tmp/leftover" }],
      gc: null,
    });
  });

  test("--gc while the store is held is refused with exit status 1", async () => {
    const { root } = await populated();
    const server = await createFsStore(root);
    try {
      const result = await run(["verify", "--data", root, "--gc", "--grace", "0s"]);
      expect(result.status).toBe(EXIT.failure);
      expect(result.err.join("\n")).toMatch(/^fhirbin verify: --gc refused: the data directory .* is in use/);
    } finally {
      await server.close();
    }
  });

  test("bad arguments are all reported, exit status 2", async () => {
    expect(await run(["verify", "--sample", "101", "--grace", "soon"])).toEqual({
      status: EXIT.usage,
      out: [],
      err: [
        "fhirbin verify: invalid arguments:",
        '  - --sample: "101" must be a percentage 0-100',
        '  - --grace: "soon" must be a duration like 30m',
        "  - --grace: only applies with --gc",
      ],
    });
    expect((await run(["verify", "--bogus"])).status).toBe(EXIT.usage);
    expect([
      parseDuration("0s"),
      parseDuration("30m"),
      parseDuration("1.5h"),
      parseDuration("1 week"),
    ]).toEqual([0, 1_800_000, 5_400_000, null]);
  });
});
