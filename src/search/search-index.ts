/**
 * The search index: a bun:sqlite database (WAL) derived from the sidecars, which stay the truth. It holds
 * every version of every Binary, so searches, the type-level history and keyset paging are index range
 * scans, and a write journal (`pending`) that tells which ids to re-read after a crash.
 *
 * Every version row gets `seq`, its position in the order the index learnt about versions, and `sup`, the
 * seq of the version that replaced it. A search runs against a snapshot, the highest seq when its first page
 * was served: a version belongs to snapshot S when `seq <= S` and it was not yet replaced at S. Pages of one
 * search therefore neither skip nor repeat entries while documents are added, updated or deleted.
 *
 * Totals come from `tally`, per-day counters kept in the same transactions as the rows: the current
 * documents per content type (by essence, and by exact type when it has parameters), all of them, and all
 * versions. A first page's total is a sum over at most a few thousand days plus exact counts of the two
 * partial days at the ends of a `_lastUpdated` range, whatever the size of the store.
 */
import { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { HistoryRecord } from "../fhir/bundle.ts";
import {
  type FileNameMatch,
  foldFileName,
  normaliseContentType,
  type SearchSort,
  type TypeMatch,
} from "../fhir/search-params.ts";
import { makePrivate, storeOwner } from "../store/fs-private.ts";
import type { VersionRecord } from "../store/types.ts";

/** File name of the index inside a data directory. */
export const INDEX_FILE = "index.sqlite";

// Bump when the schema changes: an index of another version is dropped and rebuilt from the sidecars, unless
// MIGRATIONS brings it up to date in place.
const SCHEMA_VERSION = "3";

/**
 * In-place upgrades by the schema version they start from, each to the next one, applied in turn; adding a
 * column costs no rebuild.
 */
const MIGRATIONS: Readonly<Record<string, string>> = {
  // `m`: the method of a version 1 made by PUT. Rows without it stand for a POST, as sidecars without one do.
  "1": "ALTER TABLE version ADD COLUMN m TEXT",
  // `fn`, `fk`: the file name and its folded form. Sidecars indexed before they were kept named no file.
  "2":
    "ALTER TABLE version ADD COLUMN fn TEXT; ALTER TABLE version ADD COLUMN fk TEXT; " +
    "CREATE INDEX live_name ON version (fn) WHERE deleted = 0 AND fn IS NOT NULL",
};

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ctype (cid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE version (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  vid INTEGER NOT NULL,
  ts REAL NOT NULL,
  lu TEXT,
  deleted INTEGER NOT NULL,
  ess INTEGER,
  cid INTEGER,
  raw INTEGER,
  sc TEXT,
  sup INTEGER,
  m TEXT,
  fn TEXT,
  fk TEXT
);
CREATE UNIQUE INDEX version_id ON version (id, vid);
CREATE INDEX version_ts ON version (ts, seq);
CREATE INDEX live_ts ON version (ts, seq, sup) WHERE deleted = 0;
CREATE INDEX live_type ON version (ess, ts, seq, sup, cid) WHERE deleted = 0;
CREATE INDEX live_context ON version (sc, ts, seq, sup) WHERE deleted = 0 AND sc IS NOT NULL;
CREATE INDEX live_name ON version (fn) WHERE deleted = 0 AND fn IS NOT NULL;
CREATE TABLE pending (token INTEGER PRIMARY KEY, id TEXT NOT NULL);
CREATE TABLE tally (k INTEGER NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (k, day))
  WITHOUT ROWID;
`;

/** A version as the index returns it: what a Bundle entry shows, with its place in the index. */
export type IndexedVersion = HistoryRecord & { seq: number; ts: number };

/**
 * A journalled write that is over: its token (null when journalled in an index since replaced), and the
 * version it committed (null when none).
 */
export interface Settled {
  token: number | null;
  record: VersionRecord | null;
}

/** What a search selects (the parsed filters of fhir/search-params.ts). */
export interface IndexQuery {
  ids: readonly string[] | null;
  types: readonly TypeMatch[] | null;
  from: number | null;
  to: number | null;
  /** Only Binaries with this securityContext (a patient-scoped token), or null. */
  securityContext: string | null;
  /** `filename`: each group's alternatives, one of which a match's file name must satisfy. */
  fileNames: readonly (readonly FileNameMatch[])[];
}

/** Where a page starts: after (or, going back, before) the entry with this sort key. */
export interface PageStart {
  key: readonly [number | string, number];
  direction: "next" | "previous";
}

/** The previous version of an id, as `#record` needs it. */
interface Neighbour {
  seq: number;
  sup: number | null;
  ts: number;
  deleted: number;
  ess: number | null;
  cid: number | null;
}

interface Row {
  seq: number;
  id: string;
  vid: number;
  ts: number;
  lu: string | null;
  deleted: number;
  raw: number | null;
  sc: string | null;
  m: string | null;
  fn: string | null;
}

const COLUMNS = "seq, id, vid, ts, lu, deleted, raw, sc, m, fn";
const DAY = 86_400_000;
// Tally keys besides the content type dictionary ids (which start at 1).
const ALL_VERSIONS = 0;
const ALL_CURRENT = -1;

/** The search index of one data directory (or of the in-memory driver). */
export class SearchIndex {
  readonly #db: Database;
  readonly #cids = new Map<string, number>();
  readonly #names = new Map<number, string>();
  /** True when the database was created by this open (none existed, or it was unusable). */
  readonly fresh: boolean;
  /** Why the index file found by this open was unusable (what SQLite said), or null. */
  readonly damage: string | null;
  readonly #path: string;

  private constructor(db: Database, path: string, fresh: boolean, damage: string | null) {
    this.#db = db;
    this.#path = path;
    this.fresh = fresh;
    this.damage = damage;
    for (const { cid, name } of db.query("SELECT cid, name FROM ctype").all() as {
      cid: number;
      name: string;
    }[]) {
      this.#cids.set(name, cid);
      this.#names.set(cid, name);
    }
  }

  /**
   * Opens the index at `path` (`:memory:` for the in-memory driver). An index of another schema version is
   * recreated empty; one that SQLite cannot open or read (`damage` says why) is moved aside to
   * `<path>.damaged` first. Either way `fresh` tells the caller to rebuild it. No `PRAGMA quick_check`: it
   * reads the whole file, and a start after a clean stop must not grow with the store; damage found later
   * is handled by the caller (see `replace`).
   */
  static open(path: string): SearchIndex {
    let damage: string | null = null;
    if (path !== ":memory:" && existsSync(path)) {
      let db: Database | null = null;
      try {
        db = connect(path);
        const version = db.query("SELECT value FROM meta WHERE key = 'schema'").get() as {
          value: string;
        } | null;
        if (version?.value === SCHEMA_VERSION) return new SearchIndex(db, path, false, null);
        if (version && MIGRATIONS[version.value]) {
          const migrating = db;
          migrating.transaction(() => {
            for (let from = version.value; from !== SCHEMA_VERSION; from = String(Number(from) + 1)) {
              const migration = MIGRATIONS[from];
              if (migration === undefined) throw new Error(`no migration of the index from schema ${from}`);
              migrating.run(migration);
            }
            migrating.run("UPDATE meta SET value = ? WHERE key = 'schema'", [SCHEMA_VERSION]);
          })();
          return new SearchIndex(migrating, path, false, null);
        }
        db.close();
        removeIndexFiles(path);
      } catch (error) {
        db?.close();
        damage = error instanceof Error ? error.message : String(error);
        moveAside(path);
      }
    }
    const db = connect(path);
    db.transaction(() => {
      db.run(SCHEMA);
      db.run("INSERT INTO meta (key, value) VALUES ('schema', ?)", [SCHEMA_VERSION]);
    })();
    return new SearchIndex(db, path, true, damage);
  }

  /**
   * Gives up this index because SQLite found it damaged while in use: closes it, moves its file aside to
   * `<path>.damaged` and opens a new, empty index in its place, to be rebuilt from the sidecars.
   */
  replace(): SearchIndex {
    // Closing may try to checkpoint into the damaged file; whatever it says, the file goes.
    try {
      this.#db.close();
    } catch {
      // Nothing to keep from a damaged file.
    }
    if (this.#path !== ":memory:") moveAside(this.#path);
    return SearchIndex.open(this.#path);
  }

  /** Where the index lives (`:memory:` for the in-memory driver). */
  get path(): string {
    return this.#path;
  }

  /** A value of the meta table (state, boot id, flags), or null. */
  meta(key: string): string | null {
    const row = this.#db.query("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.#db.query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key, value);
  }

  /**
   * One transaction of the write journal: settles `settled` (recording the version each write committed, if
   * any) and journals a write about to happen to each of `begun`, whose tokens it returns in order.
   */
  journal(begun: readonly string[], settled: readonly Settled[]): number[] {
    return this.#db.transaction(() => {
      for (const { token, record } of settled) {
        if (record) this.#record(record);
        if (token !== null) this.#db.query("DELETE FROM pending WHERE token = ?").run(token);
      }
      const insert = this.#db.query("INSERT INTO pending (id) VALUES (?)");
      return begun.map((id) => Number(insert.run(id).lastInsertRowid));
    })();
  }

  /** The journal: writes that began and were not settled (a crash between commit and index update). */
  pending(): { token: number; id: string }[] {
    return this.#db.query("SELECT token, id FROM pending ORDER BY token").all() as {
      token: number;
      id: string;
    }[];
  }

  /** Settles every journal entry up to `token` once their ids have been re-read. */
  clearPending(upTo: number): void {
    this.#db.query("DELETE FROM pending WHERE token <= ?").run(upTo);
  }

  /** Records versions (idempotent: a version already known is left alone), in one transaction. */
  record(records: readonly VersionRecord[]): number {
    let added = 0;
    this.#db.transaction(() => {
      for (const record of records) if (this.#record(record)) added++;
    })();
    return added;
  }

  /**
   * Forgets versions of `id` that a purge removes, with their counts in the tally, in one transaction: a
   * version still current leaves the current documents too (a purge of a deleted id removes them all).
   */
  forget(id: string, versionIds: readonly number[]): void {
    const find = this.#db.query(
      "SELECT seq, sup, ts, deleted, ess, cid FROM version WHERE id = ? AND vid = ?",
    );
    const remove = this.#db.query("DELETE FROM version WHERE seq = ?");
    this.#db.transaction(() => {
      for (const vid of versionIds) {
        const row = find.get(id, vid) as Neighbour | null;
        if (!row) continue;
        remove.run(row.seq);
        this.#tally(ALL_VERSIONS, row.ts, -1);
        if (row.sup === null && !row.deleted) this.#tallyCurrent(row.ts, row.ess, row.cid, -1);
      }
    })();
  }

  /** The version numbers of `id` the index knows. */
  knownVersions(id: string): number[] {
    return (this.#db.query("SELECT vid FROM version WHERE id = ?").all(id) as { vid: number }[]).map(
      (r) => r.vid,
    );
  }

  /** The newest seq: the snapshot a first page is served from. */
  snapshot(): number {
    return (this.#db.query("SELECT max(seq) AS s FROM version").get() as { s: number | null }).s ?? 0;
  }

  /**
   * Up to `limit` matches of `query` in snapshot `snapshot`, in `sort` order (reversed when going back),
   * starting after `start`. A `contenttype` with several alternatives runs one index range scan per
   * alternative and merges them, so each stays in index order.
   */
  search(
    query: IndexQuery,
    sort: SearchSort,
    snapshot: number,
    start: PageStart | null,
    limit: number,
  ): IndexedVersion[] {
    const descending = sort.descending !== (start?.direction === "previous");
    const rows: Row[] = [];
    for (const filter of this.#typeFilters(query.types)) {
      const where = this.#liveWhere(query, filter, snapshot);
      if (start) {
        const columns = sort.key === "id" ? "(id, vid)" : "(ts, seq)";
        where.sql.push(`${columns} ${descending ? "<" : ">"} (?, ?)`);
        where.args.push(start.key[0], start.key[1]);
      }
      const order = sort.key === "id" ? ["id", "vid"] : ["ts", "seq"];
      const sql =
        `SELECT ${COLUMNS} FROM version WHERE ${where.sql.join(" AND ")} ` +
        `ORDER BY ${order.map((c) => `${c}${descending ? " DESC" : ""}`).join(", ")} LIMIT ?`;
      rows.push(...(this.#db.query(sql).all(...where.args, limit) as Row[]));
    }
    const compare = sort.key === "id" ? compareById : compareByTime;
    const sign = descending ? -1 : 1;
    return rows
      .sort((a, b) => sign * compare(a, b))
      .slice(0, limit)
      .map((row) => this.#toVersion(row));
  }

  /**
   * How many entries `query` matches in snapshot `snapshot`: from the tally for the current snapshot
   * (filters on content type and time), else by counting rows.
   */
  count(query: IndexQuery, snapshot: number): number {
    const tallied =
      query.ids === null &&
      query.securityContext === null &&
      query.fileNames.length === 0 &&
      snapshot >= this.snapshot();
    let total = 0;
    for (const filter of this.#typeFilters(query.types)) {
      const exact = (from: number | null, to: number | null): number => {
        const where = this.#liveWhere({ ...query, from, to }, filter, snapshot);
        const sql = `SELECT count(*) AS n FROM version WHERE ${where.sql.join(" AND ")}`;
        return (this.#db.query(sql).get(...where.args) as { n: number }).n;
      };
      const key = filter === null ? ALL_CURRENT : (filter.cid ?? filter.ess);
      total += tallied ? this.#tallyCount(key, query.from, query.to, exact) : exact(query.from, query.to);
    }
    return total;
  }

  /**
   * Counts with the tally: whole days in `[from, to)` from the counters, the partial days at either end
   * with `exact`.
   */
  #tallyCount(
    key: number,
    from: number | null,
    to: number | null,
    exact: (from: number | null, to: number | null) => number,
  ): number {
    const firstDay = from === null ? Number.MIN_SAFE_INTEGER : Math.ceil(from / DAY);
    const endDay = to === null ? Number.MAX_SAFE_INTEGER : Math.floor(to / DAY);
    if (firstDay >= endDay) return exact(from, to);
    const { n } = this.#db
      .query("SELECT coalesce(sum(n), 0) AS n FROM tally WHERE k = ? AND day >= ? AND day < ?")
      .get(key, firstDay, endDay) as { n: number };
    const before = from === null ? 0 : exact(from, firstDay * DAY);
    const after = to === null ? 0 : exact(endDay * DAY, to);
    return n + before + after;
  }

  /** Up to `limit` versions (deletions included) of snapshot `snapshot`, newest first, at or after `since`. */
  history(since: number | null, snapshot: number, start: PageStart | null, limit: number): IndexedVersion[] {
    const newestFirst = start?.direction !== "previous";
    const sql = ["seq <= ?"];
    const args: (number | string)[] = [snapshot];
    if (since !== null) {
      sql.push("ts >= ?");
      args.push(since);
    }
    if (start) {
      sql.push(`(ts, seq) ${newestFirst ? "<" : ">"} (?, ?)`);
      args.push(start.key[0], start.key[1]);
    }
    const order = newestFirst ? "ts DESC, seq DESC" : "ts, seq";
    const rows = this.#db
      .query(`SELECT ${COLUMNS} FROM version WHERE ${sql.join(" AND ")} ORDER BY ${order} LIMIT ?`)
      .all(...args, limit) as Row[];
    return rows.map((row) => this.#toVersion(row));
  }

  /** How many versions the history of snapshot `snapshot` holds at or after `since`. */
  historyCount(since: number | null, snapshot: number): number {
    const exact = (from: number | null, to: number | null): number => {
      const sql = ["seq <= ?"];
      const args = [snapshot];
      if (from !== null) {
        sql.push("ts >= ?");
        args.push(from);
      }
      if (to !== null) {
        sql.push("ts < ?");
        args.push(to);
      }
      const query = this.#db.query(`SELECT count(*) AS n FROM version WHERE ${sql.join(" AND ")}`);
      return (query.get(...args) as { n: number }).n;
    };
    return snapshot >= this.snapshot()
      ? this.#tallyCount(ALL_VERSIONS, since, null, exact)
      : exact(since, null);
  }

  /** Bytes the index takes on disk (database, WAL), for the benchmark and operators. */
  sizeOnDisk(): number {
    const { n } = this.#db
      .query("SELECT page_count * page_size AS n FROM pragma_page_count, pragma_page_size")
      .get() as {
      n: number;
    };
    return n;
  }

  /** Gathers planner statistics (after a rebuild) so searches pick the right index. */
  analyse(): void {
    this.#db.run("ANALYZE");
  }

  /** Checkpoints the WAL into the database and closes it. */
  close(): void {
    try {
      this.#db.run("PRAGMA optimize");
      this.#db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.#db.close();
    }
  }

  /** Inserts one version unless known; links it with its neighbours (`sup`). True when inserted. */
  #record(record: VersionRecord): boolean {
    const db = this.#db;
    const { id, versionId } = record;
    if (db.query("SELECT 1 FROM version WHERE id = ? AND vid = ?").get(id, versionId)) return false;
    const previous = db
      .query(
        "SELECT seq, sup, ts, deleted, ess, cid FROM version WHERE id = ? AND vid < ? ORDER BY vid DESC LIMIT 1",
      )
      .get(id, versionId) as Neighbour | null;
    // Versions can arrive out of order (a catch-up after a crash races new writes): one that a later
    // version already replaced is born replaced.
    const next = db
      .query("SELECT seq FROM version WHERE id = ? AND vid > ? ORDER BY vid LIMIT 1")
      .get(id, versionId) as { seq: number } | null;
    const ts = Date.parse(record.lastUpdated);
    const iso = Number.isNaN(ts) ? null : new Date(ts).toISOString();
    let types: [number | null, number | null, number | null] = [null, null, null];
    let sc: string | null = null;
    let fn: string | null = null;
    if (!record.deleted) {
      fn = record.fileName ?? null;
      const { essence, normalised } = normaliseContentType(record.contentType);
      types = [this.#cid(essence), this.#cid(normalised), this.#cid(record.contentType)];
      sc = record.securityContext;
    }
    const seq = Number(
      db
        .query(
          "INSERT INTO version (id, vid, ts, lu, deleted, ess, cid, raw, sc, sup, m, fn, fk) " +
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(
          id,
          versionId,
          Number.isNaN(ts) ? 0 : ts,
          // The text is kept only when it differs from what the timestamp gives back.
          iso === record.lastUpdated ? null : record.lastUpdated,
          record.deleted ? 1 : 0,
          ...types,
          sc,
          next?.seq ?? null,
          // Kept only when the version number does not tell it: version 1 is a POST, later ones PUTs.
          !record.deleted && versionId === 1 && record.method === "PUT" ? "PUT" : null,
          fn,
          fn === null ? null : foldFileName(fn),
        ).lastInsertRowid,
    );
    this.#tally(ALL_VERSIONS, ts, 1);
    // Born current (not deleted, not already replaced): counted among the current documents.
    if (!record.deleted && !next) this.#tallyCurrent(ts, types[0], types[1], 1);
    if (previous && previous.sup === null) {
      db.query("UPDATE version SET sup = ? WHERE seq = ?").run(seq, previous.seq);
      if (!previous.deleted) this.#tallyCurrent(previous.ts, previous.ess, previous.cid, -1);
    }
    return true;
  }

  /** Adds `delta` to the counters of a current document: all, its essence, its exact type if different. */
  #tallyCurrent(ts: number, ess: number | null, cid: number | null, delta: number): void {
    this.#tally(ALL_CURRENT, ts, delta);
    if (ess !== null) this.#tally(ess, ts, delta);
    if (cid !== null && cid !== ess) this.#tally(cid, ts, delta);
  }

  #tally(key: number, ts: number, delta: number): void {
    this.#db
      .query(
        "INSERT INTO tally (k, day, n) VALUES (?, ?, ?) ON CONFLICT (k, day) DO UPDATE SET n = n + excluded.n",
      )
      .run(key, Math.floor((Number.isNaN(ts) ? 0 : ts) / DAY), delta);
  }

  /** The dictionary id of a content type string (essence, normalised or as stored), added when new. */
  #cid(name: string): number {
    const known = this.#cids.get(name);
    if (known !== undefined) return known;
    this.#db.query("INSERT OR IGNORE INTO ctype (name) VALUES (?)").run(name);
    const { cid } = this.#db.query("SELECT cid FROM ctype WHERE name = ?").get(name) as { cid: number };
    this.#cids.set(name, cid);
    this.#names.set(cid, name);
    return cid;
  }

  /**
   * One SQL filter per `contenttype` alternative (a single unrestricted one without `contenttype`);
   * alternatives naming a type the index never saw match nothing and are dropped.
   */
  #typeFilters(types: readonly TypeMatch[] | null): { ess: number; cid: number | null }[] | [null] {
    if (types === null) return [null];
    const filters: { ess: number; cid: number | null }[] = [];
    for (const { essence, exact } of types) {
      const ess = this.#cids.get(essence);
      const cid = exact === null ? null : this.#cids.get(exact);
      if (ess !== undefined && cid !== undefined) filters.push({ ess, cid });
    }
    return filters;
  }

  /** The WHERE clause of current, not deleted versions in a snapshot, with the filters of `query`. */
  #liveWhere(
    query: IndexQuery,
    type: { ess: number; cid: number | null } | null,
    snapshot: number,
  ): { sql: string[]; args: (number | string)[] } {
    const sql = ["deleted = 0", "seq <= ?", "(sup IS NULL OR sup > ?)"];
    const args: (number | string)[] = [snapshot, snapshot];
    if (type) {
      sql.push("ess = ?");
      args.push(type.ess);
      if (type.cid !== null) {
        sql.push("cid = ?");
        args.push(type.cid);
      }
    }
    if (query.ids !== null) {
      sql.push(`id IN (${query.ids.map(() => "?").join(", ") || "NULL"})`);
      args.push(...query.ids);
    }
    if (query.securityContext !== null) {
      sql.push("sc = ?");
      args.push(query.securityContext);
    }
    if (query.from !== null) {
      sql.push("ts >= ?");
      args.push(query.from);
    }
    if (query.to !== null) {
      sql.push("ts < ?");
      args.push(query.to);
    }
    // instr, not LIKE: a name's `%` and `_` are text, and the folded column makes it case-insensitive
    // beyond ASCII, which SQLite's LIKE is not.
    for (const alternatives of query.fileNames) {
      sql.push(
        `(${alternatives.map(({ exact }) => (exact ? "fn = ?" : "instr(fk, ?) > 0")).join(" OR ") || "0"})`,
      );
      args.push(...alternatives.map(({ text }) => text));
    }
    return { sql, args };
  }

  #toVersion(row: Row): IndexedVersion {
    const lastUpdated = row.lu ?? new Date(row.ts).toISOString();
    const base = { seq: row.seq, ts: row.ts, id: row.id, versionId: row.vid, lastUpdated };
    if (row.deleted) return { ...base, deleted: true };
    return {
      ...base,
      deleted: false,
      contentType: this.#names.get(row.raw ?? -1) ?? "application/octet-stream",
      securityContext: row.sc,
      ...(row.m === "PUT" ? { method: "PUT" as const } : {}),
      ...(row.fn === null ? {} : { fileName: row.fn }),
    };
  }
}

function compareByTime(a: Row, b: Row): number {
  return a.ts - b.ts || a.seq - b.seq;
}

function compareById(a: Row, b: Row): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : a.vid - b.vid;
}

function connect(path: string): Database {
  const db = new Database(path, { create: true });
  // Before the journal mode makes SQLite create -wal and -shm, which copy the database file's mode and
  // owner; an index from an earlier version may have them already.
  if (path !== ":memory:") {
    const owner = storeOwner(dirname(path));
    for (const suffix of ["", "-wal", "-shm"]) makePrivate(path + suffix, owner);
  }
  // WAL: readers never wait for the writer. synchronous=NORMAL: a commit survives a crash of the process
  // (kill -9); after a power cut the last commits may be lost, and the start-up that follows rescans.
  db.run("PRAGMA journal_mode = WAL");
  db.run("PRAGMA synchronous = NORMAL");
  db.run("PRAGMA busy_timeout = 5000");
  return db;
}

/** Keeps a damaged index database as `<path>.damaged` (replacing an earlier one) and removes its WAL. */
function moveAside(path: string): void {
  try {
    renameSync(path, `${path}.damaged`);
  } catch {
    // Unreadable or already gone: removing it is all that matters.
  }
  removeIndexFiles(path);
}

/** Removes an index database with its WAL and shared-memory files. */
export function removeIndexFiles(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}
