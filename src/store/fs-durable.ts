/**
 * The file system calls the store's durability rests on (storage.md): links that never clobber, directory
 * fsyncs, and directories made durably. Shared by the driver and the conversion of earlier layouts.
 */
import { closeSync, openSync } from "node:fs";
import { access, chown, link, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { type Owner, PRIVATE_DIR } from "./fs-private.ts";
import { fsyncFd } from "./fsync-pool.ts";

const IS_WINDOWS = process.platform === "win32";

/** Hard-links `from` to `to` unless `to` exists (never a rename over an existing file); false if it did. */
export async function linkNoClobber(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (error) {
    if (isCode(error, "EEXIST")) return false;
    throw error;
  }
}

/**
 * fsyncs a directory so the entries just linked in it survive a power cut (not possible on Windows). Only
 * the fsync leaves the event loop, for a worker of the fsync pool: opening a directory to read changes
 * nothing on disk and returns at once, and three hand-offs per directory were a good part of a small
 * create's CPU time (issue 8).
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (IS_WINDOWS) return;
  const fd = openSync(dir, "r");
  try {
    await fsyncFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * mkdir -p that fsyncs the parent of every directory it creates, each owner-only (and `owner`'s when not
 * null). Asynchronous like every call here that changes the file system: made synchronously, such calls
 * were seen to stall the event loop (and every read in flight) for as long as the journal was busy with the
 * fsyncs of other writes.
 */
export async function mkdirDurable(dir: string, owner: Owner | null): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  if (first === undefined) return;
  for (let created = dir; ; created = dirname(created)) {
    if (owner) await chown(created, owner.uid, owner.gid);
    await fsyncDir(dirname(created));
    if (created === first || dirname(created) === created) break;
  }
}

/** True when `path` exists; other failures than ENOENT are thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if (isCode(error, "ENOENT")) return false;
    throw error;
  }
}

/** True when `error` is a system error with this `code` (ENOENT, EEXIST...). */
export function isCode(error: unknown, code: string): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}

/** Why a file could not be written, in words a person can act on. */
export const NOT_WRITABLE = "permission denied or read-only file system";

/** A file system error in words a person can act on (the path is the caller's to name). */
export function describeFsError(error: unknown): string {
  return isCode(error, "EACCES") || isCode(error, "EPERM") || isCode(error, "EROFS")
    ? NOT_WRITABLE
    : error instanceof Error
      ? error.message
      : String(error);
}
