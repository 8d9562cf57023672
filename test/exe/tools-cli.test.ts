/**
 * The subcommands as a newcomer meets them: `--help` everywhere, within 80 columns; import and export that
 * check the server and the token once and say what is wrong; hidden and system files left out of an import;
 * an export piped into `head` that ends quietly.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { requireExe, runFhirbin, spawnShell, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";

describe("--help", () => {
  test.each([
    "--help",
    "serve --help",
    "verify --help",
    "reindex --help",
    "import --help",
    "export --help",
    "audit --help",
    "purge --help",
  ])("fhirbin %s explains its options within 80 columns", async (command) => {
    const { exitCode, stdout, stderr } = await runFhirbin(command.split(" "));
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(stdout).toContain("--");
    expect(stdout.split("\n").filter((line) => line.length > 80)).toEqual([]);
  });

  test("import --help and export --help name their options instead of a parser error", async () => {
    const imported = await runFhirbin(["import", "--help"]);
    for (const flag of ["--data", "--url", "--token", "--id-from-filename", "--force", "--include-hidden"])
      expect(imported.stdout).toContain(flag);
    const exported = await runFhirbin(["export", "--help"]);
    for (const flag of ["--version", "--output", "--all", "--data", "--url", "--token"])
      expect(exported.stdout).toContain(flag);
  });
});

/** A loopback port nobody listens on (one that was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** A folder of `count` small text files. */
function textFiles(dir: string, count: number): string {
  const folder = join(dir, "files");
  mkdirSync(folder);
  for (let i = 0; i < count; i++) writeFileSync(join(folder, `note-${i}.txt`), `note ${i}`);
  return folder;
}

describe("import and export check the server and the token once", () => {
  test("import into a stopped server stops with one message instead of failing every file", async () => {
    using dir = tempDir();
    const folder = textFiles(dir.path, 3);
    const url = `http://127.0.0.1:${await closedPort()}/fhir`;
    const result = await runFhirbin(["import", folder, "--url", url, "--token", TOKEN]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `fhirbin import: cannot reach ${url}: connection refused; is fhirbin running there?\n`,
    );
  });

  test("import without a token stops with one message naming --token and FHIRBIN_TOKEN", async () => {
    using dir = tempDir();
    const folder = textFiles(dir.path, 3);
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      join(dir.path, "data"),
      "--token",
      TOKEN,
    ]);
    const result = await runFhirbin(["import", folder, "--url", server.base]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      "fhirbin import: the server asks for a bearer token: give --token TOKEN or set FHIRBIN_TOKEN\n",
    );
    const withToken = await runFhirbin(["import", folder, "--url", server.base], {
      env: { FHIRBIN_TOKEN: TOKEN },
    });
    expect(withToken.exitCode).toBe(0);
    expect(withToken.stderr).toContain("imported 3,");
  });

  test("export via --url without a token says a token is needed, not just HTTP 401", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      join(dir.path, "data"),
      "--token",
      TOKEN,
    ]);
    const result = await runFhirbin(["export", "some-id", "--url", server.base]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      "fhirbin export: the server asks for a bearer token: give --token TOKEN or set FHIRBIN_TOKEN\n",
    );
  });
});

test("import leaves out hidden and system files (.DS_Store, Thumbs.db, desktop.ini) unless --include-hidden", async () => {
  using dir = tempDir();
  const folder = textFiles(dir.path, 1);
  mkdirSync(join(folder, ".git"));
  for (const name of [".DS_Store", "Thumbs.db", "desktop.ini", ".git/config"])
    writeFileSync(join(folder, name), `system file ${name}`);
  const first = await runFhirbin(["import", folder, "--data", join(dir.path, "a")]);
  expect(first.exitCode).toBe(0);
  expect(first.stderr).toContain("imported 1, ");
  expect(first.stderr).toContain("left out 4 hidden or system files (--include-hidden imports them)");
  const all = await runFhirbin(["import", folder, "--data", join(dir.path, "b"), "--include-hidden"]);
  expect(all.exitCode).toBe(0);
  expect(all.stderr).toContain("imported 5, ");
  expect(all.stderr).not.toContain("left out");
});

test("export piped into head -c 10 ends quietly on the closed pipe", async () => {
  using dir = tempDir();
  const data = join(dir.path, "data");
  // Larger than a pipe's buffer, so that head closes it while export is still writing.
  writeFileSync(join(dir.path, "big.bin"), new Uint8Array(4 * 2 ** 20).fill(7));
  const imported = await runFhirbin([
    "import",
    join(dir.path, "big.bin"),
    "--data",
    data,
    "--id-from-filename",
  ]);
  expect(imported.exitCode).toBe(0);
  const status = join(dir.path, "status");
  const stderr = join(dir.path, "stderr");
  await using pipe = spawnShell(
    `{ ${requireExe()} export big --data ${data} 2>${stderr}; echo $? >${status}; } | head -c 10 | wc -c`,
  );
  expect(await pipe.exited()).toBe(0);
  expect(pipe.stdout.text.trim()).toBe("10");
  expect(readFileSync(stderr, "utf8")).toBe("");
  expect(["0", "141"]).toContain(readFileSync(status, "utf8").trim());
});
