#!/usr/bin/env bun
/**
 * `npm run bench`: builds dist/fhirbin, stores the fixtures in it through its API, starts it beside nginx, a
 * bare Bun.serve and the durability-limit loop, drives each with wrk on the loopback, and prints and writes
 * bench/results.md. Settings come from BENCH_* variables (`bun bench/run.ts --help`).
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { benchCases, benchRatios, type Case, PEER_NAMES, type Peer, withBaseline } from "./cases.ts";
import { type Fixture, uploadFixtures, writeFixtures } from "./fixtures.ts";
import { describeMachine } from "./machine.ts";
import { startNginx } from "./nginx.ts";
import { runCommand, type Server, spawnListening, tempDir } from "./process.ts";
import { type RunResults, renderReport } from "./report.ts";
import { loadSettings, SETTINGS_HELP, type Settings, SettingsError } from "./settings.ts";
import { checkLoad, type Load, type Measurement, runWrk } from "./wrk.ts";

const ROOT = resolve(import.meta.dir, "..");
const EXE = join(ROOT, "dist", "fhirbin");
const RESULTS = join(import.meta.dir, "results.md");
const INSTALL_HINT = "apt-get install -y nginx-light wrk";

/** Where the tools are: nginx often lives in an sbin directory a normal user's PATH lacks. */
function findTools(): { nginx: string | null; wrk: string | null } {
  const PATH = `${process.env.PATH ?? ""}:/usr/sbin:/usr/local/sbin:/sbin`;
  return { nginx: Bun.which("nginx", { PATH }), wrk: Bun.which("wrk", { PATH }) };
}

function helpText(): string {
  const settings = Object.entries(SETTINGS_HELP).map(
    ([name, { default: value, help }]) => `  ${name.padEnd(18)} ${help} (default ${value})`,
  );
  return [
    "Usage: npm run bench   (bun bench/run.ts)",
    "",
    "Compares fhirbin with nginx, a bare Bun.serve and a durable-write loop; writes bench/results.md.",
    `Needs nginx and wrk (Debian: ${INSTALL_HINT}). Settings:`,
    ...settings,
    `  ${"BENCH_ONLY".padEnd(18)} comma-separated case ids to run (read-1k, fhir-json-1m, create-1m, ...)`,
    `  ${"BENCH_BASELINE".padEnd(18)} another fhirbin executable measured beside this one (say, the`,
    `  ${"".padEnd(18)} previous commit's dist/fhirbin), each case judged against it (>= 0.95)`,
  ].join("\n");
}

/** Starts one server of a peer, using `dir` as its own scratch directory. */
type Starter = (dir: string) => Promise<Server>;

function starters(input: {
  nginx: string;
  token: string;
  docs: string;
  probe: string;
  baseline: string | null;
}): Record<Peer, Starter> {
  const bun = (script: string, dir: string): string[] => [
    process.execPath,
    join(import.meta.dir, script),
    dir,
  ];
  const fhirbin =
    (name: string, exe: string): Starter =>
    (dir) =>
      spawnListening(
        name,
        [exe, "serve", "--host", "127.0.0.1", "--port", "0", "--data", dir, "--token", input.token],
        // Like nginx's access_log off; set through the environment, which older builds simply ignore.
        { logFile: `${dir}.log`, env: { ...process.env, FHIRBIN_LOG_FORMAT: "off" } },
      );
  const { baseline } = input;
  return {
    fhirbin: fhirbin("fhirbin", EXE),
    baseline: baseline
      ? fhirbin("fhirbin baseline", baseline)
      : () => Promise.reject(new Error("BENCH_BASELINE is not set")),
    "bare-bun": () => spawnListening("bare Bun.serve", bun("bare-bun.ts", input.docs)),
    nginx: (dir) => startNginx(input.nginx, dir, input.docs, input.probe),
    "durable-limit": (dir) => spawnListening("durability limit", bun("durable-limit.ts", dir)),
  };
}

/** The ETag a server gives a document, for the conditional-read case. */
async function etagOf(url: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  const etag = response.headers.get("etag");
  if (!response.ok || !etag) throw new Error(`${url} answered ${response.status} without an ETag`);
  return etag;
}

function describeMeasurement(m: Measurement): string {
  const rate = Math.round(m.requestsPerSecond).toLocaleString("en-GB");
  const errors = m.socketErrors > 0 ? `, ${m.socketErrors} socket errors` : "";
  const cpu = m.cpuUsPerRequest === null ? "" : `  CPU ${m.cpuUsPerRequest.toFixed(0)} us/req`;
  return `${rate.padStart(8)} req/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms${cpu}${errors}`;
}

/** Checks the load once, warms the server up, then measures it. */
async function measure(
  wrk: string,
  server: Server,
  load: Load,
  settings: Settings,
  signal: AbortSignal,
): Promise<Measurement> {
  await checkLoad(server.url, load);
  const options = { threads: settings.threads, connections: settings.connections, signal, pid: server.pid };
  if (settings.warmup > 0) await runWrk(wrk, server.url, load, { ...options, seconds: settings.warmup });
  return runWrk(wrk, server.url, load, { ...options, seconds: settings.duration });
}

/** One run of every case against every server that takes it. */
async function runAll(input: {
  cases: readonly Case[];
  running: Partial<Record<Peer, Server>>;
  start: Record<Peer, Starter>;
  scratch: string;
  wrk: string;
  settings: Settings;
  signal: AbortSignal;
  label: string;
}): Promise<RunResults> {
  const { cases, running, start, scratch, wrk, settings, signal, label } = input;
  const results: RunResults = {};
  for (const c of cases) {
    const measured: Partial<Record<Peer, Measurement>> = {};
    results[c.id] = measured;
    // A fresh case's directories are removed once every peer of the case has been measured, not between
    // peers: on ext4 without a journal (this machine's disk) a new inode is not taken from those freed in
    // the last 60 s or more, and skipping tens of thousands of them made the next peer's every file create
    // several times dearer (bench/optimisations.md section 8).
    await using dirs = new AsyncDisposableStack();
    for (const [peer, load] of Object.entries(c.loads) as [Peer, Load][]) {
      signal.throwIfAborted();
      let m: Measurement;
      if (c.fresh) {
        const dir = dirs.use(await tempDir(`${peer}-`, scratch));
        await using server = await start[peer](dir.path);
        await c.prime?.[peer]?.(server);
        m = await measure(wrk, server, load, settings, signal);
      } else {
        const server = running[peer];
        if (!server) throw new Error(`${peer} is not running`);
        m = await measure(wrk, server, load, settings, signal);
      }
      measured[peer] = m;
      console.log(`${label}  ${c.id.padEnd(13)} ${PEER_NAMES[peer].padEnd(17)} ${describeMeasurement(m)}`);
    }
  }
  return results;
}

async function main(): Promise<number> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log(helpText());
    return 0;
  }
  let settings: Settings;
  try {
    settings = loadSettings(process.env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    console.error(`bench: invalid settings:\n${error.message}`);
    return 2;
  }
  if (settings.baseline && !(await Bun.file(settings.baseline).exists())) {
    console.error(`bench: BENCH_BASELINE ${settings.baseline} does not exist`);
    return 2;
  }
  const { nginx, wrk } = findTools();
  if (!nginx || !wrk) {
    const missing = [nginx ? null : "nginx", wrk ? null : "wrk"].filter(Boolean).join(" and ");
    console.error(`bench: ${missing} not found. On Debian or Ubuntu, install them as root with:`);
    console.error(`  apt-get update && ${INSTALL_HINT}`);
    return 1;
  }

  const abort = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => abort.abort(new Error(`stopped by ${signal}`)));
  }
  try {
    return await bench(settings, { nginx, wrk }, abort.signal);
  } catch (error) {
    // Every server and temporary directory has been released by now (await using).
    if (!abort.signal.aborted) throw error;
    console.error(`bench: ${(abort.signal.reason as Error).message}`);
    return 130;
  }
}

/** Builds, starts the servers, runs every case, and writes the report; returns the exit status. */
async function bench(
  settings: Settings,
  { nginx, wrk }: { nginx: string; wrk: string },
  signal: AbortSignal,
): Promise<number> {
  console.log("building dist/fhirbin");
  await runCommand([process.execPath, "run", "build"], { cwd: ROOT, timeoutMs: 300_000, signal });

  await using work = await tempDir("fhirbin-bench-");
  const docs = join(work.path, "docs");
  await mkdir(docs);
  const fixtures = await writeFixtures(docs);
  const token = randomBytes(24).toString("hex");
  const { baseline } = settings;
  const start = starters({ nginx, token, docs, probe: fixtures["1k"].fileName, baseline });

  await using fhirbin = await start.fhirbin(join(work.path, "store"));
  await uploadFixtures(fhirbin.url, token, Object.values(fixtures) as Fixture[]);
  await using baselineServer = baseline ? await start.baseline(join(work.path, "baseline")) : null;
  if (baselineServer) await uploadFixtures(baselineServer.url, token, Object.values(fixtures) as Fixture[]);
  await using bare = await start["bare-bun"](docs);
  await using nginxServer = await start.nginx(join(work.path, "nginx"));
  const running = {
    fhirbin,
    "bare-bun": bare,
    nginx: nginxServer,
    ...(baselineServer ? { baseline: baselineServer } : {}),
  };

  const small = fixtures["1k"];
  const etags = {
    fhirbin: await etagOf(`${fhirbin.url}/Binary/${small.id}`, { authorization: `Bearer ${token}` }),
    nginx: await etagOf(`${nginxServer.url}/${small.fileName}`),
  };
  // The baseline holds the same fixtures, stored in the same order, so it gives the same ETags.
  const ownCases = benchCases({ fixtures, token, etags });
  const allCases = baseline ? withBaseline(ownCases) : ownCases;
  const unknown = settings.only.filter((id) => !allCases.some((c) => c.id === id));
  if (unknown.length > 0) {
    console.error(`bench: unknown case ids in BENCH_ONLY: ${unknown.join(", ")}`);
    console.error(`  known: ${allCases.map((c) => c.id).join(", ")}`);
    return 2;
  }
  const cases = settings.only.length > 0 ? allCases.filter((c) => settings.only.includes(c.id)) : allCases;
  const loads = cases.reduce((sum, c) => sum + Object.keys(c.loads).length, 0);
  const minutes = (loads * (settings.duration + settings.warmup) * settings.repeat) / 60;
  console.log(`${loads} loads x ${settings.repeat} runs: about ${Math.ceil(minutes)} min of load`);

  const loadStart = loadavg()[0] as number;
  console.log(`1-minute load average now: ${loadStart.toFixed(1)}`);
  const runs: RunResults[] = [];
  for (let run = 1; run <= settings.repeat; run++) {
    const label = `run ${run}/${settings.repeat}`;
    runs.push(await runAll({ cases, running, start, scratch: work.path, wrk, settings, signal, label }));
  }

  const report = renderReport({
    machine: describeMachine({ nginx, wrk }),
    settings,
    cases,
    ratios: benchRatios(allCases),
    runs,
    date: new Date(),
    load: { start: loadStart, end: loadavg()[0] as number },
  });
  await Bun.write(RESULTS, report);
  console.log(`\n${report}\nwritten to ${RESULTS}`);
  return 0;
}

process.exitCode = await main();
