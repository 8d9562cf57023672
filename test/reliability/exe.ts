/**
 * What the reliability suites share: the compiled `dist/fhirbin` started on 127.0.0.1 port 0 with a given
 * data directory (optionally under a wrapper such as strace), its output drained so it can never block on a
 * full pipe, every wait bounded by a deadline, and every process it started killed when the runner exits.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { VerifyReport } from "../../src/store/verify.ts";
import { withDeadline } from "../deadline.ts";

export { withDeadline };

/** The repository root (of whichever copy this file lives in). */
const ROOT = resolve(import.meta.dir, "../..");

/** The compiled executable under test. */
const EXE = join(ROOT, "dist", "fhirbin");

/** The bearer token every server started here accepts. */
export const TOKEN = "reliability-token-0123456789";

const LISTENING = /^listening on (http:\/\/\S+)$/m;

/** Processes still running; killed if the runner exits first, so no test leaves a server behind. */
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
});

/** Builds `dist/fhirbin` when it is missing (`npm test` builds it; the scripts may run on their own). */
export function ensureBuilt(): string {
  if (existsSync(EXE)) return EXE;
  const build = Bun.spawnSync([process.execPath, "run", "build"], {
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (build.exitCode !== 0 || !existsSync(EXE)) throw new Error(`could not build ${EXE}`);
  return EXE;
}

/** Polls `check` until it holds: for conditions only visible from outside (a file, a process state). */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** The last `limit` characters of a stream, collected in the background. */
class Tail {
  text = "";
  readonly ended: Promise<void>;
  #listeners = new Set<() => void>();

  constructor(stream: ReadableStream<Uint8Array>, limit = 64 * 1024) {
    this.ended = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        this.text = (this.text + decoder.decode(chunk, { stream: true })).slice(-limit);
        for (const listener of this.#listeners) listener();
      }
    })();
  }

  /** Waits for `pattern`; rejects when the stream ends first or after `ms`. */
  async match(pattern: RegExp, ms: number, what: string): Promise<RegExpExecArray> {
    let listener = (): void => {};
    const found = new Promise<RegExpExecArray>((resolve, reject) => {
      listener = () => {
        const match = pattern.exec(this.text);
        if (match) resolve(match);
      };
      this.ended.then(() => reject(new Error(`the output ended without ${what}`)), reject);
      this.#listeners.add(listener);
      listener();
    });
    try {
      return await withDeadline(found, what, ms);
    } finally {
      this.#listeners.delete(listener);
    }
  }
}

export interface StartOptions {
  dataDir: string;
  /** A command the executable runs under, such as `strace -f -o trace`. */
  wrapper?: string[];
  /** Hard limit of the process's life, a last resort against leaks (default 2 minutes). */
  lifetimeMs?: number;
}

/** A running `dist/fhirbin serve`. */
export class Fhirbin implements AsyncDisposable {
  /** FHIR base URL from the `listening on` line. */
  base = "";
  readonly #proc: Subprocess<"ignore", "pipe", "pipe">;
  readonly #stdout: Tail;
  readonly #stderr: Tail;

  private constructor(proc: Subprocess<"ignore", "pipe", "pipe">) {
    this.#proc = proc;
    this.#stdout = new Tail(proc.stdout);
    this.#stderr = new Tail(proc.stderr);
  }

  /** Starts the server and waits for its `listening on` line. */
  static async start(options: StartOptions): Promise<Fhirbin> {
    const args = ["--host", "127.0.0.1", "--port", "0", "--data", options.dataDir, "--token", TOKEN];
    const proc = Bun.spawn([...(options.wrapper ?? []), ensureBuilt(), ...args], {
      env: withoutFhirbinVariables(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: options.lifetimeMs ?? 120_000,
      killSignal: "SIGKILL",
    });
    running.add(proc);
    void proc.exited.then(() => running.delete(proc));
    const server = new Fhirbin(proc);
    try {
      const [, base = ""] = await server.#stdout.match(LISTENING, 10_000, "the `listening on` line");
      server.base = base;
      return server;
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw new Error(`${(error as Error).message}; stderr:\n${server.#stderr.text}`);
    }
  }

  get pid(): number {
    return this.#proc.pid;
  }

  get port(): number {
    return Number(new URL(this.base).port);
  }

  /** fetch(base + path) with the bearer token. */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${TOKEN}`);
    return fetch(this.base + path, { ...init, headers });
  }

  /** Sends `signal` (to `pid` when the server runs under a wrapper) and waits for the exit. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM", pid = this.pid): Promise<number | null> {
    process.kill(pid, signal);
    await withDeadline(this.#proc.exited, `process ${pid} to exit after ${signal}`, 10_000);
    return this.#proc.exitCode;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    this.#proc.kill("SIGKILL");
    await this.#proc.exited;
  }
}

/** The environment without FHIRBIN_ variables, so only the flags given here configure the server. */
function withoutFhirbinVariables(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && !entry[0].startsWith("FHIRBIN_"),
    ),
  );
}

/** Runs `dist/fhirbin args` to completion; for commands that end by themselves. */
export async function runFhirbin(
  args: readonly string[],
  ms = 120_000,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([ensureBuilt(), ...args], {
    env: withoutFhirbinVariables(),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: ms,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, exitCode] = await withDeadline(
    Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]),
    `fhirbin ${args.join(" ")}`,
    ms,
  );
  return { exitCode, stdout, stderr };
}

/** Runs `fhirbin verify --json` on a data directory (read-only, so a server may be running). */
export async function verifyDataDir(dataDir: string): Promise<{ exitCode: number; report: VerifyReport }> {
  const { exitCode, stdout, stderr } = await runFhirbin(["verify", "--data", dataDir, "--json"]);
  if (!stdout.startsWith("{"))
    throw new Error(`fhirbin verify printed no report (status ${exitCode}): ${stderr}`);
  return { exitCode, report: JSON.parse(stdout) as VerifyReport };
}

/** The entries of a directory, or none when it does not exist. */
export async function entriesOf(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return [];
    throw error;
  });
}

/** Every file below `root`, relative to it, sorted. */
export async function filesBelow(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1))
    .sort();
}

/** Resident memory (KiB) and open file descriptors of a process, from /proc. */
export async function processUsage(pid: number): Promise<{ rssKiB: number; fds: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
  return { rssKiB, fds: (await readdir(`/proc/${pid}/fd`)).length };
}

/** Connections to local `port` whose server side is still open (ESTABLISHED or CLOSE_WAIT), from /proc. */
export async function openConnections(port: number): Promise<number> {
  const local = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of (await readFile(table, "utf8").catch(() => "")).split("\n").slice(1)) {
      const [, address = "", , state = ""] = line.trim().split(/\s+/);
      if (address.endsWith(local) && (state === "01" || state === "08")) count++;
    }
  }
  return count;
}

/** The SHA-256 of some bytes, in hex. */
export function sha256Hex(bytes: Uint8Array | ArrayBuffer): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** The version number of an `ETag: W/"n"` header, or null. */
export function versionOf(response: Response): number | null {
  const match = /^W\/"(\d+)"$/.exec(response.headers.get("etag") ?? "");
  return match ? Number(match[1]) : null;
}

/** The id of a `Location: <base>/Binary/<id>/_history/<n>` header, or null. */
export function idOf(response: Response): string | null {
  return (
    /\/Binary\/([A-Za-z0-9.-]{1,64})\/_history\/\d+$/.exec(response.headers.get("location") ?? "")?.[1] ??
    null
  );
}

/** What a standalone suite reports into: failures are collected so that one run shows them all. */
export interface Checks {
  /** Records `failure` unless `ok`. */
  check(ok: boolean, failure: string): void;
  /** Failures recorded so far. */
  readonly failures: number;
}

/**
 * Runs a standalone suite (`npm run test:crash`, `test:soak`): prints its failures and sets a non-zero exit
 * status on any, or when it throws.
 */
export async function runSuite(name: string, suite: (checks: Checks) => Promise<void>): Promise<void> {
  const failures: string[] = [];
  const started = performance.now();
  try {
    await suite({
      check: (ok, failure) => {
        if (!ok) failures.push(failure);
      },
      get failures() {
        return failures.length;
      },
    });
  } catch (error) {
    failures.push(`aborted: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (failures.length === 0) {
    console.log(`${name}: PASS in ${seconds} s`);
    return;
  }
  const shown = failures.slice(0, 30);
  for (const failure of shown) console.log(`${name}: FAIL ${failure}`);
  if (failures.length > shown.length)
    console.log(`${name}: ... and ${failures.length - shown.length} more failures`);
  console.log(`${name}: FAILED (${failures.length} failures) in ${seconds} s`);
  process.exitCode = 1;
}

/** The version numbers the history of `id` lists, newest first, read from each entry's ETag. */
export async function historyVersions(server: Fhirbin, id: string): Promise<number[]> {
  // The largest page: the history is paged, 20 versions a page by default.
  const res = await server.request(`/Binary/${id}/_history?_format=json&_count=1000`);
  if (res.status !== 200) throw new Error(`history of ${id}: status ${res.status}: ${await res.text()}`);
  const bundle = (await res.json()) as { entry?: { response: { etag: string } }[] };
  return (bundle.entry ?? []).map((entry) => Number(/^W\/"(\d+)"$/.exec(entry.response.etag)?.[1]));
}

/** True when `versions` (newest first, as history lists them) are exactly n, n-1, ..., 1. */
export function isContiguous(versions: readonly number[]): boolean {
  return versions.every((version, index) => version === versions.length - index);
}
