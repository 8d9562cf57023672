/** Small file systems for fault injection: a tmpfs mounted by the test (as root), and the commands it needs. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Runs a command to completion; its stderr when it fails, else null. */
export function run(...cmd: string[]): string | null {
  const result = Bun.spawnSync(cmd, { stderr: "pipe" });
  return result.exitCode === 0 ? null : `${cmd.join(" ")}: ${result.stderr.toString().trim()}`;
}

/** Why a tmpfs cannot be mounted here, or null when it can. */
export function mountProblem(): string | null {
  if (process.getuid?.() !== 0) return "not running as root";
  const probe = mkdtempSync(join(tmpdir(), "fhirbin-mount-probe-"));
  const failure = run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe);
  if (!failure) run("umount", probe);
  rmSync(probe, { recursive: true, force: true });
  return failure;
}
