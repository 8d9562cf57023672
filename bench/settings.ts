/** Benchmark settings: environment variables over defaults, validated once, every problem reported together. */

export interface Settings {
  /** wrk threads (`-t`). */
  threads: number;
  /** wrk connections, spread over the threads (`-c`). */
  connections: number;
  /** Seconds of each measured run (`-d`). */
  duration: number;
  /** Seconds of load before each measured run, not counted, so the JIT and caches are warm. */
  warmup: number;
  /** How many times the whole set of cases runs; the report gives the median of each figure. */
  repeat: number;
  /** Case ids to run (all when empty): quick experiments and profiling. */
  only: readonly string[];
  /** Another fhirbin executable (say, the previous commit's build) measured beside this one, or null. */
  baseline: string | null;
}

/** Each variable, its default and its meaning (also printed by `bench/run.ts --help`). */
export const SETTINGS_HELP = {
  BENCH_DURATION: { default: 10, help: "seconds of each measured run" },
  BENCH_WARMUP: { default: 2, help: "seconds of unmeasured load before each run" },
  BENCH_REPEAT: { default: 1, help: "runs of the whole set; the report gives the median" },
  BENCH_CONNECTIONS: { default: 32, help: "wrk connections" },
  BENCH_THREADS: { default: 2, help: "wrk threads" },
} as const;

/** Thrown for invalid settings, listing every problem. */
export class SettingsError extends Error {
  override name = "SettingsError";
}

/** Reads the settings from `env`; throws a SettingsError naming every invalid variable. */
export function loadSettings(env: Readonly<Record<string, string | undefined>>): Settings {
  const problems: string[] = [];
  const number = (name: keyof typeof SETTINGS_HELP, min: number): number => {
    const text = env[name];
    if (text === undefined || text === "") return SETTINGS_HELP[name].default;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) problems.push(`${name} must be an integer >= ${min}`);
    return value;
  };
  const settings: Settings = {
    threads: number("BENCH_THREADS", 1),
    connections: number("BENCH_CONNECTIONS", 1),
    duration: number("BENCH_DURATION", 1),
    warmup: number("BENCH_WARMUP", 0),
    repeat: number("BENCH_REPEAT", 1),
    only: (env.BENCH_ONLY ?? "")
      .split(",")
      .map((id) => id.trim())
      .filter((id) => id !== ""),
    baseline: env.BENCH_BASELINE?.trim() || null,
  };
  if (settings.connections < settings.threads) problems.push("BENCH_CONNECTIONS must be >= BENCH_THREADS");
  if (problems.length > 0) throw new SettingsError(problems.join("\n"));
  return Object.freeze(settings);
}
