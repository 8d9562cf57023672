/**
 * `fhirbin verify`: checks a data directory against storage.md's invariant (a sidecar exists only if its
 * blob is complete and matches its hash; versions per id are 1..n) and lists the orphans a crash may leave
 * (temp files, unreferenced blobs). Orphans are garbage, not findings: storage.md
 * "A crash leaves at most orphans". Collecting them takes the single-instance lock, as a server start does.
 */
import { lstat, readdir, readFile, stat, unlink } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileNameProblem } from "../fhir/content-disposition.ts";
import { isValidId } from "../fhir/id.ts";
import { createFsStore } from "./fs.ts";
import { isCode } from "./fs-durable.ts";
import {
  encodeId,
  fanOf,
  firstFileName,
  groupSidecars,
  isFanName,
  type Layout,
  layout,
  sidecarFileName,
} from "./fs-layout.ts";
import { readJournals } from "./fs-purge.ts";

/** An integrity problem: the path it concerns (relative to the data directory) and what is wrong. */
export interface Finding {
  path: string;
  problem: string;
}

/** Something nothing references: a temp file, an unreferenced blob. */
export interface Orphan {
  path: string;
  kind: "temp" | "blob";
  bytes: number;
  /** Last modification, in ms since the epoch. */
  modified: number;
}

/** What a verification found; `findings` empty means the store is sound. */
export interface VerifyReport {
  ids: number;
  versions: number;
  /** Versions that are deletions (tombstones, no content). */
  deletions: number;
  /** Distinct blobs referenced by sidecars. */
  blobs: number;
  /** Total size of the referenced blobs. */
  bytes: number;
  /** Referenced blobs whose SHA-256 was recomputed (all of them unless sampled). */
  hashed: number;
  findings: Finding[];
  orphans: Orphan[];
  elapsedMs: number;
}

/** A progress snapshot: files examined and content bytes hashed so far. */
export interface VerifyProgress {
  files: number;
  bytes: number;
  elapsedMs: number;
}

export interface VerifyOptions {
  /** Percentage (0-100) of referenced blobs whose SHA-256 is recomputed; sizes are always checked. */
  sample?: number;
  /** Called about every `progressMs` while the scan runs. */
  onProgress?: (progress: VerifyProgress) => void;
  progressMs?: number;
  /** Source of randomness for sampling (tests pin it). */
  random?: () => number;
}

/** The data directory cannot be verified (absent, not a fhirbin store) or garbage collection is refused. */
export class VerifyError extends Error {
  override name = "VerifyError";
}

const SHA256 = /^[0-9a-f]{64}$/;
/** Files read or hashed at once: enough to keep a disk queue busy, few enough to stay under fd limits. */
const PARALLEL = 16;

interface BlobRef {
  size: number;
  sidecar: string;
}

/**
 * Verifies the data directory at `root` without changing anything. Safe while a server runs; its writes in
 * flight then show up as orphans (temp files, blobs whose sidecar is not linked yet).
 */
export async function verifyStore(root: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const paths = layout(root);
  await requireDataDir(root, paths);
  const started = performance.now();
  const sample = options.sample ?? 100;
  const random = options.random ?? Math.random;
  const rel = (path: string): string => relative(root, path);
  const report: VerifyReport = {
    ids: 0,
    versions: 0,
    deletions: 0,
    blobs: 0,
    bytes: 0,
    hashed: 0,
    findings: [],
    orphans: [],
    elapsedMs: 0,
  };
  const find = (path: string, problem: string): void => {
    report.findings.push({ path: rel(path), problem });
  };
  const addOrphan = async (path: string, kind: Orphan["kind"]): Promise<void> => {
    const found = await orphan(root, path, kind);
    if (found) report.orphans.push(found);
  };

  let files = 0;
  let hashedBytes = 0;
  let lastProgress = started;
  const progress = (): void => {
    const now = performance.now();
    if (options.onProgress && now - lastProgress >= (options.progressMs ?? 250)) {
      lastProgress = now;
      options.onProgress({ files, bytes: hashedBytes, elapsedMs: now - started });
    }
  };
  const tick = (): void => {
    files++;
    progress();
  };

  // 1. Sidecars: parse, shape, id, versions 1..n; collect the blobs they reference.
  const refs = new Map<string, BlobRef>();
  const checkSidecar = async (fan: string, encoded: string, versionId: number): Promise<void> => {
    tick();
    const path = join(paths.binary, fan, sidecarFileName(encoded, versionId));
    const record = await readSidecar(path, find);
    if (!record) return;
    const problem = shapeProblem(record, versionId, fan, encoded);
    if (problem) return find(path, problem);
    report.versions++;
    if (record.deleted) {
      report.deletions++;
      return;
    }
    const { sha256, size } = record as { sha256: string; size: number };
    const known = refs.get(sha256);
    if (!known) refs.set(sha256, { size, sidecar: rel(path) });
    else if (known.size !== size)
      find(path, `says blob ${sha256} has ${size} bytes, ${known.sidecar} says ${known.size}`);
  };
  for (const fan of await entryNames(paths.binary)) {
    const fanDir = join(paths.binary, fan);
    if (fanDir === paths.flat) continue;
    if (!isFanName(fan) || !(await lstat(fanDir)).isDirectory()) {
      find(fanDir, "unexpected entry (only two-hex-digit fan directories belong here)");
      continue;
    }
    const { versions, firsts, others } = groupSidecars(await entryNames(fanDir));
    for (const name of others) {
      const path = join(fanDir, name);
      find(
        path,
        (await lstat(path)).isDirectory()
          ? "a directory of an earlier fhirbin's layout (start fhirbin once to convert the store)"
          : "unexpected entry (only <id>.<n>.json sidecars belong here)",
      );
    }
    const sidecars = [...versions].flatMap(([encoded, numbers]) => numbers.map((n) => ({ encoded, n })));
    await forEachLimit(sidecars, PARALLEL, ({ encoded, n }) => checkSidecar(fan, encoded, n));
    // readdir may miss a sidecar linked while it runs (a server writing now): look again before reporting.
    let again: Map<string, number[]> | null = null;
    for (const [encoded, numbers] of versions) {
      report.ids++;
      const first = firsts.has(encoded)
        ? await readFirstVersion(join(fanDir, firstFileName(encoded)), find)
        : 1;
      if (first === null) continue;
      let missing = gaps(numbers, first);
      if (missing.length > 0) {
        again ??= groupSidecars(await entryNames(fanDir)).versions;
        missing = gaps(again.get(encoded) ?? [], first);
      }
      if (missing.length > 0) {
        find(join(fanDir, encoded), `versions must be ${first}..n; missing ${missing.join(", ")}`);
      }
      const below = numbers.filter((n) => n < first).sort((a, b) => a - b);
      if (below.length > 0) {
        find(
          join(fanDir, encoded),
          `versions ${below.join(", ")} are below the first version ${first} that a purge kept`,
        );
      }
    }
    for (const encoded of firsts) {
      if (!versions.has(encoded))
        find(join(fanDir, firstFileName(encoded)), "records a first version of an id that has no versions");
    }
  }
  for (const { path, journal } of await readJournals(paths)) {
    find(path, `an unfinished purge of Binary/${journal.id}: start fhirbin once to finish it`);
  }

  // 2. Referenced blobs: present, of the size the sidecar says, with the SHA-256 they are named by.
  await forEachLimit([...refs], PARALLEL, async ([sha256, ref]) => {
    tick();
    const path = paths.blob(sha256);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (error) {
      if (!isCode(error, "ENOENT")) throw error;
      return find(path, `missing; referenced by ${ref.sidecar}`);
    }
    report.blobs++;
    report.bytes += size;
    if (size !== ref.size) return find(path, `has ${size} bytes, ${ref.sidecar} says ${ref.size}`);
    if (random() * 100 >= sample) return;
    const actual = await hashFile(path, (n) => {
      hashedBytes += n;
      progress();
    });
    report.hashed++;
    if (actual !== sha256) find(path, `content does not match its name: its SHA-256 is ${actual}`);
  });

  // 3. Orphans: blobs no sidecar references, and every temp file.
  const blobOrphan = async (path: string): Promise<void> => {
    tick();
    if ((await lstat(path)).isFile()) await addOrphan(path, "blob");
    else find(path, "unexpected entry (only blob files belong here)");
  };
  for (const prefix of await entryNames(paths.blobs)) {
    const dir = join(paths.blobs, prefix);
    if (!isFanName(prefix) || !(await lstat(dir)).isDirectory()) {
      await blobOrphan(dir);
      continue;
    }
    for (const name of await entryNames(dir)) {
      if (SHA256.test(name) && name.startsWith(prefix) && refs.has(name)) tick();
      else await blobOrphan(join(dir, name));
    }
  }
  for (const name of await entryNames(paths.tmp)) {
    tick();
    await addOrphan(join(paths.tmp, name), "temp");
  }

  report.elapsedMs = performance.now() - started;
  return report;
}

/** What `collectGarbage` did: the orphans it removed and those it kept as younger than the grace period. */
export interface GcResult {
  removed: Orphan[];
  kept: Orphan[];
}

/**
 * Removes orphans older than `graceMs` and never anything a sidecar references. It takes the store's lock
 * first (so it is refused while a server runs, and no server can start meanwhile); taking it sweeps tmp/ as
 * a server start does, since no write can be in flight without the lock holder. The grace period protects
 * blobs being restored by `cp -a` or `rsync`, which copy blobs/ before binary/. Refused when the store has
 * findings: a damaged sidecar may reference a blob.
 */
export async function collectGarbage(
  root: string,
  { graceMs, now = Date.now() }: { graceMs: number; now?: number },
): Promise<GcResult> {
  const paths = layout(root);
  await requireDataDir(root, paths);
  const temps = (
    await Promise.all(
      (await entryNames(paths.tmp)).map((name) => orphan(root, join(paths.tmp, name), "temp")),
    )
  ).filter((item) => item !== null);
  const store = await createFsStore(root);
  try {
    const { findings, orphans } = await verifyStore(root, { sample: 0 });
    if (findings.length > 0) {
      throw new VerifyError(
        `not collecting garbage: the store has ${findings.length} finding(s), and a damaged sidecar may reference a blob`,
      );
    }
    const result: GcResult = { removed: temps, kept: [] };
    for (const item of orphans) {
      if (now - item.modified < graceMs) {
        result.kept.push(item);
        continue;
      }
      const path = join(root, item.path);
      try {
        await unlink(path);
        result.removed.push(item);
      } catch (error) {
        if (!isCode(error, "ENOENT")) throw error;
      }
    }
    return result;
  } finally {
    await store.close();
  }
}

async function requireDataDir(root: string, paths: Layout): Promise<void> {
  for (const dir of [paths.binary, paths.blobs]) {
    try {
      if ((await stat(dir)).isDirectory()) continue;
    } catch (error) {
      if (!isCode(error, "ENOENT") && !isCode(error, "ENOTDIR")) throw error;
    }
    throw new VerifyError(`${root} is not a fhirbin data directory: ${relative(root, dir)}/ is missing`);
  }
}

/** Parses a sidecar; reports a finding and returns null when it cannot be read as a JSON object. */
async function readSidecar(
  path: string,
  find: (path: string, problem: string) => void,
): Promise<Record<string, unknown> | null> {
  try {
    const value: unknown = JSON.parse(await readFile(path, "utf8"));
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
    find(path, "is JSON but not an object");
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    find(path, `is not valid JSON (${error.message})`);
  }
  return null;
}

/** The first thing wrong with a parsed sidecar, or null when it is a well-formed record of this file. */
function shapeProblem(
  record: Record<string, unknown>,
  versionId: number,
  fan: string,
  encoded: string,
): string | null {
  const { id } = record;
  if (typeof id !== "string" || !isValidId(id)) return `has no valid id (${JSON.stringify(id)})`;
  if (fanOf(id) !== fan || encodeId(id) !== encoded)
    return `belongs to id ${JSON.stringify(id)}, whose sidecars are ${fanOf(id)}/${encodeId(id)}.<n>.json`;
  return recordProblem(record, versionId);
}

/**
 * The first thing wrong with a parsed sidecar's fields for version `versionId` (its id aside), or null:
 * also what keeps a sidecar out of the search index.
 */
export function recordProblem(record: Readonly<Record<string, unknown>>, versionId: number): string | null {
  const { lastUpdated } = record;
  if (record.versionId !== versionId)
    return `has versionId ${JSON.stringify(record.versionId)}, the file name says ${versionId}`;
  if (typeof lastUpdated !== "string" || Number.isNaN(Date.parse(lastUpdated)))
    return `has no valid lastUpdated (${JSON.stringify(lastUpdated)})`;
  if (record.deleted === true) return null;
  if (record.deleted !== false) return `has no boolean deleted (${JSON.stringify(record.deleted)})`;
  if (typeof record.contentType !== "string" || record.contentType === "") return "has no contentType";
  if (typeof record.securityContext !== "string" && record.securityContext !== null)
    return "has a securityContext that is neither a string nor null";
  if (!Number.isSafeInteger(record.size) || (record.size as number) < 0)
    return `has no valid size (${JSON.stringify(record.size)})`;
  if (typeof record.sha256 !== "string" || !SHA256.test(record.sha256))
    return `has no valid sha256 (${JSON.stringify(record.sha256)})`;
  // Optional: sidecars written before file names were kept have none.
  if (record.fileName !== undefined) {
    const problem =
      typeof record.fileName === "string" ? fileNameProblem(record.fileName) : "is not a string";
    if (problem !== null) return `has a fileName that ${problem}`;
  }
  return null;
}

/** The version numbers missing from first..max(numbers). */
function gaps(numbers: number[], first: number): number[] {
  const present = new Set(numbers);
  const max = numbers.reduce((a, b) => Math.max(a, b), 0);
  const missing: number[] = [];
  for (let n = first; n <= max; n++) if (!present.has(n)) missing.push(n);
  return missing;
}

/** The first version a purge kept, from its record; null (and a finding) when the record is damaged. */
async function readFirstVersion(
  path: string,
  find: (path: string, problem: string) => void,
): Promise<number | null> {
  const record = await readSidecar(path, find);
  if (!record) return null;
  const { firstVersion } = record;
  if (Number.isSafeInteger(firstVersion) && (firstVersion as number) >= 1) return firstVersion as number;
  find(path, `has no valid firstVersion (${JSON.stringify(firstVersion)})`);
  return null;
}

/** The SHA-256 of a file, streamed; `counted` sees each chunk's size (for progress). */
async function hashFile(path: string, counted: (bytes: number) => void): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) {
    hasher.update(chunk);
    counted(chunk.byteLength);
  }
  return hasher.digest("hex");
}

/** Describes an orphan; null when it vanished since it was listed (a running server's temp file). */
async function orphan(root: string, path: string, kind: Orphan["kind"]): Promise<Orphan | null> {
  try {
    const info = await lstat(path);
    return { path: relative(root, path), kind, bytes: info.isFile() ? info.size : 0, modified: info.mtimeMs };
  } catch (error) {
    if (isCode(error, "ENOENT")) return null;
    throw error;
  }
}

/** The names in a directory, sorted; empty when it does not exist. */
async function entryNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (error) {
    if (isCode(error, "ENOENT")) return [];
    throw error;
  }
}

/** Runs `work` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
