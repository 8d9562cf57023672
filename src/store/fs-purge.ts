/**
 * The files of a purge in a data directory: its journal (the intent, written durably before anything is
 * removed, so that the next start finishes a purge a crash cut short), the record of the first version an id
 * keeps, and the search for remaining references to the content it removes. The order is the driver's
 * (fs.ts, `#applyPurge`).
 */
import { randomUUID } from "node:crypto";
import { chown, readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDir, isCode, linkNoClobber } from "./fs-durable.ts";
import { groupSidecars, isFanName, type Layout, sidecarFileName } from "./fs-layout.ts";
import { type Owner, PRIVATE_FILE } from "./fs-private.ts";

/** A purge's intent: sidecars `from`..`to` of `id` go, then the content in `blobs` nothing else references. */
export interface PurgeJournal {
  id: string;
  from: number;
  to: number;
  /** The current version when the purge began: `to` equals it when every version goes (a deleted id). */
  last: number;
  blobs: string[];
}

/** Sidecars read at once while looking for references: enough to keep a disk busy, few file descriptors. */
const PARALLEL = 16;

/** Writes a file through a temp file of `tmp`, fsynced before it takes its name (see storage.md). */
async function writeDurably(
  tmp: string,
  target: string,
  text: string,
  owner: Owner | null,
  place: (temp: string, target: string) => Promise<unknown>,
): Promise<void> {
  const temp = join(tmp, `${randomUUID()}.json`);
  try {
    await writeFile(temp, text, { flag: "wx", mode: PRIVATE_FILE, flush: true });
    if (owner) await chown(temp, owner.uid, owner.gid);
    await place(temp, target);
    await fsyncDir(dirname(target));
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Journals a purge durably; returns the journal's path, to remove once the purge is over. */
export async function writeJournal(
  paths: Layout,
  owner: Owner | null,
  journal: PurgeJournal,
): Promise<string> {
  const path = join(paths.purges, `${randomUUID()}.json`);
  await writeDurably(paths.tmp, path, `${JSON.stringify(journal)}\n`, owner, linkNoClobber);
  return path;
}

/** The journals of purges a crash cut short. */
export async function readJournals(paths: Layout): Promise<{ path: string; journal: PurgeJournal }[]> {
  let names: string[];
  try {
    names = await readdir(paths.purges);
  } catch (error) {
    if (isCode(error, "ENOENT")) return [];
    throw error;
  }
  return Promise.all(
    names
      .filter((name) => name.endsWith(".json"))
      .map(async (name) => {
        const path = join(paths.purges, name);
        return { path, journal: JSON.parse(await readFile(path, "utf8")) as PurgeJournal };
      }),
  );
}

/** Removes a file that may already be gone (a purge finished a second time). */
export async function unlinkIfAny(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isCode(error, "ENOENT")) throw error;
  }
}

/**
 * Records durably that `id` keeps its versions from `first` on. Renamed over the record of an earlier purge:
 * a rename is atomic, so a crash leaves the old first version or the new one, never none.
 */
export async function writeFirst(
  paths: Layout,
  owner: Owner | null,
  id: string,
  first: number,
): Promise<void> {
  const text = `${JSON.stringify({ id, firstVersion: first }, null, 2)}\n`;
  await writeDurably(paths.tmp, paths.first(id), text, owner, rename);
}

/** The first version `id` keeps: 1 unless a purge removed the ones before it. */
export async function readFirst(paths: Layout, id: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(paths.first(id), "utf8");
  } catch (error) {
    if (isCode(error, "ENOENT") || isCode(error, "ENOTDIR")) return 1;
    throw error;
  }
  const { id: named, firstVersion } = JSON.parse(text) as { id?: unknown; firstVersion?: unknown };
  if (named !== id || !Number.isSafeInteger(firstVersion) || (firstVersion as number) < 1)
    throw new Error(`the first-version record of Binary/${id} is corrupt`);
  return firstVersion as number;
}

/**
 * Which of `candidates` (content hashes) some sidecar of any id still references, reading every sidecar:
 * content is shared by every version with its hash, whatever the id. Null when a sidecar cannot be read as
 * JSON: it may reference any of them, so none may be erased.
 */
export async function referencedAmong(
  paths: Layout,
  candidates: ReadonlySet<string>,
): Promise<Set<string> | null> {
  const found = new Set<string>();
  let unreadable = false;
  const fans = (await readdir(paths.binary)).filter(isFanName);
  for (const fan of fans) {
    if (unreadable || found.size === candidates.size) break;
    const dir = join(paths.binary, fan);
    const { versions } = groupSidecars(await readdir(dir));
    const files = [...versions].flatMap(([encoded, numbers]) =>
      numbers.map((n) => join(dir, sidecarFileName(encoded, n))),
    );
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.length && !unreadable) {
        const path = files[next++] as string;
        let record: { deleted?: unknown; sha256?: unknown };
        try {
          record = JSON.parse(await readFile(path, "utf8")) as typeof record;
        } catch (error) {
          if (isCode(error, "ENOENT")) continue;
          unreadable = true;
          return;
        }
        if (record.deleted === false && typeof record.sha256 === "string" && candidates.has(record.sha256))
          found.add(record.sha256);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, files.length) }, worker));
  }
  return unreadable ? null : found;
}
