/**
 * A Store decorator that keeps the search index in step with the store: every write goes to the inner store
 * first (the sidecar is the commit point) and is then recorded in the index. The drivers know nothing about
 * the index, and both get search through the same code.
 *
 * Crash safety without a scan on a clean start: each write is journalled in the index (`pending`) before it
 * commits (WriteRequest.beforeCommit) and settled, together with its version, after (see groupCommit).
 * After a kill -9 between a commit and the index update, the next start re-reads the journalled ids only. A missing or unusable index, or an
 * unclean stop of a previous boot of the machine (a power cut can lose the last WAL commits, journal
 * included), is rebuilt from every sidecar instead. Either way in the background: reads and writes do not wait.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { FhirError } from "../fhir/errors.ts";
import type {
  DeletedVersion,
  Preconditions,
  Store,
  StoredVersion,
  VersionRecord,
  WriteRequest,
  WriteResult,
} from "../store/types.ts";
import { recordProblem } from "../store/verify.ts";
import type { ScannedId } from "./fs-scan.ts";
import type { SearchIndex, Settled } from "./search-index.ts";

/** A store with a search index: what the search routes need, and the catch-up state for readiness. */
export interface IndexedStore extends Store {
  readonly index: SearchIndex;
  /** The store without the index (the driver). */
  readonly inner: Store;
  /** True while the index is catching up with writes it missed (after a crash, or when rebuilt). */
  readonly catchingUp: boolean;
  /**
   * How many sidecars could not be indexed since the index was last rebuilt (not JSON, not a version
   * record, unreadable): the index is incomplete until they are repaired and `fhirbin reindex` runs.
   */
  readonly unindexed: number;
  /** Resolves once the index holds every committed write; rejects when catching up failed (logged). */
  ready(): Promise<void>;
  /** The AES-256 key that seals the paging cursors of searches over this index (search/paging.ts). */
  readonly cursorKey: Uint8Array;
  /**
   * True when searches can be answered from a caught-up index that SQLite can read (for readiness); a
   * damaged index found by the probe is replaced and rebuilt.
   */
  searchable(): boolean;
  /**
   * Runs a read of the index. When SQLite reports the index damaged, it is moved aside and rebuilt from the
   * sidecars in the background, and the read is a 503 with Retry-After rather than a wrong (empty) answer.
   */
  readIndex<T>(read: () => T): T;
}

export interface IndexOptions {
  /** Lists every id with its version numbers (the sidecars of a filesystem store), for a full rebuild. */
  scan?: () => AsyncIterable<ScannedId>;
  /** How log lines name the sidecar of a version (its path in the data directory). */
  sidecar?: (id: string, versionId: number) => string;
  /** Where catch-up progress and failures are reported. */
  log?: (line: string) => void;
  /**
   * The store's secret the cursor key is derived from (`<data>/cursor-key`); without it a random key, so
   * that cursors last as long as the process.
   */
  cursorSecret?: string;
}

/** A sidecar that a catch-up left out of the index, and why. */
export interface SkippedSidecar {
  id: string;
  versionId: number;
  problem: string;
}

/** What a catch-up did: versions added, and the sidecars it could not index. */
export interface CatchUpResult {
  added: number;
  skipped: SkippedSidecar[];
}

/** True when the store keeps a search index. */
export function isIndexed(store: Store): store is IndexedStore {
  return "index" in store && "inner" in store;
}

/** True when SQLite says the index file is damaged: a malformed page, or not a database at all. */
export function isDamage(error: unknown): boolean {
  const code = String((error as { code?: unknown } | null)?.code ?? "");
  return code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB");
}

/** Seconds a client is asked to wait while a damaged index is rebuilt (a hint: minutes for a large store). */
const REBUILD_RETRY_AFTER_S = "10";

/** The id of this boot of the machine (Linux), or null where unknown. */
function bootId(): string | null {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null;
  } catch {
    return null;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reads version `n` of `id` for the index: the record, or the reason it cannot be indexed. One bad sidecar
 * is left out, never the rest of a rebuild with it.
 */
async function readForIndex(store: Store, id: string, n: number): Promise<VersionRecord | string | null> {
  try {
    const record = await store.version(id, n);
    return record && (recordProblem({ ...record }, n) ?? record);
  } catch (error) {
    return error instanceof SyntaxError
      ? `is not valid JSON (${error.message})`
      : `cannot be read (${describe(error)})`;
  }
}

/**
 * Records in `index` every version that `scan` finds and the index lacks, reading the missing sidecars a
 * batch at a time; sidecars that cannot be indexed are skipped and returned. Stops early when `stop()` says
 * so, without touching `index` again.
 */
export async function catchUp(
  store: Store,
  index: SearchIndex,
  scan: AsyncIterable<ScannedId>,
  stop: () => boolean = () => false,
  batchSize = 256,
): Promise<CatchUpResult> {
  const result: CatchUpResult = { added: 0, skipped: [] };
  let reads: Promise<VersionRecord | SkippedSidecar | null>[] = [];
  const flush = async (): Promise<void> => {
    const records: VersionRecord[] = [];
    for (const read of await Promise.all(reads)) {
      if (read === null) continue;
      if ("problem" in read) result.skipped.push(read);
      else records.push(read);
    }
    reads = [];
    if (!stop()) result.added += index.record(records);
  };
  for await (const { id, versions } of scan) {
    if (stop()) break;
    const known = new Set(index.knownVersions(id));
    for (const versionId of versions) {
      if (known.has(versionId)) continue;
      reads.push(
        readForIndex(store, id, versionId).then((read) =>
          typeof read === "string" ? { id, versionId, problem: read } : read,
        ),
      );
    }
    if (reads.length >= batchSize) await flush();
  }
  await flush();
  return result;
}

/**
 * Lists the given ids with the version numbers the store holds (to re-read journalled writes), probing
 * each number rather than reading the history, which one damaged sidecar would make fail as a whole.
 */
async function* idsOf(store: Store, ids: Iterable<string>): AsyncGenerator<ScannedId> {
  for (const id of ids) {
    const versions: number[] = [];
    const exists = (n: number): Promise<boolean> =>
      store.version(id, n).then(
        (record) => record !== null,
        () => true,
      );
    // A purge may have removed the versions before some first one; a history that cannot be read starts at 1.
    const first = (await store.history(id).catch(() => [])).at(-1)?.versionId ?? 1;
    for (let n = first; await exists(n); n++) versions.push(n);
    yield { id, versions };
  }
}

/** How many of the newest indexed versions are looked up in the store at start (a restore would lose them). */
const RESTORE_CHECK_VERSIONS = 16;

/** The first of the index's newest versions that the store does not have, or null when it has them all. */
async function unstored(store: Store, index: SearchIndex): Promise<{ id: string; versionId: number } | null> {
  for (const { id, versionId } of index.history(null, index.snapshot(), null, RESTORE_CHECK_VERSIONS)) {
    if ((await store.version(id, versionId)) === null) return { id, versionId };
  }
  return null;
}

/** The sidecars an index remembers it could not index (kept in its meta table). */
function skippedOf(index: SearchIndex): SkippedSidecar[] {
  const text = index.meta("unindexed");
  return text ? (JSON.parse(text) as SkippedSidecar[]) : [];
}

/** Wraps `store` so that its writes are recorded in `index`, and starts catching up when needed. */
export function withIndex(store: Store, first: SearchIndex, options: IndexOptions = {}): IndexedStore {
  const log = options.log ?? (() => {});
  const cursorKey =
    options.cursorSecret === undefined
      ? randomBytes(32)
      : createHash("sha256").update(`fhirbin cursor key\0${options.cursorSecret}`).digest();
  const sidecar = options.sidecar ?? ((id: string, n: number) => `Binary/${id} version ${n}`);
  const boot = bootId();
  let index = first;
  let closing = false;
  let catchingUp = false;
  let skipped: SkippedSidecar[] = [];
  let caughtUp: Promise<void> = Promise.resolve();

  /** Makes `target` the index and starts catching it up with the store when it needs to. */
  const use = (target: SearchIndex): void => {
    index = target;
    const uncleanElsewhere =
      target.meta("state") === "open" && (boot === null || target.meta("boot") !== boot);
    const full =
      options.scan !== undefined && (target.fresh || target.meta("full-scan") === "1" || uncleanElsewhere);
    if (full) target.setMeta("full-scan", "1");
    const journal = target.pending();
    const lastToken = journal.at(-1)?.token ?? 0;
    target.setMeta("state", "open");
    target.setMeta("boot", boot ?? "");
    skipped = full ? [] : skippedOf(target);
    catchingUp = full || journal.length > 0;
    // Once `target` is replaced (found damaged) its catch-up stops and reports nothing.
    const stale = (): boolean => closing || index !== target;
    caughtUp = (async () => {
      // An index kept over sidecars restored from a backup lists versions the store no longer has (they
      // would answer 404): its newest versions are looked up in the store, a few reads on a clean start.
      if (!full && options.scan !== undefined) {
        const missing = await unstored(store, target);
        if (stale()) return;
        if (missing !== null) {
          log(
            `the search index ${target.path} lists ${sidecar(missing.id, missing.versionId)}, which the store ` +
              "does not have (the data directory restored from a backup?): moved aside to " +
              `${target.path}.damaged; rebuilding it from the sidecars`,
          );
          use(target.replace());
          // Ready once the new index is.
          return caughtUp;
        }
      }
      if (!catchingUp) return;
      const started = performance.now();
      const scan =
        full && options.scan ? options.scan() : idsOf(store, new Set(journal.map((entry) => entry.id)));
      const { added, skipped: found } = await catchUp(store, target, scan, stale);
      if (stale()) return;
      for (const bad of found)
        log(`the search index left out ${sidecar(bad.id, bad.versionId)}: it ${bad.problem}`);
      const key = (bad: SkippedSidecar): string => `${bad.id}/${bad.versionId}`;
      const known = new Set(skipped.map(key));
      skipped = [...skipped, ...found.filter((bad) => !known.has(key(bad)))];
      target.setMeta("unindexed", JSON.stringify(skipped));
      if (full) target.setMeta("full-scan", "0");
      target.clearPending(lastToken);
      catchingUp = false;
      // A new, empty store has nothing to report.
      if (added > 0 || found.length > 0) {
        const what = full ? "rebuilt the search index from the sidecars" : "caught up the search index";
        const left =
          found.length > 0
            ? `; ${found.length} sidecar(s) could not be indexed (fhirbin verify lists them)`
            : "";
        log(`${what}: ${added} versions added in ${Math.round(performance.now() - started)} ms${left}`);
      }
    })();
    caughtUp.catch((error: unknown) => {
      if (stale()) return;
      if (!recover(error)) log(`the search index could not catch up: ${describe(error)}`);
    });
  };

  /**
   * Replaces the index when `error` says SQLite found it damaged: the file is moved aside and a new index
   * rebuilt from the sidecars, the truth. False when `error` is something else (or there are no sidecars
   * to rebuild from: the in-memory driver).
   */
  const recover = (error: unknown): boolean => {
    if (!isDamage(error) || !options.scan || closing) return false;
    const damaged = index;
    log(
      `the search index ${damaged.path} is damaged (${describe(error)}): moved aside to ` +
        `${damaged.path}.damaged; rebuilding it from the sidecars`,
    );
    try {
      use(damaged.replace());
    } catch (failure) {
      // No new index (the directory is not writable, say): searches fail and /readyz stays 503.
      log(`the search index could not be recreated: ${describe(failure)}`);
      return false;
    }
    return true;
  };

  if (first.damage !== null) {
    log(
      `the search index ${first.path} could not be used (${first.damage}): moved aside to ` +
        `${first.path}.damaged; rebuilding it from the sidecars`,
    );
  }
  try {
    use(first);
  } catch (error) {
    if (!recover(error)) throw error;
  }

  const commits = groupCommit(() => index, log, recover);
  const rereads = new Set<Promise<void>>();
  /** Settles a journalled write that failed: re-reads the id in case it committed before failing. */
  const settleFailed = (token: Token, id: string, error: unknown): void => {
    // 412 and 413 are decided before anything is committed.
    if (error instanceof FhirError && (error.status === 412 || error.status === 413)) {
      commits.settle(token, null);
      return;
    }
    const reread = store
      .history(id)
      .then((records) => {
        index.record(records);
        commits.settle(token, null);
      })
      .catch((e: unknown) => log(`the search index could not re-read Binary/${id}: ${String(e)}`))
      .finally(() => rereads.delete(reread));
    rereads.add(reread);
  };

  /**
   * Runs a write journalled: begun in the index before it commits (`write` awaits `begun` first), settled
   * with its version after.
   */
  const journalled = async <T>(
    id: string,
    write: (begun: () => Promise<void>) => Promise<T>,
    committed: (result: T) => VersionRecord | null,
  ): Promise<T> => {
    const entry = commits.begin(id);
    let result: T;
    try {
      result = await write(entry.begun);
    } catch (error) {
      // A begin that failed journalled nothing; one still queued is settled once committed.
      entry.token.then((token) => settleFailed(token, id, error)).catch(() => {});
      throw error;
    }
    commits.settle(await entry.token, committed(result));
    return result;
  };

  const update = (id: string, request: WriteRequest): Promise<WriteResult> =>
    journalled(
      id,
      (begun) =>
        store.update(id, {
          ...request,
          beforeCommit: async () => {
            await begun();
            await request.beforeCommit?.();
          },
        }),
      (result) => result.version,
    );

  return {
    // Every write answered so far is in the index: the settles still queued are committed first.
    get index() {
      commits.sync();
      return index;
    },
    inner: store,
    get catchingUp() {
      return catchingUp;
    },
    get unindexed() {
      return skipped.length;
    },
    ready: () => caughtUp,
    cursorKey,
    searchable(): boolean {
      if (catchingUp) return false;
      try {
        // The newest row: a read of the file, cheap whatever its size.
        index.snapshot();
        return true;
      } catch (error) {
        if (!recover(error)) throw error;
        return false;
      }
    },
    readIndex<T>(read: () => T): T {
      try {
        return read();
      } catch (error) {
        if (!recover(error)) throw error;
        throw new FhirError(
          503,
          "transient",
          "The search index was found damaged and is being rebuilt from the stored documents; try again shortly",
          { "retry-after": REBUILD_RETRY_AFTER_S },
        );
      }
    },
    current: (id) => store.current(id),
    peek: (id) => store.peek(id),
    version: (id, versionId) => store.version(id, versionId),
    history: (id) => store.history(id),
    // The id is chosen here, not by the driver, so that the journal can name it before the write.
    create: async (request): Promise<StoredVersion> =>
      (await update(randomUUID(), { ...request, ifNoneMatch: true, method: "POST" })).version,
    update,
    delete: (id: string, preconditions?: Preconditions): Promise<DeletedVersion | null> =>
      journalled(
        id,
        async (begun) => {
          await begun();
          return store.delete(id, preconditions);
        },
        (tombstone) => tombstone,
      ),
    // Journalled like a write: the index forgets the versions before the store removes them, so that after
    // a crash in between the next start re-reads the id and records again whatever the store still holds.
    purge: (id, mode, options) =>
      journalled(
        id,
        (begun) =>
          store.purge(id, mode, {
            beforePurge: async (versions) => {
              await begun();
              await options?.beforePurge?.(versions);
              index.forget(id, versions);
            },
          }),
        () => null,
      ),
    content: (version) => store.content(version),
    writable: () => store.writable(),
    async close(): Promise<void> {
      closing = true;
      // The catch-up of the index in use (a replaced one's stops by itself).
      await caughtUp.catch(() => {});
      await Promise.all(rereads);
      commits.sync();
      try {
        // A clean stop: the next start trusts the index (and still re-reads any journalled write).
        index.setMeta("state", "clean");
        index.close();
      } finally {
        await store.close();
      }
    },
  };
}

/** A journal entry's token, with the index it was written to (tokens of a replaced index mean nothing). */
interface Token {
  n: number;
  index: SearchIndex;
}

/** A write's entry in the journal: its token once committed, and a way to wait for that commit. */
interface JournalEntry {
  token: Promise<Token>;
  /** Resolves once the entry is committed (committing the queue if it is not yet); rejects if it failed. */
  begun: () => Promise<void>;
}

/** The write journal's side of the index, committed for many writes at once (see groupCommit). */
interface GroupCommit {
  /** Queues the journal entry of a write about to happen to `id`. */
  begin(id: string): JournalEntry;
  /** Queues the settling of a journalled write: its version recorded, its entry removed. */
  settle(token: Token, record: VersionRecord | null): void;
  /** Commits everything queued, in one transaction. */
  sync(): void;
}

/** How long a settle may wait for a write's begin to commit it along; reads of the index commit it at once. */
const SETTLE_DELAY_MS = 50;

/**
 * Group commit of the write journal. A write's begin is committed only when the write is about to commit
 * (its body stored): by then the begins of the writes that arrived meanwhile are queued too, and every
 * queued settle goes along, in one SQLite transaction. Settles wait at most SETTLE_DELAY_MS, and any read
 * of the index commits them first, so a search after an answer always finds the version answered. One
 * transaction per write was a good part of a small create's CPU time.
 */
function groupCommit(
  current: () => SearchIndex,
  log: (line: string) => void,
  recover: (error: unknown) => boolean,
): GroupCommit {
  let begins: { id: string; resolve: (token: Token) => void; reject: (error: unknown) => void }[] = [];
  let settles: { token: Token; record: VersionRecord | null }[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;

  const commit = (starting: typeof begins, settling: typeof settles, retried = false): void => {
    const index = current();
    try {
      const tokens = index.journal(
        starting.map((b) => b.id),
        // The version of a write journalled in a replaced index is still recorded; its entry went with it.
        settling.map(
          ({ token, record }): Settled => ({ token: token.index === index ? token.n : null, record }),
        ),
      );
      for (const [i, b] of starting.entries()) b.resolve({ n: tokens[i] as number, index });
    } catch (error) {
      // A damaged index is replaced by a new one being rebuilt: the same commit goes there.
      if (!retried && recover(error)) {
        commit(starting, settling, true);
        return;
      }
      // Each half alone: a settle that cannot be written must not refuse new writes, nor the reverse.
      if (starting.length > 0 && settling.length > 0) {
        commit(starting, [], true);
        commit([], settling, true);
        return;
      }
      for (const b of starting) b.reject(refusal(error));
      if (settling.length > 0) {
        log(
          `the search index missed ${settling.length} write(s) (re-read on the next start): ${String(error)}`,
        );
      }
    }
  };

  const sync = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (begins.length === 0 && settles.length === 0) return;
    const starting = begins;
    const settling = settles;
    begins = [];
    settles = [];
    commit(starting, settling);
  };

  const later = (): void => {
    if (timer) return;
    timer = setTimeout(sync, SETTLE_DELAY_MS);
    // Never what keeps the process alive; close() commits what is left.
    timer.unref();
  };

  return {
    begin(id) {
      let committed = false;
      const token = new Promise<Token>((resolve, reject) => {
        begins.push({
          id,
          resolve: (value) => {
            committed = true;
            resolve(value);
          },
          reject,
        });
      });
      // Observed through `begun` or `token`; a begin that fails must not go unhandled meanwhile.
      token.catch(() => {});
      later();
      return {
        token,
        begun: async () => {
          if (!committed) sync();
          await token;
        },
      };
    },
    settle(token, record) {
      settles.push({ token, record });
      later();
    },
    sync,
  };
}

/**
 * The error a write is refused with when its journal entry cannot be written: when the index cannot be
 * written, neither can the store next to it in all likelihood, so as the store would refuse it (507 disk
 * full, 503 read-only).
 */
function refusal(error: unknown): unknown {
  const code = String((error as { code?: unknown }).code ?? "");
  if (code === "SQLITE_FULL") {
    return new FhirError(507, "no-store", "The server has no space left to store the content");
  }
  if (code.startsWith("SQLITE_READONLY") || code.startsWith("SQLITE_IOERR") || code === "SQLITE_CANTOPEN") {
    return new FhirError(503, "transient", "The store is not writable at the moment");
  }
  if (isDamage(error)) {
    return new FhirError(503, "transient", "The search index is damaged; the write was not stored", {
      "retry-after": REBUILD_RETRY_AFTER_S,
    });
  }
  return error;
}
