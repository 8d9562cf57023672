/** The command line: subcommands, help and the serve life cycle. Returns exit statuses; never exits. */
import { join } from "node:path";
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { createApp } from "./app.ts";
import { loadOrCreateToken } from "./auth-token.ts";
import {
  type Config,
  ConfigError,
  type LogFormat,
  loadConfig,
  parseDuration,
  SERVE_OPTIONS,
  unknownVariables,
} from "./config.ts";
import { collectWhenIdle } from "./gc.ts";
import { HELP_WIDTH, helpSection, wrapWords } from "./help-text.ts";
import { DOCS_PATH } from "./http/docs.ts";
import { createMetrics } from "./http/ops.ts";
import { isoTime, linesPerTurn } from "./lines.ts";
// Search: the reindex subcommand.
import { REINDEX_HELP, runReindex } from "./search/reindex.ts";
import { AUDIT_HELP, createAuditLog, runAudit } from "./security/audit.ts";
import { seedStore } from "./seed.ts";
import { createStore } from "./store/index.ts";
import { StoreOpenError } from "./store/types.ts";
import {
  collectGarbage,
  type GcResult,
  type Orphan,
  VerifyError,
  type VerifyProgress,
  type VerifyReport,
  verifyStore,
} from "./store/verify.ts";
import { runExport } from "./tools/export.ts";
import { runImport, type ToolIo } from "./tools/import.ts";
import { PURGE_HELP, runPurge } from "./tools/purge.ts";

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

type StopSignal = "SIGINT" | "SIGTERM" | "SIGBREAK" | "SIGHUP";

/**
 * The signals that stop a server gracefully. Windows has no SIGTERM: a console or a service wrapper (WinSW)
 * sends Ctrl+C (SIGINT) or Ctrl+Break (SIGBREAK), and closing the console window, logging off or shutting
 * down raise SIGHUP. Elsewhere SIGHUP stays as it is, so that `nohup fhirbin` survives its terminal.
 */
const STOP_SIGNALS: readonly StopSignal[] =
  process.platform === "win32" ? ["SIGINT", "SIGTERM", "SIGBREAK", "SIGHUP"] : ["SIGINT", "SIGTERM"];

/** Exit statuses: 0 ok, 1 runtime failure, 2 bad usage or configuration. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The options of serve: the flag and its variable on one line, what it does below. */
function serveOptionLines(): string[] {
  return Object.entries(SERVE_OPTIONS).flatMap(([name, option]) => {
    const flag = `  --${name} ${option.value}`;
    const variable = `[${option.env}]`;
    const also = "alias" in option ? `; ${option.alias}, its older name, works too` : "";
    return [
      `${flag.padEnd(HELP_WIDTH - variable.length - 1)} ${variable}`,
      ...wrapWords(`${option.help}${also}`, HELP_WIDTH - 6).map((line) => `      ${line}`),
    ];
  });
}

const VERIFY_HELP = helpSection(
  "Options of verify (every sidecar, blob size and SHA-256, versions 1..n; orphans are listed, not findings):",
  [
    ["--data DIR", "data directory [FHIRBIN_DATA] (default ./data/store)"],
    ["--sample PCT", "recompute the SHA-256 of this percentage of blobs (default 100)"],
    [
      "--gc",
      "remove orphans (temp files and unreferenced blobs); refused while a server holds the data directory or when there are findings",
    ],
    ["--grace DURATION", "with --gc, keep blobs younger than this (default 1h; 0s, 30m, 2d)"],
    ["--json", "print the report as one JSON object"],
  ],
);

function helpText(): string {
  return [
    `fhirbin ${pkg.version}: a FHIR Binary server with a crash-safe filesystem store`,
    "",
    "Usage:",
    "  fhirbin [serve] [options]    serve the FHIR Binary API (the default)",
    "  fhirbin verify [options]     check a data directory (status 1 on findings)",
    "  fhirbin reindex [--data DIR] rebuild the search index from the sidecars",
    "  fhirbin import PATH...       import files and folders (fhirbin import --help)",
    "  fhirbin export ID | --all DIR",
    "                               write documents out (fhirbin export --help)",
    "  fhirbin purge ID --previous-versions | --deleted [--data DIR]",
    "                               remove versions for good (fhirbin purge --help)",
    "  fhirbin audit [options]      print the audit trail's events on Binaries",
    "  fhirbin --help | --version   every command answers --help with its options",
    "",
    "Options of serve (flags win over environment variables, which win over defaults;",
    "an unknown FHIRBIN_ variable gets a warning):",
    ...serveOptionLines(),
    "",
    VERIFY_HELP,
    "",
    REINDEX_HELP,
    "",
    PURGE_HELP,
    "",
    AUDIT_HELP,
  ].join("\n");
}

/** Runs the command line; resolves with the exit status once the command (or the server) is done. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io,
  signals: { once(signal: StopSignal, listener: () => void): unknown } = process,
): Promise<number> {
  const [first, ...rest] = argv;
  // A misspelt variable would otherwise be ignored without a word, its setting left at the default.
  const warnings = unknownVariables(env);
  if (first !== "serve" && first !== undefined && !first.startsWith("-"))
    for (const warning of warnings) io.err(`fhirbin: warning: ${warning}`);
  if (first === "--help" || first === "-h" || first === "help") {
    io.out(helpText());
    return EXIT.ok;
  }
  if (first === "--version" || first === "-v") {
    io.out(pkg.version);
    return EXIT.ok;
  }
  if (first === "verify") return verify(rest, env, io);
  if (first === "audit") return runAudit(rest, env, io);
  if (first === "reindex") return runReindex(rest, env, io);
  if (first === "import") return runImport(rest, env, toolIo(io));
  if (first === "export") return runExport(rest, env, toolIo(io));
  if (first === "purge") return runPurge(rest, env, io);
  if (first !== undefined && !first.startsWith("-") && first !== "serve") {
    io.err(`fhirbin: unknown command ${JSON.stringify(first)}; see fhirbin --help`);
    return EXIT.usage;
  }
  const args = first === "serve" ? rest : argv;
  if (args.includes("--help") || args.includes("-h")) {
    io.out(helpText());
    return EXIT.ok;
  }

  let config: Config;
  try {
    config = loadConfig(args, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // The configuration is not valid, but the log format asked for is heeded all the same.
    const log = operationalLog(askedLogFormat(args, env), io);
    for (const warning of warnings) log.err(`fhirbin: warning: ${warning}`);
    log.err("fhirbin: invalid configuration:");
    for (const problem of error.problems) log.err(`  - ${problem}`);
    return EXIT.usage;
  }
  return serve(config, io, signals, warnings);
}

/** The `--log-format` of the arguments (the last one given), else FHIRBIN_LOG_FORMAT, else text. */
function askedLogFormat(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): LogFormat {
  let asked = env.FHIRBIN_LOG_FORMAT;
  args.forEach((arg, at) => {
    if (arg === "--log-format") asked = args[at + 1];
    else if (arg.startsWith("--log-format=")) asked = arg.slice("--log-format=".length);
  });
  return asked === "json" ? "json" : "text";
}

/** One plain line as the JSON object of `--log-format json`. */
function toJsonLine(line: string): string {
  return JSON.stringify({ time: isoTime(new Date()), msg: line });
}

/**
 * The lines of a running server. With `--log-format json` every line is one JSON object, the start-up
 * lines too, so a log collector never meets plain text among them.
 */
function operationalLog(format: LogFormat, io: Io): Io {
  if (format !== "json") return io;
  return { out: (line) => io.out(toJsonLine(line)), err: (line) => io.err(toJsonLine(line)) };
}

/** Why a server could not listen, in the words of what to do about it. */
function listenProblem(error: unknown, config: Config): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE") return `port ${config.port} is in use (by another fhirbin or another program)`;
  if (code === "EACCES")
    return (
      `permission denied: a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability ` +
      `(systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE); or use a port of 1024 or more`
    );
  if (code === "EADDRNOTAVAIL")
    return `${config.host} is not an address of this machine (127.0.0.1, 0.0.0.0, :: or an interface's address)`;
  if (code === "ERR_OSSL_X509_KEY_VALUES_MISMATCH")
    return "the --tls-key is not the private key of the --tls-cert certificate";
  if (typeof code === "string" && code.startsWith("ERR_OSSL"))
    return `the TLS certificate or key was refused (${code})`;
  return error instanceof Error ? error.message : String(error);
}

type Signals = NonNullable<Parameters<typeof runCli>[3]>;

async function serve(
  config: Config,
  raw: Io,
  signals: Signals,
  warnings: readonly string[],
): Promise<number> {
  const io = operationalLog(config.logFormat, raw);
  for (const warning of warnings) io.err(`warning: ${warning}`);
  let store: Awaited<ReturnType<typeof createStore>>;
  try {
    store = await createStore(config.dataDir, { log: io.err });
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    io.err(`fhirbin: ${error.message}`);
    return EXIT.failure;
  }
  // Listen for the stop signals before announcing anything: a supervisor may send one at once.
  const stopped = new Promise<void>((resolve) => {
    for (const signal of STOP_SIGNALS) signals.once(signal, resolve);
  });
  try {
    let generated: { token: string; path: string } | null = null;
    // A token is generated only when no way to authenticate is configured at all.
    if (config.auth && config.tokens.length === 0 && config.scopedTokens.length === 0 && !config.jwt) {
      const { token, path, created } = await loadOrCreateToken(config.dataDir);
      config = Object.freeze({ ...config, tokens: Object.freeze([token]) });
      if (created) generated = { token, path };
      else io.err(`using the bearer token kept in ${path}`);
    }
    if (config.seedDir) {
      const seedDir = config.seedDir;
      const seeded = await seedStore(store, seedDir, config).catch((error: unknown) => {
        throw new StartError(`cannot seed from ${seedDir}: ${(error as Error).message}`);
      });
      for (const { file, reason } of seeded.skipped) io.err(`seed: skipped ${file}: ${reason}`);
      if (seeded.imported.length > 0)
        io.err(`seeded ${seeded.imported.length} sample documents: ${seeded.imported.join(", ")}`);
    }
    // Every request on a Binary is recorded in <data>/audit; tokens never reach it.
    const audit = createAuditLog(join(config.dataDir, "audit"), io.err);
    // The request log is written once per turn of the event loop, not once per request.
    const requestLog = linesPerTurn((text) => raw.err(text.slice(0, -1)));
    // The request log's own lines are JSON already in that format; the app's other lines are plain text.
    const appLog = (line: string): void =>
      requestLog.add(config.logFormat === "json" && !line.startsWith("{") ? toJsonLine(line) : line);
    const metrics = createMetrics();
    using _idle = collectWhenIdle(metrics.requests);
    let app: ReturnType<typeof createApp>;
    try {
      app = createApp({ config, store, log: appLog, audit, metrics }).listen({
        hostname: config.host,
        port: config.port,
        // HTTPS served directly by Bun.serve when --tls-cert and --tls-key are given.
        ...(config.tls ? { tls: { cert: config.tls.cert, key: config.tls.key } } : {}),
      });
    } catch (error) {
      throw new StartError(`cannot listen on ${config.host}:${config.port}: ${listenProblem(error, config)}`);
    }
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const origin = `${config.tls ? "https" : "http"}://${host}:${app.server?.port}`;
    const base = `${origin}${config.basePath}`;
    io.out(`listening on ${base}`);
    // After the `listening on` line, which scripts and tests read first.
    io.err(`demo app at ${origin}/, API docs at ${origin}${DOCS_PATH}`);
    if (generated) {
      // Printed once, on the start that generated it; later starts name the file that keeps it.
      io.err(`generated a bearer token, kept in ${generated.path} (owner-only):\n  ${generated.token}`);
      io.err(
        `try: curl -H 'Authorization: Bearer ${generated.token}' -H 'Content-Type: text/plain' --data-binary 'hello' ${base}/Binary`,
      );
    }
    if (!config.auth) {
      io.err("authentication is OFF: anyone who can reach this port can read and write documents");
    }
    await stopped;
    io.err("stopping: finishing requests in flight");
    await app.stop();
    requestLog.flush();
    await audit.flush();
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    io.err(`fhirbin: ${error.message}`);
    return EXIT.failure;
  } finally {
    await store.close();
  }
}

/** The tools' output: the CLI's lines plus the terminal for progress lines, when stderr is one. */
function toolIo(io: Io): ToolIo {
  const tty = process.stderr.isTTY === true;
  return {
    ...io,
    terminal: tty
      ? { write: (text) => process.stderr.write(text), columns: process.stderr.columns || 80 }
      : null,
  };
}

/** A start-up failure the user can act on: reported in one line, no stack. */
class StartError extends Error {
  override name = "StartError";
}

/** Orphans listed one per line in the human report; the JSON report lists them all. */
const ORPHANS_LISTED = 20;

async function verify(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io,
): Promise<number> {
  let values: {
    data?: string;
    sample?: string;
    gc?: boolean;
    grace?: string;
    json?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        data: { type: "string" },
        sample: { type: "string" },
        gc: { type: "boolean" },
        grace: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    io.err(`fhirbin verify: ${error instanceof Error ? error.message : String(error)}; see fhirbin --help`);
    return EXIT.usage;
  }
  if (values.help) {
    io.out(VERIFY_HELP);
    return EXIT.ok;
  }
  const problems: string[] = [];
  const sample = values.sample === undefined ? 100 : parsePercent(values.sample);
  if (sample === null) problems.push(`--sample: ${JSON.stringify(values.sample)} must be a percentage 0-100`);
  const graceMs = parseDuration(values.grace ?? "1h");
  if (graceMs === null) problems.push(`--grace: ${JSON.stringify(values.grace)} must be a duration like 30m`);
  if (values.grace !== undefined && !values.gc) problems.push("--grace: only applies with --gc");
  if (problems.length > 0 || sample === null || graceMs === null) {
    io.err("fhirbin verify: invalid arguments:");
    for (const problem of problems) io.err(`  - ${problem}`);
    return EXIT.usage;
  }
  const dataDir = values.data ?? (env.FHIRBIN_DATA || "./data/store");

  let report: VerifyReport;
  const progress = terminalProgress();
  try {
    report = await verifyStore(dataDir, { sample, onProgress: progress?.show });
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    io.err(`fhirbin verify: ${error.message}`);
    return EXIT.failure;
  } finally {
    progress?.clear();
  }
  let gc: GcResult | null = null;
  let gcRefused: string | null = null;
  if (values.gc) {
    try {
      gc = await collectGarbage(dataDir, { graceMs });
    } catch (error) {
      if (!(error instanceof VerifyError || error instanceof StoreOpenError)) throw error;
      gcRefused = error.message;
    }
  }

  if (values.json) {
    io.out(JSON.stringify({ dataDir, ...report, gc, gcRefused }));
  } else {
    for (const { path, problem } of report.findings) io.out(`finding: ${path}: ${problem}`);
    for (const item of report.orphans.slice(0, ORPHANS_LISTED)) io.out(`orphan: ${describeOrphan(item)}`);
    if (report.orphans.length > ORPHANS_LISTED)
      io.out(`orphan: ... and ${report.orphans.length - ORPHANS_LISTED} more (--json lists them all)`);
    io.out(summary(dataDir, report, sample));
    if (gc) {
      io.out(
        `gc: removed ${gc.removed.length} orphans (${formatBytes(sumBytes(gc.removed))}); ` +
          `kept ${gc.kept.length} younger than ${values.grace ?? "1h"}`,
      );
    }
  }
  if (gcRefused) io.err(`fhirbin verify: --gc refused: ${gcRefused}`);
  return report.findings.length > 0 || gcRefused ? EXIT.failure : EXIT.ok;
}

function summary(dataDir: string, report: VerifyReport, sample: number): string {
  const { ids, versions, deletions, blobs, bytes, hashed, findings, orphans, elapsedMs } = report;
  return (
    `verified ${dataDir} in ${(elapsedMs / 1000).toFixed(1)} s: ${ids} ids, ${versions} versions ` +
    `(${deletions} deletions), ${blobs} blobs of ${formatBytes(bytes)}, ${hashed} hashed (sample ${sample}%); ` +
    `${findings.length} findings, ${orphans.length} orphans (${formatBytes(sumBytes(orphans))})`
  );
}

function describeOrphan({ kind, path, bytes, modified }: Orphan): string {
  return `${kind} ${path} (${formatBytes(bytes)}, modified ${new Date(modified).toISOString()})`;
}

/** A progress line rewritten in place on stderr, only when stderr is a terminal. */
function terminalProgress(): { show: (progress: VerifyProgress) => void; clear: () => void } | null {
  if (!process.stderr.isTTY) return null;
  let shown = false;
  return {
    show: ({ files, bytes, elapsedMs }) => {
      const seconds = Math.max(elapsedMs / 1000, 0.001);
      shown = true;
      process.stderr.write(
        `\r\x1b[K${files} files (${Math.round(files / seconds)}/s), ` +
          `${formatBytes(bytes)} hashed (${formatBytes(bytes / seconds)}/s)`,
      );
    },
    clear: () => {
      if (shown) process.stderr.write("\r\x1b[K");
    },
  };
}

function parsePercent(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  return value >= 0 && value <= 100 ? value : null;
}

function sumBytes(items: readonly { bytes: number }[]): number {
  return items.reduce((total, item) => total + item.bytes, 0);
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}
