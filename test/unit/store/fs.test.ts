import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createFsStore } from "../../../src/store/fs.ts";
import { encodeId, fanOf } from "../../../src/store/fs-layout.ts";
import type { WriteRequest } from "../../../src/store/types.ts";
import { verifyStore } from "../../../src/store/verify.ts";
import { tempDir } from "../../harness.ts";
import { failingStream, testStoreContract } from "./contract.ts";

const dirs: Disposable[] = [];
afterAll(() => {
  for (const dir of dirs) dir[Symbol.dispose]();
});
const freshDir = (): string => {
  const dir = tempDir("fhirbin-fs-");
  dirs.push(dir);
  return dir.path;
};

testStoreContract("fs", () => createFsStore(freshDir()));

/** Every file below `root`, relative, sorted. */
function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push(path.slice(root.length + 1));
    }
  };
  walk(root);
  return out.sort();
}

const write = (body: WriteRequest["body"], maxSize = 1024): WriteRequest => ({
  contentType: "text/plain",
  securityContext: null,
  body,
  maxSize,
});

describe("fs store: layout and crash safety", () => {
  test("encoded ids are distinct under case folding and never special names", () => {
    const ids = ["Abc", "abc", "ABC", "CON", "con", "a.", "a", "nul", "LPT1", "a.b", "a-b", "x".repeat(64)];
    const encoded = ids.map(encodeId);
    expect(new Set(encoded.map((e) => e.toLowerCase())).size).toBe(ids.length);
    for (const name of encoded) {
      expect(name).toMatch(/^_[a-z0-9+~-]+$/);
      expect(name.endsWith(".")).toBe(false);
    }
    expect(encodeId("Abc.1")).toBe("_+abc~1");
  });

  test("a committed version is a blob named by its hash plus a readable sidecar", async () => {
    const root = freshDir();
    const store = await createFsStore(root);
    const { version } = await store.update("Doc-1", write(new TextEncoder().encode("hello")));
    await store.close();
    const sha = version.sha256;
    expect(files(root)).toEqual([
      ".lock.sqlite",
      "binary/.flat",
      `binary/${fanOf("Doc-1")}/_+doc-1.1.json`,
      `blobs/sha256/${sha.slice(0, 2)}/${sha}`,
    ]);
    const sidecar = JSON.parse(await Bun.file(join(root, "binary", fanOf("Doc-1"), "_+doc-1.1.json")).text());
    expect(sidecar).toEqual(version);
  });

  test("a write that fails midway leaves no sidecar, no temp file and no blob", async () => {
    const root = freshDir();
    const store = await createFsStore(root);
    const big = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new Uint8Array(512));
      },
    });
    await expect(store.update("limit", write(big, 4096))).rejects.toMatchObject({ status: 413 });
    await expect(store.update("cut", write(failingStream([new Uint8Array(100)])))).rejects.toThrow();
    expect(files(root).filter((f) => f !== ".lock")).toEqual([".lock.sqlite", "binary/.flat"]);
    await store.close();
  });

  test("temp files left by a crash are swept at start; orphan blobs do not become versions", async () => {
    const root = freshDir();
    mkdirSync(join(root, "tmp"), { recursive: true });
    writeFileSync(join(root, "tmp", "leftover"), "torn upload");
    const store = await createFsStore(root);
    expect(existsSync(join(root, "tmp", "leftover"))).toBe(false);
    await store.close();
  });

  test("a second open of the same directory is refused while the first holds it; the lock goes on close", async () => {
    const root = freshDir();
    const first = await createFsStore(root);
    await expect(createFsStore(root)).rejects.toThrow(/in use by process/);
    await first.close();
    expect(existsSync(join(root, ".lock"))).toBe(false);
    const again = await createFsStore(root);
    await again.close();
  });

  test("a stale lock (dead process) is taken over", async () => {
    const root = freshDir();
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    writeFileSync(
      join(root, ".lock"),
      JSON.stringify({ pid: dead.pid, host: hostname(), started: "2020-01-01T00:00:00Z" }),
    );
    const store = await createFsStore(root);
    await store.close();
  });

  test("the version cache is not the truth: a reopened store sees every version", async () => {
    const root = freshDir();
    const store = await createFsStore(root);
    for (let i = 0; i < 3; i++) await store.update("v", write(new TextEncoder().encode(String(i))));
    await store.delete("v");
    await store.close();
    const reopened = await createFsStore(root);
    expect(await reopened.current("v")).toMatchObject({ versionId: 4, deleted: true });
    expect((await reopened.history("v")).length).toBe(4);
    await reopened.close();
  });
});

/**
 * Rewrites a store into the layout of fhirbin before issue 8's change (a directory per id holding
 * `<n>.json`), as an older fhirbin left it; `keepFlat` names ids whose new names also stay (a conversion
 * cut short by a crash after linking them).
 */
function toEarlierLayout(root: string, keepFlat: readonly string[] = []): void {
  const binary = join(root, "binary");
  rmSync(join(binary, ".flat"));
  for (const fan of readdirSync(binary)) {
    for (const name of readdirSync(join(binary, fan))) {
      const [encoded = "", n = ""] = name.split(".");
      mkdirSync(join(binary, fan, encoded), { recursive: true });
      linkSync(join(binary, fan, name), join(binary, fan, encoded, `${n}.json`));
      if (!keepFlat.map(encodeId).includes(encoded)) rmSync(join(binary, fan, name));
    }
  }
}

describe("fs store: a data directory of the earlier layout", () => {
  const populate = async (root: string) => {
    const store = await createFsStore(root);
    await store.update("Doc-1", write(new TextEncoder().encode("one")));
    await store.update("Doc-1", write(new TextEncoder().encode("two")));
    await store.update("other", write(new TextEncoder().encode("three")));
    const history = await store.history("Doc-1");
    await store.close();
    return history;
  };

  test("is converted when opened, every version kept, and then verifies clean", async () => {
    const root = freshDir();
    const history = await populate(root);
    const before = files(root);
    toEarlierLayout(root);
    expect(files(root)).toContain(`binary/${fanOf("Doc-1")}/_+doc-1/2.json`);

    const lines: string[] = [];
    const store = await createFsStore(root, { log: (line) => lines.push(line) });
    expect(await store.history("Doc-1")).toEqual(history);
    expect((await store.current("other"))?.versionId).toBe(1);
    await store.close();
    expect(files(root)).toEqual(before);
    expect(lines).toEqual([
      "converted the sidecars of 2 ids to this version's layout (binary/<fan>/<id>.<n>.json)",
    ]);
    expect(await verifyStore(root)).toMatchObject({ ids: 2, versions: 3, findings: [], orphans: [] });
  });

  test("a conversion cut short is finished on the next open; foreign files stay for verify", async () => {
    const root = freshDir();
    await populate(root);
    const before = files(root);
    toEarlierLayout(root, ["Doc-1"]);
    const stray = join(root, "binary", fanOf("other"), encodeId("other"), "notes.txt");
    writeFileSync(stray, "mine");

    const lines: string[] = [];
    const store = await createFsStore(root, { log: (line) => lines.push(line) });
    expect((await store.current("Doc-1"))?.versionId).toBe(2);
    expect((await store.current("other"))?.versionId).toBe(1);
    await store.close();
    expect(files(root)).toEqual([...before, stray.slice(root.length + 1)].sort());
    expect(lines).toEqual([
      "converted the sidecars of 2 ids to this version's layout (binary/<fan>/<id>.<n>.json)",
      `left 1 files of the earlier layout in place (run fhirbin verify): ${stray}`,
    ]);
    expect((await verifyStore(root)).findings).toEqual([
      {
        path: `binary/${fanOf("other")}/${encodeId("other")}`,
        problem: "a directory of an earlier fhirbin's layout (start fhirbin once to convert the store)",
      },
    ]);
  });
});

describe("fs store: small blobs kept in memory", () => {
  /** A BunFile names its path; a Blob held in memory does not. */
  const fromDisk = (blob: Blob): boolean => "name" in blob && typeof blob.name === "string";
  const heldSoon = async (get: () => Blob): Promise<Blob> => {
    for (let i = 0; i < 200; i++) {
      const blob = get();
      if (!fromDisk(blob)) return blob;
      await Bun.sleep(5);
    }
    throw new Error("the blob was never held in memory");
  };

  test("a small blob read again is answered from memory, byte for byte", async () => {
    const store = await createFsStore(freshDir());
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const { version } = await store.update("small", write(bytes, bytes.byteLength));
    expect(fromDisk(store.content(version))).toBe(true);
    const held = await heldSoon(() => store.content(version));
    expect(new Uint8Array(await held.arrayBuffer())).toEqual(bytes);
    expect(new Uint8Array(await held.slice(10, 20).arrayBuffer())).toEqual(bytes.slice(10, 20));
    await store.close();
  });

  test("a blob over 64 KiB is always read from its file", async () => {
    const store = await createFsStore(freshDir());
    const bytes = crypto.getRandomValues(new Uint8Array(64 * 1024 + 1));
    const { version } = await store.update("large", write(bytes, bytes.byteLength));
    for (let i = 0; i < 3; i++) {
      const content = store.content(version);
      expect(fromDisk(content)).toBe(true);
      expect(new Uint8Array(await content.arrayBuffer())).toEqual(bytes);
      await Bun.sleep(20);
    }
    await store.close();
  });
});
