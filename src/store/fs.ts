/**
 * The filesystem driver: content files named by SHA-256 plus one write-once JSON sidecar per version, the
 * sidecar being the commit point. Write order and its reasons are in storage.md; in short: stream to a temp
 * file, fsync, link into place, fsync the directory, then the sidecar likewise, and only then answer.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chown, type FileHandle, open, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { FhirError } from "../fhir/errors.ts";
import {
  describeFsError,
  exists,
  fsyncDir,
  isCode,
  linkNoClobber,
  mkdirDurable,
  requireHardLinks,
} from "./fs-durable.ts";
import { type Layout, layout } from "./fs-layout.ts";
import { acquireLock, type DirectoryLock } from "./fs-lock.ts";
import { convertLayout } from "./fs-migrate.ts";
import { type Owner, PRIVATE_FILE, restrictDataDir, storeOwner } from "./fs-private.ts";
import {
  type PurgeJournal,
  readFirst,
  readJournals,
  referencedAmong,
  unlinkIfAny,
  writeFirst,
  writeJournal,
} from "./fs-purge.ts";
import { fsyncFd } from "./fsync-pool.ts";
import { LruCache } from "./lru.ts";
import {
  type DeletedVersion,
  type Preconditions,
  type PurgeMode,
  type PurgeOptions,
  type PurgeResult,
  type Store,
  type StoredVersion,
  StoreOpenError,
  type VersionRecord,
  type WriteRequest,
  type WriteResult,
} from "./types.ts";
import {
  checkPreconditions,
  consumeBody,
  createKeyedMutex,
  nextDeleted,
  nextStored,
  versionsToPurge,
  type WrittenContent,
} from "./versioning.ts";

/**
 * Entries of each in-memory cache: the current version of recently used ids, and recently read blobs. The
 * sidecars stay the truth, so a miss costs a readdir and a small read; the bound keeps memory flat however
 * many documents the store holds.
 */
const CACHE_ENTRIES = 1024;
/**
 * Blobs up to 64 KiB are kept in memory once read again, 4 MiB of them in all. Bun answers a BunFile by opening
 * and reading the file on its thread pool for every request and waking the main thread for it; from memory,
 * a bare Bun.serve answered 1 KiB 2.1-2.8 times faster (bench/optimisations.md section 7). Blobs are named
 * by their hash and never change, so a kept copy is never stale. A blob read once (an export of the whole
 * store, say) is not read a second time to fill the cache.
 */
const SMALL_BLOB = 64 * 1024;
const SMALL_BLOBS_BUDGET = 4 * 1024 * 1024;

/**
 * Opens (creating when needed) a data directory: makes it owner-only, takes the single-instance lock,
 * sweeps temp files, refuses a file system without hard links and converts the sidecars of an earlier
 * layout; `log` hears what was changed.
 */
export async function createFsStore(
  root: string,
  { log = () => {} }: { log?: (line: string) => void } = {},
): Promise<Store> {
  const paths = layout(root);
  let owner: Owner | null;
  try {
    await mkdirDurable(root, null);
    owner = storeOwner(root);
  } catch (error) {
    throw new StoreOpenError(`cannot create the data directory ${root}: ${describeFsError(error)}`);
  }
  // Not a reason to refuse to start: the operator may have opened it on purpose, and is told.
  await restrictDataDir(root).then(
    (was) => was !== null && log(`made the data directory ${root} owner-only (it was ${was.toString(8)})`),
    (error: unknown) =>
      log(`could not make the data directory ${root} owner-only: ${describeFsError(error)}`),
  );
  const lock = await acquireLock(paths, owner);
  try {
    // Temp files are never referenced: whatever a crash left there is garbage.
    await rm(paths.tmp, { recursive: true, force: true });
    for (const dir of [paths.tmp, paths.blobs, paths.binary, paths.purges]) await mkdirDurable(dir, owner);
    await requireHardLinks(paths.tmp, root);
    await convertLayout(paths, log, owner);
    const store = new FsStore(paths, lock, owner);
    // Before anything reads the store: an id a crash left half purged is finished, never served.
    for (const id of await store.finishPurges())
      log(`finished the purge of Binary/${id} a crash had cut short`);
    return store;
  } catch (error) {
    await lock.release();
    if (error instanceof StoreOpenError) throw error;
    throw new StoreOpenError(`cannot prepare the data directory ${root}: ${describeFsError(error)}`);
  }
}

class FsStore implements Store {
  readonly #paths: Layout;
  /** The current version of recently used ids, or null for one with none: this process is the only writer. */
  readonly #current = new LruCache<string, VersionRecord | null>(CACHE_ENTRIES);
  readonly #files = new LruCache<string, ReturnType<typeof Bun.file>>(CACHE_ENTRIES);
  readonly #small = new LruCache<string, Blob>(CACHE_ENTRIES, (blob) => blob.size, SMALL_BLOBS_BUDGET);
  /** Small blobs being read into #small. */
  readonly #loading = new Set<string>();
  readonly #exclusive = createKeyedMutex();
  /** Fan-out directories being made, shared by concurrent writers (see #makeFan). */
  readonly #making = new Map<string, Promise<void>>();
  /** Fan-out directories known to exist durably (at most 2 x 256); none is removed while the lock is held. */
  readonly #fans = new Set<string>();
  readonly #lock: DirectoryLock;
  /** Whom new files are given to (storeOwner), or null for the process's own. */
  readonly #owner: Owner | null;
  /**
   * Content hashes being written, by count, from the body stored until the sidecar is linked or the write
   * failed; with #watchers, what keeps a purge from erasing content a write in flight is about to reference.
   */
  readonly #writing = new Map<string, number>();
  /** One set per purge looking for references: every hash written meanwhile is added to it. */
  readonly #watchers = new Set<Set<string>>();
  /** Content files being erased: a write of the same content waits, then links its own copy. */
  readonly #erasing = new Map<string, Promise<void>>();

  constructor(paths: Layout, lock: DirectoryLock, owner: Owner | null) {
    this.#paths = paths;
    this.#lock = lock;
    this.#owner = owner;
  }

  async current(id: string): Promise<VersionRecord | null> {
    const cached = this.#current.get(id);
    if (cached !== undefined) return cached;
    const latest = await this.#latest(id);
    // A create asks twice (a fail-fast check, then under its turn): the second costs no file system call.
    if (latest === 0) {
      this.#current.set(id, null);
      return null;
    }
    const record = await this.version(id, latest);
    if (record) this.#current.set(id, record);
    return record;
  }

  peek(id: string): VersionRecord | null | undefined {
    return this.#current.get(id);
  }

  async version(id: string, versionId: number): Promise<VersionRecord | null> {
    let text: string;
    try {
      text = await readFile(this.#paths.sidecar(id, versionId), "utf8");
    } catch (error) {
      if (isCode(error, "ENOENT") || isCode(error, "ENOTDIR")) return null;
      throw error;
    }
    const record = JSON.parse(text) as VersionRecord;
    // The encoding is injective, so this only fails if someone edited the store by hand.
    if (record.id !== id || record.versionId !== versionId)
      throw new Error(`sidecar ${id}/${versionId} is corrupt`);
    // Tombstones written before they kept the securityContext: the version they deleted still has it.
    if (record.deleted && record.securityContext === undefined) {
      const deleted = await this.version(id, versionId - 1);
      return { ...record, securityContext: deleted?.securityContext ?? null };
    }
    return record;
  }

  async history(id: string): Promise<VersionRecord[]> {
    const { first, last } = await this.#range(id);
    const numbers = Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => last - i);
    const records = await Promise.all(numbers.map((n) => this.version(id, n)));
    return records.filter((record): record is VersionRecord => record !== null);
  }

  create(request: WriteRequest): Promise<StoredVersion> {
    return this.update(randomUUID(), { ...request, ifNoneMatch: true, method: "POST" }).then(
      (result) => result.version,
    );
  }

  async update(id: string, request: WriteRequest): Promise<WriteResult> {
    // Fail fast before any upload; checked again under the per-id turn, where it counts.
    checkPreconditions(await this.current(id), request);
    // Content goes to disk before the turn is taken: writers to one id upload in parallel and only the
    // sidecar commits are serialised.
    const staged = await this.#stageBlob(request);
    const release = this.#claim(staged.content.sha256);
    // Steps 2-3 (the blob made durable) overlap with making the fan-out directory (once) and step 4's sidecar
    // temp file: a create waits for three fsyncs in a row instead of five. The sidecar is still
    // linked only once the blob's link is durable, which is the invariant that matters.
    const ready = Promise.all([this.#commitBlob(staged), this.#makeFan(this.#paths.fanDir(id))]);
    ready.catch(() => {}); // Observed through #commit; a failure before it must not go unhandled.
    try {
      return await this.#exclusive(id, async () => {
        const { record, previous } = await this.#commitNext(
          id,
          request,
          (current) => nextStored(id, current, staged.content, request.method ?? "PUT"),
          ready,
        );
        return { version: record as StoredVersion, created: !previous || previous.deleted };
      });
    } finally {
      // Not answered before the blob's own work (and its temp file's removal) is over.
      await ready.catch(() => {});
      release();
    }
  }

  delete(id: string, preconditions: Preconditions = {}): Promise<DeletedVersion | null> {
    return this.#exclusive(id, async () => {
      const current = await this.current(id);
      checkPreconditions(current, preconditions);
      if (!current || current.deleted) return null;
      const { record } = await this.#commitNext(
        id,
        preconditions,
        (latest) => nextDeleted(latest ?? current),
        Promise.resolve(),
      );
      return record as DeletedVersion;
    });
  }

  purge(id: string, mode: PurgeMode, options: PurgeOptions = {}): Promise<PurgeResult | null> {
    return this.#exclusive(id, async () => {
      this.#current.delete(id);
      const current = await this.current(id);
      if (!current) return null;
      const { first, last } = await this.#range(id);
      const removed = versionsToPurge(current, first, mode);
      if (removed.length === 0) return { versions: [], blobs: 0 };
      const records = await Promise.all(removed.map((n) => this.version(id, n)));
      const kept = current.deleted || mode === "deleted" ? null : current.sha256;
      const blobs = new Set<string>();
      for (const record of records)
        if (record && !record.deleted && record.sha256 !== kept) blobs.add(record.sha256);
      await options.beforePurge?.(removed);
      const journal: PurgeJournal = { id, from: first, to: removed.at(-1) ?? last, last, blobs: [...blobs] };
      try {
        const path = await writeJournal(this.#paths, this.#owner, journal);
        const erased = await this.#applyPurge(journal);
        await unlinkIfAny(path);
        await fsyncDir(this.#paths.purges);
        return { versions: removed, blobs: erased };
      } catch (error) {
        throw storageError(error);
      } finally {
        this.#current.delete(id);
      }
    });
  }

  /** Finishes the purges whose journals a crash left (at start-up, before any read); the ids they were of. */
  async finishPurges(): Promise<string[]> {
    const done: string[] = [];
    for (const { path, journal } of await readJournals(this.#paths)) {
      await this.#applyPurge(journal);
      await unlinkIfAny(path);
      await fsyncDir(this.#paths.purges);
      done.push(journal.id);
    }
    return done;
  }

  /**
   * Carries out a journalled purge; safe to run again after a crash at any point. The first version kept is
   * recorded before any sidecar goes, so the versions left are always first..n and never show an older
   * version as current: a deleted id keeps its tombstone alone (still a 410) until the tombstone goes, and
   * then the record. Content goes last, once no sidecar references it. Returns the content files erased.
   */
  async #applyPurge({ id, from, to, last, blobs }: PurgeJournal): Promise<number> {
    const paths = this.#paths;
    // A purge that failed part way (disk full, say) leaves its journal for the next start; a version written
    // since then is kept: it is then the first.
    const all = to === last && !(await exists(paths.sidecar(id, last + 1)));
    // Nor is the first version ever lowered, by a journal finished after a later purge of the id.
    const first = Math.max(await readFirst(paths, id), all ? last : to + 1);
    await writeFirst(paths, this.#owner, id, first);
    for (let n = from; n < (all ? last : to + 1); n++) await unlinkIfAny(paths.sidecar(id, n));
    await fsyncDir(paths.fanDir(id));
    if (all) {
      await unlinkIfAny(paths.sidecar(id, last));
      await fsyncDir(paths.fanDir(id));
      await unlinkIfAny(paths.first(id));
      await fsyncDir(paths.fanDir(id));
    }
    this.#current.delete(id);
    return blobs.length === 0 ? 0 : this.#eraseUnreferenced(new Set(blobs));
  }

  /**
   * Erases the content files among `candidates` that no sidecar references and no write in flight is
   * storing. A write that stored the same content before the scan is watched from its start (#writing), one
   * that stores it later is seen by the watcher; the check and the marking as erased happen in one turn of
   * the event loop, and a write that comes after waits for the erasure and links its own copy.
   */
  async #eraseUnreferenced(candidates: Set<string>): Promise<number> {
    const watcher = new Set(this.#writing.keys());
    this.#watchers.add(watcher);
    try {
      const referenced = await referencedAmong(this.#paths, candidates);
      // A sidecar that cannot be read may reference any of them: they stay, as orphans for verify --gc.
      if (referenced === null) return 0;
      const erasures: Promise<void>[] = [];
      for (const sha256 of candidates) {
        if (referenced.has(sha256) || watcher.has(sha256) || this.#erasing.has(sha256)) continue;
        const erasure = unlinkIfAny(this.#paths.blob(sha256))
          .then(() => fsyncDir(this.#paths.blobDir(sha256)))
          .finally(() => {
            this.#erasing.delete(sha256);
            this.#files.delete(sha256);
            this.#small.delete(sha256);
          });
        this.#erasing.set(sha256, erasure);
        erasures.push(erasure);
      }
      await Promise.all(erasures);
      return erasures.length;
    } finally {
      this.#watchers.delete(watcher);
    }
  }

  /** Marks content as being written until the returned function is called (see #eraseUnreferenced). */
  #claim(sha256: string): () => void {
    this.#writing.set(sha256, (this.#writing.get(sha256) ?? 0) + 1);
    for (const watcher of this.#watchers) watcher.add(sha256);
    return () => {
      const left = (this.#writing.get(sha256) ?? 1) - 1;
      if (left > 0) this.#writing.set(sha256, left);
      else this.#writing.delete(sha256);
    };
  }

  /**
   * Commits the version that follows the current one. "If <n>.json exists, another writer took n: answer
   * 412 if the client sent If-Match, else retry with n+1" (storage.md): re-reading the current version and
   * re-checking the preconditions does exactly that.
   */
  async #commitNext(
    id: string,
    preconditions: Preconditions,
    next: (current: VersionRecord | null) => VersionRecord,
    ready: Promise<unknown>,
  ): Promise<{ record: VersionRecord; previous: VersionRecord | null }> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const previous = await this.current(id);
      checkPreconditions(previous, preconditions);
      const record = next(previous);
      if (await this.#commit(record, ready)) return { record, previous };
      this.#current.delete(id);
    }
    throw new Error(`Binary/${id}: could not commit a version after 100 attempts`);
  }

  content(version: StoredVersion): Blob {
    const { sha256, size } = version;
    const held = this.#small.get(sha256);
    if (held) return held;
    // Bun opens a file body only once the status line is on its way, so a content file gone from the store
    // would be answered (and audited) as a 200 that fails on the wire: one synchronous stat makes it a 500
    // instead, and keeps the read answered in the call that received it (an answer from a promise costs
    // Bun more CPU to send: a fifth more for a 1 MiB read).
    if (!existsSync(this.#paths.blob(sha256))) {
      throw new Error(`the content file of Binary/${version.id}/_history/${version.versionId} is missing`);
    }
    // Blobs are write-once and named by their hash, so one BunFile per blob serves every read.
    const file = this.#files.get(sha256);
    if (!file) {
      const first = Bun.file(this.#paths.blob(sha256));
      this.#files.set(sha256, first);
      return first;
    }
    if (size <= SMALL_BLOB) this.#hold(sha256, size, file);
    return file;
  }

  /** Reads a small blob into memory for the next reads; this one is answered from the file meanwhile. */
  #hold(sha256: string, size: number, file: Blob): void {
    if (this.#loading.has(sha256)) return;
    this.#loading.add(sha256);
    file
      .bytes()
      .then(
        (bytes) => {
          // A file of another size was damaged by hand (verify reports it): reads keep going to the file.
          if (bytes.byteLength === size) this.#small.set(sha256, new Blob([bytes]));
        },
        // Only a cache fill failed: the read that needs the file reports its own error.
        () => {},
      )
      .finally(() => this.#loading.delete(sha256));
  }

  async writable(): Promise<boolean> {
    const probe = `${this.#paths.tmp}/${randomUUID()}.probe`;
    try {
      const handle = await open(probe, "wx", PRIVATE_FILE);
      await handle.close();
      await unlink(probe);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.#lock.release();
  }

  /**
   * The highest version of `id` (0 for none), found by looking for sidecars by name: versions are
   * first..n (storage.md), so doubling then halving finds n in about 2 log2(n) lookups, and a typical id
   * (one or two versions) in two. A readdir would list the whole fan-out directory, one 256th of the store.
   */
  async #latest(id: string): Promise<number> {
    return (await this.#range(id)).last;
  }

  /**
   * The first and last versions of `id` (last 0 for none). The first is 1 unless a purge recorded another,
   * which is looked for only when version 1 is absent (as for an id never written).
   */
  async #range(id: string): Promise<{ first: number; last: number }> {
    const has = (n: number): Promise<boolean> => exists(this.#paths.sidecar(id, n));
    let first = 1;
    if (!(await has(1))) {
      first = await readFirst(this.#paths, id);
      if (first === 1 || !(await has(first))) return { first, last: 0 };
    }
    let low = first;
    let step = 1;
    let high = low + step;
    while (await has(high)) {
      low = high;
      step *= 2;
      high = low + step;
    }
    // low exists, high does not.
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (await has(middle)) low = middle;
      else high = middle;
    }
    return { first, last: low };
  }

  /**
   * mkdir -p of a fan-out directory, durable, remembered once made (no mkdir call per write) and
   * shared by concurrent callers: a second writer must not see the directory and go on while the first is
   * still fsyncing the parent entry that makes it survive a power cut.
   */
  async #makeFan(dir: string): Promise<void> {
    if (this.#fans.has(dir)) return;
    let making = this.#making.get(dir);
    if (!making) {
      making = mkdirDurable(dir, this.#owner).finally(() => this.#making.delete(dir));
      this.#making.set(dir, making);
    }
    await making;
    this.#fans.add(dir);
  }

  /** Step 1 of storage.md: the body streamed to a temp file and hashed; the file stays open for its fsync. */
  async #stageBlob(request: WriteRequest): Promise<StagedBlob> {
    const temp = `${this.#paths.tmp}/${randomUUID()}`;
    let handle: FileHandle | null = null;
    try {
      handle = await open(temp, "wx", PRIVATE_FILE);
      if (this.#owner) await handle.chown(this.#owner.uid, this.#owner.gid);
      const file = handle;
      const content = await consumeBody(request, (chunk) => writeAll(file, chunk));
      return { temp, handle, content };
    } catch (error) {
      await handle?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw storageError(error);
    }
  }

  /** Steps 2-3: fsync the temp file, link it to blobs/sha256/xx/<hash>, fsync that directory. */
  async #commitBlob({ temp, handle, content }: StagedBlob): Promise<void> {
    let unclosed: FileHandle | null = handle;
    try {
      await fsyncFd(handle.fd);
      unclosed = null;
      await handle.close();
      const dir = this.#paths.blobDir(content.sha256);
      await this.#makeFan(dir);
      await this.#erasing.get(content.sha256);
      await linkNoClobber(temp, this.#paths.blob(content.sha256));
      await fsyncDir(dir);
    } catch (error) {
      throw storageError(error);
    } finally {
      await unclosed?.close().catch(() => {});
      await unlink(temp).catch(() => {});
    }
  }

  /**
   * Step 4: the sidecar, written to tmp and fsynced, then, once `ready` (its blob durable, its directory
   * made), linked without clobbering, and the directory fsynced. False when the version number was taken.
   */
  async #commit(record: VersionRecord, ready: Promise<unknown>): Promise<boolean> {
    const temp = `${this.#paths.tmp}/${randomUUID()}.json`;
    const target = this.#paths.sidecar(record.id, record.versionId);
    try {
      // Written, fsynced and closed in one thread-pool task by Bun: `flush` is the fsync.
      await writeFile(temp, `${JSON.stringify(record, null, 2)}\n`, {
        flag: "wx",
        mode: PRIVATE_FILE,
        flush: true,
      });
      if (this.#owner) await chown(temp, this.#owner.uid, this.#owner.gid);
      await ready;
      if (!(await linkNoClobber(temp, target))) return false;
      await fsyncDir(dirname(target));
      this.#current.set(record.id, record);
      return true;
    } catch (error) {
      throw storageError(error);
    } finally {
      await unlink(temp).catch(() => {});
    }
  }
}

/** A body streamed to a temp file, not yet durable. */
interface StagedBlob {
  temp: string;
  handle: FileHandle;
  content: WrittenContent;
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

/** Maps disk-full and read-only failures to the statuses a client can act on; others pass through. */
function storageError(error: unknown): unknown {
  if (isCode(error, "ENOSPC") || isCode(error, "EDQUOT")) {
    return new FhirError(507, "no-store", "The server has no space left to store the content");
  }
  if (isCode(error, "EROFS") || isCode(error, "EACCES") || isCode(error, "EPERM")) {
    return new FhirError(503, "transient", "The store is not writable at the moment");
  }
  return error;
}
