/**
 * Child processes and temporary directories for the benchmark, released by `await using`; every wait is
 * bounded, so a server that never comes up fails the run instead of hanging it.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { withDeadline } from "../test/deadline.ts";

/** How long a server may take to start, and to stop before it is killed. */
const START_MS = 15_000;
const STOP_MS = 5_000;

/** A temporary directory, removed with everything in it when disposed. */
export interface TempDir extends AsyncDisposable {
  path: string;
}

/** Creates a temporary directory in `parent` (the system's temp dir by default). */
export async function tempDir(prefix: string, parent = tmpdir()): Promise<TempDir> {
  const path = await mkdtemp(join(parent, prefix));
  return { path, [Symbol.asyncDispose]: () => rm(path, { recursive: true, force: true }) };
}

/** A server under test: its base URL, stopped when disposed. */
export interface Server extends AsyncDisposable {
  name: string;
  /** Base URL the cases' paths are appended to (fhirbin's includes the FHIR base path). */
  url: string;
  /** Process id, for profilers and `ps`. */
  pid: number;
}

/** Stops a process politely (SIGTERM), then for sure (SIGKILL) if it has not exited in time. */
async function stop(child: Subprocess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  try {
    await withDeadline(child.exited, `${child.pid} to stop`, STOP_MS);
  } catch {
    child.kill("SIGKILL");
    await child.exited;
  }
}

/** Resolves with the first match of `pattern` in the text of `stream`, and keeps draining it after that. */
async function firstMatch(stream: ReadableStream<Uint8Array>, pattern: RegExp): Promise<RegExpExecArray> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the output ended without ${pattern}:\n${text}`);
    text += decoder.decode(value, { stream: true });
    const match = pattern.exec(text);
    if (match) {
      // A full pipe would block the child: read whatever else it prints, and drop it.
      void (async () => {
        while (!(await reader.read()).done);
      })().catch(() => {});
      return match;
    }
  }
}

const LISTENING = /^listening on (http:\/\/\S+)$/m;

/** Where a server's stderr goes, and its environment. */
export interface SpawnOptions {
  /** A file for stderr (a request log would flood the terminal); the terminal's stderr when absent. */
  logFile?: string;
  env?: Record<string, string | undefined>;
}

/** The last lines of a log file, to say why a server failed. */
async function tail(path: string | undefined): Promise<string> {
  if (!path) return "";
  const text = await Bun.file(path)
    .text()
    .catch(() => "");
  return text ? `\n--- ${path} ---\n${text.split("\n").slice(-20).join("\n")}` : "";
}

/**
 * Spawns a server that prints `listening on URL` on stdout once it accepts connections (fhirbin and the
 * two Bun peers do), and resolves when it has.
 */
export async function spawnListening(
  name: string,
  command: string[],
  options: SpawnOptions = {},
): Promise<Server> {
  const child = Bun.spawn(command, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: options.logFile ? Bun.file(options.logFile) : "inherit",
    env: options.env ?? process.env,
  });
  try {
    const exited = child.exited.then((code) => {
      throw new Error(`${name} exited with status ${code} before listening`);
    });
    const match = await withDeadline(
      Promise.race([firstMatch(child.stdout, LISTENING), exited]),
      `${name} to listen`,
      START_MS,
    );
    return { name, url: match[1] as string, pid: child.pid, [Symbol.asyncDispose]: () => stop(child) };
  } catch (error) {
    await stop(child);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}${await tail(options.logFile)}`,
    );
  }
}

/**
 * Spawns a server that says nothing when ready (nginx) and resolves once `ready()` holds, polling it: the
 * only sign of readiness is from outside.
 */
export async function spawnPolled(
  name: string,
  command: string[],
  url: string,
  ready: () => Promise<boolean>,
): Promise<Server> {
  const child = Bun.spawn(command, { stdin: "ignore", stdout: "inherit", stderr: "inherit" });
  const server: Server = { name, url, pid: child.pid, [Symbol.asyncDispose]: () => stop(child) };
  try {
    const end = performance.now() + START_MS;
    while (!(await ready().catch(() => false))) {
      if (child.exitCode !== null) throw new Error(`${name} exited with status ${child.exitCode}`);
      if (performance.now() > end) throw new Error(`gave up after ${START_MS} ms waiting for ${name}`);
      await Bun.sleep(20);
    }
    return server;
  } catch (error) {
    await stop(child);
    throw error;
  }
}

/** Runs a command to completion with a deadline; resolves with its stdout, rejects on a non-zero exit. */
export async function runCommand(
  command: string[],
  options: { cwd?: string; timeoutMs: number; signal?: AbortSignal },
): Promise<string> {
  const child = Bun.spawn(command, {
    cwd: options.cwd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
    timeout: options.timeoutMs,
    killSignal: "SIGKILL",
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const [stdout, code] = await Promise.all([new Response(child.stdout).text(), child.exited]);
  if (code !== 0) {
    const why = child.signalCode ? `was killed (${child.signalCode})` : `exited with status ${code}`;
    throw new Error(`${command.join(" ")} ${why}\n${stdout}`);
  }
  return stdout;
}

/** A free TCP port on the loopback, for servers that cannot take port 0 and report it (nginx). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/** Clock ticks per second of the times in /proc/<pid>/stat. */
const CLOCK_TICKS = ((): number => {
  try {
    return Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;
  } catch {
    return 100; // The usual value on Linux, the only system with /proc/<pid>/stat.
  }
})();

/** The pids of a process's children (Linux: /proc/<pid>/task/<tid>/children). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number),
    );
  } catch {
    return []; // Gone, or a kernel without the children file.
  }
}

/**
 * CPU seconds (user + system) a process and its descendants (nginx's worker) have used so far, or null where
 * /proc does not tell (not Linux). Unlike requests per second, CPU time per request hardly moves when other
 * work shares the machine.
 */
export function cpuSeconds(pid: number): number | null {
  if (!existsSync(`/proc/${pid}/stat`)) return null;
  let ticks = 0;
  for (const each of [pid, ...childrenOf(pid)]) {
    try {
      // Fields after the parenthesised command name: state is the 3rd field, utime the 14th, stime the 15th.
      const fields = readFileSync(`/proc/${each}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Exited between the listing and the read: its time is gone with it.
    }
  }
  return ticks / CLOCK_TICKS;
}
