/**
 * `fhirbin reindex --data DIR`: rebuilds the search index of a data directory from its sidecars, the
 * source of truth. It takes the store's lock, so it refuses while a server uses the directory.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { helpSection } from "../help-text.ts";
import { createFsStore } from "../store/fs.ts";
import { StoreOpenError } from "../store/types.ts";
import { scanIds, sidecarPathIn } from "./fs-scan.ts";
import { catchUp, type SkippedSidecar } from "./indexed-store.ts";
import { INDEX_FILE, removeIndexFiles, SearchIndex } from "./search-index.ts";

/** What a rebuild found. */
export interface ReindexResult {
  versions: number;
  /** The sidecars left out (not JSON, not a version record, unreadable). */
  skipped: SkippedSidecar[];
  elapsedMs: number;
  indexBytes: number;
}

/** Rebuilds `<dataDir>/index.sqlite` from every sidecar; throws StoreOpenError when the directory is in use. */
export async function reindex(dataDir: string): Promise<ReindexResult> {
  const started = performance.now();
  const store = await createFsStore(dataDir);
  try {
    const path = join(dataDir, INDEX_FILE);
    removeIndexFiles(path);
    const index = SearchIndex.open(path);
    try {
      // Until the rebuild completes, a server start would rebuild again rather than trust a partial index.
      index.setMeta("full-scan", "1");
      const { added, skipped } = await catchUp(store, index, scanIds(dataDir), () => false, 1024);
      index.setMeta("unindexed", JSON.stringify(skipped));
      index.analyse();
      index.setMeta("full-scan", "0");
      index.setMeta("state", "clean");
      return {
        versions: added,
        skipped,
        elapsedMs: performance.now() - started,
        indexBytes: index.sizeOnDisk(),
      };
    } finally {
      index.close();
    }
  } finally {
    await store.close();
  }
}

/** The `reindex` subcommand; resolves with the exit status (0 done, 1 failed, 2 bad usage). */
export async function runReindex(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> {
  let values: { data?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { data: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin reindex: ${error instanceof Error ? error.message : String(error)}; see fhirbin --help`);
    return 2;
  }
  if (values.help) {
    io.out(REINDEX_HELP);
    return 0;
  }
  const dataDir = values.data ?? (env.FHIRBIN_DATA || "./data/store");
  if (!existsSync(join(dataDir, "binary"))) {
    io.err(`fhirbin reindex: ${dataDir} is not a fhirbin data directory (no binary/ in it)`);
    return 1;
  }
  try {
    const { versions, skipped, elapsedMs, indexBytes } = await reindex(dataDir);
    const sidecar = sidecarPathIn(dataDir);
    for (const bad of skipped)
      io.err(`fhirbin reindex: left out ${sidecar(bad.id, bad.versionId)}: it ${bad.problem}`);
    io.out(
      `reindexed ${dataDir}: ${versions} versions in ${(elapsedMs / 1000).toFixed(1)} s, ` +
        `index ${(indexBytes / 2 ** 20).toFixed(1)} MiB` +
        (skipped.length > 0
          ? `; ${skipped.length} sidecar(s) could not be indexed (fhirbin verify lists them)`
          : ""),
    );
    return 0;
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    io.err(`fhirbin reindex: ${error.message}`);
    return 1;
  }
}

/** The help lines of `reindex`, also part of `fhirbin --help`. */
export const REINDEX_HELP = helpSection(
  "Options of reindex (rebuild the search index from the sidecars; refused while a server runs):",
  [["--data DIR", "data directory [FHIRBIN_DATA] (default ./data/store)"]],
);
