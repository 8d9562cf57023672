/** The machine and tool versions a benchmark ran on, for the report. */
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, release, totalmem, type } from "node:os";

/** What the report says about where it ran. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  versions: { bun: string; nginx: string; wrk: string };
}

/** The CPU model from /proc/cpuinfo (Linux), else what Node reports. */
function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (match?.[1]) return match[1].trim();
  } catch {
    // Not Linux: fall through.
  }
  return cpus()[0]?.model ?? "unknown";
}

/** The first line a program prints about its version (nginx and wrk print it on stderr or stdout). */
function versionLine(command: string[], pattern: RegExp): string {
  const result = Bun.spawnSync(command, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const text = `${result.stdout.toString()}\n${result.stderr.toString()}`;
  return pattern.exec(text)?.[1] ?? "unknown";
}

/** Describes this machine; `nginx` and `wrk` are the paths of the binaries used. */
export function describeMachine(tools: { nginx: string; wrk: string }): Machine {
  return {
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: `${type()} ${release()}`,
    versions: {
      bun: Bun.version,
      nginx: versionLine([tools.nginx, "-v"], /nginx version: nginx\/(\S+)/),
      wrk: versionLine([tools.wrk, "-v"], /^wrk (\S+)/m),
    },
  };
}
