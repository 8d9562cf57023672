import { join } from "node:path";
import { loadOrCreateSecret } from "../auth-token.ts";
// Search: every store is wrapped with its search index.
import { scanIds, sidecarPathIn } from "../search/fs-scan.ts";
import { type IndexedStore, withIndex } from "../search/indexed-store.ts";
import { INDEX_FILE, SearchIndex } from "../search/search-index.ts";
import { createFsStore } from "./fs.ts";
import { createMemoryStore } from "./memory.ts";
import { StoreOpenError } from "./types.ts";

/** File of the secret that paging cursors are sealed with, next to the generated token (owner-only). */
export const CURSOR_KEY_FILE = "cursor-key";

/**
 * Opens the store a location names: `memory:` for the in-memory driver (with an in-memory index), else a
 * data directory path (with `<data>/index.sqlite` and `<data>/cursor-key`, opened once the store's lock is
 * held). `log` receives the index's catch-up reports.
 */
export async function createStore(
  location: string,
  options: { log?: (line: string) => void } = {},
): Promise<IndexedStore> {
  if (location === "memory:") return withIndex(createMemoryStore(), SearchIndex.open(":memory:"), options);
  const store = await createFsStore(location, { log: options.log });
  try {
    const cursorKey = join(location, CURSOR_KEY_FILE);
    const { secret } = await loadOrCreateSecret(cursorKey);
    // Written whole and fsynced once; anything shorter was cut short or edited, and would make a guessable key.
    if (secret.length < 32)
      throw new StoreOpenError(`${cursorKey} is damaged; remove it (paging links then restart)`);
    const index = SearchIndex.open(join(location, INDEX_FILE));
    return withIndex(store, index, {
      ...options,
      scan: () => scanIds(location),
      sidecar: sidecarPathIn(location),
      cursorSecret: secret,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
}
