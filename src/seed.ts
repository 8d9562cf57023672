/** Seeds a store from a folder of sample documents (the demo): `<id>.<ext>`, imported when the id is new. */
import { readdir } from "node:fs/promises";
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

/** Imports every known file type of `dir` whose id was never written; returns the ids imported. */
export async function seedStore(store: Store, dir: string, maxSize: number): Promise<string[]> {
  const imported: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const ext = extname(name).toLowerCase();
    const id = name.slice(0, -ext.length);
    const contentType = TYPES[ext];
    if (!contentType || !isValidId(id) || (await store.current(id))) continue;
    const body = await Bun.file(join(dir, name)).bytes();
    await store.update(id, { contentType, securityContext: null, body, maxSize, ifNoneMatch: true });
    imported.push(id);
  }
  return imported;
}
