/**
 * `fhirbin import PATH...`: files and folders (recursive) into a stopped data directory or a running server.
 * Re-running skips files whose content is already stored: without `--id-from-filename` a document's id is
 * derived from its SHA-256, so the same content always lands on the same id and `If-None-Match: *` skips it;
 * with it, the current version's SHA-256 is compared. `--force` writes a new version regardless.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseSize } from "../config.ts";
import { isValidId } from "../fhir/id.ts";
import { detectContentType } from "./content-type.ts";
import { type DocumentTarget, openDataTarget, openRemoteTarget } from "./remote.ts";

/** Where the tools write: lines to stdout and stderr, plus the raw terminal for the progress line. */
export interface ToolIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The terminal the progress line is drawn on, or null when stderr is not a terminal. */
  terminal: { write(text: string): void; columns: number } | null;
}

/** One imported (or skipped, or failed) file, as printed with `--json`. */
export interface ImportRecord {
  file: string;
  status: "imported" | "skipped" | "failed";
  id?: string;
  versionId?: number;
  contentType?: string;
  size?: number;
  sha256?: string;
  error?: string;
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

/** Every regular file under the given paths, recursively, in a stable order. */
export async function listFiles(paths: readonly string[]): Promise<Array<{ path: string; size: number }>> {
  const files: Array<{ path: string; size: number }> = [];
  for (const path of paths) {
    const info = await stat(path);
    if (info.isFile()) {
      files.push({ path, size: info.size });
      continue;
    }
    const entries = await readdir(path, { recursive: true, withFileTypes: true });
    const names = entries
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();
    for (const name of names) files.push({ path: name, size: (await stat(name)).size });
  }
  return files;
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

const USAGE =
  "usage: fhirbin import PATH... [--data DIR | --url URL [--token T]] [--security-context Patient/1] " +
  "[--id-from-filename] [--json] [--force] [--progress] [--max-size SIZE]";

/** Runs `fhirbin import`; resolves with the exit status (1 when a file failed, 2 for bad usage). */
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
      },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin import: ${(error as Error).message}\n${USAGE}`);
    return 2;
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

  let files: Array<{ path: string; size: number }>;
  try {
    files = await listFiles(positionals.map((path) => resolve(path)));
  } catch (error) {
    io.err(`fhirbin import: ${(error as Error).message}`);
    return 1;
  }

  let target: DocumentTarget;
  try {
    target = url
      ? openRemoteTarget(
          url.href,
          typeof values.token === "string" ? values.token : (env.FHIRBIN_TOKEN ?? null),
        )
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
  const total = { files: files.length, bytes: files.reduce((sum, file) => sum + file.size, 0) };
  const done = { files: 0, bytes: 0 };
  const counts = { imported: 0, skipped: 0, failed: 0 };
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

  const ids = new Map<string, string>();
  const importOne = async (file: { path: string; size: number }): Promise<ImportRecord> => {
    const bytes = await Bun.file(file.path).bytes();
    const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    const contentType = detectContentType(bytes.subarray(0, 512), file.path);
    const byName = values["id-from-filename"] === true;
    const id = byName ? idFromFilename(file.path) : sha256.slice(0, HASH_ID_LENGTH);
    const record: ImportRecord = {
      file: file.path,
      status: "imported",
      contentType,
      size: bytes.length,
      sha256,
    };
    if (id === null)
      return { ...record, status: "failed", error: "the file name gives no valid id (A-Z a-z 0-9 - .)" };
    const previous = ids.get(id);
    if (byName && previous !== undefined && previous !== file.path)
      return { ...record, id, status: "failed", error: `id ${id} is also given by ${previous}` };
    ids.set(id, file.path);
    if (!values.force && byName && (await target.holds(id, bytes.length, sha256)))
      return { ...record, id, status: "skipped" };
    const result = await target.put(id, bytes, {
      contentType,
      securityContext,
      onlyCreate: !values.force && !byName,
    });
    if (result === "exists") return { ...record, id, status: "skipped" };
    return { ...record, id, versionId: result.versionId };
  };

  // A few files in flight at once: the store fsyncs every write, and a server answers them in parallel.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++] as { path: string; size: number };
      let record: ImportRecord;
      try {
        record = await importOne(file);
      } catch (error) {
        record = { file: file.path, status: "failed", error: (error as Error).message };
      }
      counts[record.status]++;
      done.files++;
      done.bytes += file.size;
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
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  io.err(
    `imported ${counts.imported}, skipped ${counts.skipped} already stored, failed ${counts.failed} ` +
      `(${files.length} files, ${formatBytes(total.bytes)}) in ${seconds}s`,
  );
  return counts.failed > 0 ? 1 : 0;
}
