/**
 * Helpers for the executable tests: the compiled `dist/fhirbin` spawned as a user would run it, its output
 * collected as it arrives, every wait bounded by a deadline so a hung process fails the test instead of
 * hanging it, and every process and temporary directory released by `using` / `await using`.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { withDeadline as deadline } from "../deadline.ts";

/** The repository root. */
export const ROOT = resolve(import.meta.dir, "../..");

/** The compiled executable `npm test` builds before running the tests. */
export const EXE = join(ROOT, "dist", "fhirbin");

/** Resolves with `promise`, or rejects naming `what` once `ms` (WAIT_MS by default) have passed. */
export const withDeadline = <T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> =>
  deadline(promise, what, ms);

/**
 * The longest any single wait may take: below bun test's timeout (`--timeout 30000` in npm test), so a failure names
 * what hung. A cold start of the 100 MB executable on a loaded 2-core machine has taken over 4 s.
 */
export const WAIT_MS = 15_000;

/**
 * A last resort against leaks: a process still running after this long is killed by Bun even if the test
 * that started it was abandoned (a timed-out test never runs its `await using` disposers).
 */
const LIFETIME_MS = 60_000;

/** The `listening on` line: plain, or the `msg` of a JSON object with `--log-format json`. */
const LISTENING = /^(?:\{.*"msg":")?listening on (http:\/\/([^\s"]+):(\d+)([^\s"]*))(?:"\})?$/m;

/** Throws a clear message when the executable has not been built. */
export function requireExe(): string {
  if (!existsSync(EXE)) {
    throw new Error(`${EXE} does not exist: build it first with \`npm run build\` (\`npm test\` does)`);
  }
  return EXE;
}

/** The JSON lines of an `import --json` run, in byte order of their file paths (files go a few at a time). */
export function importRecords(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .sort((a, b) => Buffer.compare(Buffer.from(String(a.file)), Buffer.from(String(b.file))));
}

/** A temporary directory removed when disposed. */
export function tempDir(prefix = "fhirbin-exe-"): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** The environment of the test process without any FHIRBIN_ variable, plus `extra`. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith("FHIRBIN_")) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Polls `check` until it holds, failing after `ms`: for conditions only visible from outside. */
export async function waitUntil(check: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`gave up after ${ms} ms waiting for ${what}`);
    await Bun.sleep(10);
  }
}

/** The text of one output stream of a process, collected in the background as it arrives. */
export class Output {
  #text = "";
  #ended = false;
  #waiters = new Set<() => void>();
  /** Resolves once the stream has ended. */
  readonly ended: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.ended = this.#pump(stream);
  }

  /** Everything received so far. */
  get text(): string {
    return this.#text;
  }

  /** The complete lines received so far. */
  get lines(): string[] {
    const lines = this.#text.split("\n");
    lines.pop();
    return lines;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.#text += decoder.decode(chunk, { stream: true });
        this.#notify();
      }
      this.#text += decoder.decode();
    } finally {
      this.#ended = true;
      this.#notify();
    }
  }

  #notify(): void {
    for (const waiter of this.#waiters) waiter();
  }

  /**
   * Waits until the text matches `pattern` (line by line with the `m` flag); rejects when the stream ends
   * without a match or after `ms`.
   */
  async waitFor(pattern: RegExp, what: string, ms = WAIT_MS): Promise<RegExpExecArray> {
    let wake: () => void = () => {};
    const found = new Promise<RegExpExecArray>((resolve, reject) => {
      wake = () => {
        const match = pattern.exec(this.#text);
        if (match) resolve(match);
        else if (this.#ended) reject(new Error(`the output ended without ${what}:\n${this.#text}`));
      };
      this.#waiters.add(wake);
      wake();
    });
    try {
      return await withDeadline(found, `${what}; output so far:\n${this.#text}`, ms);
    } finally {
      this.#waiters.delete(wake);
    }
  }
}

export interface SpawnOptions {
  /** Environment variables added to the test's own (whose FHIRBIN_ variables are removed). */
  env?: Record<string, string>;
  /** Working directory; the default is a directory no test writes to by accident. */
  cwd?: string;
  /**
   * What runs fhirbin, the arguments following: `dist/fhirbin` by default; another build through its
   * emulator for the other platforms' suites (test/platforms).
   */
  command?: readonly string[];
  /** How long the server may take to say where it listens (WAIT_MS by default). */
  startMs?: number;
}

/** A running (or finished) process with its collected output; killed when disposed. */
export class Child implements AsyncDisposable {
  readonly stdout: Output;
  readonly stderr: Output;

  constructor(readonly process: Subprocess<"ignore", "pipe", "pipe">) {
    this.stdout = new Output(process.stdout);
    this.stderr = new Output(process.stderr);
  }

  get pid(): number {
    return this.process.pid;
  }

  /** Waits for the exit, bounded by the deadline; resolves with the exit code (null after a signal). */
  async exited(ms = WAIT_MS): Promise<number | null> {
    await withDeadline(this.process.exited, `process ${this.pid} to exit`, ms);
    await withDeadline(
      Promise.all([this.stdout.ended, this.stderr.ended]),
      `the output of process ${this.pid} to end`,
      ms,
    );
    return this.process.exitCode;
  }

  /** Sends `signal` and waits for the exit; resolves with the exit code. */
  stop(signal: "SIGTERM" | "SIGINT" = "SIGTERM"): Promise<number | null> {
    this.process.kill(signal);
    return this.exited();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.process.kill("SIGKILL");
      await this.process.exited;
    }
  }
}

function spawnProcess(cmd: readonly string[], options: SpawnOptions): Subprocess<"ignore", "pipe", "pipe"> {
  return Bun.spawn([...cmd], {
    cwd: options.cwd ?? tmpdir(),
    env: cleanEnv(options.env ?? {}),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: LIFETIME_MS,
    killSignal: "SIGKILL",
  });
}

function fhirbinCommand(args: readonly string[], options: SpawnOptions): string[] {
  return [...(options.command ?? [requireExe()]), ...args];
}

/** Spawns `dist/fhirbin args` with piped stdout and stderr. */
export function spawnFhirbin(args: readonly string[], options: SpawnOptions = {}): Child {
  return new Child(spawnProcess(fhirbinCommand(args, options), options));
}

/** Runs `command` with `sh -c`, as a user pasting it into a terminal would (output collected the same way). */
export function spawnShell(command: string, options: SpawnOptions = {}): Child {
  return new Child(spawnProcess(["sh", "-c", command], options));
}

/** The result of a command that is expected to finish by itself. */
export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `dist/fhirbin args` to completion (within the deadline) and returns its status and output. */
export async function runFhirbin(args: readonly string[], options: SpawnOptions = {}): Promise<RunResult> {
  await using proc = spawnFhirbin(args, options);
  const exitCode = await proc.exited();
  return { exitCode, stdout: proc.stdout.text, stderr: proc.stderr.text };
}

/** A started server: the process plus where it listens. */
export class Server extends Child {
  /** The FHIR base URL from the `listening on` line, e.g. http://127.0.0.1:40123/fhir */
  base = "";
  /** e.g. http://127.0.0.1:40123 */
  origin = "";
  host = "";
  port = 0;
  basePath = "";

  /** Waits for the `listening on` line on stdout and records where the server listens. */
  async listening(ms = WAIT_MS): Promise<this> {
    const match = await this.stdout
      .waitFor(LISTENING, "the `listening on` line", ms)
      .catch((error: Error) => {
        throw new Error(`${error.message}\nstderr:\n${this.stderr.text}`);
      });
    const [, base = "", host = "", port = "", basePath = ""] = match;
    this.base = base;
    this.origin = new URL(base).origin;
    this.host = host;
    this.port = Number(port);
    this.basePath = basePath;
    return this;
  }

  /** fetch(base + path), with `Authorization: Bearer token` when a token is given. */
  request(path: string, init: RequestInit = {}, token?: string): Promise<Response> {
    const headers = new Headers(init.headers);
    if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
    return fetch(this.base + path, { ...init, headers });
  }
}

/**
 * Starts `dist/fhirbin args` and waits for its `listening on` line. A process that exits or stays silent
 * instead fails the call (and is killed), with what it wrote on stderr in the message.
 */
export async function startFhirbin(args: readonly string[], options: SpawnOptions = {}): Promise<Server> {
  const server = new Server(spawnProcess(fhirbinCommand(args, options), options));
  try {
    return await server.listening(options.startMs);
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}
