/**
 * The audit trail: one JSON line per request that touches a Binary, shaped like a FHIR R4 AuditEvent
 * (https://hl7.org/fhir/R4/auditevent.html), appended to `<data>/audit/YYYY-MM-DD.ndjson` (UTC days).
 * Events name the caller by its JWT subject or static token label; a token never reaches this file.
 */
import { appendFile, mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";

/** The Binary interactions that are audited, as codes of http://hl7.org/fhir/restful-interaction. */
export type AuditInteraction =
  | "read"
  | "vread"
  | "history-instance"
  | "history-type"
  | "search-type"
  | "create"
  | "update"
  | "delete";

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

/** Where audit events go; `record` never throws (a failure is reported through the sink's own log). */
export interface AuditSink {
  record(event: AuditEvent): void;
  /** Resolves once every recorded event is on disk. */
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
};

/** Builds the AuditEvent of one request. */
export function toAuditEvent(facts: AuditFacts): AuditEvent {
  const reference =
    facts.id === null
      ? null
      : facts.versionId === null
        ? `Binary/${facts.id}`
        : `Binary/${facts.id}/_history/${facts.versionId}`;
  return {
    resourceType: "AuditEvent",
    id: facts.requestId,
    type: {
      system: "http://terminology.hl7.org/CodeSystem/audit-event-type",
      code: "rest",
      display: "RESTful Operation",
    },
    subtype: [{ system: "http://hl7.org/fhir/restful-interaction", code: facts.interaction }],
    action: ACTIONS[facts.interaction],
    recorded: facts.time.toISOString(),
    // 0 success, 4 minor failure (the client's: denied, not found, invalid), 8 serious failure (ours).
    outcome: facts.status < 400 ? "0" : facts.status < 500 ? "4" : "8",
    outcomeDesc: `HTTP ${facts.status}`,
    agent: [
      {
        who: { display: facts.who },
        requestor: true,
        ...(facts.address === null ? {} : { network: { address: facts.address, type: "2" as const } }),
      },
    ],
    source: { observer: { display: "fhirbin" } },
    ...(reference === null ? {} : { entity: [{ what: { reference } }] }),
  };
}

/** The day file an event belongs to. */
export function auditFileName(time: Date): string {
  return `${time.toISOString().slice(0, 10)}.ndjson`;
}

/** Appends events to `<dir>/YYYY-MM-DD.ndjson` in the order recorded; failures go to `log`. */
export function createAuditLog(dir: string, log: (line: string) => void): AuditSink {
  let ready: Promise<unknown> | null = null;
  let pending = new Map<string, string[]>();
  let draining: Promise<void> | null = null;
  // One append per day file per batch: events recorded while a batch is written wait for the next one. An
  // appendFile per event was the largest single cost of a small read under load (bench/optimisations.md).
  const drain = async (): Promise<void> => {
    while (pending.size > 0) {
      const batch = pending;
      pending = new Map();
      try {
        ready ??= mkdir(dir, { recursive: true, mode: 0o700 });
        await ready;
        for (const [file, lines] of batch) await appendFile(file, lines.join(""), { mode: 0o600 });
      } catch (error) {
        ready = null;
        log(`audit: cannot append to the audit trail: ${(error as { code?: string }).code ?? "error"}`);
      }
    }
    draining = null;
  };
  return {
    record(event) {
      const file = join(dir, auditFileName(new Date(event.recorded)));
      const line = `${JSON.stringify(event)}\n`;
      const lines = pending.get(file);
      if (lines) lines.push(line);
      else pending.set(file, [line]);
      draining ??= drain();
    },
    flush: () => draining ?? Promise.resolve(),
  };
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
  for (const name of names.filter((n) => /^\d{4}-\d{2}-\d{2}\.ndjson$/.test(n) && n >= firstDay).sort()) {
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
export const AUDIT_HELP = [
  "Options of audit (prints the matching AuditEvents of <data>/audit, one JSON line each, oldest first):",
  "  --data DIR            data directory [FHIRBIN_DATA] (default ./data/store)",
  "  --id ID               only the events of Binary ID (every version)",
  "  --since TIME          only events at or after TIME (2026-05-01 or 2026-05-01T09:00:00Z)",
].join("\n");

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
