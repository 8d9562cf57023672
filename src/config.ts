/**
 * Configuration is data: flags win over environment variables, which win over defaults. Validated once,
 * every problem reported together, then frozen.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { FHIR_VERSIONS, type FhirVersion, type FhirVersionName } from "./fhir/version.ts";
import { isOriginSetting } from "./security/cors.ts";
import { algorithmOfPem, type JwtSettings, MIN_SECRET_BYTES, parseJwks } from "./security/jwt.ts";
import { parseTokenFile, type ScopedToken } from "./security/token-file.ts";

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
  /** Static tokens with SMART scopes, from `--token-file`. */
  scopedTokens: readonly ScopedToken[];
  /** Media types refused on upload (lower-case `type/subtype`), e.g. executables. */
  denyTypes: readonly string[];
  /** Origins allowed by CORS (`*` for any); empty: no CORS headers. */
  corsOrigins: readonly string[];
  /** PEM certificate chain and private key to serve HTTPS, or null for plain HTTP. */
  tls: Readonly<{ cert: string; key: string }> | null;
  /** JWT bearer tokens, or null when no JWT key is configured. */
  jwt: Readonly<JwtSettings> | null;
  auth: boolean;
  /** Folder of sample documents imported on start when their ids are new (the demo). */
  seedDir: string | null;
  /** The request log on stderr: one line per request, as text or JSON, or none. */
  logFormat: LogFormat;
  /** Requests served at once; more are answered 503 at the door so they cannot starve the store of files. */
  maxInFlight: number;
  /** How long a request body may send nothing before the request is dropped, in milliseconds. */
  bodyTimeoutMs: number;
}

/** The formats of the request log (`--log-format`). */
export type LogFormat = "text" | "json" | "off";

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
    env: "FHIRBIN_TOKEN",
    // The name serve read before import and export read FHIRBIN_TOKEN; still accepted.
    alias: "FHIRBIN_TOKENS",
    value: "TOKEN",
    help: "accepted bearer token, repeatable (env: comma-separated)",
  },
  "token-file": {
    type: "string",
    env: "FHIRBIN_TOKEN_FILE",
    value: "FILE",
    help: "static tokens with SMART scopes, one token and its scopes a line",
  },
  "jwt-secret": {
    type: "string",
    env: "FHIRBIN_JWT_SECRET",
    value: "SECRET",
    help: "accept HS256 JWTs signed with this secret (32+ bytes)",
  },
  "jwt-public-key": {
    type: "string",
    env: "FHIRBIN_JWT_PUBLIC_KEY",
    value: "FILE",
    help: "accept RS256/ES256 JWTs signed by this PEM public key",
  },
  jwks: {
    type: "string",
    env: "FHIRBIN_JWKS",
    value: "FILE",
    help: "accept RS256/ES256 JWTs signed by a key of this JWKS file",
  },
  "jwt-issuer": {
    type: "string",
    env: "FHIRBIN_JWT_ISSUER",
    value: "ISS",
    help: "required JWT iss",
  },
  "jwt-audience": {
    type: "string",
    env: "FHIRBIN_JWT_AUDIENCE",
    value: "AUD",
    help: "required JWT aud",
  },
  "deny-types": {
    type: "string",
    multiple: true,
    env: "FHIRBIN_DENY_TYPES",
    value: "TYPE",
    help: "refuse uploads of this media type (415), repeatable (env: comma-separated)",
  },
  "cors-origin": {
    type: "string",
    multiple: true,
    env: "FHIRBIN_CORS_ORIGINS",
    value: "ORIGIN",
    help: "allow browser apps from ORIGIN (or *), repeatable (env: comma-separated)",
  },
  "tls-cert": {
    type: "string",
    env: "FHIRBIN_TLS_CERT",
    value: "FILE",
    help: "serve HTTPS with this PEM certificate (chain); needs --tls-key",
  },
  "tls-key": {
    type: "string",
    env: "FHIRBIN_TLS_KEY",
    value: "FILE",
    help: "the PEM private key of --tls-cert",
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
  "log-format": {
    type: "string",
    env: "FHIRBIN_LOG_FORMAT",
    value: "text|json|off",
    help: "request log on stderr, one line per request (default text)",
  },
  "max-in-flight": {
    type: "string",
    env: "FHIRBIN_MAX_IN_FLIGHT",
    value: "N",
    help: "requests served at once, more get 503 (default: a quarter of the open-file limit, at most 1024)",
  },
  "body-timeout": {
    type: "string",
    env: "FHIRBIN_BODY_TIMEOUT",
    value: "DURATION",
    help: "drop an upload that sends nothing for this long (default 60s; 30s, 2m)",
  },
} as const;

type OptionName = keyof typeof SERVE_OPTIONS;

/** The environment variable of an option that is set (its own name first, then its older name). */
function envNameOf(name: OptionName, env: Readonly<Record<string, string | undefined>>): string {
  const option: { env: string; alias?: string } = SERVE_OPTIONS[name];
  return option.alias !== undefined && !env[option.env] && env[option.alias] ? option.alias : option.env;
}

/** Every environment variable fhirbin reads: the options of serve and their older names. */
export const KNOWN_VARIABLES: readonly string[] = Object.values(SERVE_OPTIONS).flatMap(
  (option: { env: string; alias?: string }) => (option.alias ? [option.env, option.alias] : [option.env]),
);

/** The bearer token the import and export tools send: `FHIRBIN_TOKEN`, or the first of `FHIRBIN_TOKENS`. */
export function clientToken(env: Readonly<Record<string, string | undefined>>): string | null {
  const value = env[envNameOf("token", env)];
  return (
    value
      ?.split(",")
      .map((token) => token.trim())
      .find(Boolean) ?? null
  );
}

/** Levenshtein distance: how many characters to insert, delete or replace to turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const replace = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(replace, (previous[j] as number) + 1, (row[j - 1] as number) + 1));
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/**
 * A warning for every `FHIRBIN_*` variable fhirbin does not know, with the nearest known name when it is a
 * likely misspelling: an unknown name would otherwise be ignored without a word.
 */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("FHIRBIN_") || KNOWN_VARIABLES.includes(name)) continue;
    const [nearest] = KNOWN_VARIABLES.map((known) => ({ known, distance: editDistance(name, known) })).sort(
      (a, b) => a.distance - b.distance,
    );
    const guess = nearest && nearest.distance <= 3 ? `; did you mean ${nearest.known}?` : "";
    warnings.push(`${name} is not a setting of fhirbin and is ignored${guess}`);
  }
  return warnings;
}

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

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 };

/** Parses `0s`, `90s`, `30m`, `1h`, `2d` into milliseconds; null when malformed. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  return match ? Number(match[1]) * (DURATION_UNITS[match[2] as string] as number) : null;
}

/**
 * The default of `--max-in-flight`: a quarter of the process's open-file limit, at most 1024. An upload in
 * flight holds its socket, its content's temp file and then its sidecar's, and the store needs files of its
 * own. Linux tells the limit in /proc/self/limits; elsewhere the default is 1024.
 */
export function defaultMaxInFlight(): number {
  let limits = "";
  try {
    limits = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return 1024;
  }
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  return Number.isSafeInteger(soft) && soft > 0 ? Math.max(1, Math.min(1024, Math.floor(soft / 4))) : 1024;
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
    flags[name] !== undefined ? `--${name}` : envNameOf(name, env);
  const pick = (name: OptionName): string | undefined => {
    const flag = flags[name];
    if (flag !== undefined) return Array.isArray(flag) ? flag.join(",") : flag;
    const value = env[envNameOf(name, env)];
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

  const logFormat = (pick("log-format") ?? "text").toLowerCase();
  if (logFormat !== "text" && logFormat !== "json" && logFormat !== "off")
    problems.push(`${source("log-format")}: ${JSON.stringify(logFormat)} must be text, json or off`);

  const maxInFlightText = pick("max-in-flight");
  const maxInFlight = maxInFlightText === undefined ? defaultMaxInFlight() : Number(maxInFlightText);
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1)
    problems.push(
      `${source("max-in-flight")}: ${JSON.stringify(maxInFlightText)} must be a whole number >= 1`,
    );

  const bodyTimeoutText = pick("body-timeout") ?? "60s";
  const bodyTimeoutMs = parseDuration(bodyTimeoutText);
  if (bodyTimeoutMs === null || bodyTimeoutMs < 1)
    problems.push(
      `${source("body-timeout")}: ${JSON.stringify(bodyTimeoutText)} must be a duration like 60s`,
    );

  const scopedTokens = loadTokenFile(pick("token-file"), source("token-file"), problems);
  const jwt = loadJwtSettings(pick, source, problems);

  const corsOrigins = (pick("cors-origin") ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (!isOriginSetting(origin))
      problems.push(
        `${source("cors-origin")}: ${JSON.stringify(origin)} must be * or an origin such as https://app.example.org`,
      );
  }

  const denyTypes = (pick("deny-types") ?? "")
    .split(",")
    .map((type) => type.trim().toLowerCase())
    .filter(Boolean);
  for (const type of denyTypes) {
    if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(type))
      problems.push(
        `${source("deny-types")}: ${JSON.stringify(type)} must be a media type such as application/x-msdownload`,
      );
  }

  const tlsCert = pick("tls-cert");
  const tlsKey = pick("tls-key");
  let tls: Config["tls"] = null;
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    problems.push(
      `${tlsCert === undefined ? source("tls-key") : source("tls-cert")}: --tls-cert and --tls-key go together`,
    );
  } else if (tlsCert !== undefined && tlsKey !== undefined) {
    const cert = readText(tlsCert, source("tls-cert"), problems);
    const key = readText(tlsKey, source("tls-key"), problems);
    if (cert !== null && !cert.includes("-----BEGIN CERTIFICATE-----"))
      problems.push(`${source("tls-cert")}: ${tlsCert} is not a PEM certificate`);
    if (key !== null && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
      problems.push(`${source("tls-key")}: ${tlsKey} is not a PEM private key`);
    if (cert !== null && key !== null) tls = Object.freeze({ cert, key });
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
    scopedTokens: Object.freeze(scopedTokens),
    jwt,
    denyTypes: Object.freeze(denyTypes),
    corsOrigins: Object.freeze(corsOrigins),
    tls,
    auth: authText === "on",
    seedDir: pick("seed") ?? null,
    logFormat: logFormat as LogFormat,
    maxInFlight,
    bodyTimeoutMs: bodyTimeoutMs as number,
  });
}

/** Reads `--token-file`; its problems name the line, never the token. */
function loadTokenFile(path: string | undefined, source: string, problems: string[]): ScopedToken[] {
  if (path === undefined) return [];
  const text = readText(path, source, problems);
  if (text === null) return [];
  const parsed = parseTokenFile(text);
  for (const problem of parsed.problems) problems.push(`${source} ${path}: ${problem}`);
  return parsed.tokens;
}

/** The JWT settings, or null when none of `--jwt-secret`, `--jwt-public-key`, `--jwks` is given. */
function loadJwtSettings(
  pick: (name: OptionName) => string | undefined,
  source: (name: OptionName) => string,
  problems: string[],
): Readonly<JwtSettings> | null {
  const secret = pick("jwt-secret") ?? null;
  if (secret !== null && Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    problems.push(`${source("jwt-secret")}: the secret must be at least ${MIN_SECRET_BYTES} bytes`);
  }
  const keyPath = pick("jwt-public-key");
  let publicKeyPem: string | null = null;
  if (keyPath !== undefined) {
    publicKeyPem = readText(keyPath, source("jwt-public-key"), problems);
    const alg = publicKeyPem === null ? null : algorithmOfPem(publicKeyPem);
    if (alg !== null && typeof alg !== "string") {
      problems.push(`${source("jwt-public-key")}: ${keyPath} ${alg.problem}`);
    }
  }
  const jwksPath = pick("jwks");
  let jwks: JwtSettings["jwks"] = null;
  if (jwksPath !== undefined) {
    const text = readText(jwksPath, source("jwks"), problems);
    const parsed = text === null ? null : parseJwks(text);
    if (parsed !== null && "problem" in parsed)
      problems.push(`${source("jwks")}: ${jwksPath} ${parsed.problem}`);
    else jwks = parsed;
  }
  const issuer = pick("jwt-issuer") ?? null;
  const audience = pick("jwt-audience") ?? null;
  if (secret === null && keyPath === undefined && jwksPath === undefined) {
    if (issuer !== null || audience !== null) {
      problems.push(
        `${source(issuer !== null ? "jwt-issuer" : "jwt-audience")}: needs --jwt-secret, --jwt-public-key or --jwks`,
      );
    }
    return null;
  }
  return Object.freeze({ secret, publicKeyPem, jwks, issuer, audience });
}

/** Why a file could not be read, in words (the code in brackets for searching). */
const READ_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: "there is no such file",
  EACCES: "permission denied: this user may not read it",
  EPERM: "permission denied: this user may not read it",
  EISDIR: "it is a folder, not a file",
};

function readText(path: string, source: string, problems: string[]): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code ?? "error";
    const why = READ_FAILURES[code];
    problems.push(`${source}: cannot read ${path} (${why ? `${why}, ${code}` : code})`);
    return null;
  }
}
