import { join } from "node:path";
// Search (issue 6): every store is wrapped with its search index.
import { scanIds, sidecarPathIn } from "../search/fs-scan.ts";
import { type IndexedStore, withIndex } from "../search/indexed-store.ts";
import { INDEX_FILE, SearchIndex } from "../search/search-index.ts";
import { createFsStore } from "./fs.ts";
import { createMemoryStore } from "./memory.ts";

/**
 * Opens the store a location names: `memory:` for the in-memory driver (with an in-memory index), else a
 * data directory path (with `<data>/index.sqlite`, opened once the store's lock is held). `log` receives
 * the index's catch-up reports.
 */
export async function createStore(
  location: string,
  options: { log?: (line: string) => void } = {},
): Promise<IndexedStore> {
  if (location === "memory:") return withIndex(createMemoryStore(), SearchIndex.open(":memory:"), options);
  const store = await createFsStore(location, { log: options.log });
  try {
    const index = SearchIndex.open(join(location, INDEX_FILE));
    return withIndex(store, index, {
      ...options,
      scan: () => scanIds(location),
      sidecar: sidecarPathIn(location),
    });
  } catch (error) {
    await store.close();
    throw error;
  }
}
