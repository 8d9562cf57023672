/**
 * Walks the sidecars of a filesystem data directory (storage.md layout) for rebuilding and catching up the
 * search index: every id with the version numbers its sidecars hold.
 */
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { decodeId, groupSidecars, isFanName, layout } from "../store/fs-layout.ts";

/** One id and its version numbers, ascending. */
export interface ScannedId {
  id: string;
  versions: number[];
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT" || (error as { code?: unknown }).code === "ENOTDIR")
      return [];
    throw error;
  }
}

/**
 * Lists every id of the data directory `root` with its version numbers, a fan-out directory at a time (one
 * 256th of the store: 4,000 names for a million ids).
 */
export async function* scanIds(root: string): AsyncGenerator<ScannedId> {
  const { binary } = layout(root);
  for (const fan of (await list(binary)).filter(isFanName).sort()) {
    const { versions } = groupSidecars(await list(join(binary, fan)));
    for (const [encoded, numbers] of versions) {
      const id = decodeId(encoded);
      if (id !== null) yield { id, versions: numbers.sort((a, b) => a - b) };
    }
  }
}

/** Names the sidecar of a version by its path inside the data directory `root` (for log lines). */
export function sidecarPathIn(root: string): (id: string, versionId: number) => string {
  const { sidecar } = layout(root);
  return (id, versionId) => relative(root, sidecar(id, versionId));
}
