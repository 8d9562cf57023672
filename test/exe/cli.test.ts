/**
 * The command line of the compiled executable: help, version, unknown commands, invalid configuration
 * (every problem reported at once) and data directories that cannot be used.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { SERVE_OPTIONS } from "../../src/config.ts";
import { runFhirbin, tempDir } from "./spawn.ts";

/** The flags of `fhirbin serve` and their environment variables, as documented in the README. */
const DOCUMENTED_OPTIONS = {
  host: "FHIRBIN_HOST",
  port: "FHIRBIN_PORT",
  data: "FHIRBIN_DATA",
  "base-path": "FHIRBIN_BASE_PATH",
  "public-url": "FHIRBIN_PUBLIC_URL",
  "fhir-version": "FHIRBIN_FHIR_VERSION",
  "max-size": "FHIRBIN_MAX_SIZE",
  token: "FHIRBIN_TOKEN",
  "token-file": "FHIRBIN_TOKEN_FILE",
  "jwt-secret": "FHIRBIN_JWT_SECRET",
  "jwt-public-key": "FHIRBIN_JWT_PUBLIC_KEY",
  jwks: "FHIRBIN_JWKS",
  "jwt-issuer": "FHIRBIN_JWT_ISSUER",
  "jwt-audience": "FHIRBIN_JWT_AUDIENCE",
  "deny-types": "FHIRBIN_DENY_TYPES",
  "cors-origin": "FHIRBIN_CORS_ORIGINS",
  "tls-cert": "FHIRBIN_TLS_CERT",
  "tls-key": "FHIRBIN_TLS_KEY",
  auth: "FHIRBIN_AUTH",
  seed: "FHIRBIN_SEED",
  "log-format": "FHIRBIN_LOG_FORMAT",
  "max-in-flight": "FHIRBIN_MAX_IN_FLIGHT",
  "body-timeout": "FHIRBIN_BODY_TIMEOUT",
};

describe("help and version", () => {
  test.each(["--help", "-h", "help", "serve --help"])(
    "fhirbin %s prints the help and exits 0",
    async (command) => {
      const { exitCode, stdout, stderr } = await runFhirbin(command.split(" "));
      expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
      expect(stdout).toStartWith(`fhirbin ${pkg.version}: `);
      expect(stdout).toContain("Usage:");
      const lines = stdout.split("\n");
      for (const [flag, env] of Object.entries(DOCUMENTED_OPTIONS)) {
        // One line per option naming the flag and its environment variable.
        expect(
          lines.filter((line) => line.trimStart().startsWith(`--${flag} `) && line.endsWith(`[${env}]`)),
        ).toHaveLength(1);
      }
    },
  );

  test("the help covers every option the configuration knows", () => {
    // Keeps the table above honest: a new serve option must be documented (and so tested) here too.
    const known: Record<string, string> = Object.fromEntries(
      Object.entries(SERVE_OPTIONS).map(([name, option]) => [name, option.env]),
    );
    expect(known).toEqual(DOCUMENTED_OPTIONS);
  });

  test.each(["--version", "-v"])("fhirbin %s prints the package.json version and exits 0", async (flag) => {
    expect(await runFhirbin([flag])).toEqual({ exitCode: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("an unknown command exits 2 and says so on stderr", async () => {
    const { exitCode, stdout, stderr } = await runFhirbin(["frobnicate"]);
    expect({ exitCode, stdout }).toEqual({ exitCode: 2, stdout: "" });
    expect(stderr).toContain('unknown command "frobnicate"');
    expect(stderr).toContain("--help");
  });
});

describe("invalid configuration", () => {
  /** The problem lines of `fhirbin: invalid configuration:`. */
  function problemsOf(stderr: string): string[] {
    const [heading, ...rest] = stderr.trimEnd().split("\n");
    expect(heading).toBe("fhirbin: invalid configuration:");
    for (const line of rest) expect(line).toStartWith("  - ");
    return rest.map((line) => line.slice(4));
  }

  test("every bad flag is reported, one line each, and the exit status is 2", async () => {
    using dir = tempDir();
    const { exitCode, stdout, stderr } = await runFhirbin(
      ["--port", "x", "--fhir-version", "R9", "--max-size", "lots", "--bogus", "--data", dir.path],
      { cwd: dir.path },
    );
    expect({ exitCode, stdout }).toEqual({ exitCode: 2, stdout: "" });
    const problems = problemsOf(stderr);
    expect(problems.toSorted()).toEqual([
      expect.stringMatching(/^--bogus: unknown option/),
      expect.stringMatching(/^--fhir-version: "R9" /),
      expect.stringMatching(/^--max-size: "lots" /),
      expect.stringMatching(/^--port: "x" /),
    ]);
  });

  test("bad environment variables are reported together with bad flags", async () => {
    using dir = tempDir();
    const { exitCode, stdout, stderr } = await runFhirbin(
      ["--base-path", "no-slash", "stray", "--data", dir.path],
      {
        cwd: dir.path,
        env: { FHIRBIN_AUTH: "maybe", FHIRBIN_TOKENS: "short", FHIRBIN_PUBLIC_URL: "ftp://example.org/fhir" },
      },
    );
    expect({ exitCode, stdout }).toEqual({ exitCode: 2, stdout: "" });
    expect(problemsOf(stderr).toSorted()).toEqual([
      expect.stringMatching(/^--base-path: "no-slash" /),
      expect.stringMatching(/^FHIRBIN_AUTH: "maybe" /),
      expect.stringMatching(/^FHIRBIN_PUBLIC_URL: "ftp:\/\/example.org\/fhir" /),
      expect.stringMatching(/^FHIRBIN_TOKENS: .*16 characters/),
      'unexpected argument "stray"',
    ]);
  });

  test("a flag without its value is reported", async () => {
    using dir = tempDir();
    const { exitCode, stderr } = await runFhirbin(["--data", dir.path, "--port"], { cwd: dir.path });
    expect(exitCode).toBe(2);
    expect(problemsOf(stderr)).toEqual(["--port: needs a value"]);
  });
});

describe("a data directory that cannot be used", () => {
  test("one that cannot be created: exit 1 and a message naming it", async () => {
    const { exitCode, stdout, stderr } = await runFhirbin([
      "--port",
      "0",
      "--data",
      "/proc/fhirbin-x",
      "--auth",
      "off",
    ]);
    expect({ exitCode, stdout }).toEqual({ exitCode: 1, stdout: "" });
    expect(stderr).toStartWith("fhirbin: cannot create the data directory /proc/fhirbin-x: ");
    expect(stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  test("one under a regular file: exit 1 and a message naming it", async () => {
    using dir = tempDir();
    const file = join(dir.path, "a-file");
    writeFileSync(file, "not a directory\n");
    const data = join(file, "store");
    const { exitCode, stdout, stderr } = await runFhirbin(["--port", "0", "--data", data, "--auth", "off"]);
    expect({ exitCode, stdout }).toEqual({ exitCode: 1, stdout: "" });
    expect(stderr).toStartWith(`fhirbin: cannot create the data directory ${data}: `);
    expect(stderr).not.toContain("unexpected failure");
  });
});
