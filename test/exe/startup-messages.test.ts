/**
 * What a newcomer meets when starting the compiled server: where the app and the docs are, a warning for a
 * misspelt variable, a start-up failure that names its real cause, JSON lines throughout with
 * `--log-format json`, and a seed that skips (and names) what the settings refuse instead of stopping half
 * done.
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireExe, runFhirbin, spawnShell, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";
/** Binding a port below 1024 as another user needs root and util-linux's setpriv (both in the CI container). */
const NOBODY = 65534;
const CAN_SWITCH_USER = process.geteuid?.() === 0 && Bun.which("setpriv") !== null;

/** Writes a self-signed P-256 certificate and its key as `<name>.crt` and `<name>.key` in `dir`. */
function selfSigned(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const openssl = Bun.spawnSync(
    [
      ...["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"],
    ],
    { stderr: "pipe" },
  );
  expect(openssl.exitCode).toBe(0);
  return { cert, key };
}

describe("where things are", () => {
  test("the start prints where the demo app and the docs are, after the unchanged listening line", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    await server.stderr.waitFor(/^demo app at /m, "the demo app line");
    expect(server.stderr.lines).toContain(`demo app at ${server.origin}/, API docs at ${server.origin}/docs`);
    expect(await server.stop()).toBe(0);
    expect(server.stdout.lines).toEqual([`listening on ${server.base}`]);
  });
});

describe("environment variables", () => {
  test("a misspelt FHIRBIN_PRT is warned about, naming FHIRBIN_PORT", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([], {
      env: { FHIRBIN_PORT: "0", FHIRBIN_PRT: "9090", FHIRBIN_DATA: dir.path, FHIRBIN_TOKEN: TOKEN },
    });
    await server.stderr.waitFor(/FHIRBIN_PRT/, "the warning");
    expect(server.stderr.lines).toContain(
      "warning: FHIRBIN_PRT is not a setting of fhirbin and is ignored; did you mean FHIRBIN_PORT?",
    );
    await server.stop();
  });

  test("FHIRBIN_TOKEN (the name import uses) is the server's token, not a generated one", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path], {
      env: { FHIRBIN_TOKEN: TOKEN },
    });
    const read = await server.request("/Binary/none", {}, TOKEN);
    await read.arrayBuffer();
    expect(read.status).toBe(404);
    expect(await server.stop()).toBe(0);
    expect(server.stderr.text).not.toContain("generated a bearer token");
    expect(server.stderr.text).not.toContain("warning");
  });
});

describe("a start-up failure names its cause", () => {
  test("a TLS certificate and key that do not match are named as such", async () => {
    using dir = tempDir();
    const a = selfSigned(dir.path, "a");
    const b = selfSigned(dir.path, "b");
    const data = join(dir.path, "data");
    const args = ["--port", "0", "--data", data, "--token", TOKEN, "--tls-cert", a.cert, "--tls-key", b.key];
    const result = await runFhirbin(args);
    expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 1, stdout: "" });
    expect(result.stderr).toContain("the --tls-key is not the private key of the --tls-cert certificate");
    expect(result.stderr).not.toContain("is the address wrong");
  });

  test("a certificate file that cannot be read is named with the reason", async () => {
    using dir = tempDir();
    const { key } = selfSigned(dir.path, "a");
    const args = ["--port", "0", "--data", dir.path, "--tls-cert", dir.path, "--tls-key", key];
    const result = await runFhirbin(args);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(
      `--tls-cert: cannot read ${dir.path} (it is a folder, not a file, EISDIR)`,
    );
  });

  test("an address that is not this machine's is named as such", async () => {
    using dir = tempDir();
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    const result = await runFhirbin([
      "--host",
      "192.0.2.1",
      "--port",
      "0",
      "--data",
      dir.path,
      "--token",
      TOKEN,
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine",
    );
  });

  test.skipIf(!CAN_SWITCH_USER)(
    "a port below 1024 without the permission to bind it is named as such",
    async () => {
      using dir = tempDir();
      // The data directory is nobody's, so that the store opens and the failure is the port's.
      const data = join(dir.path, "data");
      chmodSync(dir.path, 0o755);
      mkdirSync(data);
      chownSync(data, NOBODY, NOBODY);
      await using child = spawnShell(
        `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${requireExe()} --port 81 --data ${data} --token ${TOKEN}`,
      );
      expect(await child.exited()).toBe(1);
      expect(child.stderr.text).toContain(
        "cannot listen on 127.0.0.1:81: permission denied: a port below 1024",
      );
    },
  );
});

test("--log-format json writes every line as one JSON object, the listening line too", async () => {
  using dir = tempDir();
  await using server = await startFhirbin([
    ...["--port", "0", "--data", dir.path, "--log-format", "json", "--seed", join(ROOT, "data/samples")],
  ]);
  const read = await server.request("/Binary/referral-letter");
  await read.arrayBuffer();
  // An unauthenticated read: the request line, and the generated token's lines.
  await server.stderr.waitFor(/"status":401/, "the request line");
  expect(await server.stop()).toBe(0);
  const lines = [...server.stdout.lines, ...server.stderr.lines];
  expect(lines.length).toBeGreaterThan(4);
  const notJson = lines.filter((line) => {
    try {
      return typeof JSON.parse(line) !== "object";
    } catch {
      return true;
    }
  });
  expect(notJson).toEqual([]);
  expect(JSON.parse(server.stdout.lines[0] as string).msg).toBe(`listening on ${server.base}`);
});

test("--log-format json reports an invalid configuration and the warnings before it as JSON lines", async () => {
  const { exitCode, stdout, stderr } = await runFhirbin(["--log-format", "json", "--port", "99999"], {
    env: { FHIRBIN_PRT: "8080" },
  });
  expect(exitCode).toBe(2);
  expect(stdout).toBe("");
  const messages = stderr
    .trim()
    .split("\n")
    .map((line) => (JSON.parse(line) as { msg: string }).msg);
  expect(messages).toEqual([
    expect.stringContaining("FHIRBIN_PRT"),
    "fhirbin: invalid configuration:",
    expect.stringContaining("--port"),
  ]);
});

describe("--seed", () => {
  test("files larger than --max-size are skipped and named; the others are seeded", async () => {
    using dir = tempDir();
    const data = join(dir.path, "data");
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      data,
      "--token",
      TOKEN,
      "--max-size",
      "10KB",
      "--seed",
      join(ROOT, "data/samples"),
    ]);
    await server.stderr.waitFor(/^seeded /m, "the seed line");
    expect(server.stderr.lines.filter((line) => line.startsWith("seed"))).toEqual([
      `seed: skipped ${join(ROOT, "data/samples/ecg-trace.jpeg")}: 62427 bytes, larger than --max-size (10000 bytes)`,
      `seed: skipped ${join(ROOT, "data/samples/wound-photo.png")}: 28064 bytes, larger than --max-size (10000 bytes)`,
      "seeded 3 sample documents: consultation-note, discharge-summary, referral-letter",
    ]);
    await server.stop();
  });

  test("--deny-types is applied to the seed too", async () => {
    using dir = tempDir();
    const samples = join(dir.path, "samples");
    mkdirSync(samples);
    for (const name of readdirSync(join(ROOT, "data/samples")))
      copyFileSync(join(ROOT, "data/samples", name), join(samples, name));
    const args = ["--port", "0", "--data", join(dir.path, "data"), "--token", TOKEN, "--seed", samples];
    await using server = await startFhirbin([...args, "--deny-types", "application/pdf"]);
    await server.stderr.waitFor(/^seeded /m, "the seed line");
    expect(server.stderr.lines).toContain(
      `seed: skipped ${join(samples, "referral-letter.pdf")}: application/pdf is refused by --deny-types`,
    );
    const pdf = await server.request("/Binary/referral-letter", {}, TOKEN);
    await pdf.arrayBuffer();
    expect(pdf.status).toBe(404);
    await server.stop();
  });
});
