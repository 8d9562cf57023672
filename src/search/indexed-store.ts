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
    ready: () => caughtUp,
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
    content: (version) => store.content(version),
    writable: () => store.writable(),
    async close(): Promise<void> {
      closing = true;
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

/** A write's entry in the journal: its token once committed, and a way to wait for that commit. */
interface JournalEntry {
  token: Promise<number>;
  /** Resolves once the entry is committed (committing the queue if it is not yet); rejects if it failed. */
  begun: () => Promise<void>;
}

/** The write journal's side of the index, committed for many writes at once (see groupCommit). */
interface GroupCommit {
  /** Queues the journal entry of a write about to happen to `id`. */
  begin(id: string): JournalEntry;
  /** Queues the settling of a journalled write: its version recorded, its entry removed. */
  settle(token: number, record: VersionRecord | null): void;
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
 * transaction per write was a good part of a small create's CPU time (issue 8).
 */
function groupCommit(index: SearchIndex, log: (line: string) => void): GroupCommit {
  let begins: { id: string; resolve: (token: number) => void; reject: (error: unknown) => void }[] = [];
  let settles: Settled[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;

  const commit = (starting: typeof begins, settling: Settled[]): void => {
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
      const token = new Promise<number>((resolve, reject) => {
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
  return error;
}
