/**
 * `fhirbin export ID [--version N] [-o FILE]`: one document's content to a file or stdout; `fhirbin export
 * --all DIR`: every current document as `<id><ext>`, its metadata as `_metadata/<id>.json` (ids never start
 * with `_`, so the names cannot collide), a folder that `fhirbin import` recognises and imports back exactly.
 * From a stopped data directory (`--data`) or a running server (`--url`, single documents only: listing needs
 * a data directory).
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isValidId, parseVersionId } from "../fhir/id.ts";
import { scanIds } from "../search/fs-scan.ts";
import type { StoredVersion } from "../store/types.ts";
import { extensionOf } from "./content-type.ts";
import type { ToolIo } from "./import.ts";
import { type DocumentTarget, openDataTarget, openRemoteTarget } from "./remote.ts";

const USAGE =
  "usage: fhirbin export ID [--version N] [-o FILE] [--data DIR | --url URL [--token T]]\n" +
  "       fhirbin export --all DIR [--data DIR]";

/** The folder of an export that holds each document's metadata; `import` recognises an export by it. */
export const METADATA_DIR = "_metadata";

/** A document as `_metadata/<id>.json` describes it: what `import` needs to store it back exactly. */
export interface ExportedDocument {
  id: string;
  /** The name of the content's file, beside the metadata folder. */
  file: string;
  contentType: string;
  securityContext: string | null;
  size: number;
  sha256: string;
}

/** A plain file name (no separator, not `.` or `..`): a metadata file can name nothing outside its export. */
const FILE_NAME = /^(?!\.+$)[A-Za-z0-9.-]{1,80}$/;

/** The document an export's metadata file describes; null when the text is not such a file. */
export function parseExportedDocument(text: string): ExportedDocument | null {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { id, file, contentType, securityContext, size, sha256 } = value ?? {};
  const valid =
    typeof id === "string" &&
    isValidId(id) &&
    typeof file === "string" &&
    FILE_NAME.test(file) &&
    typeof contentType === "string" &&
    contentType !== "" &&
    (securityContext === null || typeof securityContext === "string") &&
    Number.isSafeInteger(size) &&
    (size as number) >= 0 &&
    typeof sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(sha256);
  return valid ? { id, file, contentType, securityContext, size: size as number, sha256 } : null;
}

/** Every id of a data directory, sorted (the search index's scanner of the sidecar tree). */
async function listIds(dataDir: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const { id } of scanIds(dataDir)) ids.push(id);
  return ids.sort();
}

/** The metadata written beside an exported document. */
function metadataOf(version: StoredVersion): Record<string, unknown> {
  const { id, versionId, lastUpdated, contentType, securityContext, size, sha256 } = version;
  return { id, versionId, lastUpdated, contentType, securityContext, size, ...(sha256 ? { sha256 } : {}) };
}

/** Runs `fhirbin export`; resolves with the exit status. */
export async function runExport(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: ToolIo,
  stdout: { write(bytes: Uint8Array): Promise<unknown> } = {
    write: (bytes) => Bun.write(Bun.stdout, bytes),
  },
): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      options: {
        data: { type: "string" },
        url: { type: "string" },
        token: { type: "string" },
        version: { type: "string" },
        output: { type: "string", short: "o" },
        all: { type: "string" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin export: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const all = typeof values.all === "string" ? values.all : null;
  const [id, ...extra] = positionals;
  const problems: string[] = [];
  if (all === null && (id === undefined || extra.length > 0)) problems.push("give one ID, or --all DIR");
  if (all !== null && positionals.length > 0) problems.push("--all exports every document: give no ID");
  if (all !== null && (values.version !== undefined || values.output !== undefined))
    problems.push("--version and -o apply to one document, not --all");
  if (all !== null && values.url !== undefined)
    problems.push("--all reads a data directory: use --data, not --url");
  if (values.data !== undefined && values.url !== undefined)
    problems.push("--data and --url exclude each other");
  if (id !== undefined && !isValidId(id)) problems.push(`${JSON.stringify(id)} is not a valid id`);
  const versionId = typeof values.version === "string" ? parseVersionId(values.version) : null;
  if (values.version !== undefined && versionId === null)
    problems.push("--version: must be a version number");
  if (problems.length > 0) {
    for (const problem of problems) io.err(`fhirbin export: ${problem}`);
    io.err(USAGE);
    return 2;
  }
  const dataDir = typeof values.data === "string" ? values.data : env.FHIRBIN_DATA || "./data/store";
  let target: DocumentTarget;
  try {
    target =
      typeof values.url === "string"
        ? openRemoteTarget(
            values.url,
            typeof values.token === "string" ? values.token : (env.FHIRBIN_TOKEN ?? null),
          )
        : await openDataTarget(dataDir, Number.MAX_SAFE_INTEGER);
  } catch (error) {
    io.err(`fhirbin export: ${(error as Error).message}`);
    return 1;
  }
  try {
    if (all !== null) return await exportAll(target, dataDir, resolve(all), io);
    const record =
      versionId === null ? await target.current(id as string) : await target.version(id as string, versionId);
    if (!record || record.deleted) {
      io.err(
        `fhirbin export: Binary/${id}${versionId === null ? "" : `/_history/${versionId}`} is ${record ? "deleted" : "not known"}`,
      );
      return 1;
    }
    const content = await target.content(record);
    if (typeof values.output === "string") {
      await Bun.write(values.output, content);
      io.err(
        `exported Binary/${record.id} version ${record.versionId} (${record.contentType}, ${record.size} bytes) to ${values.output}`,
      );
    } else {
      await stdout.write(await content.bytes());
    }
    return 0;
  } catch (error) {
    io.err(`fhirbin export: ${(error as Error).message}`);
    return 1;
  } finally {
    await target[Symbol.asyncDispose]();
  }
}

async function exportAll(target: DocumentTarget, dataDir: string, dir: string, io: ToolIo): Promise<number> {
  const present = await readdir(dir).catch((error: { code?: unknown }) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
  if (present.length > 0) {
    // Files of an earlier export would be imported back with this one: documents deleted since among them.
    io.err(`fhirbin export: ${dir} is not empty: --all writes into a new or empty folder`);
    return 1;
  }
  await mkdir(join(dir, METADATA_DIR), { recursive: true });
  let exported = 0;
  let deleted = 0;
  for (const id of await listIds(dataDir)) {
    const version = await target.current(id);
    if (!version) {
      deleted++;
      continue;
    }
    const file = `${id}${extensionOf(version.contentType)}`;
    await Bun.write(join(dir, file), await target.content(version));
    await writeFile(
      join(dir, METADATA_DIR, `${id}.json`),
      `${JSON.stringify({ ...metadataOf(version), file }, null, 2)}\n`,
    );
    exported++;
  }
  io.err(`exported ${exported} documents to ${dir}${deleted ? ` (${deleted} deleted ones left out)` : ""}`);
  return 0;
}
