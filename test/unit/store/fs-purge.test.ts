/**
 * The filesystem driver's purge beyond the contract: the first kept version recorded on disk and checked by
 * verify, a journal left by a crash finished by the next open, and content a write in flight is storing
 * kept.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createFsStore } from "../../../src/store/fs.ts";
import { layout } from "../../../src/store/fs-layout.ts";
import { writeJournal } from "../../../src/store/fs-purge.ts";
import type { WriteRequest } from "../../../src/store/types.ts";
import { verifyStore } from "../../../src/store/verify.ts";
import { tempDir } from "../../harness.ts";

const dirs: Disposable[] = [];
afterAll(() => {
  for (const dir of dirs) dir[Symbol.dispose]();
});
const freshDir = (): string => {
  const dir = tempDir("fhirbin-purge-");
  dirs.push(dir);
  return dir.path;
};
const write = (text: string): WriteRequest => ({
  contentType: "text/plain",
  securityContext: null,
  body: new TextEncoder().encode(text),
  maxSize: 1024,
});
const sha256 = (text: string): string => new Bun.CryptoHasher("sha256").update(text).digest("hex");

describe("fs purge on disk", () => {
  test("after a purge of previous versions verify accepts versions starting above 1", async () => {
    const root = freshDir();
    const store = await createFsStore(root);
    for (const text of ["a", "b", "c"]) await store.update("floor", write(text));
    await store.purge("floor", "previous-versions");
    await store.close();
    expect(existsSync(layout(root).first("floor"))).toBe(true);
    expect((await verifyStore(root)).findings).toEqual([]);
    // A fresh open (no cache) finds the current version and the history from the record.
    const reopened = await createFsStore(root);
    expect((await reopened.current("floor"))?.versionId).toBe(3);
    expect((await reopened.history("floor")).map((v) => v.versionId)).toEqual([3]);
    await reopened.close();
  });

  test("verify reports versions below the first kept one and an unfinished purge journal", async () => {
    const root = freshDir();
    const paths = layout(root);
    const store = await createFsStore(root);
    for (const text of ["a", "b"]) await store.update("half", write(text));
    await store.close();
    writeFileSync(paths.first("half"), JSON.stringify({ id: "half", firstVersion: 2 }));
    await writeJournal(paths, null, { id: "half", from: 1, to: 1, last: 2, blobs: [sha256("a")] });
    const problems = (await verifyStore(root)).findings.map((f) => f.problem);
    expect(problems).toEqual([
      "versions 1 are below the first version 2 that a purge kept",
      "an unfinished purge of Binary/half: start fhirbin once to finish it",
    ]);
  });

  test("a purge a crash cut short after its journal is finished by the next open", async () => {
    const root = freshDir();
    const paths = layout(root);
    const store = await createFsStore(root);
    for (const text of ["one", "two", "three"]) await store.update("cut", write(text));
    await store.update("gone", write("gone"));
    await store.delete("gone");
    await store.close();
    // What a kill -9 right after the journals were written leaves: nothing removed yet; for "gone", its
    // first sidecar already removed.
    await writeJournal(paths, null, {
      id: "cut",
      from: 1,
      to: 2,
      last: 3,
      blobs: [sha256("one"), sha256("two")],
    });
    await writeJournal(paths, null, { id: "gone", from: 1, to: 2, last: 2, blobs: [sha256("gone")] });
    rmSync(paths.sidecar("gone", 1));
    const lines: string[] = [];
    const reopened = await createFsStore(root, { log: (line) => lines.push(line) });
    expect(lines.sort()).toEqual([
      "finished the purge of Binary/cut a crash had cut short",
      "finished the purge of Binary/gone a crash had cut short",
    ]);
    expect((await reopened.history("cut")).map((v) => v.versionId)).toEqual([3]);
    expect(await reopened.current("gone")).toBeNull();
    await reopened.close();
    expect(readdirSync(paths.purges)).toEqual([]);
    for (const text of ["one", "two", "gone"]) expect(existsSync(paths.blob(sha256(text)))).toBe(false);
    expect(existsSync(paths.blob(sha256("three")))).toBe(true);
    const report = await verifyStore(root);
    expect(report.findings).toEqual([]);
    expect(report.orphans).toEqual([]);
  });

  test("a purge of a deleted id left unfinished keeps a version written after it when the next open finishes it", async () => {
    const root = freshDir();
    const paths = layout(root);
    const store = await createFsStore(root);
    await store.update("back", write("before"));
    await store.delete("back");
    // What a purge that failed after removing version 1 leaves (its journal, the tombstone alone)...
    await writeJournal(paths, null, { id: "back", from: 1, to: 2, last: 2, blobs: [sha256("before")] });
    writeFileSync(paths.first("back"), JSON.stringify({ id: "back", firstVersion: 2 }));
    rmSync(paths.sidecar("back", 1));
    // ...and the document written again before the server stopped.
    expect((await store.update("back", write("after"))).version.versionId).toBe(3);
    await store.close();
    const reopened = await createFsStore(root);
    expect((await reopened.history("back")).map((v) => v.versionId)).toEqual([3]);
    const current = await reopened.current("back");
    expect(current && !current.deleted && (await reopened.content(current).text())).toBe("after");
    await reopened.close();
    expect((await verifyStore(root)).findings).toEqual([]);
  });

  test("a journal finished after a later purge of the same id does not bring its first version down", async () => {
    const root = freshDir();
    const paths = layout(root);
    const store = await createFsStore(root);
    for (const text of ["v1", "v2", "v3", "v4", "v5"]) await store.update("late", write(text));
    // A purge of versions 1-2 that failed after its first step, then one that succeeded.
    await writeJournal(paths, null, {
      id: "late",
      from: 1,
      to: 2,
      last: 3,
      blobs: [sha256("v1"), sha256("v2")],
    });
    expect(await store.purge("late", "previous-versions")).toEqual({ versions: [1, 2, 3, 4], blobs: 4 });
    await store.close();
    const reopened = await createFsStore(root);
    expect((await reopened.history("late")).map((v) => v.versionId)).toEqual([5]);
    await reopened.close();
    expect((await verifyStore(root)).findings).toEqual([]);
  });

  test("content that a write in flight has linked but not yet committed is not erased by a purge", async () => {
    const root = freshDir();
    const paths = layout(root);
    const store = await createFsStore(root);
    await store.update("old", write("shared content"));
    await store.update("old", write("old current"));
    for (const text of ["new 1", "new 2"]) await store.update("new", write(text));
    // A purge of "new" holds its turn, so the write below stores its content and then waits to commit.
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const holding = store.purge("new", "previous-versions", { beforePurge: () => gate });
    const stream: { controller?: ReadableStreamDefaultController<Uint8Array> } = {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        stream.controller = controller;
      },
    });
    const writing = store.update("new", { ...write(""), body });
    const tmpFiles = (): number => readdirSync(paths.tmp).length;
    stream.controller?.enqueue(new TextEncoder().encode("shared content"));
    await waitFor(() => tmpFiles() === 1);
    stream.controller?.close();
    // Its temp file gone: the content is linked (it was there already), the sidecar not yet.
    await waitFor(() => tmpFiles() === 0);
    expect(await store.purge("old", "previous-versions")).toEqual({ versions: [1], blobs: 0 });
    open();
    await holding;
    expect((await writing).version.versionId).toBe(3);
    const current = await store.current("new");
    expect(current && !current.deleted && (await store.content(current).text())).toBe("shared content");
    await store.close();
    expect((await verifyStore(root)).findings).toEqual([]);
  });
});

/** Resolves once `check` holds, looking again after each turn of the event loop. */
async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}
