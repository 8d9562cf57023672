/** Seeds a store from a folder of sample documents (the demo): `<id>.<ext>`, imported when the id is new. */
import { readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { isValidId } from "./fhir/id.ts";
import type { Store } from "./store/types.ts";

const TYPES: Readonly<Record<string, string>> = {
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".html": "text/html; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

/** What a seed did: the ids imported, and the files the settings refuse, each with the reason. */
export interface SeedResult {
  imported: string[];
  skipped: Array<{ file: string; reason: string }>;
}

/**
 * Imports every known file type of `dir` whose id was never written, except those the server's settings
 * refuse (larger than `maxSize`, a media type of `denyTypes`), which are skipped and named. Every file is
 * checked before any is stored, so a seed is never left half done by a file the settings refuse.
 */
export async function seedStore(
  store: Store,
  dir: string,
  settings: { maxSize: number; denyTypes: readonly string[] },
): Promise<SeedResult> {
  const skipped: SeedResult["skipped"] = [];
  const accepted: Array<{ id: string; path: string; contentType: string }> = [];
  for (const name of (await readdir(dir)).sort()) {
    const ext = extname(name).toLowerCase();
    const id = name.slice(0, -ext.length);
    const contentType = TYPES[ext];
    if (!contentType || !isValidId(id) || (await store.current(id))) continue;
    const path = join(dir, name);
    const mediaType = contentType.split(";")[0] as string;
    const { size } = await stat(path);
    if (size > settings.maxSize)
      skipped.push({
        file: path,
        reason: `${size} bytes, larger than --max-size (${settings.maxSize} bytes)`,
      });
    else if (settings.denyTypes.includes(mediaType))
      skipped.push({ file: path, reason: `${mediaType} is refused by --deny-types` });
    else accepted.push({ id, path, contentType });
  }
  const imported: string[] = [];
  for (const { id, path, contentType } of accepted) {
    const body = await Bun.file(path).bytes();
    const { maxSize } = settings;
    await store
      .update(id, { contentType, securityContext: null, body, maxSize, ifNoneMatch: true })
      .catch((error: unknown) => {
        throw new Error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
      });
    imported.push(id);
  }
  return { imported, skipped };
}
