import { createFsStore } from "./fs.ts";
import { createMemoryStore } from "./memory.ts";
import type { Store } from "./types.ts";

/** Opens the store a location names: `memory:` for the in-memory driver, else a data directory path. */
export function createStore(location: string): Promise<Store> {
  return location === "memory:" ? Promise.resolve(createMemoryStore()) : createFsStore(location);
}
