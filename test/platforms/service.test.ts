/**
 * fhirbin as a Windows service under NSSM (the wrapper the README recommends), run by Wine's own Service
 * Control Manager: `nssm install`, `net start`, then `net stop` in the middle of an upload. NSSM stops a
 * console program with Ctrl+C first, so the upload completes and the store is whole. `.ci/setup-nssm` fetches
 * NSSM; the service is removed afterwards, or every later Wine session would start it again.
 */
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runFhirbin, waitUntil } from "../exe/spawn.ts";
import { windowsPlatform } from "./platforms.ts";

const platform = windowsPlatform();
const NSSM = join(process.env.FHIRBIN_NSSM_DIR ?? "/var/cache/fhirbin/nssm", "package", "bin", "nssm64.exe");
const missing =
  platform.missing ?? (existsSync(NSSM) ? null : `${NSSM} is missing: run \`bash .ci/setup-nssm\``);
if (missing !== null) {
  console.warn(`NOTICE: the Windows service test is skipped: ${missing}`);
  if (process.env.CI === "true") {
    test("the Windows service test can run in CI", () => {
      throw new Error(missing);
    });
  }
}

const TOKEN = "service-test-token-0123456789";
const MiB = 1024 * 1024;

/**
 * Runs a Windows command under Wine to its end; resolves with its exit status. Its output goes nowhere: the
 * services it starts would hold a pipe open for their whole life.
 */
async function wine(...args: string[]): Promise<number> {
  const child = Bun.spawn([...platform.command.slice(0, -1), ...args], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
    timeout: 60_000,
  });
  return await child.exited;
}

describe.skipIf(missing !== null)("fhirbin as a Windows service under NSSM (Wine)", () => {
  test("net stop during an upload: NSSM sends Ctrl+C, the upload completes, the store verifies", async () => {
    using dir = platform.dataDir("service");
    // Wine sees this machine's root as Z:, where the platform keeps the executable.
    const exe = `Z:${platform.command.at(-1)?.replaceAll("/", "\\")}`;
    const nssm = "/opt/fhirbin/nssm.exe";
    copyFileSync(NSSM, join(platform.root, nssm));
    const logs = join(dir.host, "..");
    const name = `fhirbin-test-${process.pid}`;
    try {
      expect(await wine(nssm, "install", name, exe)).toBe(0);
      // One argument, quotes and all: NSSM passes its parameters to the program as one command line.
      const parameters = `serve --port 0 --data "${dir.arg}" --token ${TOKEN}`;
      for (const [key, ...value] of [
        ["AppParameters", parameters],
        ["AppStdout", `${dir.arg}\\..\\stdout.log`],
        ["AppStderr", `${dir.arg}\\..\\stderr.log`],
        // How long NSSM waits after Ctrl+C before it tries the next way to stop: time for an upload.
        ["AppStopMethodConsole", "60000"],
        ["AppExit", "Default", "Exit"],
        ["Start", "SERVICE_DEMAND_START"],
      ]) {
        expect(await wine(nssm, "set", name, key as string, ...value)).toBe(0);
      }
      expect(await wine("net", "start", name)).toBe(0);
      const stdout = join(logs, "stdout.log");
      const stderr = join(logs, "stderr.log");
      const read = (path: string): string => (existsSync(path) ? readFileSync(path, "utf8") : "");
      await waitUntil(
        () => /^listening on /m.test(read(stdout)),
        "the service's `listening on` line",
        60_000,
      );
      const base = /^listening on (\S+)$/m.exec(read(stdout))?.[1] ?? "";

      // An upload in flight: the stop is sent once the first MiB is on its way, the rest follows slowly.
      let sent = 0;
      let stopping: Promise<number> | null = null;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 8) return controller.close();
          if (sent === 1) stopping = wine("net", "stop", name);
          if (sent > 0) await Bun.sleep(300);
          controller.enqueue(new Uint8Array(MiB).fill(sent++));
        },
      });
      const upload = await fetch(`${base}/Binary/in-flight`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/octet-stream" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(upload.status).toBe(201);
      await upload.arrayBuffer();
      expect(await (stopping as Promise<number> | null)).toBe(0);
      expect(read(stderr)).toContain("stopping: finishing requests in flight");
      // The upload's log line may land in the file a moment after net stop has returned.
      await waitUntil(
        () => / PUT \/fhir\/Binary\/in-flight 201 /.test(read(stderr)),
        "the upload's log line",
      );

      const verify = await runFhirbin(["verify", "--data", dir.arg], {
        command: platform.command,
        startMs: platform.startMs,
      });
      expect(verify.stdout).toContain(": 1 ids, 1 versions");
      expect(verify.stdout).toContain(" 0 findings");
      expect(verify.exitCode).toBe(0);
    } finally {
      await wine("net", "stop", name);
      await wine(nssm, "remove", name, "confirm");
    }
  }, 180_000);
});
