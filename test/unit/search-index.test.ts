/**
 * The search index and the store decorator that feeds it: versions recorded once, snapshots that keep pages
 * stable, type filters, sorting and counting, the type-level history, and recovery: the write journal
 * re-read after a crash between a commit and the index update, a rebuild when the index is missing or the
 * machine rebooted after an unclean stop, and no scan at all after a clean stop.
 */
import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { normaliseContentType, type SearchSort } from "../../src/fhir/search-params.ts";
import { type IndexedStore, withIndex } from "../../src/search/indexed-store.ts";
import { INDEX_FILE, type IndexQuery, SearchIndex } from "../../src/search/search-index.ts";
import { createFsStore } from "../../src/store/fs.ts";
import { decodeId, encodeId } from "../../src/store/fs-layout.ts";
import { createStore } from "../../src/store/index.ts";
import { createMemoryStore } from "../../src/store/memory.ts";
import type { VersionRecord } from "../../src/store/types.ts";
import { tempDir } from "../harness.ts";

const T0 = Date.parse("2024-01-01T00:00:00.000Z");
const at = (minutes: number): string => new Date(T0 + minutes * 60_000).toISOString();

function stored(
  id: string,
  versionId: number,
  minutes: number,
  contentType = "application/pdf",
): VersionRecord {
  return {
    id,
    versionId,
    lastUpdated: at(minutes),
    deleted: false,
    contentType,
    securityContext: null,
    size: 1,
    sha256: "0".repeat(64),
  };
}

function deleted(id: string, versionId: number, minutes: number): VersionRecord {
  return { id, versionId, lastUpdated: at(minutes), deleted: true, securityContext: null };
}

const ALL: IndexQuery = {
  ids: null,
  types: null,
  from: null,
  to: null,
  securityContext: null,
  fileNames: [],
};
const NEWEST: SearchSort = { key: "lastUpdated", descending: true };
const OLDEST: SearchSort = { key: "lastUpdated", descending: false };
const BY_ID: SearchSort = { key: "id", descending: false };
const type = (essence: string, exact: string | null = null) => ({ essence, exact });

/** The ids (and versions) a search returns. */
function ids(index: SearchIndex, query: IndexQuery, sort: SearchSort, snapshot = index.snapshot()): string[] {
  return index.search(query, sort, snapshot, null, 100).map((row) => `${row.id}/${row.versionId}`);
}

const body = (text: string) => new TextEncoder().encode(text);
const write = (contentType = "text/plain") => ({
  contentType,
  securityContext: null,
  body: body("x"),
  maxSize: 1000,
});

describe("SearchIndex", () => {
  test("a version is recorded once; a later one replaces it in searches, not in the history", () => {
    const index = SearchIndex.open(":memory:");
    expect(index.record([stored("a", 1, 1), stored("a", 1, 1)])).toBe(1);
    expect(index.record([stored("a", 2, 2, "image/png"), stored("b", 1, 3)])).toBe(2);
    expect(ids(index, ALL, NEWEST)).toEqual(["b/1", "a/2"]);
    expect(index.history(null, index.snapshot(), null, 10).map((r) => `${r.id}/${r.versionId}`)).toEqual([
      "b/1",
      "a/2",
      "a/1",
    ]);
    expect(index.count(ALL, index.snapshot())).toBe(2);
    expect(index.historyCount(null, index.snapshot())).toBe(3);
  });

  test("deletions are never matched, but stay in the history", () => {
    const index = SearchIndex.open(":memory:");
    index.record([stored("a", 1, 1), stored("b", 1, 2), deleted("a", 2, 3)]);
    expect(ids(index, ALL, NEWEST)).toEqual(["b/1"]);
    expect(
      index.history(null, index.snapshot(), null, 10).map((r) => [r.id, r.versionId, r.deleted]),
    ).toEqual([
      ["a", 2, true],
      ["b", 1, false],
      ["a", 1, false],
    ]);
  });

  test("versions that arrive out of order (catch-up racing new writes) still leave the newest current", () => {
    const index = SearchIndex.open(":memory:");
    index.record([stored("a", 1, 1), stored("a", 3, 3)]);
    index.record([stored("a", 2, 2)]);
    expect(ids(index, ALL, NEWEST)).toEqual(["a/3"]);
    expect(index.count(ALL, index.snapshot())).toBe(1);
  });

  test("a snapshot is stable: later additions, updates and deletions do not change it", () => {
    const index = SearchIndex.open(":memory:");
    index.record([stored("a", 1, 1), stored("b", 1, 2), stored("c", 1, 3)]);
    const snapshot = index.snapshot();
    index.record([stored("d", 1, 4), stored("a", 2, 5), deleted("b", 2, 6)]);
    expect(ids(index, ALL, OLDEST, snapshot)).toEqual(["a/1", "b/1", "c/1"]);
    expect(index.count(ALL, snapshot)).toBe(3);
    expect(ids(index, ALL, OLDEST)).toEqual(["c/1", "d/1", "a/2"]);
  });

  test("content types: by essence without parameters, exactly with them, several merged in order", () => {
    const index = SearchIndex.open(":memory:");
    index.record([
      stored("p1", 1, 1, "application/pdf"),
      stored("t1", 1, 2, "text/plain"),
      stored("t2", 1, 3, "text/plain; charset=UTF-8"),
      stored("i1", 1, 4, "image/png"),
      stored("p2", 1, 5, "application/pdf"),
    ]);
    expect(ids(index, { ...ALL, types: [type("text/plain")] }, OLDEST)).toEqual(["t1/1", "t2/1"]);
    const exact = normaliseContentType("text/plain;charset=utf-8").normalised;
    expect(ids(index, { ...ALL, types: [type("text/plain", exact)] }, OLDEST)).toEqual(["t2/1"]);
    expect(ids(index, { ...ALL, types: [type("application/pdf"), type("image/png")] }, NEWEST)).toEqual([
      "p2/1",
      "i1/1",
      "p1/1",
    ]);
    expect(
      index.count({ ...ALL, types: [type("application/pdf"), type("image/png")] }, index.snapshot()),
    ).toBe(3);
    expect(ids(index, { ...ALL, types: [type("video/mp4")] }, OLDEST)).toEqual([]);
    expect(ids(index, { ...ALL, types: [] }, OLDEST)).toEqual([]);
    // The stored text comes back as it was stored.
    expect(index.search({ ...ALL, ids: ["t2"] }, OLDEST, index.snapshot(), null, 1)[0]).toMatchObject({
      contentType: "text/plain; charset=UTF-8",
    });
  });

  test("ids, time ranges and sorting by id", () => {
    const index = SearchIndex.open(":memory:");
    index.record([stored("c", 1, 1), stored("a", 1, 2), stored("b", 1, 3)]);
    expect(ids(index, { ...ALL, ids: ["a", "c", "zz"] }, BY_ID)).toEqual(["a/1", "c/1"]);
    expect(ids(index, { ...ALL, ids: [] }, BY_ID)).toEqual([]);
    expect(ids(index, ALL, BY_ID)).toEqual(["a/1", "b/1", "c/1"]);
    expect(ids(index, ALL, { key: "id", descending: true })).toEqual(["c/1", "b/1", "a/1"]);
    const from = T0 + 2 * 60_000;
    expect(ids(index, { ...ALL, from }, OLDEST)).toEqual(["a/1", "b/1"]);
    expect(ids(index, { ...ALL, to: from }, OLDEST)).toEqual(["c/1"]);
  });

  test("keyset pages: forwards after a key, backwards before it", () => {
    const index = SearchIndex.open(":memory:");
    index.record(Array.from({ length: 5 }, (_, i) => stored(`d${i}`, 1, i)));
    const snapshot = index.snapshot();
    const first = index.search(ALL, OLDEST, snapshot, null, 2);
    const last = first.at(-1);
    if (!last) throw new Error("no rows");
    const second = index.search(ALL, OLDEST, snapshot, { key: [last.ts, last.seq], direction: "next" }, 2);
    expect(second.map((row) => row.id)).toEqual(["d2", "d3"]);
    const back = index.search(
      ALL,
      OLDEST,
      snapshot,
      { key: [second[0]?.ts ?? 0, second[0]?.seq ?? 0], direction: "previous" },
      2,
    );
    expect(back.map((row) => row.id)).toEqual(["d1", "d0"]);
  });

  test("totals from the per-day tally equal counting the matches, through updates, deletions and disorder", () => {
    const index = SearchIndex.open(":memory:");
    const types = [
      "application/pdf",
      "text/plain",
      "text/plain; charset=utf-8",
      "image/png",
      "Text/Plain;Charset=UTF-8",
    ];
    let seed = 1;
    const random = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const versions = new Map<string, number>();
    const pending: VersionRecord[] = [];
    for (let i = 0; i < 400; i++) {
      const id = `id${Math.floor(random() * 40)}`;
      const versionId = (versions.get(id) ?? 0) + 1;
      versions.set(id, versionId);
      // Ten days, with versions of one id not necessarily in time order across ids.
      const minutes = i * 36 + Math.floor(random() * 30);
      const record =
        versionId > 1 && random() < 0.2
          ? deleted(id, versionId, minutes)
          : stored(id, versionId, minutes, types[Math.floor(random() * types.length)]);
      // Now and then a version is recorded late, after later ones (a catch-up racing new writes).
      if (random() < 0.1) pending.push(record);
      else index.record([record]);
      if (random() < 0.2) index.record(pending.splice(0));
    }
    index.record(pending.splice(0));
    const day = 86_400_000;
    const bounds = [
      null,
      T0 - day,
      T0,
      T0 + 1,
      T0 + day,
      T0 + 2.5 * day,
      T0 + 3 * day + 0.5,
      T0 + 9 * day,
      T0 + 20 * day,
    ];
    const filters = [
      null,
      [type("text/plain")],
      [type("text/plain", "text/plain;charset=utf-8")],
      [type("application/pdf"), type("image/png")],
    ];
    const snapshot = index.snapshot();
    for (const types of filters) {
      for (const from of bounds) {
        for (const to of bounds) {
          const query = { ...ALL, types, from, to };
          const counted = index.search(query, OLDEST, snapshot, null, 10_000).length;
          expect({ types, from, to, total: index.count(query, snapshot) }).toEqual({
            types,
            from,
            to,
            total: counted,
          });
        }
      }
    }
    for (const since of bounds) {
      expect(index.historyCount(since, snapshot)).toBe(index.history(since, snapshot, null, 10_000).length);
    }
  });

  test("an index file of another schema, or not a database, is recreated empty and fresh", () => {
    using dir = tempDir();
    const path = join(dir.path, INDEX_FILE);
    const first = SearchIndex.open(path);
    expect(first.fresh).toBe(true);
    first.record([stored("a", 1, 1)]);
    first.close();
    const again = SearchIndex.open(path);
    expect(again.fresh).toBe(false);
    expect(again.count(ALL, again.snapshot())).toBe(1);
    again.setMeta("schema", "0");
    again.close();
    const rebuilt = SearchIndex.open(path);
    expect(rebuilt.fresh).toBe(true);
    expect(rebuilt.count(ALL, rebuilt.snapshot())).toBe(0);
    rebuilt.close();
    Bun.write(path, "not a database");
    const damaged = SearchIndex.open(path);
    expect(damaged.fresh).toBe(true);
    damaged.close();
  });

  test("a create by PUT is a PUT in the type history; a schema 1 index gains that in place, rows kept", () => {
    using dir = tempDir();
    const path = join(dir.path, INDEX_FILE);
    const first = SearchIndex.open(path);
    first.record([stored("posted", 1, 1)]);
    first.close();
    // Schema 1, as fhirbin wrote it before the method was kept.
    const db = new Database(path);
    db.run("DROP INDEX live_name");
    for (const column of ["m", "fn", "fk"]) db.run(`ALTER TABLE version DROP COLUMN ${column}`);
    db.run("UPDATE meta SET value = '1' WHERE key = 'schema'");
    db.close();
    const migrated = SearchIndex.open(path);
    expect(migrated.fresh).toBe(false);
    const byPut = (record: VersionRecord): VersionRecord =>
      record.deleted ? record : { ...record, method: "PUT" };
    migrated.record([byPut(stored("put", 1, 2)), byPut(stored("put", 2, 3))]);
    const methods = migrated
      .history(null, migrated.snapshot(), null, 10)
      .map((row) => [row.id, row.versionId, row.deleted ? "DELETE" : (row.method ?? "as its number says")]);
    expect(methods).toEqual([
      ["put", 2, "as its number says"],
      ["put", 1, "PUT"],
      ["posted", 1, "as its number says"],
    ]);
    migrated.close();
  });

  test("a schema 2 index gains file names in place: its rows are kept, new ones are found by name", () => {
    using dir = tempDir();
    const path = join(dir.path, INDEX_FILE);
    const first = SearchIndex.open(path);
    first.record([stored("unnamed", 1, 1)]);
    first.close();
    // Schema 2, as fhirbin wrote it before file names were kept.
    const db = new Database(path);
    db.run("DROP INDEX live_name");
    for (const column of ["fn", "fk"]) db.run(`ALTER TABLE version DROP COLUMN ${column}`);
    db.run("UPDATE meta SET value = '2' WHERE key = 'schema'");
    db.close();
    const migrated = SearchIndex.open(path);
    expect(migrated.fresh).toBe(false);
    const named = stored("named", 1, 2);
    migrated.record([named.deleted ? named : { ...named, fileName: "Référral Letter.pdf" }]);
    const find = (text: string, exact = false): string[] =>
      ids(migrated, { ...ALL, fileNames: [[{ text, exact }]] }, NEWEST);
    expect(ids(migrated, ALL, NEWEST)).toEqual(["named/1", "unnamed/1"]);
    expect(find("referral letter")).toEqual(["named/1"]);
    expect(find("Référral Letter.pdf", true)).toEqual(["named/1"]);
    expect(find("référral letter.pdf", true)).toEqual([]);
    expect(
      migrated.count({ ...ALL, fileNames: [[{ text: "letter", exact: false }]] }, migrated.snapshot()),
    ).toBe(1);
    migrated.close();
    // With the index that answers `filename:exact` without a scan.
    const upgraded = new Database(path);
    expect(upgraded.query("SELECT name FROM sqlite_master WHERE name = 'live_name'").all()).toEqual([
      { name: "live_name" },
    ]);
    upgraded.close();
  });
});

describe("decodeId inverts encodeId", () => {
  test.each(["a", "Abc.1", "ABC-def.GHI", "CON", "a.", "0123456789", "x".repeat(64)])("%s", (id) => {
    expect(decodeId(encodeId(id))).toBe(id);
  });
  test.each(["abc", "_", "_A", "_a+", "_+A", "_a/b", "_..."])("%p is no id", (name) => {
    expect(decodeId(name)).toBeNull();
  });
});

describe("withIndex", () => {
  test("writes are recorded once committed; refused writes leave the journal empty", async () => {
    const store = withIndex(createMemoryStore(), SearchIndex.open(":memory:"));
    expect(store.catchingUp).toBe(false);
    const created = await store.create(write("application/pdf"));
    await store.update("note", write());
    await store.update("note", write("text/html"));
    await expect(store.update("note", { ...write(), ifMatch: 1 })).rejects.toThrow();
    await store.delete("note");
    await store.ready();
    expect(ids(store.index, ALL, OLDEST)).toEqual([`${created.id}/1`]);
    expect(store.index.historyCount(null, store.index.snapshot())).toBe(4);
    expect(store.index.pending()).toEqual([]);
    await store.close();
  });

  test("concurrent writes share journal transactions; each is journalled before it commits", async () => {
    const inner = createMemoryStore();
    const index = SearchIndex.open(":memory:");
    const transactions: number[] = [];
    const journal = index.journal.bind(index);
    index.journal = (begun, settled) => {
      transactions.push(begun.length + settled.length);
      return journal(begun, settled);
    };
    const unjournalled: string[] = [];
    const update = inner.update.bind(inner);
    inner.update = async (id, request) => {
      const result = await update(id, request);
      // Committed, not yet settled: a crash now must find the write in the journal.
      if (!index.pending().some((entry) => entry.id === id)) unjournalled.push(id);
      return result;
    };
    const store = withIndex(inner, index);
    const names = Array.from({ length: 20 }, (_, i) => `doc${i}`);
    await Promise.all(names.map((id) => store.update(id, write())));
    expect(unjournalled).toEqual([]);
    // Reading the index commits the settles still queued: every answered write is found.
    expect(ids(store.index, ALL, BY_ID)).toEqual(names.map((id) => `${id}/1`).sort());
    expect(index.pending()).toEqual([]);
    // 20 begins and 20 settles, in far fewer than the 40 transactions of one per step.
    expect(transactions.reduce((a, b) => a + b, 0)).toBe(40);
    expect(transactions.length).toBeLessThanOrEqual(3);
    await store.close();
  });

  test("a journal that cannot be written refuses the write (507 when full); one that cannot settle only logs", async () => {
    const index = SearchIndex.open(":memory:");
    const lines: string[] = [];
    const store = withIndex(createMemoryStore(), index, { log: (line) => lines.push(line) });
    const journal = index.journal.bind(index);
    index.journal = () => {
      throw Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });
    };
    await expect(store.update("full", write())).rejects.toMatchObject({ status: 507 });
    expect(await store.current("full")).toBeNull();
    // Begins succeed, settles fail: the write is committed and answered; the journal keeps it for a re-read.
    index.journal = (begun, settled) => {
      if (settled.length > 0) throw Object.assign(new Error("disk I/O error"), { code: "SQLITE_IOERR" });
      return journal(begun, settled);
    };
    expect((await store.update("kept", write())).version.versionId).toBe(1);
    expect(store.index.pending().map((entry) => entry.id)).toEqual(["kept"]);
    expect(lines).toEqual([expect.stringMatching(/^the search index missed 1 write\(s\)/)]);
    index.journal = journal;
    await store.close();
  });
});

/** Abandons an indexed fs store as a kill -9 would: no clean mark, the lock released by hand. */
async function crash(store: IndexedStore): Promise<void> {
  store.index.close();
  await store.inner.close();
}

describe("recovery of a filesystem store", () => {
  test("a write committed but never recorded (a crash in between) is found once caught up", async () => {
    using dir = tempDir();
    const first = await createStore(dir.path);
    await first.update("before", write());
    // The write journals itself and commits, and the process dies before the index update.
    first.index.journal(["lost"], []);
    await first.inner.update("lost", write("application/pdf"));
    await crash(first);

    const lines: string[] = [];
    const second = await createStore(dir.path, { log: (line) => lines.push(line) });
    expect(second.catchingUp).toBe(true);
    await second.ready();
    expect(second.catchingUp).toBe(false);
    expect(ids(second.index, ALL, OLDEST)).toEqual(["before/1", "lost/1"]);
    expect(second.index.pending()).toEqual([]);
    expect(lines).toEqual([
      expect.stringMatching(/^caught up the search index: 1 versions added in \d+ ms$/),
    ]);
    await second.close();

    const third = await createStore(dir.path);
    expect(third.catchingUp).toBe(false);
    await third.close();
  });

  test("a clean start does not scan: writes made behind the index's back stay unseen", async () => {
    using dir = tempDir();
    const first = await createStore(dir.path);
    await first.update("a", write());
    await first.close();
    const raw = await createFsStore(dir.path);
    await raw.update("behind", write());
    await raw.close();

    const second = await createStore(dir.path);
    expect(second.catchingUp).toBe(false);
    expect(ids(second.index, ALL, OLDEST)).toEqual(["a/1"]);
    await second.close();
  });

  test("a missing index is rebuilt from the sidecars in the background", async () => {
    using dir = tempDir();
    const raw = await createFsStore(dir.path);
    await raw.update("a", write());
    await raw.update("a", write("application/pdf"));
    await raw.update("B.2", write());
    await raw.delete("B.2");
    await raw.close();
    expect(existsSync(join(dir.path, INDEX_FILE))).toBe(false);

    const store = await createStore(dir.path);
    expect(store.catchingUp).toBe(true);
    await store.ready();
    expect(ids(store.index, ALL, OLDEST)).toEqual(["a/2"]);
    expect(store.index.historyCount(null, store.index.snapshot())).toBe(4);
    await store.close();
  });

  test("an unclean stop on an earlier boot (a power cut may lose the journal) rebuilds from every sidecar", async () => {
    using dir = tempDir();
    const first = await createStore(dir.path);
    await first.update("a", write());
    first.index.setMeta("boot", "a-boot-before-the-power-cut");
    await crash(first);
    // A write whose journal entry the power cut lost.
    const raw = await createFsStore(dir.path);
    await raw.update("unjournalled", write());
    await raw.close();

    const second = await createStore(dir.path);
    expect(second.catchingUp).toBe(true);
    await second.ready();
    expect(ids(second.index, ALL, OLDEST)).toEqual(["a/1", "unjournalled/1"]);
    await second.close();
  });

  test("a catch-up interrupted by a stop resumes on the next start", async () => {
    using dir = tempDir();
    const raw = await createFsStore(dir.path);
    for (let i = 0; i < 50; i++) await raw.update(`d${i}`, write());
    await raw.close();
    const first = await createStore(dir.path);
    expect(first.catchingUp).toBe(true);
    await first.close();

    const second = await createStore(dir.path);
    expect(second.catchingUp).toBe(true);
    await second.ready();
    expect(second.index.count(ALL, second.index.snapshot())).toBe(50);
    await second.close();
  });
});
