/**
 * Every example of the README's curl section, run as written (TOKEN and BASE set as the README sets them)
 * against a fresh compiled server started as `npm start` starts it: each command must succeed as a whole
 * (every program of a pipeline included) and be answered as the README promises.
 */
import { expect, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, spawnShell, startFhirbin, tempDir } from "./spawn.ts";

const README = await Bun.file(join(ROOT, "README.md")).text();

/** The shell block of the section "Using it with curl", its continued lines joined. */
function curlSection(): string[] {
  const section = README.slice(README.indexOf("## Using it with curl"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  return block.replace(/\\\n\s*/g, "").split("\n");
}

const LINES = curlSection();
/** The assignments (TOKEN, BASE, AUTH) before the first example. */
const SETUP = LINES.filter((line) => /^[A-Z]+=/.test(line));
/** Each example: the command without its trailing comment, and the status the comment promises, if any. */
const EXAMPLES = LINES.filter((line) => /\bcurl\b/.test(line) && !line.startsWith("#")).map((line) => {
  const comment = /\s+#\s*(.*)$/.exec(line);
  return {
    command: comment ? line.slice(0, comment.index) : line,
    promised: comment && /^\d{3}\b/.test(comment[1] ?? "") ? Number(comment[1]?.slice(0, 3)) : null,
  };
});

test("the README's curl section has its setup and examples", () => {
  expect(SETUP.map((line) => line.split("=")[0])).toEqual(["TOKEN", "BASE", "AUTH"]);
  expect(EXAMPLES.length).toBeGreaterThan(15);
});

test("every curl example of the README runs as written and is answered as promised", async () => {
  using dir = tempDir();
  // The working directory of `npm start`: data/samples beside the default data directory ./data/store.
  mkdirSync(join(dir.path, "data"));
  symlinkSync(join(ROOT, "data/samples"), join(dir.path, "data/samples"));
  await using server = await startFhirbin(["serve", "--port", "0", "--seed", "data/samples"], {
    cwd: dir.path,
  });
  // The README's BASE names the default port; this server listens on a free one.
  const setup = SETUP.map((line) => (line.startsWith("BASE=") ? `BASE=${server.base}` : line));
  const answers: Array<{ command: string; status: number | null; exitCode: number | null }> = [];
  for (const { command } of EXAMPLES) {
    const script = join(dir.path, "example.sh");
    writeFileSync(script, [...setup, `${command} -s -w '\\nHTTP_STATUS=%{http_code}\\n'`, ""].join("\n"));
    await using shell = spawnShell(`bash -o pipefail ${script}`, { cwd: dir.path });
    const exitCode = await shell.exited();
    const status = /HTTP_STATUS=(\d{3})\s*$/.exec(shell.stdout.text)?.[1];
    answers.push({ command, status: status === undefined ? null : Number(status), exitCode });
  }
  const expected = EXAMPLES.map(({ command, promised }, index) => {
    const answer = answers[index];
    const status = answer?.status ?? null;
    // 2xx or 3xx unless the README names the status.
    const asPromised =
      promised !== null ? status === promised : status !== null && status >= 200 && status < 400;
    return {
      command,
      status: asPromised ? status : `not as promised (${promised ?? "2xx/3xx"})`,
      exitCode: 0,
    };
  });
  expect(answers).toEqual(expected as typeof answers);
  expect(answers.find((answer) => answer.command.includes("If-None-Match"))?.status).toBe(304);
});
