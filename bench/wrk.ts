/** Driving a server with wrk: one load (a request, repeated), checked once by hand, then measured. */
import { randomBytes } from "node:crypto";
import { cpuSeconds, runCommand } from "./process.ts";

/** One request that wrk repeats as fast as the server answers it. */
export interface Load {
  /** Appended to the server's base URL. */
  path: string;
  headers: Record<string, string>;
  /** A file POSTed as the body (its first 16 bytes made unique per request and per run), or none for a GET. */
  bodyFile?: string;
  /** The status every answer must have. */
  status: number;
  /** The body length a GET must have, when known. */
  length?: number;
}

/** What one wrk run measured. */
export interface Measurement {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Connect, read, write errors and timeouts (status errors fail the run instead). */
  socketErrors: number;
  /** CPU time the server spent per request (user + system), or null when it could not be read. */
  cpuUsPerRequest: number | null;
}

export interface WrkOptions {
  threads: number;
  connections: number;
  seconds: number;
  signal: AbortSignal;
  /** The server's process, whose CPU time is measured around the run. */
  pid: number;
}

const SCRIPT = `${import.meta.dir}/wrk.lua`;

interface WrkResult {
  durationUs: number;
  requests: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
  statusErrors: number;
  p50Us: number;
  p99Us: number;
}

/**
 * Sends the load once with fetch and checks the answer, so a misconfigured case (a 401, a 404) fails loudly
 * instead of being measured as a fast server.
 */
export async function checkLoad(base: string, load: Load): Promise<void> {
  const response = await fetch(base + load.path, {
    method: load.bodyFile ? "POST" : "GET",
    headers: load.headers,
    ...(load.bodyFile ? { body: Bun.file(load.bodyFile) } : {}),
  });
  const body = await response.bytes();
  if (response.status !== load.status) {
    const text = new TextDecoder().decode(body.subarray(0, 500));
    throw new Error(`${base + load.path} answered ${response.status}, not ${load.status}: ${text}`);
  }
  if (load.length !== undefined && body.byteLength !== load.length) {
    throw new Error(`${base + load.path} sent ${body.byteLength} bytes, not ${load.length}`);
  }
}

/** Runs wrk against `base + load.path`; rejects when any answer had an error status (>= 400). */
export async function runWrk(
  wrk: string,
  base: string,
  load: Load,
  options: WrkOptions,
): Promise<Measurement> {
  const command = [
    wrk,
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    SCRIPT,
    ...Object.entries(load.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    base + load.path,
    ...(load.bodyFile ? ["--", load.bodyFile, randomBytes(4).toString("hex")] : []),
  ];
  const cpuBefore = cpuSeconds(options.pid);
  const output = await runCommand(command, {
    timeoutMs: (options.seconds + 30) * 1000,
    signal: options.signal,
  });
  const cpuAfter = cpuSeconds(options.pid);
  const line = /^BENCH-RESULT (.*)$/m.exec(output)?.[1];
  if (!line) throw new Error(`wrk printed no result:\n${output}`);
  const result = JSON.parse(line) as WrkResult;
  if (result.statusErrors > 0) {
    throw new Error(
      `${result.statusErrors} of ${result.requests} answers from ${base + load.path} had an error status`,
    );
  }
  return {
    requestsPerSecond: result.requests / (result.durationUs / 1e6),
    p50Ms: result.p50Us / 1000,
    p99Ms: result.p99Us / 1000,
    requests: result.requests,
    socketErrors: result.connectErrors + result.readErrors + result.writeErrors + result.timeouts,
    cpuUsPerRequest:
      cpuBefore === null || cpuAfter === null || result.requests === 0
        ? null
        : ((cpuAfter - cpuBefore) * 1e6) / result.requests,
  };
}
