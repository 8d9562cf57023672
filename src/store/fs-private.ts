/**
 * A data directory holds patient data and the bearer token: everything fhirbin creates in it is for the
 * store's owner only (directories 0700, files 0600), whatever the umask, which can only take bits away
 * from an explicit mode. Explicit modes rather than `process.umask(0o077)`: they hold for every command
 * that writes into a store (serve, import, reindex, verify --gc) without changing the process-wide umask
 * for files written elsewhere (export). SQLite creates the index's -wal and -shm files with the mode (and,
 * running as root, the owner) of the database file, so those follow the file made private here.
 *
 * A store belongs to one user. When root writes into a store another user owns (`fhirbin import --data`
 * run by an administrator on a service account's directory), what it creates is given to that user, or
 * the server running as the account could neither read it nor write beside it.
 */
import { chmodSync, chownSync, statSync } from "node:fs";
import { chmod, stat } from "node:fs/promises";

/** The mode of every file fhirbin creates in a data directory. */
export const PRIVATE_FILE = 0o600;
/** The mode of every directory fhirbin creates in a data directory (and of the data directory itself). */
export const PRIVATE_DIR = 0o700;

// Modes mean little on Windows: the ACL the data directory inherits from its parent protects it there.
const IS_WINDOWS = process.platform === "win32";

/** Whom the files created in a store must belong to, when not to the process that creates them. */
export interface Owner {
  uid: number;
  gid: number;
}

/**
 * The owner that what is created in the data directory `root` must be given: its owner when the process
 * runs as root and the directory belongs to another user, else null (the process's own files are right).
 */
export function storeOwner(root: string): Owner | null {
  // process.geteuid does not exist on Windows, where files have no such owner.
  if (process.geteuid?.() !== 0) return null;
  const info = statSync(root, { throwIfNoEntry: false });
  return !info || info.uid === 0 ? null : { uid: info.uid, gid: info.gid };
}

/**
 * Makes a file another component created (SQLite) owner-only and the store owner's; a path that does not
 * exist is left alone. By path, never through a descriptor: closing any descriptor of a file drops the
 * POSIX locks the process holds on it, and SQLite's locks are such locks.
 */
export function makePrivate(path: string, owner: Owner | null): void {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) return;
  if (!IS_WINDOWS && (info.mode & 0o777) !== PRIVATE_FILE) chmodSync(path, PRIVATE_FILE);
  if (owner && (info.uid !== owner.uid || info.gid !== owner.gid)) chownSync(path, owner.uid, owner.gid);
}

/**
 * Makes an existing data directory owner-only (one an earlier version made 0755 under umask 022); resolves
 * with the mode it had when it had to, else null. What is inside is then out of other users' reach.
 */
export async function restrictDataDir(root: string): Promise<number | null> {
  if (IS_WINDOWS) return null;
  const mode = (await stat(root)).mode & 0o777;
  if ((mode & 0o077) === 0) return null;
  await chmod(root, mode & 0o700);
  return mode;
}
