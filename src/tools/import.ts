/**
 * `fhirbin import PATH...`: files and folders (recursive) into a stopped data directory or a running server.
 * Files are taken in the byte order of their paths, so every run decides alike. Without `--id-from-filename`
 * a document's id is derived from its SHA-256, so the same content always lands on the same id; with it, two
 * files that give one id (`letter-1.pdf`, `letter-1.txt`) are a clash and both are refused. A folder that
 * `fhirbin export --all` wrote is recognised by its `_metadata/` folder: its documents keep the exported id,
 * content type and security context, and an id the target never had gets the whole history replayed in
 * order (the same version numbers, deletions included). A file whose id already holds exactly this content
 * (bytes, content type, security context) is skipped, so a re-run is a no-op; one whose id holds anything
 * else is refused, never stored on top. `--force` stores it as a new version instead, and imports the first
 * file of a clash.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { clientToken, parseSize } from "../config.ts";
import { fileNameProblem } from "../fhir/content-disposition.ts";
import { isValidId } from "../fhir/id.ts";
import { helpSection } from "../help-text.ts";
import type { StoredVersion } from "../store/types.ts";
import { detectContentType } from "./content-type.ts";
import {
  type ExportedDocument,
  type ExportedVersion,
  METADATA_DIR,
  parseExportedDocument,
} from "./export.ts";
import {
  checkRemote,
  type DocumentTarget,
  openDataTarget,
  openRemoteTarget,
  type PutResult,
  type WriteMeta,
} from "./remote.ts";

/** Where the tools write: lines to stdout and stderr, plus the raw terminal for the progress line. */
export interface ToolIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The terminal the progress line is drawn on, or null when stderr is not a terminal. */
  terminal: { write(text: string): void; columns: number } | null;
}

/** One imported (or skipped, refused or failed) file, as printed with `--json`. */
export interface ImportRecord {
  file: string;
  /** `refused`: not stored, as it would have put other content on an id (a clash, or a different version). */
  status: "imported" | "skipped" | "refused" | "failed";
  id?: string;
  versionId?: number;
  contentType?: string;
  size?: number;
  sha256?: string;
  error?: string;
  /** Every file of this run that gives the same id, in import order, when there is more than one. */
  clash?: string[];
  /** How many versions were written: an export folder's document new to the target gets its whole history. */
  versions?: number;
}

/** A file to import, with what is known of it before it is read. */
interface ImportSource {
  path: string;
  size: number;
  /**
   * What the metadata of the export folder it lies in says of it (with the versions' files as paths), or null
   * for a plain file.
   */
  exported: ExportedDocument | null;
  /**
   * Why it is not imported at all, known from the listing: a bad metadata file, or a file of an export folder
   * that no metadata names.
   */
  refusal: { status: "refused" | "failed"; error: string } | null;
}

/** Carriage return and "erase in line" (ECMA-48 EL): the progress line is redrawn in place. */
const CLEAR_LINE = "\r\u001b[K";

/** Length of a content-derived id: the first 32 hex digits (128 bits) of the SHA-256. */
const HASH_ID_LENGTH = 32;

/** The id a file name gives: its name without the extension, other characters than A-Z a-z 0-9 - . as `-`. */
export function idFromFilename(path: string): string | null {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  const id = (dot > 0 ? name.slice(0, dot) : name).replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 64);
  return isValidId(id) ? id : null;
}

/** Orders paths by their UTF-8 bytes, as `LC_ALL=C sort` does: the same order on every run and platform. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );
}

/** Files the desktop leaves in folders (Finder, Explorer), never documents of anyone's. */
const SYSTEM_FILES = new Set(["thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"]);

/** True for a hidden (dot) or system file, or one in a hidden folder, by its path under the folder walked. */
function isHiddenOrSystem(pathUnder: string): boolean {
  const parts = pathUnder.split(sep);
  const name = (parts.at(-1) ?? "").toLowerCase();
  return SYSTEM_FILES.has(name) || parts.some((part) => part.startsWith("."));
}

/** The files of a folder walk: those to import, and how many hidden or system files were left out. */
interface Walk {
  files: string[];
  hidden: number;
}

/** Every regular file under `dir`, recursively; hidden and system files left out unless `includeHidden`. */
async function filesUnder(dir: string, includeHidden: boolean): Promise<Walk> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const walk: Walk = { files: [], hidden: 0 };
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (!includeHidden && isHiddenOrSystem(relative(dir, path))) walk.hidden++;
    else walk.files.push(path);
  }
  return walk;
}

/**
 * The documents of an export folder, as its metadata files describe them; its other files are refused (an
 * export holds nothing else, so they were put there by hand or left from something else).
 */
async function exportSources(dir: string, walk: Walk): Promise<ImportSource[]> {
  const metadataDir = join(dir, METADATA_DIR);
  const sources: ImportSource[] = [];
  const described = new Set<string>();
  for (const name of await readdir(metadataDir)) {
    const path = join(metadataDir, name);
    if (!name.endsWith(".json") || !(await stat(path)).isFile()) continue;
    described.add(path);
    const exported = parseExportedDocument(await Bun.file(path).text());
    if (exported === null) {
      const error = "not a metadata file of fhirbin export (id, file, contentType, size, sha256)";
      sources.push({ path, size: 0, exported: null, refusal: { status: "failed", error } });
      continue;
    }
    const versions = exported.versions.map((version) =>
      version.deleted ? version : { ...version, file: join(dir, version.file) },
    );
    const current = versions.at(-1) as ExportedVersion;
    // A document deleted in the export is named by its metadata file: it has no content file.
    const source: ImportSource = {
      path: current.deleted ? path : current.file,
      size: 0,
      exported: { id: exported.id, versions },
      refusal: null,
    };
    for (const version of versions) {
      if (version.deleted) continue;
      described.add(version.file);
      const info = await stat(version.file).catch(() => null);
      if (info?.isFile()) source.size += info.size;
      else source.refusal = { status: "failed", error: `missing: ${version.file}, which ${path} names` };
    }
    sources.push(source);
  }
  for (const path of walk.files) {
    if (described.has(path)) continue;
    const error = `not described by the export's ${METADATA_DIR}/ folder, so not a document of it`;
    sources.push({
      path,
      size: (await stat(path)).size,
      exported: null,
      refusal: { status: "refused", error },
    });
  }
  return sources;
}

/**
 * Every file to import under the given paths, recursively, once each, in the byte order of their paths; and
 * how many hidden or system files the folders held (a file named on the command line is always taken).
 */
async function listSources(
  paths: readonly string[],
  includeHidden: boolean,
): Promise<{ sources: ImportSource[]; hidden: number }> {
  const byKey = new Map<string, ImportSource>();
  let hidden = 0;
  for (const path of paths) {
    const info = await stat(path);
    const walk = info.isFile() ? null : await filesUnder(path, includeHidden);
    hidden += walk?.hidden ?? 0;
    const sources: ImportSource[] = !walk
      ? [{ path, size: info.size, exported: null, refusal: null }]
      : (await isDirectory(join(path, METADATA_DIR)))
        ? await exportSources(path, walk)
        : await Promise.all(
            walk.files.map(async (file) => ({
              path: file,
              size: (await stat(file)).size,
              exported: null,
              refusal: null,
            })),
          );
    for (const source of sources) {
      // Once each: a file named twice (`import dir dir/sub`) would clash with itself.
      const key = `${source.path}\0${source.exported?.id ?? ""}`;
      if (!byKey.has(key)) byKey.set(key, source);
    }
  }
  return { sources: [...byKey.values()].sort((a, b) => compareBytes(a.path, b.path)), hidden };
}

function sha256Of(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** What differs between a stored version and the file that would be stored on top of it; empty when nothing. */
async function differences(
  target: DocumentTarget,
  stored: StoredVersion,
  file: { size: number; sha256: string; contentType: string; securityContext: string | null },
): Promise<string[]> {
  const differs: string[] = [];
  if (!(await target.holds(stored, file.size, file.sha256))) differs.push("content");
  if (stored.contentType !== file.contentType) differs.push(`contentType (${stored.contentType})`);
  if (stored.securityContext !== file.securityContext)
    differs.push(`securityContext (${stored.securityContext ?? "none"})`);
  return differs;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`;
}

/** The progress line: a bar, the count, bytes, rate and ETA (by bytes). */
export function progressLine(
  done: { files: number; bytes: number },
  total: { files: number; bytes: number },
  elapsedSeconds: number,
  width = 20,
): string {
  const fraction =
    total.bytes > 0 ? done.bytes / total.bytes : total.files > 0 ? done.files / total.files : 1;
  const filled = Math.round(Math.min(1, fraction) * width);
  const rate = elapsedSeconds > 0 ? done.files / elapsedSeconds : 0;
  const byteRate = elapsedSeconds > 0 ? done.bytes / elapsedSeconds : 0;
  const eta =
    byteRate > 0
      ? (total.bytes - done.bytes) / byteRate
      : rate > 0
        ? (total.files - done.files) / rate
        : Infinity;
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done.files}/${total.files} files  ${formatBytes(done.bytes)}/${formatBytes(total.bytes)}  ${rate.toFixed(0)} files/s  ETA ${formatSeconds(eta)}`;
}

const USAGE = "usage: fhirbin import PATH... [options]; fhirbin import --help explains them";

/** The help of `fhirbin import`. */
const IMPORT_HELP = [
  "usage: fhirbin import PATH... [options]",
  "",
  helpSection(
    "Imports files and folders (recursively, in the byte order of their paths) into a stopped data " +
      "directory or a running server. A folder written by fhirbin export --all is imported with its " +
      "metadata and history. Content already stored is skipped; an id holding other content, or given by " +
      "two files, is refused.",
    [
      ["--data DIR", "the stopped data directory to import into [FHIRBIN_DATA] (default ./data/store)"],
      ["--url URL", "a running server's FHIR base instead, e.g. http://127.0.0.1:8080/fhir"],
      ["--token TOKEN", "the bearer token for --url [FHIRBIN_TOKEN]"],
      ["--security-context REF", "the securityContext of every document, e.g. Patient/123"],
      ["--id-from-filename", "the id is the file name without its extension (default: from the SHA-256)"],
      ["--force", "store other content as a new version; import the first file of a clash"],
      ["--include-hidden", "also import hidden (dot) and system files (Thumbs.db, desktop.ini)"],
      ["--max-size SIZE", "largest document written into --data (default 512MiB)"],
      ["--json", "print one JSON line per file"],
      ["--progress", "print a progress line every second even when stderr is not a terminal"],
      ["-h, --help", "print this help"],
    ],
  ),
].join("\n");

/** A file with its id decided before any is imported: clashes are known before anything is written. */
interface Planned {
  source: ImportSource;
  /** The id from the export's metadata or the file name; null when it comes from the content's SHA-256. */
  id: string | null;
  /** Why it is not imported, when that is known before reading it. */
  refusal: ImportSource["refusal"];
  clash: string[] | null;
}

/**
 * Decides the id of every file whose id does not depend on its content, and finds the clashes: two files of
 * one run giving one id are refused both, as neither may be put on top of the other; with `force` the first
 * in path order is imported.
 */
function plan(sources: readonly ImportSource[], byName: boolean, force: boolean): Planned[] {
  const planned = sources.map((source): Planned => {
    const id = source.exported?.id ?? (byName ? idFromFilename(source.path) : null);
    const refusal =
      source.refusal ??
      (byName && id === null
        ? { status: "failed" as const, error: "the file name gives no valid id (A-Z a-z 0-9 - .)" }
        : null);
    return { source, id, refusal, clash: null };
  });
  const byId = new Map<string, Planned[]>();
  for (const item of planned) {
    if (item.id === null || item.refusal !== null) continue;
    const same = byId.get(item.id);
    if (same) same.push(item);
    else byId.set(item.id, [item]);
  }
  for (const [id, same] of byId) {
    if (same.length < 2) continue;
    const clash = same.map((item) => item.source.path);
    for (const [index, item] of same.entries()) {
      item.clash = clash;
      if (force && index === 0) continue;
      const error = force
        ? `id ${id} is also given by ${clash[0]}, imported instead (--force imports the first file of a clash)`
        : `id ${id} is also given by ${clash.filter((path) => path !== item.source.path).join(", ")}: ` +
          "none of them is imported (--force imports the first)";
      item.refusal = { status: "refused", error };
    }
  }
  return planned;
}

/** Runs `fhirbin import`; resolves with the exit status (1 when a file failed or was refused, 2 for bad usage). */
export async function runImport(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: ToolIo,
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
        "security-context": { type: "string" },
        "id-from-filename": { type: "boolean" },
        json: { type: "boolean" },
        force: { type: "boolean" },
        progress: { type: "boolean" },
        "max-size": { type: "string" },
        "include-hidden": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin import: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    io.out(IMPORT_HELP);
    return 0;
  }
  const problems: string[] = [];
  if (positionals.length === 0) problems.push("give at least one file or folder to import");
  if (values.data !== undefined && values.url !== undefined)
    problems.push("--data and --url exclude each other");
  const url = typeof values.url === "string" ? URL.parse(values.url) : null;
  if (values.url !== undefined && (!url || !/^https?:$/.test(url.protocol)))
    problems.push(
      `--url: ${JSON.stringify(values.url)} must be the FHIR base, e.g. http://127.0.0.1:8080/fhir`,
    );
  const securityContext = typeof values["security-context"] === "string" ? values["security-context"] : null;
  if (securityContext !== null && !/^[A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/.test(securityContext))
    problems.push("--security-context: must be a reference such as Patient/123");
  const maxSize = parseSize(typeof values["max-size"] === "string" ? values["max-size"] : "512MiB");
  if (maxSize === null) problems.push("--max-size: must be a size such as 64MiB");
  if (problems.length > 0 || maxSize === null) {
    for (const problem of problems) io.err(`fhirbin import: ${problem}`);
    io.err(USAGE);
    return 2;
  }

  const force = values.force === true;
  let files: Planned[];
  let hidden: number;
  try {
    const listed = await listSources(
      positionals.map((path) => resolve(path)),
      values["include-hidden"] === true,
    );
    hidden = listed.hidden;
    files = plan(listed.sources, values["id-from-filename"] === true, force);
  } catch (error) {
    io.err(`fhirbin import: ${(error as Error).message}`);
    return 1;
  }
  if (securityContext !== null && files.some((file) => file.source.exported !== null)) {
    io.err("fhirbin import: --security-context: an export folder's metadata gives each document's own");
    io.err(USAGE);
    return 2;
  }

  const token = typeof values.token === "string" ? values.token : clientToken(env);
  let target: DocumentTarget;
  try {
    if (url) await checkRemote(url.href, token);
    target = url
      ? openRemoteTarget(url.href, token)
      : await openDataTarget(
          typeof values.data === "string" ? values.data : env.FHIRBIN_DATA || "./data/store",
          maxSize,
        );
  } catch (error) {
    io.err(`fhirbin import: ${(error as Error).message}`);
    return 1;
  }

  const json = values.json === true;
  const terminal = io.terminal;
  const showProgress = terminal !== null || values.progress === true;
  const total = { files: files.length, bytes: files.reduce((sum, file) => sum + file.source.size, 0) };
  const done = { files: 0, bytes: 0 };
  const counts = { imported: 0, skipped: 0, refused: 0, failed: 0 };
  const refused: ImportRecord[] = [];
  const started = performance.now();
  let lastDrawn = -Infinity;
  const draw = (force: boolean): void => {
    const now = performance.now();
    // On a terminal the line is redrawn at most ten times a second; elsewhere (--progress) once a second.
    if (!force && now - lastDrawn < (terminal ? 100 : 1000)) return;
    lastDrawn = now;
    const line = progressLine(done, total, (now - started) / 1000);
    // On a terminal the line is redrawn in place (carriage return, erase line); elsewhere one line each.
    // Cut to the terminal's width: a wrapped line could not be redrawn in place.
    if (terminal) terminal.write(`${CLEAR_LINE}${line.slice(0, Math.max(20, terminal.columns - 1))}`);
    else io.err(line);
  };

  /**
   * Stores `bytes` as the current version of `id`: created when the id has no current version, skipped when
   * it holds exactly this, refused when it holds anything else (unless --force).
   */
  const storeCurrent = async (
    file: string,
    id: string,
    bytes: Uint8Array,
    sha256: string,
    meta: WriteMeta,
  ): Promise<ImportRecord> => {
    const record: ImportRecord = {
      file,
      status: "imported",
      id,
      contentType: meta.contentType,
      size: bytes.length,
      sha256,
    };
    let stored = await target.current(id);
    if (stored === null) {
      const created = await target.put(id, bytes, { ...meta, replaces: null });
      if (created !== "conflict") return { ...record, versionId: created.versionId };
      // Created meanwhile: by another writer, or by a file of this run with the same content.
      stored = await target.current(id);
      if (stored === null) throw new Error(`Binary/${id} was created and deleted while it was imported`);
    }
    const differs = await differences(target, stored, { ...meta, size: bytes.length, sha256 });
    if (differs.length === 0) return { ...record, status: "skipped" };
    if (!force) {
      const error =
        `Binary/${id} version ${stored.versionId} has another ${differs.join(", ")}: ` +
        "not stored on top of it (--force stores it as a new version)";
      return { ...record, status: "refused", error };
    }
    // If-Match on the version compared: a write that came in between is not silently replaced.
    const replaced = await target.put(id, bytes, { ...meta, replaces: stored.versionId });
    if (replaced === "conflict") throw new Error(`Binary/${id} changed while it was imported`);
    return { ...record, versionId: replaced.versionId };
  };

  /**
   * An export folder's document: its whole history, in order, into an id the target never had (so the
   * version numbers come out the same); into an id it has, the current version as any file would be.
   */
  const importExported = async (file: string, { id, versions }: ExportedDocument): Promise<ImportRecord> => {
    // Every version's content is checked before any is written: a document is never half replayed.
    for (const version of versions) {
      if (!version.deleted && sha256Of(await Bun.file(version.file).bytes()) !== version.sha256)
        return {
          file: version.file,
          status: "failed",
          id,
          error: "differs from its export metadata (SHA-256)",
        };
    }
    const current = versions.at(-1) as ExportedVersion;
    const metaOf = (version: ExportedVersion & { deleted: false }) => ({
      contentType: version.contentType,
      securityContext: version.securityContext,
      fileName: version.fileName ?? null,
    });
    if ((await target.version(id, 1)) === null) {
      // The first version creates (If-None-Match: *), each later one replaces the one before (If-Match).
      let versionId = 0;
      for (const version of versions) {
        const written: PutResult = version.deleted
          ? await target.remove(id, versionId)
          : await target.put(id, await Bun.file(version.file).bytes(), {
              ...metaOf(version),
              replaces: versionId === 0 ? null : versionId,
            });
        if (written === "conflict")
          throw new Error(`Binary/${id} was written by another while it was imported`);
        versionId = written.versionId;
      }
      const content = current.deleted
        ? {}
        : { contentType: current.contentType, size: current.size, sha256: current.sha256 };
      return { file, status: "imported", id, versionId, versions: versions.length, ...content };
    }
    if (!current.deleted) {
      const bytes = await Bun.file(current.file).bytes();
      return storeCurrent(file, id, bytes, current.sha256, metaOf(current));
    }
    const stored = await target.current(id);
    if (stored === null) return { file, status: "skipped", id };
    if (!force) {
      const error = `Binary/${id} version ${stored.versionId} is current, the export has it deleted (--force deletes it)`;
      return { file, status: "refused", id, error };
    }
    const removed = await target.remove(id, stored.versionId);
    if (removed === "conflict") throw new Error(`Binary/${id} changed while it was imported`);
    return { file, status: "imported", id, versionId: removed.versionId };
  };

  const importOne = async ({ source, id: plannedId, refusal, clash }: Planned): Promise<ImportRecord> => {
    const clashes = clash ? { clash } : {};
    if (refusal !== null)
      return { file: source.path, ...(plannedId ? { id: plannedId } : {}), ...refusal, ...clashes };
    if (source.exported) return { ...(await importExported(source.path, source.exported)), ...clashes };
    const bytes = await Bun.file(source.path).bytes();
    const sha256 = sha256Of(bytes);
    const contentType = detectContentType(bytes.subarray(0, 512), source.path);
    const id = plannedId ?? sha256.slice(0, HASH_ID_LENGTH);
    // The file's own name goes with it, unless the server would refuse it (then the document has none).
    const name = basename(source.path);
    const fileName = fileNameProblem(name) === null ? name : null;
    return {
      ...(await storeCurrent(source.path, id, bytes, sha256, { contentType, securityContext, fileName })),
      ...clashes,
    };
  };

  // A few files in flight at once: the store fsyncs every write, and a server answers them in parallel.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++] as Planned;
      let record: ImportRecord;
      try {
        record = await importOne(file);
      } catch (error) {
        record = { file: file.source.path, status: "failed", error: (error as Error).message };
      }
      counts[record.status]++;
      done.files++;
      done.bytes += file.source.size;
      if (record.status === "refused") refused.push(record);
      if (json) io.out(JSON.stringify(record));
      else if (record.status === "failed") {
        if (showProgress && terminal) terminal.write(CLEAR_LINE);
        io.err(`failed: ${record.file}: ${record.error}`);
      }
      if (showProgress) draw(false);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(16, Math.max(1, files.length)) }, worker));
  } finally {
    await target[Symbol.asyncDispose]();
  }
  if (showProgress) {
    draw(true);
    if (terminal) terminal.write("\n");
  }
  // The refusals are named once, at the end and in path order, where a progress bar cannot hide them.
  const clashes = new Map<string, string[]>();
  for (const record of refused.sort((a, b) => compareBytes(a.file, b.file))) {
    if (record.clash) clashes.set(record.id ?? "", record.clash);
    else io.err(`refused: ${record.file}: ${record.error}`);
  }
  for (const [id, paths] of clashes) {
    const outcome = force ? `imported the first only (--force)` : "none imported (--force imports the first)";
    io.err(`clash: id ${id} is given by ${paths.length} files: ${paths.join(", ")}: ${outcome}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  io.err(
    `imported ${counts.imported}, skipped ${counts.skipped} already stored, ` +
      `refused ${counts.refused}${clashes.size > 0 ? ` (ids in a clash: ${clashes.size})` : ""}, failed ${counts.failed} ` +
      `(${files.length} files, ${formatBytes(total.bytes)}) in ${seconds}s` +
      (hidden > 0 ? `; left out ${hidden} hidden or system files (--include-hidden imports them)` : ""),
  );
  return counts.failed + counts.refused > 0 ? 1 : 0;
}
