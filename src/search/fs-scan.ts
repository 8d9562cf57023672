/**
 * Walks the sidecars of a filesystem data directory (storage.md layout) for rebuilding and catching up the
 * search index: every id with the version numbers its directory holds.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { isValidId } from "../fhir/id.ts";
import { encodeId, layout } from "../store/fs-layout.ts";

const SIDECAR = /^([1-9][0-9]*)\.json$/;
const FAN = /^[0-9a-f]{2}$/;

/** One resource directory: the id and its version numbers, ascending. */
export interface ScannedId {
  id: string;
  versions: number[];
}

/**
 * Inverts `encodeId` (`_+abc~1` is `Abc.1`); null for a name that no id encodes to (not fhirbin's, or
 * edited by hand).
 */
export function decodeId(name: string): string | null {
  if (!name.startsWith("_")) return null;
  const id = name
    .slice(1)
    .replace(/\+([a-z])|~/g, (match, letter: string | undefined) =>
      match === "~" ? "." : (letter ?? "").toUpperCase(),
    );
  return isValidId(id) && encodeId(id) === name ? id : null;
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
 * Lists every id of the data directory `root` with its version numbers. Directories are read a few at a
 * time: a million ids is a million `readdir`s, and the thread pool does them in parallel.
 */
export async function* scanIds(root: string, parallel = 16): AsyncGenerator<ScannedId> {
  const { binary } = layout(root);
  for (const fan of (await list(binary)).filter((name) => FAN.test(name)).sort()) {
    const names = await list(join(binary, fan));
    for (let i = 0; i < names.length; i += parallel) {
      const batch = names.slice(i, i + parallel).flatMap((name) => {
        const id = decodeId(name);
        return id === null ? [] : [{ id, dir: join(binary, fan, name) }];
      });
      const scanned = await Promise.all(
        batch.map(async ({ id, dir }) => ({
          id,
          versions: (await list(dir))
            .map((name) => SIDECAR.exec(name)?.[1])
            .filter((n): n is string => n !== undefined)
            .map(Number)
            .sort((a, b) => a - b),
        })),
      );
      for (const entry of scanned) if (entry.versions.length > 0) yield entry;
    }
  }
}
