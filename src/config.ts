/**
 * Configuration is data: flags win over environment variables, which win over defaults. Validated once,
 * every problem reported together, then frozen.
 */
import { parseArgs } from "node:util";
import { FHIR_VERSIONS, type FhirVersion, type FhirVersionName } from "./fhir/version.ts";

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** Path of the FHIR base on this server: `/fhir`, or `` for the root. */
  basePath: string;
  /** The FHIR base clients see behind a proxy (used in Location headers), or null to use the request's. */
  publicUrl: string | null;
  fhirVersion: FhirVersion;
  /** Largest content accepted, in bytes. */
  maxSize: number;
  tokens: readonly string[];
  auth: boolean;
  /** Folder of sample documents imported on start when their ids are new (the demo). */
  seedDir: string | null;
}

/** Invalid configuration: every problem found, one per line. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(problems.join("\n"));
  }
}

/** The flags of `fhirbin serve`, their environment variables and help text (also used by `--help`). */
export const SERVE_OPTIONS = {
  host: {
    type: "string",
    env: "FHIRBIN_HOST",
    value: "ADDR",
    help: "address to listen on (default 127.0.0.1)",
  },
  port: { type: "string", env: "FHIRBIN_PORT", value: "N", help: "port, 0 picks a free one (default 8080)" },
  data: { type: "string", env: "FHIRBIN_DATA", value: "DIR", help: "data directory (default ./data/store)" },
  "base-path": {
    type: "string",
    env: "FHIRBIN_BASE_PATH",
    value: "PATH",
    help: "FHIR base path (default /fhir)",
  },
  "public-url": {
    type: "string",
    env: "FHIRBIN_PUBLIC_URL",
    value: "URL",
    help: "FHIR base URL seen by clients behind a proxy, for Location headers",
  },
  "fhir-version": {
    type: "string",
    env: "FHIRBIN_FHIR_VERSION",
    value: "V",
    help: "STU3 (default), R4 or DSTU2: element names and MIME types",
  },
  "max-size": {
    type: "string",
    env: "FHIRBIN_MAX_SIZE",
    value: "SIZE",
    help: "largest document accepted, e.g. 64MiB (default 512MiB)",
  },
  token: {
    type: "string",
    multiple: true,
    env: "FHIRBIN_TOKENS",
    value: "TOKEN",
    help: "accepted bearer token, repeatable (env: comma-separated)",
  },
  auth: {
    type: "string",
    env: "FHIRBIN_AUTH",
    value: "on|off",
    help: "off serves without tokens (default on)",
  },
  seed: {
    type: "string",
    env: "FHIRBIN_SEED",
    value: "DIR",
    help: "import the files of DIR whose ids are new",
  },
} as const;

type OptionName = keyof typeof SERVE_OPTIONS;

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
};

/** Parses `512MiB`, `64 MB`, `1048576` into bytes; null when malformed. */
export function parseSize(value: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? SIZE_UNITS[(match[2] ?? "").toLowerCase()] : undefined;
  if (!match || unit === undefined) return null;
  const bytes = Math.floor(Number(match[1]) * unit);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

// RFC 6750 section 2.1 b64token, the characters a bearer token may use.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses `--name value` / `--name=value` flags leniently so that every unknown flag, missing value and stray
 * argument is reported, not just the first.
 */
function parseFlags(
  argv: readonly string[],
  problems: string[],
): Partial<Record<OptionName, string | string[]>> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(SERVE_OPTIONS).map(([name, option]) => [
        name,
        { type: "string", multiple: "multiple" in option },
      ]),
    ),
    allowPositionals: true,
    strict: false,
  });
  const flags: Partial<Record<OptionName, string | string[]>> = {};
  for (const [name, value] of Object.entries(values)) {
    if (!(name in SERVE_OPTIONS)) problems.push(`--${name}: unknown option`);
    else if (
      typeof value === "boolean" ||
      (Array.isArray(value) && value.some((v) => typeof v === "boolean"))
    ) {
      problems.push(`--${name}: needs a value`);
    } else flags[name as OptionName] = value as string | string[];
  }
  for (const positional of positionals) problems.push(`unexpected argument ${JSON.stringify(positional)}`);
  return flags;
}

/** Builds the frozen configuration of `fhirbin serve` from its flags and the environment. */
export function loadConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const problems: string[] = [];
  const flags = parseFlags(argv, problems);
  // Problems name where the bad value came from: the flag, or the environment variable.
  const source = (name: OptionName): string =>
    flags[name] !== undefined ? `--${name}` : SERVE_OPTIONS[name].env;
  const pick = (name: OptionName): string | undefined => {
    const flag = flags[name];
    if (flag !== undefined) return Array.isArray(flag) ? flag.join(",") : flag;
    const value = env[SERVE_OPTIONS[name].env];
    return value === undefined || value === "" ? undefined : value;
  };

  const host = pick("host") ?? "127.0.0.1";
  const portText = pick("port") ?? "8080";
  const port = /^\d{1,5}$/.test(portText) && Number(portText) <= 65535 ? Number(portText) : Number.NaN;
  if (Number.isNaN(port))
    problems.push(`${source("port")}: ${JSON.stringify(portText)} is not a port number (0-65535)`);

  const basePathText = pick("base-path") ?? "/fhir";
  const basePath = basePathText.replace(/\/+$/, "");
  if (basePath !== "" && !/^(\/[A-Za-z0-9._~-]+)+$/.test(basePath)) {
    problems.push(`${source("base-path")}: ${JSON.stringify(basePathText)} must look like /fhir`);
  }

  const publicUrlText = pick("public-url");
  let publicUrl: string | null = null;
  if (publicUrlText !== undefined) {
    const url = URL.parse(publicUrlText);
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.search || url.hash) {
      problems.push(
        `${source("public-url")}: ${JSON.stringify(publicUrlText)} must be an http(s) URL such as https://host/fhir`,
      );
    } else {
      publicUrl = url.href.replace(/\/+$/, "");
    }
  }

  const versionText = (pick("fhir-version") ?? "STU3").toUpperCase();
  const fhirVersion = FHIR_VERSIONS[versionText as FhirVersionName];
  if (!fhirVersion)
    problems.push(`${source("fhir-version")}: ${JSON.stringify(versionText)} must be STU3, R4 or DSTU2`);

  const sizeText = pick("max-size") ?? "512MiB";
  const maxSize = parseSize(sizeText);
  if (maxSize === null || maxSize < 1)
    problems.push(`${source("max-size")}: ${JSON.stringify(sizeText)} is not a size such as 64MiB`);

  const authText = (pick("auth") ?? "on").toLowerCase();
  if (authText !== "on" && authText !== "off")
    problems.push(`${source("auth")}: ${JSON.stringify(authText)} must be on or off`);

  const tokens = (pick("token") ?? "")
    .split(",")
    .map((token) => token.trim())
    .filter(Boolean);
  for (const token of tokens) {
    if (token.length < 16 || !B64TOKEN.test(token)) {
      problems.push(`${source("token")}: a token must be at least 16 characters of A-Z a-z 0-9 - . _ ~ + /`);
      break;
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    host,
    port,
    dataDir: pick("data") ?? "./data/store",
    basePath,
    publicUrl,
    fhirVersion: fhirVersion as FhirVersion,
    maxSize: maxSize as number,
    tokens: Object.freeze(tokens),
    auth: authText === "on",
    seedDir: pick("seed") ?? null,
  });
}
