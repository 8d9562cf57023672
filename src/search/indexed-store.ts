/**
 * A Store decorator that keeps the search index in step with the store: every write goes to the inner store
 * first (the sidecar is the commit point) and is then recorded in the index. The drivers know nothing about
 * the index, and both get search through the same code.
 *
 * Crash safety without a scan on a clean start: each write is journalled in the index (`pending`) before it
 * starts and settled, together with its version, once it has committed. After a kill -9 between a commit and
 * the index update, the next start re-reads the journalled ids only. A missing or unusable index, or an
 * unclean stop of a previous boot of the machine (a power cut can lose the last WAL commits, journal
 * included), is rebuilt from every sidecar instead. Either way in the background: reads and writes do not wait.
 */
import { randomUUID } from "node:crypto";
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
import type { ScannedId } from "./fs-scan.ts";
import type { SearchIndex, Settled } from "./search-index.ts";

/** A store with a search index: what the search routes need, and the catch-up state for readiness. */
export interface IndexedStore extends Store {
  readonly index: SearchIndex;
  /** The store without the index (the driver). */
  readonly inner: Store;
  /** True while the index is catching up with writes it missed (after a crash, or when rebuilt). */
  readonly catchingUp: boolean;
  /** Resolves once the index holds every committed write; rejects when catching up failed (logged). */
  ready(): Promise<void>;
}

export interface IndexOptions {
  /** Lists every id with its version numbers (the sidecars of a filesystem store), for a full rebuild. */
  scan?: () => AsyncIterable<ScannedId>;
  /** Where catch-up progress and failures are reported. */
  log?: (line: string) => void;
}

/** True when the store keeps a search index. */
export function isIndexed(store: Store): store is IndexedStore {
  return "index" in store && "inner" in store;
}

/** The id of this boot of the machine (Linux), or null where unknown. */
function bootId(): string | null {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || null;
  } catch {
    return null;
  }
}

/**
 * Records in `index` every version that `scan` finds and the index lacks, reading the missing sidecars a
 * batch at a time. Returns how many versions were added; stops early when `stop()` says so.
 */
export async function catchUp(
  store: Store,
  index: SearchIndex,
  scan: AsyncIterable<ScannedId>,
  stop: () => boolean = () => false,
  batchSize = 256,
): Promise<number> {
  let added = 0;
  let reads: Promise<VersionRecord | null>[] = [];
  const flush = async (): Promise<void> => {
    const records = (await Promise.all(reads)).filter((record): record is VersionRecord => record !== null);
    reads = [];
    added += index.record(records);
  };
  for await (const { id, versions } of scan) {
    if (stop()) break;
    const known = new Set(index.knownVersions(id));
    for (const n of versions) if (!known.has(n)) reads.push(store.version(id, n));
    if (reads.length >= batchSize) await flush();
  }
  await flush();
  return added;
}

/** Lists the given ids with the version numbers the store holds (to re-read journalled writes). */
async function* idsOf(store: Store, ids: Iterable<string>): AsyncGenerator<ScannedId> {
  for (const id of ids) {
    yield { id, versions: (await store.history(id)).map((record) => record.versionId) };
  }
}

/** Wraps `store` so that its writes are recorded in `index`, and starts catching up when needed. */
export function withIndex(store: Store, index: SearchIndex, options: IndexOptions = {}): IndexedStore {
  const log = options.log ?? (() => {});
  const boot = bootId();
  const uncleanElsewhere = index.meta("state") === "open" && (boot === null || index.meta("boot") !== boot);
  const full =
    options.scan !== undefined && (index.fresh || index.meta("full-scan") === "1" || uncleanElsewhere);
  if (full) index.setMeta("full-scan", "1");
  const journal = index.pending();
  const lastToken = journal.at(-1)?.token ?? 0;
  index.setMeta("state", "open");
  index.setMeta("boot", boot ?? "");

  let closing = false;
  let catchingUp = full || journal.length > 0;
  const caughtUp: Promise<void> = (async () => {
    if (!catchingUp) return;
    const started = performance.now();
    const scan =
      full && options.scan ? options.scan() : idsOf(store, new Set(journal.map((entry) => entry.id)));
    const added = await catchUp(store, index, scan, () => closing);
    if (closing) return;
    if (full) index.setMeta("full-scan", "0");
    index.clearPending(lastToken);
    catchingUp = false;
    // A new, empty store has nothing to report.
    if (added > 0) {
      const what = full ? "rebuilt the search index from the sidecars" : "caught up the search index";
      log(`${what}: ${added} versions added in ${Math.round(performance.now() - started)} ms`);
    }
  })();
  caughtUp.catch((error: unknown) => {
    log(`the search index could not catch up: ${error instanceof Error ? error.message : String(error)}`);
  });

  const commits = groupCommit(index, log);
  const rereads = new Set<Promise<void>>();
  /** Settles a journalled write that failed: re-reads the id in case it committed before failing. */
  const settleFailed = (token: number, id: string, error: unknown): void => {
    // 412 and 413 are decided before anything is committed.
    if (error instanceof FhirError && (error.status === 412 || error.status === 413)) {
      void commits.settle(token, null);
      return;
    }
    const reread = store
      .history(id)
      .then((records) => {
        index.record(records);
        return commits.settle(token, null);
      })
      .catch((e: unknown) => log(`the search index could not re-read Binary/${id}: ${String(e)}`))
      .finally(() => rereads.delete(reread));
    rereads.add(reread);
  };

  /** Runs a write journalled: begun in the index before it starts, settled (its version recorded) after. */
  const journalled = async <T>(
    id: string,
    write: () => Promise<T>,
    committed: (result: T) => VersionRecord | null,
  ): Promise<T> => {
    const token = await commits.begin(id);
    let result: T;
    try {
      result = await write();
    } catch (error) {
      settleFailed(token, id, error);
      throw error;
    }
    // Answered once recorded: a search right after the answer finds the new version.
    await commits.settle(token, committed(result));
    return result;
  };

  const update = (id: string, request: WriteRequest): Promise<WriteResult> =>
    journalled(
      id,
      () => store.update(id, request),
      (result) => result.version,
    );

  return {
    index,
    inner: store,
    get catchingUp() {
      return catchingUp;
    },
    ready: () => caughtUp,
    current: (id) => store.current(id),
    peek: (id) => store.peek(id),
    version: (id, versionId) => store.version(id, versionId),
    history: (id) => store.history(id),
    // The id is chosen here, not by the driver, so that the journal can name it before the write.
    create: async (request): Promise<StoredVersion> =>
      (await update(randomUUID(), { ...request, ifNoneMatch: true })).version,
    update,
    delete: (id: string, preconditions?: Preconditions): Promise<DeletedVersion | null> =>
      journalled(
        id,
        () => store.delete(id, preconditions),
        (tombstone) => tombstone,
      ),
    content: (version) => store.content(version),
    writable: () => store.writable(),
    async close(): Promise<void> {
      closing = true;
      await caughtUp.catch(() => {});
      await Promise.all(rereads);
      commits.flush();
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

/** The write journal's side of the index, committed for many writes at once (see groupCommit). */
interface GroupCommit {
  /** Journals a write about to happen to `id`; resolves with its token once committed. */
  begin(id: string): Promise<number>;
  /** Settles a journalled write; resolves once committed (or logged as missed: the journal keeps it). */
  settle(token: number, record: VersionRecord | null): Promise<void>;
  /** Commits whatever is queued now. */
  flush(): void;
}

/**
 * Group commit of the write journal: every begin and settle queued during one turn of the event loop goes
 * to the index in one SQLite transaction. Two transactions per write were a good part of a small create's
 * CPU time (issue 8); concurrent writes now share them. A write still starts only once its begin is
 * committed, so that a crash after its sidecar is linked finds it journalled.
 */
function groupCommit(index: SearchIndex, log: (line: string) => void): GroupCommit {
  let begins: { id: string; resolve: (token: number) => void; reject: (error: unknown) => void }[] = [];
  let settles: (Settled & { done: () => void })[] = [];
  let scheduled = false;

  const commit = (starting: typeof begins, settling: typeof settles): void => {
    try {
      const tokens = index.journal(
        starting.map((b) => b.id),
        settling,
      );
      for (const [i, b] of starting.entries()) b.resolve(tokens[i] as number);
    } catch (error) {
      // Each half alone: a settle that cannot be written must not refuse new writes, nor the reverse.
      if (starting.length > 0 && settling.length > 0) {
        commit(starting, []);
        commit([], settling);
        return;
      }
      for (const b of starting) b.reject(refusal(error));
      if (settling.length > 0) {
        log(
          `the search index missed ${settling.length} write(s) (re-read on the next start): ${String(error)}`,
        );
      }
    }
    for (const s of settling) s.done();
  };

  const flush = (): void => {
    scheduled = false;
    if (begins.length === 0 && settles.length === 0) return;
    const starting = begins;
    const settling = settles;
    begins = [];
    settles = [];
    commit(starting, settling);
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  return {
    begin: (id) =>
      new Promise((resolve, reject) => {
        begins.push({ id, resolve, reject });
        schedule();
      }),
    settle: (token, record) =>
      new Promise((done) => {
        settles.push({ token, record, done });
        schedule();
      }),
    flush,
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
  return error;
}
