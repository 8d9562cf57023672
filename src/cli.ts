/** The command line: subcommands, help and the serve life cycle. Returns exit statuses; never exits. */
import pkg from "../package.json" with { type: "json" };
import { createApp } from "./app.ts";
import { loadOrCreateToken } from "./auth-token.ts";
import { type Config, ConfigError, loadConfig, SERVE_OPTIONS } from "./config.ts";
import { seedStore } from "./seed.ts";
import { createStore } from "./store/index.ts";
import { StoreOpenError } from "./store/types.ts";

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Exit statuses: 0 ok, 1 runtime failure, 2 bad usage or configuration. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

function helpText(): string {
  const width = Math.max(...Object.entries(SERVE_OPTIONS).map(([name, o]) => name.length + o.value.length));
  const options = Object.entries(SERVE_OPTIONS).map(
    ([name, option]) => `  --${`${name} ${option.value}`.padEnd(width + 2)} ${option.help} [${option.env}]`,
  );
  return [
    `fhirbin ${pkg.version}: a FHIR Binary server with a crash-safe filesystem store`,
    "",
    "Usage:",
    "  fhirbin [serve] [options]   serve the FHIR Binary API (the default)",
    "  fhirbin --help | --version",
    "",
    "Options of serve (flags win over environment variables, which win over defaults):",
    ...options,
  ].join("\n");
}

/** Runs the command line; resolves with the exit status once the command (or the server) is done. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io,
  signals: { once(signal: "SIGINT" | "SIGTERM", listener: () => void): unknown } = process,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--help" || first === "-h" || first === "help") {
    io.out(helpText());
    return EXIT.ok;
  }
  if (first === "--version" || first === "-v") {
    io.out(pkg.version);
    return EXIT.ok;
  }
  if (first !== undefined && !first.startsWith("-") && first !== "serve") {
    io.err(`fhirbin: unknown command ${JSON.stringify(first)}; see fhirbin --help`);
    return EXIT.usage;
  }
  const args = first === "serve" ? rest : argv;
  if (args.includes("--help") || args.includes("-h")) {
    io.out(helpText());
    return EXIT.ok;
  }

  let config: Config;
  try {
    config = loadConfig(args, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.err("fhirbin: invalid configuration:");
    for (const problem of error.problems) io.err(`  - ${problem}`);
    return EXIT.usage;
  }
  return serve(config, io, signals);
}

type Signals = NonNullable<Parameters<typeof runCli>[3]>;

async function serve(config: Config, io: Io, signals: Signals): Promise<number> {
  let store: Awaited<ReturnType<typeof createStore>>;
  try {
    store = await createStore(config.dataDir);
  } catch (error) {
    if (!(error instanceof StoreOpenError)) throw error;
    io.err(`fhirbin: ${error.message}`);
    return EXIT.failure;
  }
  // Listen for the stop signals before announcing anything: a supervisor may send one at once.
  const stopped = new Promise<void>((resolve) => {
    signals.once("SIGINT", resolve);
    signals.once("SIGTERM", resolve);
  });
  try {
    let generated: { token: string; path: string } | null = null;
    if (config.auth && config.tokens.length === 0) {
      const { token, path, created } = await loadOrCreateToken(config.dataDir);
      config = Object.freeze({ ...config, tokens: Object.freeze([token]) });
      if (created) generated = { token, path };
      else io.err(`using the bearer token kept in ${path}`);
    }
    if (config.seedDir) {
      const seeded = await seedStore(store, config.seedDir, config.maxSize).catch((error: unknown) => {
        throw new StartError(`cannot seed from ${config.seedDir}: ${(error as Error).message}`);
      });
      if (seeded.length > 0) io.err(`seeded ${seeded.length} sample documents: ${seeded.join(", ")}`);
    }
    let app: ReturnType<typeof createApp>;
    try {
      app = createApp({ config, store, log: io.err }).listen({ hostname: config.host, port: config.port });
    } catch {
      throw new StartError(
        `cannot listen on ${config.host}:${config.port}: is the port in use or the address wrong?`,
      );
    }
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    const base = `http://${host}:${app.server?.port}${config.basePath}`;
    io.out(`listening on ${base}`);
    if (generated) {
      // Printed once, on the start that generated it; later starts name the file that keeps it.
      io.err(`generated a bearer token, kept in ${generated.path} (owner-only):\n  ${generated.token}`);
      io.err(
        `try: curl -H 'Authorization: Bearer ${generated.token}' -H 'Content-Type: text/plain' --data-binary 'hello' ${base}/Binary`,
      );
    }
    if (!config.auth) {
      io.err("authentication is OFF: anyone who can reach this port can read and write documents");
    }
    await stopped;
    io.err("stopping: finishing requests in flight");
    await app.stop();
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof StartError)) throw error;
    io.err(`fhirbin: ${error.message}`);
    return EXIT.failure;
  } finally {
    await store.close();
  }
}

/** A start-up failure the user can act on: reported in one line, no stack. */
class StartError extends Error {
  override name = "StartError";
}
