/**
 * `fhirbin export ID [--version N] [-o FILE]`: one document's content to a file or stdout; `fhirbin export
 * --all DIR`: every document's current version as `<stem><ext>`, the versions before it as
 * `_versions/<stem>.<n><ext>`, the metadata of all as `_metadata/<stem>.json`, where the stem is the id
 * or, for one that is not the same file name everywhere, its encoding (`exportStem`): a folder that
 * `fhirbin import` recognises and imports back exactly, on any file system. A document's original file
 * name is kept in its metadata, not used as the file's: two documents may share one, and a name valid
 * where it was given may not be on the file system exported to (`CON`, `a:b`, case folding). From a stopped
 * data directory (`--data`) or a running server (`--url`, single documents only: listing needs a data
 * directory).
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { clientToken } from "../config.ts";
import { fileNameProblem } from "../fhir/content-disposition.ts";
import { isValidId, parseVersionId } from "../fhir/id.ts";
import { helpSection } from "../help-text.ts";
import { type ScannedId, scanIds } from "../search/fs-scan.ts";
import { isCode } from "../store/fs-durable.ts";
import type { VersionRecord } from "../store/types.ts";
import { extensionOf } from "./content-type.ts";
import type { ToolIo } from "./import.ts";
import { checkRemote, type DocumentTarget, openDataTarget, openRemoteTarget } from "./remote.ts";

const USAGE =
  "usage: fhirbin export ID [--version N] [-o FILE] [--data DIR | --url URL [--token T]]\n" +
  "       fhirbin export --all DIR [--data DIR]\n" +
  "fhirbin export --help explains the options";

/** The help of `fhirbin export`. */
const EXPORT_HELP = [
  "usage: fhirbin export ID [--version N] [-o FILE] [--data DIR | --url URL]",
  "       fhirbin export --all DIR [--data DIR]",
  "",
  helpSection(
    "Writes one document's content to a file or to stdout, or every document with all its versions and " +
      "their metadata into a new or empty folder, which fhirbin import reads back exactly.",
    [
      ["--version N", "that version instead of the current one"],
      ["-o, --output FILE", "write to FILE instead of stdout"],
      ["--all DIR", "every document into DIR: <id><ext>, _versions/, _metadata/ (needs --data)"],
      ["--data DIR", "the stopped data directory to read [FHIRBIN_DATA] (default ./data/store)"],
      ["--url URL", "a running server's FHIR base instead, e.g. http://127.0.0.1:8080/fhir"],
      ["--token TOKEN", "the bearer token for --url [FHIRBIN_TOKEN]"],
      ["-h, --help", "print this help"],
    ],
  ),
].join("\n");

/** The folder of an export that holds each document's metadata; `import` recognises an export by it. */
export const METADATA_DIR = "_metadata";

/** The folder of an export that holds the content of the versions before the current one. */
const VERSIONS_DIR = "_versions";

/** One version of an exported document: its content's file (beside the metadata folder) and metadata. */
export type ExportedVersion =
  | { versionId: number; deleted: true }
  | {
      versionId: number;
      deleted: false;
      file: string;
      contentType: string;
      securityContext: string | null;
      size: number;
      sha256: string;
      /** The document's original file name, when it was given one. */
      fileName?: string;
    };

/** A document as `_metadata/<id>.json` describes it: what `import` needs to store it back exactly. */
export interface ExportedDocument {
  id: string;
  /** Every version, oldest first; the last is the current one. */
  versions: ExportedVersion[];
}

/**
 * A file of the export folder: a plain name, or one in the versions folder (no other separator, not `.` or
 * `..`), so a metadata file can name nothing outside its export.
 */
const FILE_NAME = new RegExp(`^(?:${VERSIONS_DIR}/)?(?!\\.+$)[A-Za-z0-9._+-]{1,160}$`);

/**
 * Windows' device names, which it takes for the device whatever follows the dot: "NUL.txt and NUL.tar.gz
 * are both equivalent to NUL" (https://learn.microsoft.com/windows/win32/fileio/naming-a-file).
 */
const DEVICE_NAME = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9])(?:\.|$)/i;

/**
 * The stem of an id's file names in an export: the id when it names the same file on every file system,
 * else `_` and the id with each capital written `+` and its lower-case form (`Abc` is `_+abc`, `CON` is
 * `_+c+o+n`, `con` is `_con`). Windows and macOS fold case, so `Abc.pdf` and `abc.pdf` would be one file,
 * and `CON.txt` would be the console. No id, so no plain stem, starts with `_`, and the encoded stems are
 * the same under case folding. Unlike the store's encoding (fs-layout.ts), dots stay dots: a `~` could
 * spell the 8.3 short name NTFS gave another file (`_con~1.txt`), which opens that file.
 */
export function exportStem(id: string): string {
  return /[A-Z]/.test(id) || DEVICE_NAME.test(id)
    ? `_${id.replace(/[A-Z]/g, (c) => `+${c.toLowerCase()}`)}`
    : id;
}

function parseVersion(value: unknown): ExportedVersion | null {
  const { versionId, deleted, file, contentType, securityContext, size, sha256, fileName } = (value ??
    {}) as Record<string, unknown>;
  if (!Number.isSafeInteger(versionId) || (versionId as number) < 1) return null;
  if (deleted === true) return { versionId: versionId as number, deleted: true };
  const valid =
    typeof file === "string" &&
    FILE_NAME.test(file) &&
    typeof contentType === "string" &&
    contentType !== "" &&
    (securityContext === null || typeof securityContext === "string") &&
    Number.isSafeInteger(size) &&
    (size as number) >= 0 &&
    typeof sha256 === "string" &&
    /^[0-9a-f]{64}$/.test(sha256) &&
    (fileName === undefined || (typeof fileName === "string" && fileNameProblem(fileName) === null));
  return valid
    ? {
        versionId: versionId as number,
        deleted: false,
        file,
        contentType,
        securityContext,
        size: size as number,
        sha256,
        ...(typeof fileName === "string" ? { fileName } : {}),
      }
    : null;
}

/**
 * The document an export's metadata file describes; null when the text is not such a file. The file holds
 * the current version's metadata, and every version in `versions`; a file without `versions` (written
 * before exports kept the history) is the current version alone.
 */
export function parseExportedDocument(text: string): ExportedDocument | null {
  let value: Record<string, unknown>;
  try {
    value = (JSON.parse(text) ?? {}) as Record<string, unknown>;
  } catch {
    return null;
  }
  const { id, versions } = value;
  if (typeof id !== "string" || !isValidId(id)) return null;
  const parsed = (Array.isArray(versions) ? versions : [value]).map(parseVersion);
  const ascending = parsed.every(
    (version, index) =>
      version !== null && (index === 0 || version.versionId > (parsed[index - 1]?.versionId ?? 0)),
  );
  // A document begins with content: a deletion can only follow a version.
  return ascending && parsed[0]?.deleted === false ? { id, versions: parsed as ExportedVersion[] } : null;
}

/** The metadata of one exported version. */
function metadataOf(version: VersionRecord, file: string | null): Record<string, unknown> {
  if (version.deleted)
    return { versionId: version.versionId, lastUpdated: version.lastUpdated, deleted: true };
  const { versionId, lastUpdated, contentType, securityContext, size, sha256, fileName } = version;
  return { versionId, lastUpdated, contentType, securityContext, size, sha256, file, fileName };
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
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin export: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    io.out(EXPORT_HELP);
    return 0;
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
  const token = typeof values.token === "string" ? values.token : clientToken(env);
  try {
    if (typeof values.url === "string") await checkRemote(values.url, token);
    target =
      typeof values.url === "string"
        ? openRemoteTarget(values.url, token)
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
      await stdout.write(await content.bytes()).catch((error: unknown) => {
        // A reader that has what it wants (`| head`) closes the pipe: its right, not a failure to report.
        if (!isCode(error, "EPIPE")) throw error;
      });
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
  await mkdir(join(dir, VERSIONS_DIR));
  const counts = { documents: 0, deleted: 0, versions: 0 };
  const scanned: ScannedId[] = [];
  for await (const found of scanIds(dataDir)) scanned.push(found);
  for (const { id, versions } of scanned.sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const history: Array<Record<string, unknown>> = [];
    let current: Record<string, unknown> = {};
    for (const versionId of versions) {
      const version = await target.version(id, versionId);
      if (version === null) throw new Error(`Binary/${id} version ${versionId} is listed but cannot be read`);
      let file: string | null = null;
      if (!version.deleted) {
        // The current version as `<stem><ext>`, the ones before it as `_versions/<stem>.<n><ext>`.
        const stem = exportStem(id);
        const name = versionId === versions.at(-1) ? stem : `${VERSIONS_DIR}/${stem}.${versionId}`;
        file = `${name}${extensionOf(version.contentType)}`;
        await Bun.write(join(dir, file), await target.content(version));
      }
      current = metadataOf(version, file);
      history.push(current);
    }
    if (current.deleted) counts.deleted++;
    else counts.documents++;
    counts.versions += history.length;
    await writeFile(
      join(dir, METADATA_DIR, `${exportStem(id)}.json`),
      `${JSON.stringify({ id, ...current, versions: history }, null, 2)}\n`,
    );
  }
  io.err(
    `exported ${counts.documents} current documents${counts.deleted ? ` and ${counts.deleted} deleted` : ""} ` +
      `(${counts.versions} versions) to ${dir}`,
  );
  return 0;
}
