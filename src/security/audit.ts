/**
 * The audit trail: one JSON line per request that touches a Binary, shaped like a FHIR R4 AuditEvent
 * (https://hl7.org/fhir/R4/auditevent.html), appended to `<data>/audit/YYYY-MM-DD.ndjson` (UTC days).
 * Events name the caller by its JWT subject or static token label; a token never reaches this file.
 */
import {
  chownSync,
  closeSync,
  fchownSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  writeSync,
} from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { helpSection } from "../help-text.ts";
import { isoTime, linesPerTurn } from "../lines.ts";
import { fsyncDir } from "../store/fs-durable.ts";
import { PRIVATE_DIR, PRIVATE_FILE, storeOwner } from "../store/fs-private.ts";
import { fsyncFd } from "../store/fsync-pool.ts";

/** The Binary interactions that are audited, as codes of http://hl7.org/fhir/restful-interaction. */
export type AuditInteraction =
  | "read"
  | "vread"
  | "history-instance"
  | "history-type"
  | "search-type"
  | "create"
  | "update"
  | "delete"
  // `$expunge`: restful-interaction has one code for every operation; the entity names the Binary.
  | "operation";

/** What the HTTP layer knows about one finished request. */
export interface AuditFacts {
  time: Date;
  requestId: string;
  interaction: AuditInteraction;
  status: number;
  /** The JWT subject or static token label; "unauthenticated" when no valid token was presented. */
  who: string;
  /** The client's IP address, or null when unknown. */
  address: string | null;
  id: string | null;
  versionId: string | null;
}

/** An AuditEvent as written to the trail. */
export interface AuditEvent {
  resourceType: "AuditEvent";
  id: string;
  type: { system: string; code: "rest"; display: string };
  subtype: { system: string; code: AuditInteraction }[];
  action: "C" | "R" | "U" | "D" | "E";
  recorded: string;
  outcome: "0" | "4" | "8";
  outcomeDesc: string;
  agent: { who: { display: string }; requestor: true; network?: { address: string; type: "2" } }[];
  source: { observer: { display: "fhirbin" } };
  entity?: { what: { reference: string } }[];
}

/** Where audit events go. */
export interface AuditSink {
  /**
   * Appends the event of a request. A read's is written to the day file at once: null once it is, and a
   * throw (the sink logs why) when it cannot be; or, with `inBatch`, together with the other events of the
   * turn of the event loop: a promise then, resolved once written. The event of a create, update, delete
   * or expunge gives a promise that resolves once it is written and fsynced. The promises reject when the
   * event cannot be appended.
   */
  record(facts: AuditFacts, options?: { inBatch?: boolean }): Promise<void> | null;
  /** Resolves once every recorded event is written and fsynced. */
  flush(): Promise<void>;
}

const ACTIONS: Record<AuditInteraction, AuditEvent["action"]> = {
  read: "R",
  vread: "R",
  "history-instance": "R",
  "history-type": "R",
  "search-type": "E",
  create: "C",
  update: "U",
  delete: "D",
  // An expunge only removes.
  operation: "D",
};

const EVENT_TYPE =
  '{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest","display":"RESTful Operation"}';

/**
 * The AuditEvent of one request as a line of JSON (without its newline). Built as text rather than with
 * JSON.stringify of an object: it is written for every Binary request, reads included. Every value
 * that does not come from a fixed set is quoted by JSON.stringify.
 */
export function auditLine(facts: AuditFacts): string {
  const { id, versionId, status, address, interaction } = facts;
  const reference =
    id === null ? null : versionId === null ? `Binary/${id}` : `Binary/${id}/_history/${versionId}`;
  // 0 success, 4 minor failure (the client's: denied, not found, invalid), 8 serious failure (ours).
  const outcome = status < 400 ? "0" : status < 500 ? "4" : "8";
  const network = address === null ? "" : `,"network":{"address":${JSON.stringify(address)},"type":"2"}`;
  const entity = reference === null ? "" : `,"entity":[{"what":{"reference":${JSON.stringify(reference)}}}]`;
  return (
    `{"resourceType":"AuditEvent","id":${JSON.stringify(facts.requestId)},"type":${EVENT_TYPE},` +
    `"subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"${interaction}"}],` +
    `"action":"${ACTIONS[interaction]}","recorded":"${isoTime(facts.time)}","outcome":"${outcome}",` +
    `"outcomeDesc":"HTTP ${status}","agent":[{"who":{"display":${JSON.stringify(facts.who)}},"requestor":true` +
    `${network}}],"source":{"observer":{"display":"fhirbin"}}${entity}}`
  );
}

/** The audited interaction of a route pattern relative to the FHIR base (`GET /Binary/:id`), or null. */
export function auditedInteraction(method: string, route: string): AuditInteraction | null {
  switch (`${method === "HEAD" ? "GET" : method} ${route}`) {
    case "GET /Binary/:id":
      return "read";
    case "GET /Binary/:id/_history/:vid":
      return "vread";
    case "GET /Binary/:id/_history":
      return "history-instance";
    case "GET /Binary/_history":
      return "history-type";
    case "GET /Binary":
    case "POST /Binary/_search":
      return "search-type";
    case "POST /Binary":
      return "create";
    case "PUT /Binary/:id":
      return "update";
    case "DELETE /Binary/:id":
      return "delete";
    case "POST /Binary/:id/$expunge":
      return "operation";
    default:
      return null;
  }
}

/** The Binary and version a response names: its `ETag: W/"3"`, or the `Binary/x/_history/3` of a Location. */
export function auditedVersion(headers: Headers | Readonly<Record<string, string>>): {
  id: string | null;
  versionId: string | null;
} {
  const get = (name: string): string | null =>
    headers instanceof Headers ? headers.get(name) : (headers[name] ?? null);
  const location = /\/Binary\/([^/]+)\/_history\/(\d+)$/.exec(get("location") ?? "");
  return {
    id: location?.[1] ?? null,
    versionId: /^W\/"(\d+)"$/.exec(get("etag") ?? "")?.[1] ?? location?.[2] ?? null,
  };
}

/** The day file an event belongs to. */
export function auditFileName(time: Date): string {
  return `${time.toISOString().slice(0, 10)}.ndjson`;
}

/** The interactions whose events are fsynced before the answer, as the writes they record are. */
const WRITES: ReadonlySet<AuditInteraction> = new Set(["create", "update", "delete", "operation"]);

/** A day file's name: `YYYY-MM-DD.ndjson`. */
const DAY_FILE = /^\d{4}-\d{2}-\d{2}\.ndjson$/;

/**
 * Appends events to `<dir>/YYYY-MM-DD.ndjson` in the order recorded, and fails closed: a request is
 * answered only once its event is in the file, so `record` resolves only then and rejects when the append
 * fails (failures are logged to `log`).
 *
 * Appends are synchronous writes to the day file, which stays open. The events of small reads of one turn
 * of the event loop are written together, once, and those reads answered after it; a larger read's event
 * is written at once, so that it is answered in the same call (a large answer given later, from a promise,
 * costs Bun far more to send). An asynchronous append per event, and later per batch, cost a read more CPU
 * in thread-pool hand-offs than everything else fhirbin does for it (bench/optimisations.md); a write of a
 * few hundred bytes to the page cache does not wait for the disk.
 *
 * The event of a create, update, delete or expunge must survive a crash as the write does: the events of one turn
 * of the event loop are appended together and fsynced before their requests are answered, one fsync at a
 * time on the fsync pool, the write events of every batch appended meanwhile sharing the next one (group
 * commit). An append that fails is cut back
 * to the last complete line, so the next event starts on a line of its own.
 */
export function createAuditLog(dir: string, log: (line: string) => void): AuditSink {
  cutBackLatestDay(dir, log);
  // The trail lives in a data directory, whose files are its owner's (fs-private.ts).
  const owner = storeOwner(dirname(dir));
  let batchFile = "";
  let open: { file: string; fd: number } | null = null;
  // Bytes of complete lines in the open file: where a failed append is cut back to.
  let end = 0;
  // The day file of the current UTC day, recomputed only when an event falls outside that day.
  let day = { start: 0, end: 0, file: "" };
  const fileOf = (time: Date): string => {
    const ms = time.getTime();
    if (ms < day.start || ms >= day.end) {
      const start = ms - (ms % 86_400_000);
      day = { start, end: start + 86_400_000, file: join(dir, auditFileName(time)) };
    }
    return day.file;
  };

  // Group commit: the fsyncs due (one per descriptor, each shared by every batch queued on it), and the
  // directories whose new entries must be fsynced along with the next one.
  const due: { fd: number; batches: PromiseWithResolvers<void>[] }[] = [];
  const newEntries = new Set<string>();
  let syncing = false;
  // Descriptors given up (another day, a failed append) are closed once no fsync of theirs is due.
  const retired: number[] = [];
  const drained: (() => void)[] = [];
  const syncNext = (): void => {
    if (syncing) return;
    const next = due.shift();
    if (!next) {
      for (const fd of retired.splice(0)) closeQuietly(fd);
      for (const resolve of drained.splice(0)) resolve();
      return;
    }
    syncing = true;
    const dirs = [...newEntries];
    newEntries.clear();
    Promise.all([fsyncFd(next.fd), ...dirs.map(fsyncDir)])
      .then(
        () => {
          for (const batch of next.batches) batch.resolve();
        },
        (error: unknown) => {
          for (const entry of dirs) newEntries.add(entry);
          log(`audit: cannot fsync the audit trail: ${codeOf(error)}`);
          for (const batch of next.batches) batch.reject(error);
        },
      )
      .finally(() => {
        syncing = false;
        syncNext();
      });
  };
  const syncSoon = (fd: number, batch: PromiseWithResolvers<void>): void => {
    const last = due.at(-1);
    if (last?.fd === fd) last.batches.push(batch);
    else due.push({ fd, batches: [batch] });
    syncNext();
  };

  const close = (): void => {
    if (open) retired.push(open.fd);
    open = null;
    if (!syncing && due.length === 0) syncNext();
  };
  const fdFor = (file: string): number => {
    if (open?.file === file) return open.fd;
    close();
    const made = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
    if (made !== undefined) {
      newEntries.add(dirname(made));
      if (owner) chownSync(dir, owner.uid, owner.gid);
    }
    const fd = openSync(file, "a", PRIVATE_FILE);
    try {
      if (owner) fchownSync(fd, owner.uid, owner.gid);
      end = cutBackTornLine(fd, file, log);
      if (end === 0) newEntries.add(dir);
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
    open = { file, fd };
    return fd;
  };
  // One buffer serves every batch: a new Buffer per write made page faults under a read load and cost a
  // 1 KiB read 5-30% of its throughput (bench/optimisations.md). UTF-8 takes at most 3 bytes per code unit.
  let scratch = Buffer.allocUnsafe(64 * 1024);
  const append = (text: string): number => {
    if (text.length * 3 > scratch.byteLength) scratch = Buffer.allocUnsafe(text.length * 3);
    const bytes = scratch.subarray(0, scratch.write(text));
    const fd = fdFor(batchFile);
    try {
      writeAllSync(fd, bytes);
    } catch (error) {
      try {
        ftruncateSync(fd, end);
      } catch {
        // The next open cuts the partial line back instead.
        close();
      }
      throw error;
    }
    end += bytes.byteLength;
    return fd;
  };

  // What the requests whose events are in the batch being gathered wait for: reads for its write, writes
  // for its fsync. Made only when a request waits for them, so that no rejection goes unhandled.
  let written: PromiseWithResolvers<void> | null = null;
  let synced: PromiseWithResolvers<void> | null = null;
  // Why the latest append failed, or null: a read appended at once is refused then.
  let failure: unknown = null;
  const batch = linesPerTurn((text) => {
    const reads = written;
    const writes = synced;
    written = null;
    synced = null;
    failure = null;
    let fd: number;
    try {
      fd = append(text);
    } catch (error) {
      close();
      log(`audit: cannot append to the audit trail: ${codeOf(error)}`);
      failure = error;
      reads?.reject(error);
      writes?.reject(error);
      return;
    }
    reads?.resolve();
    if (writes) syncSoon(fd, writes);
  });
  return {
    record(facts, options) {
      const file = fileOf(facts.time);
      if (file !== batchFile) {
        batch.flush();
        batchFile = file;
      }
      batch.add(auditLine(facts));
      if (WRITES.has(facts.interaction)) {
        synced ??= Promise.withResolvers<void>();
        return synced.promise;
      }
      // A read whose answer is small waits for the batch of the turn: one write(2) for all of them. Any
      // other is answered as soon as its event is appended, with a write(2) of its own (taking the events
      // gathered so far along): Bun sends a Response of 16 KiB or more far more slowly when it comes from
      // a promise (a 64 KiB read fell from 28,000 to 3,000 req/s, at 9 times the CPU per request).
      if (options?.inBatch) {
        written ??= Promise.withResolvers<void>();
        return written.promise;
      }
      batch.flush();
      if (failure !== null) throw failure;
      return null;
    },
    flush() {
      batch.flush();
      return new Promise<void>((resolve) => {
        drained.push(resolve);
        syncNext();
      });
    },
  };
}

/** The `code` of a system error (ENOSPC, EIO...), for the log. */
function codeOf(error: unknown): string {
  return String((error as { code?: unknown }).code ?? "error");
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Nothing is left to write through it.
  }
}

/** Writes all of `text`: write(2) may write less than asked (a disk filling up). */
function writeAllSync(fd: number, bytes: Uint8Array): void {
  for (let offset = 0; offset < bytes.byteLength; ) {
    offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
  }
}

/**
 * Cuts a day file, open as `fd`, back to its last complete line, logging what was cut: a crash in the
 * middle of an append, or an append that failed and could not be cut back, leaves a partial line that the
 * next event would otherwise be glued onto. Returns the length kept.
 */
function cutBackTornLine(fd: number, file: string, log: (line: string) => void): number {
  const size = fstatSync(fd).size;
  if (size === 0) return 0;
  const reader = openSync(file, "r");
  let kept = 0;
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    for (let at = size; at > 0; ) {
      const start = Math.max(0, at - chunk.byteLength);
      const read = readSync(reader, chunk, 0, at - start, start);
      const newline = chunk.subarray(0, read).lastIndexOf(0x0a);
      if (newline >= 0) {
        kept = start + newline + 1;
        break;
      }
      at = start;
    }
  } finally {
    closeSync(reader);
  }
  if (kept < size) {
    ftruncateSync(fd, kept);
    log(`audit: cut back a partial last line (${size - kept} bytes) of ${file}`);
  }
  return kept;
}

/** At start-up: the latest day file cut back to its last complete line (a crash may have torn it). */
function cutBackLatestDay(dir: string, log: (line: string) => void): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if (codeOf(error) === "ENOENT") return;
    throw error;
  }
  const latest = names
    .filter((name) => DAY_FILE.test(name))
    .sort()
    .at(-1);
  if (latest === undefined) return;
  const file = join(dir, latest);
  try {
    const fd = openSync(file, "r+");
    try {
      cutBackTornLine(fd, file, log);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    // Not fatal: an append to a file that cannot be repaired fails, and its request is refused.
    log(`audit: cannot check the end of ${file}: ${codeOf(error)}`);
  }
}

/** Which events `fhirbin audit` prints. */
export interface AuditQuery {
  /** A Binary id: its events, every version. */
  id?: string;
  /** Only events recorded at or after this time. */
  since?: Date;
}

/** True when an event matches the query. */
export function matchesAudit(event: AuditEvent, query: AuditQuery): boolean {
  if (query.since && Date.parse(event.recorded) < query.since.getTime()) return false;
  if (query.id !== undefined) {
    const reference = event.entity?.[0]?.what.reference ?? "";
    const wanted = `Binary/${query.id}`;
    if (reference !== wanted && !reference.startsWith(`${wanted}/`)) return false;
  }
  return true;
}

/** Reads the trail's matching events, oldest first; day files before `since` are not opened. */
export async function readAuditEvents(dir: string, query: AuditQuery): Promise<AuditEvent[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return [];
    throw error;
  }
  const firstDay = query.since ? auditFileName(query.since) : "";
  const events: AuditEvent[] = [];
  for (const name of names.filter((n) => DAY_FILE.test(n) && n >= firstDay).sort()) {
    for (const line of (await readFile(join(dir, name), "utf8")).split("\n")) {
      if (line.trim() === "") continue;
      let event: AuditEvent;
      try {
        event = JSON.parse(line) as AuditEvent;
      } catch {
        // A line cut short by a crash: skipped, the rest of the trail still reads.
        continue;
      }
      if (matchesAudit(event, query)) events.push(event);
    }
  }
  return events;
}

/** The help of `fhirbin audit`. */
export const AUDIT_HELP = helpSection(
  "Options of audit (prints the matching AuditEvents of <data>/audit, one JSON line each, oldest first):",
  [
    ["--data DIR", "data directory [FHIRBIN_DATA] (default ./data/store)"],
    ["--id ID", "only the events of Binary ID (every version)"],
    ["--since TIME", "only events at or after TIME (2026-05-01 or 2026-05-01T09:00:00Z)"],
  ],
);

/** `fhirbin audit [--data DIR] [--id ID] [--since TIME]`: resolves with the exit status (0, or 2 for usage). */
export async function runAudit(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: { out: (line: string) => void; err: (line: string) => void },
): Promise<number> {
  const problems: string[] = [];
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: {
      data: { type: "string" },
      id: { type: "string" },
      since: { type: "string" },
      help: { type: "boolean" },
    },
    allowPositionals: true,
    strict: false,
  });
  if (values.help) {
    io.out(AUDIT_HELP);
    return 0;
  }
  for (const [name, value] of Object.entries(values)) {
    if (!["data", "id", "since"].includes(name)) problems.push(`--${name}: unknown option`);
    else if (typeof value !== "string") problems.push(`--${name}: needs a value`);
  }
  for (const positional of positionals) problems.push(`unexpected argument ${JSON.stringify(positional)}`);
  const query: AuditQuery = {};
  if (typeof values.id === "string") {
    if (/^[A-Za-z0-9\-.]{1,64}$/.test(values.id)) query.id = values.id;
    else problems.push(`--id: ${JSON.stringify(values.id)} is not a FHIR id`);
  }
  if (typeof values.since === "string") {
    const since = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(values.since)
      ? new Date(values.since)
      : null;
    if (since && !Number.isNaN(since.getTime())) query.since = since;
    else problems.push(`--since: ${JSON.stringify(values.since)} is not a date such as 2026-05-01T09:00:00Z`);
  }
  if (problems.length > 0) {
    io.err("fhirbin audit: invalid arguments:");
    for (const problem of problems) io.err(`  - ${problem}`);
    return 2;
  }
  const dataDir =
    (typeof values.data === "string" ? values.data : undefined) ?? (env.FHIRBIN_DATA || "./data/store");
  for (const event of await readAuditEvents(join(dataDir, "audit"), query)) io.out(JSON.stringify(event));
  return 0;
}
