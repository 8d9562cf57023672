/**
 * `fhirbin purge ID --previous-versions | --deleted [--data DIR]`: the `$expunge` operation on a stopped
 * store, for an operator correcting a misfiled document or applying a retention rule. It takes the store's
 * lock, so it refuses while a server uses the directory, and the search index forgets what it removes.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FhirError } from "../fhir/errors.ts";
import { isValidId } from "../fhir/id.ts";
import { helpSection } from "../help-text.ts";
import { createStore } from "../store/index.ts";
import { type PurgeMode, StoreOpenError } from "../store/types.ts";

/** The `purge` subcommand; resolves with the exit status (0 done, 1 failed or refused, 2 bad usage). */
export async function runPurge(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    io.err(
      `fhirbin purge: ${error instanceof Error ? error.message : String(error)}; see fhirbin purge --help`,
    );
    return 2;
  }
  if (parsed === "help") {
    io.out(PURGE_HELP);
    return 0;
  }
  const { id, mode, data } = parsed;
  const dataDir = data ?? (env.FHIRBIN_DATA || "./data/store");
  if (!existsSync(join(dataDir, "binary"))) {
    io.err(`fhirbin purge: ${dataDir} is not a fhirbin data directory (no binary/ in it)`);
    return 1;
  }
  try {
    const store = await createStore(dataDir, { log: (line) => io.err(`fhirbin purge: ${line}`) });
    try {
      const result = await store.purge(id, mode);
      if (!result) {
        io.err(`fhirbin purge: Binary/${id} is not known`);
        return 1;
      }
      const { versions, blobs } = result;
      io.out(
        versions.length === 0
          ? `Binary/${id}: nothing to purge`
          : `purged Binary/${id}: version(s) ${versions.join(", ")} removed, ${blobs} content file(s) erased`,
      );
      return 0;
    } finally {
      await store.close();
    }
  } catch (error) {
    if (!(error instanceof StoreOpenError || error instanceof FhirError)) throw error;
    io.err(`fhirbin purge: ${error instanceof FhirError ? error.diagnostics : error.message}`);
    return 1;
  }
}

/** The id and the mode of the command line, or "help"; throws on bad usage. */
function parse(argv: readonly string[]): { id: string; mode: PurgeMode; data: string | undefined } | "help" {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      data: { type: "string" },
      "previous-versions": { type: "boolean" },
      deleted: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return "help";
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0) throw new Error("give exactly one id");
  if (!isValidId(id)) throw new Error(`${JSON.stringify(id)} is not a valid id`);
  if (values["previous-versions"] === values.deleted)
    throw new Error("give one of --previous-versions or --deleted");
  return { id, mode: values.deleted ? "deleted" : "previous-versions", data: values.data };
}

/** The help lines of `purge`, also part of `fhirbin --help`. */
export const PURGE_HELP = helpSection(
  "Options of purge ID (remove versions and their content for good; refused while a server runs):",
  [
    ["--previous-versions", "remove every version but the current one"],
    ["--deleted", "remove every version of a deleted document: the id is then unknown"],
    ["--data DIR", "data directory [FHIRBIN_DATA] (default ./data/store)"],
  ],
);
