/**
 * The file system calls the store's durability rests on (storage.md): links that never clobber, directory
 * fsyncs, and directories made durably. Shared by the driver and the conversion of earlier layouts.
 */
import { randomUUID } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { access, chown, link, mkdir, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type Owner, PRIVATE_DIR, PRIVATE_FILE } from "./fs-private.ts";
import { fsyncFd } from "./fsync-pool.ts";
import { StoreOpenError } from "./types.ts";

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
 * fsyncs a directory so the entries just linked in it survive a power cut. Only the fsync leaves the event
 * loop, for a worker of the fsync pool: opening a directory to read changes nothing on disk and returns at
 * once, and three hand-offs per directory were a good part of a small create's CPU time.
 *
 * Windows opens a directory as a handle (Bun asks for FILE_FLAG_BACKUP_SEMANTICS), but FlushFileBuffers
 * "must have the GENERIC_WRITE access right" on it, hence `r+` there; NTFS journals the entry either way, so
 * a volume that refuses the flush (EPERM, EISDIR...) still never shows a torn entry after a power cut, only
 * possibly the loss of the last writes acknowledged before it.
 */
export async function fsyncDir(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(dir, IS_WINDOWS ? "r+" : "r");
  } catch (error) {
    if (isRefusedOnWindows(error)) return;
    throw error;
  }
  try {
    await fsyncFd(fd);
  } catch (error) {
    if (!isRefusedOnWindows(error)) throw error;
  } finally {
    closeSync(fd);
  }
}

/** True on Windows for a file system's refusal to open or flush a directory as a file. */
function isRefusedOnWindows(error: unknown): boolean {
  return IS_WINDOWS && ["EISDIR", "EPERM", "EACCES", "ENOTSUP", "EINVAL"].some((code) => isCode(error, code));
}

/**
 * Refuses a data directory on a file system without hard links (FAT and exFAT, such as most USB disks). The
 * store commits by linking a complete, fsynced temp file under its final name, which fails if the name is
 * taken: no-clobber and atomic at once. A copy into an exclusively created name would keep the no-clobber
 * but not the atomicity: a crash in the middle leaves a torn sidecar or blob under its final name, read as
 * committed. `dir` is the store's tmp directory, which the start-up has just emptied.
 */
export async function requireHardLinks(dir: string, root: string): Promise<void> {
  const probe = join(dir, `${randomUUID()}.probe`);
  await writeFile(probe, "", { flag: "wx", mode: PRIVATE_FILE });
  try {
    await link(probe, `${probe}.link`);
    await unlink(`${probe}.link`);
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? error);
    throw new StoreOpenError(
      `the data directory ${root} is on a file system without hard links (${code}), such as FAT or exFAT: ` +
        "fhirbin commits every write by linking it into place; use NTFS, ReFS, ext4, XFS or APFS",
    );
  } finally {
    await unlink(probe);
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
