/**
 * The single-instance lock of a data directory, held by the operating system for the life of the process
 * and released when the process ends, however it ends. A lock file that a newcomer reads, judges stale,
 * removes and creates again lets two processes started together on a crash's leftover both take it (seen 5
 * times in 40), and then both write the same ids.
 *
 * It is SQLite's exclusive locking mode on `<data>/.lock.sqlite`: bun:sqlite is inside the executable on
 * every platform, and SQLite takes fcntl record locks on Linux and macOS and LockFileEx on Windows, which
 * the kernel drops with the process. flock or LockFileEx through bun:ffi would need a library, a calling
 * convention and handle rules per platform from an experimental API, to save under a millisecond per
 * start (about 1 ms against 0.3 ms, measured on Linux). `<data>/.lock` only says who holds it.
 */
import { Database } from "bun:sqlite";
import { readFile, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { describeFsError, isCode, NOT_WRITABLE } from "./fs-durable.ts";
import type { Layout } from "./fs-layout.ts";
import { makePrivate, type Owner, PRIVATE_FILE } from "./fs-private.ts";
import { StoreOpenError } from "./types.ts";

/** A held lock; `release` gives it up (once) and removes the holder's details. */
export interface DirectoryLock {
  release(): Promise<void>;
}

/** What `<data>/.lock` records about the holder. */
interface Holder {
  pid: number;
  host: string;
  started: string;
}

/**
 * How long a refused process waits for the holder to record itself: it does so just after locking, but a
 * loaded machine may not run it at once.
 */
const HOLDER_WAIT_MS = 3000;

/**
 * Attempts at the lock before a process is told the directory is in use. Two newcomers can each take the
 * shared lock that comes before the exclusive one, and then neither gets the exclusive one (seen in 2 of 20
 * races): each lets go of everything and tries again after a random pause, which one of them soon wins. A
 * real holder refuses every attempt.
 */
const LOCK_ATTEMPTS = 6;
const LOCK_PAUSE_MS = 50;

/** Takes the lock of the data directory of `paths`, or throws StoreOpenError naming who holds it. */
export async function acquireLock(paths: Layout, owner: Owner | null): Promise<DirectoryLock> {
  const dir = dirname(paths.lock);
  let db: Database | null = null;
  for (let attempt = 1; db === null; attempt++) {
    db = tryLock(paths, owner);
    if (db === null) {
      if (attempt === LOCK_ATTEMPTS) throw new StoreOpenError(inUse(dir, await recordedHolder(paths)));
      await Bun.sleep(LOCK_PAUSE_MS * (0.5 + Math.random()));
    }
  }
  const holder: Holder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const text = `${JSON.stringify(holder)}\n`;
  try {
    // Rewritten in place: on Windows a name being removed cannot be created again while a refused
    // process still has it open. A leftover this process may not write (root's) is made afresh.
    await writeFile(paths.lock, text, { mode: PRIVATE_FILE }).catch(async (error: unknown) => {
      if (!isCode(error, "EACCES") && !isCode(error, "EPERM")) throw error;
      await unlink(paths.lock);
      await writeFile(paths.lock, text, { flag: "wx", mode: PRIVATE_FILE });
    });
    makePrivate(paths.lock, owner);
  } catch (error) {
    db.close();
    throw new StoreOpenError(`cannot write to the data directory ${dir}: ${describeFsError(error)}`);
  }
  let released = false;
  // The closure keeps `db` reachable: a Database collected as garbage closes, and its lock goes with it.
  return {
    async release() {
      if (released) return;
      released = true;
      // The details go first: once the lock is free, they may already be the next holder's.
      await unlink(paths.lock).catch(() => {});
      db.close();
    },
  };
}

/** The locked database, or null when another process holds (or is taking) the lock. */
function tryLock(paths: Layout, owner: Owner | null): Database | null {
  let db: Database;
  try {
    db = new Database(paths.osLock, { create: true, readwrite: true });
  } catch (error) {
    throw lockFailure(paths, error);
  }
  try {
    makePrivate(paths.osLock, owner);
    db.run("PRAGMA busy_timeout = 0");
    // "The first time the database is written, an exclusive lock is obtained and held" until the
    // connection closes (https://www.sqlite.org/pragma.html#pragma_locking_mode).
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // Nothing in it matters: no journal file beside it, no fsync.
    db.run("PRAGMA journal_mode = MEMORY");
    db.run("PRAGMA synchronous = OFF");
    db.transaction(() => db.run("PRAGMA user_version = 1")).exclusive();
    return db;
  } catch (error) {
    // Closing lets go of the shared lock too, so that the other newcomer can go on.
    db.close();
    if (isCode(error, "SQLITE_BUSY")) return null;
    throw lockFailure(paths, error);
  }
}

/**
 * Why the lock could not be taken when no one holds it. SQLite cannot create a file where it may not
 * write, and opens one it may not write read-only, to fail at the first write.
 */
function lockFailure(paths: Layout, error: unknown): StoreOpenError {
  return isCode(error, "SQLITE_CANTOPEN") || isCode(error, "SQLITE_READONLY")
    ? new StoreOpenError(`cannot write to the data directory ${dirname(paths.lock)}: ${NOT_WRITABLE}`)
    : new StoreOpenError(`cannot take the lock ${paths.osLock}: ${describeFsError(error)}`);
}

function inUse(dir: string, holder: Holder | null): string {
  return holder
    ? `the data directory ${dir} is in use by process ${holder.pid} on ${holder.host} since ${holder.started}; stop it first`
    : `the data directory ${dir} is in use by another process; stop it first`;
}

/**
 * The holder `.lock` names. It writes it just after taking the lock, so until then the file is missing,
 * half written or names an earlier holder that died: wait a little for details naming a live process.
 * One on another host cannot be checked and is taken as it is.
 */
async function recordedHolder(paths: Layout): Promise<Holder | null> {
  const end = performance.now() + HOLDER_WAIT_MS;
  for (;;) {
    const holder = await readHolder(paths.lock);
    if (holder && (holder.host !== hostname() || isRunning(holder.pid))) return holder;
    if (performance.now() > end) return null;
    await Bun.sleep(20);
  }
}

async function readHolder(path: string): Promise<Holder | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Holder;
  } catch {
    return null;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isCode(error, "EPERM");
  }
}
