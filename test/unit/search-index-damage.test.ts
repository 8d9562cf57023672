/**
 * The write journal across the replacement of a damaged index: a write journalled in the old index and
 * settled after the replacement is recorded in the new one, and its token (which means nothing there)
 * settles no other write's journal entry.
 */
import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { IndexedStore } from "../../src/search/indexed-store.ts";
import { INDEX_FILE } from "../../src/search/search-index.ts";
import { createStore } from "../../src/store/index.ts";
import type { WriteResult } from "../../src/store/types.ts";
import { tempDir } from "../harness.ts";

/** Starts a write of `id` and resolves once it is journalled; it commits only when released. */
async function journalledWrite(
  store: IndexedStore,
  id: string,
): Promise<{ release: () => void; done: Promise<WriteResult> }> {
  const { promise: gate, resolve: release } = Promise.withResolvers<void>();
  const { promise: journalled, resolve: begun } = Promise.withResolvers<void>();
  const done = store.update(id, {
    contentType: "text/plain",
    securityContext: null,
    body: new Uint8Array([1]),
    maxSize: 10,
    // Called once the write's journal entry is committed.
    beforeCommit: () => {
      begun();
      return gate;
    },
  });
  await journalled;
  return { release, done };
}

test("a write journalled in an index replaced as damaged settles in the new one without settling another write's entry", async () => {
  using dir = tempDir();
  const store = await createStore(dir.path);
  await store.ready();
  const before = await journalledWrite(store, "journalled-before");

  const path = join(dir.path, INDEX_FILE);
  const other = new Database(path);
  other.run("PRAGMA wal_checkpoint(TRUNCATE)");
  other.close();
  writeFileSync(path, randomBytes(statSync(path).size));
  let refusal: unknown = null;
  try {
    store.readIndex(() => store.index.snapshot());
  } catch (error) {
    refusal = error;
  }
  expect(refusal).toMatchObject({ status: 503, headers: { "retry-after": "10" } });
  await store.ready();

  // The new index's first journal entry gets the token number the earlier write holds from the old one.
  const after = await journalledWrite(store, "journalled-after");
  before.release();
  await before.done;
  expect(store.index.knownVersions("journalled-before")).toEqual([1]);
  expect(store.index.pending().map((entry) => entry.id)).toEqual(["journalled-after"]);
  after.release();
  await after.done;
  expect(store.index.knownVersions("journalled-after")).toEqual([1]);
  expect(store.index.pending()).toEqual([]);
  await store.close();
});
