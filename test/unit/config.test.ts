/**
 * Configuration (style.md habit 7): flags win over environment variables, which win over defaults; validated
 * once with every problem reported together; frozen.
 */
import { describe, expect, test } from "bun:test";
import {
  type Config,
  ConfigError,
  clientToken,
  defaultMaxInFlight,
  loadConfig,
  parseSize,
  unknownVariables,
} from "../../src/config.ts";
import { FHIR_VERSIONS } from "../../src/fhir/version.ts";

const TOKEN_A = "token-a-0123456789abcdef";
const TOKEN_B = "token-b-0123456789abcdef";
const TOKEN_C = "token-c-0123456789abcdef";

const DEFAULTS: Config = {
  host: "127.0.0.1",
  port: 8080,
  dataDir: "./data/store",
  basePath: "/fhir",
  publicUrl: null,
  fhirVersion: FHIR_VERSIONS.STU3,
  maxSize: 512 * 2 ** 20,
  tokens: [],
  scopedTokens: [],
  jwt: null,
  denyTypes: [],
  corsOrigins: [],
  tls: null,
  auth: true,
  seedDir: null,
  logFormat: "text",
  maxInFlight: defaultMaxInFlight(),
  bodyTimeoutMs: 60_000,
};

/** The problems of the ConfigError `loadConfig` throws. */
function problemsOf(argv: string[], env: Record<string, string> = {}): readonly string[] {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}

test("defaults", () => {
  expect(loadConfig([], {})).toEqual(DEFAULTS);
});

test("the result and its token list are frozen", () => {
  const config = loadConfig(["--token", TOKEN_A], {});
  expect(Object.isFrozen(config)).toBe(true);
  expect(Object.isFrozen(config.tokens)).toBe(true);
  expect(() => {
    (config as { port: number }).port = 1;
  }).toThrow(TypeError);
});

describe("flags win over the environment, which wins over defaults", () => {
  // [flag, flag value, parsed flag value, variable, variable value, parsed variable value]
  test.each([
    ["host", "0.0.0.0", { host: "0.0.0.0" }, "FHIRBIN_HOST", "::1", { host: "::1" }],
    ["port", "0", { port: 0 }, "FHIRBIN_PORT", "9090", { port: 9090 }],
    [
      "data",
      "/var/fhirbin",
      { dataDir: "/var/fhirbin" },
      "FHIRBIN_DATA",
      "/srv/data",
      { dataDir: "/srv/data" },
    ],
    ["base-path", "/", { basePath: "" }, "FHIRBIN_BASE_PATH", "/api/fhir/", { basePath: "/api/fhir" }],
    [
      "public-url",
      "https://example.org/fhir/",
      { publicUrl: "https://example.org/fhir" },
      "FHIRBIN_PUBLIC_URL",
      "http://proxy:8080/r4",
      { publicUrl: "http://proxy:8080/r4" },
    ],
    [
      "fhir-version",
      "r4",
      { fhirVersion: FHIR_VERSIONS.R4 },
      "FHIRBIN_FHIR_VERSION",
      "DSTU2",
      { fhirVersion: FHIR_VERSIONS.DSTU2 },
    ],
    ["max-size", "1KB", { maxSize: 1000 }, "FHIRBIN_MAX_SIZE", "64MiB", { maxSize: 64 * 2 ** 20 }],
    [
      "token",
      TOKEN_A,
      { tokens: [TOKEN_A] },
      "FHIRBIN_TOKENS",
      `${TOKEN_B}, ${TOKEN_C}`,
      { tokens: [TOKEN_B, TOKEN_C] },
    ],
    ["auth", "OFF", { auth: false }, "FHIRBIN_AUTH", "off", { auth: false }],
    ["seed", "data/samples", { seedDir: "data/samples" }, "FHIRBIN_SEED", "/seed", { seedDir: "/seed" }],
    [
      "log-format",
      "JSON",
      { logFormat: "json" as const },
      "FHIRBIN_LOG_FORMAT",
      "off",
      { logFormat: "off" as const },
    ],
  ])("--%s", (flag, flagValue, fromFlag, variable, variableValue, fromEnv) => {
    const env = { [variable]: variableValue };
    expect(loadConfig([], env)).toEqual({ ...DEFAULTS, ...fromEnv });
    expect(loadConfig([`--${flag}`, flagValue], env)).toEqual({ ...DEFAULTS, ...fromFlag });
    expect(loadConfig([`--${flag}=${flagValue}`], {})).toEqual({ ...DEFAULTS, ...fromFlag });
    // An empty variable counts as unset.
    expect(loadConfig([], { [variable]: "" })).toEqual(DEFAULTS);
  });

  test("auth on from the environment", () => {
    expect(loadConfig(["--auth", "on"], { FHIRBIN_AUTH: "off" })).toEqual(DEFAULTS);
  });

  test("--token is repeatable and replaces FHIRBIN_TOKENS", () => {
    expect(loadConfig(["--token", TOKEN_A, "--token", TOKEN_B], { FHIRBIN_TOKENS: TOKEN_C }).tokens).toEqual([
      TOKEN_A,
      TOKEN_B,
    ]);
  });

  test("FHIRBIN_TOKENS is a comma list; empty items are dropped", () => {
    expect(loadConfig([], { FHIRBIN_TOKENS: `,${TOKEN_A},, ${TOKEN_B} ,` }).tokens).toEqual([
      TOKEN_A,
      TOKEN_B,
    ]);
  });

  test("variables of other programs are ignored", () => {
    expect(loadConfig([], { PORT: "1", HOST: "x", FHIRBIN_UNKNOWN: "y" })).toEqual(DEFAULTS);
  });
});

describe("invalid values", () => {
  test.each([
    [["--port", "65536"], "--port"],
    [["--port", "-1"], "--port"],
    [["--port", "80a"], "--port"],
    [["--port", "123456"], "--port"],
    [["--port"], "--port"],
    [["--base-path", "fhir"], "--base-path"],
    [["--base-path", "/a b"], "--base-path"],
    [["--base-path", "/a//b"], "--base-path"],
    [["--public-url", "ftp://example.org/fhir"], "--public-url"],
    [["--public-url", "example.org/fhir"], "--public-url"],
    [["--public-url", "https://example.org/fhir?x=1"], "--public-url"],
    [["--public-url", "https://example.org/fhir#top"], "--public-url"],
    [["--fhir-version", "R5"], "--fhir-version"],
    [["--fhir-version", "4.0"], "--fhir-version"],
    [["--max-size", "lots"], "--max-size"],
    [["--max-size", "-1"], "--max-size"],
    [["--max-size", "1TB"], "--max-size"],
    [["--auth", "yes"], "--auth"],
    [["--token", "short"], "--token"],
    [["--token", "has space in the token value"], "--token"],
    [["--token", TOKEN_A, "--token", "bad"], "--token"],
    [["--verbose"], "--verbose"],
    [["serve"], "unexpected argument"],
  ])("%p", (argv, prefix) => {
    const problems = problemsOf(argv);
    expect(problems).toHaveLength(1);
    expect(problems[0]?.startsWith(prefix)).toBe(true);
  });

  test("a bad environment variable is reported under its own name", () => {
    expect(problemsOf([], { FHIRBIN_PORT: "http" })).toEqual([
      'FHIRBIN_PORT: "http" is not a port number (0-65535)',
    ]);
    expect(problemsOf([], { FHIRBIN_TOKENS: `${TOKEN_A},nope` })).toHaveLength(1);
  });

  test("every problem at once, one a line", () => {
    const argv = [
      "--port=99999",
      "--base-path=nope",
      "--public-url=ftp://x",
      "--fhir-version=R9",
      "--max-size=big",
      "--auth=maybe",
      "--token=short",
      "--colour=red",
      "extra",
    ];
    let error: unknown;
    try {
      loadConfig(argv, {});
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems).toEqual([
      "--colour: unknown option",
      'unexpected argument "extra"',
      '--port: "99999" is not a port number (0-65535)',
      '--base-path: "nope" must look like /fhir',
      '--public-url: "ftp://x" must be an http(s) URL such as https://host/fhir',
      '--fhir-version: "R9" must be STU3, R4 or DSTU2',
      '--max-size: "big" is not a size such as 64MiB',
      '--auth: "maybe" must be on or off',
      "--token: a token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + /",
    ]);
    expect(message).toBe(problems.join("\n"));
  });
});

test.each([
  ["1048576", 1_048_576],
  ["0", 0],
  ["10b", 10],
  ["1KB", 1000],
  ["1kb", 1000],
  ["64 MB", 64_000_000],
  ["2GB", 2_000_000_000],
  ["1KiB", 1024],
  ["64MiB", 64 * 2 ** 20],
  ["512mib", 512 * 2 ** 20],
  ["1GiB", 2 ** 30],
  ["1k", 1024],
  ["1M", 2 ** 20],
  ["1g", 2 ** 30],
  ["1.5MiB", 1_572_864],
  ["0.5KB", 500],
  [" 10 ", 10],
  ["", null],
  ["MiB", null],
  ["abc", null],
  ["-1", null],
  ["+1", null],
  ["1e3", null],
  ["1.", null],
  [".5MB", null],
  ["1TB", null],
  ["1 MiB B", null],
  ["0x10", null],
  ["99999999999GiB", null],
])("parseSize(%p) is %p", (text, bytes) => {
  expect(parseSize(text)).toBe(bytes);
});

describe("environment variable names", () => {
  test("a misspelt FHIRBIN_ variable is warned about with the name it was meant to be", () => {
    expect(unknownVariables({ FHIRBIN_PRT: "9090", FHIRBIN_DAT: "/srv", HOME: "/root" })).toEqual([
      "FHIRBIN_DAT is not a setting of fhirbin and is ignored; did you mean FHIRBIN_DATA?",
      "FHIRBIN_PRT is not a setting of fhirbin and is ignored; did you mean FHIRBIN_PORT?",
    ]);
  });

  test("an unknown FHIRBIN_ variable far from every name is warned about without a guess", () => {
    expect(unknownVariables({ FHIRBIN_SOMETHING_ELSE: "1" })).toEqual([
      "FHIRBIN_SOMETHING_ELSE is not a setting of fhirbin and is ignored",
    ]);
  });

  test("the variables fhirbin reads are not warned about, the older FHIRBIN_TOKENS included", () => {
    expect(unknownVariables({ FHIRBIN_TOKEN: TOKEN_A, FHIRBIN_TOKENS: TOKEN_B, FHIRBIN_PORT: "1" })).toEqual(
      [],
    );
  });

  test("FHIRBIN_TOKEN, the name the import command uses, gives serve its tokens too", () => {
    expect(loadConfig([], { FHIRBIN_TOKEN: `${TOKEN_A},${TOKEN_B}` }).tokens).toEqual([TOKEN_A, TOKEN_B]);
    // The older name still works, and the newer one wins when both are set.
    expect(loadConfig([], { FHIRBIN_TOKENS: TOKEN_C }).tokens).toEqual([TOKEN_C]);
    expect(loadConfig([], { FHIRBIN_TOKEN: TOKEN_A, FHIRBIN_TOKENS: TOKEN_C }).tokens).toEqual([TOKEN_A]);
    expect(problemsOf([], { FHIRBIN_TOKEN: "short" })).toEqual([
      "FHIRBIN_TOKEN: a token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + /",
    ]);
  });

  test("import and export send FHIRBIN_TOKEN, or the first token of the server's FHIRBIN_TOKENS", () => {
    expect(clientToken({ FHIRBIN_TOKEN: TOKEN_A })).toBe(TOKEN_A);
    expect(clientToken({ FHIRBIN_TOKENS: `${TOKEN_B},${TOKEN_C}` })).toBe(TOKEN_B);
    expect(clientToken({})).toBeNull();
  });
});
