/** The report: medians over the runs, ratios against their targets, rendered as Markdown. */
import { type Case, PEER_NAMES, type Peer, type Ratio } from "./cases.ts";
import type { Machine } from "./machine.ts";
import type { Settings } from "./settings.ts";
import type { Measurement } from "./wrk.ts";

/** One run of the whole set: case id -> server -> what it measured. */
export type RunResults = Record<string, Partial<Record<Peer, Measurement>>>;

/** The median (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** A ratio's value in each run where both sides were measured, and their median. */
export interface RatioResult {
  ratio: Ratio;
  values: number[];
  median: number;
  /** The same ratio estimated from CPU time per request (the peer's over fhirbin's), when known. */
  byCpu: number | null;
  /** Null when the ratio has no target. */
  met: boolean | null;
}

/** Evaluates the ratios over the runs; ratios whose cases did not run are left out. */
export function evaluateRatios(ratios: readonly Ratio[], runs: readonly RunResults[]): RatioResult[] {
  return ratios.flatMap((ratio) => {
    const pairs = runs.flatMap((run) => {
      const of = run[ratio.of.case]?.[ratio.of.peer];
      const to = run[ratio.to.case]?.[ratio.to.peer];
      return of && to ? [{ of, to }] : [];
    });
    if (pairs.length === 0) return [];
    const values = pairs.map(({ of, to }) => of.requestsPerSecond / to.requestsPerSecond);
    const cpu = pairs.flatMap(({ of, to }) =>
      of.cpuUsPerRequest && to.cpuUsPerRequest ? [to.cpuUsPerRequest / of.cpuUsPerRequest] : [],
    );
    const mid = median(values);
    return [
      {
        ratio,
        values,
        median: mid,
        byCpu: cpu.length === pairs.length ? median(cpu) : null,
        met: ratio.target === null ? null : mid >= ratio.target,
      },
    ];
  });
}

const count = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
const ms = (value: number): string => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
const fixed2 = (value: number): string => value.toFixed(2);

function table(header: readonly string[], align: readonly ("l" | "r")[], rows: readonly string[][]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(" | ")} |`;
  return [line(header), line(align.map((a) => (a === "r" ? "--:" : "---"))), ...rows.map(line)].join("\n");
}

/** The table of every case and server: median req/s, p50 and p99 over the runs. */
export function measurementTable(cases: readonly Case[], runs: readonly RunResults[]): string {
  const rows = cases.flatMap((c) =>
    (Object.keys(c.loads) as Peer[]).flatMap((peer, index) => {
      const measured = runs.flatMap((run) => run[c.id]?.[peer] ?? []);
      if (measured.length === 0) return [];
      const of = (pick: (m: Measurement) => number): number => median(measured.map(pick));
      const cpu = measured.flatMap((m) => m.cpuUsPerRequest ?? []);
      return [
        [
          index === 0 ? c.title : "",
          PEER_NAMES[peer],
          count.format(of((m) => m.requestsPerSecond)),
          ms(of((m) => m.p50Ms)),
          ms(of((m) => m.p99Ms)),
          cpu.length === measured.length ? `${count.format(median(cpu))} µs` : "",
        ],
      ];
    }),
  );
  return table(["Case", "Server", "req/s", "p50", "p99", "CPU/req"], ["l", "l", "r", "r", "r", "r"], rows);
}

/** The table of ratios: median, each run's value, the target and whether it is met. */
export function ratioTable(results: readonly RatioResult[]): string {
  const rows = results.map(({ ratio, values, median: mid, byCpu, met }) => [
    ratio.label,
    `**${fixed2(mid)}**`,
    values.map(fixed2).join(", "),
    ratio.target === null ? "" : `>= ${fixed2(ratio.target)}`,
    met === null ? "" : met ? "met" : "**missed**",
    byCpu === null ? "" : fixed2(byCpu),
  ]);
  return table(
    ["fhirbin against", "median", "runs", "target", "", "by CPU/req"],
    ["l", "r", "r", "r", "l", "r"],
    rows,
  );
}

/** The 1-minute load average when the runs started and ended: other work on the machine skews the figures. */
export interface LoadAverages {
  start: number;
  end: number;
}

/** Where and how the figures were taken, in one paragraph. */
export function describeSetup(
  machine: Machine,
  settings: Settings,
  runs: number,
  date: Date,
  load: LoadAverages,
): string {
  const { versions } = machine;
  return [
    `${date.toISOString().slice(0, 10)}, ${machine.cpus} CPUs (${machine.cpuModel}),`,
    `${machine.memoryGiB} GiB of memory, ${machine.kernel}; Bun ${versions.bun}, nginx ${versions.nginx}`,
    `(one worker, sendfile on, access log off), wrk ${versions.wrk}`,
    `with -t${settings.threads} -c${settings.connections} for ${settings.duration} s after`,
    `${settings.warmup} s of warm-up, on the loopback, client and servers sharing the machine.`,
    runs > 1 ? `Each figure is the median of ${runs} runs of the whole set.` : "One run of the whole set.",
    `The 1-minute load average was ${load.start.toFixed(1)} at the start and ${load.end.toFixed(1)} at the end`,
    `(anything well above ${machine.cpus} means other work shared the CPUs).`,
  ].join(" ");
}

/** The whole results.md. */
export function renderReport(input: {
  machine: Machine;
  settings: Settings;
  cases: readonly Case[];
  ratios: readonly Ratio[];
  runs: readonly RunResults[];
  date: Date;
  load: LoadAverages;
}): string {
  const { machine, settings, cases, ratios, runs, date, load } = input;
  const results = evaluateRatios(ratios, runs);
  const judged = results.filter((r) => r.met !== null);
  const errors = cases.flatMap((c) =>
    (Object.keys(c.loads) as Peer[]).flatMap((peer) => {
      const total = runs.reduce((sum, run) => sum + (run[c.id]?.[peer]?.socketErrors ?? 0), 0);
      return total > 0 ? [`${c.title} on ${PEER_NAMES[peer]}: ${total} socket errors`] : [];
    }),
  );
  return [
    "# fhirbin benchmarks",
    "",
    "Written by `npm run bench` (bench/run.ts); see the Benchmarks section of the README.",
    "",
    describeSetup(machine, settings, runs.length, date, load),
    "",
    "## Requests per second and latency",
    "",
    measurementTable(cases, runs),
    "",
    "## fhirbin against its peers (ratio of requests per second)",
    "",
    ratioTable(results),
    "",
    `Targets met: ${judged.filter((r) => r.met).length} of ${judged.length}.`,
    "",
    "CPU/req is the server's CPU time (user + system, its children included) per request. The last column is",
    "the same ratio estimated from it (the peer's CPU/req over fhirbin's): it hardly moves when other work",
    "shares the machine, and it is what the throughput ratio tends to when a server is CPU-bound (the reads,",
    "not the durable creates, which mostly wait for the disk).",
    ...(errors.length > 0
      ? ["", "Socket errors (connections reset or timed out):", ...errors.map((e) => `- ${e}`)]
      : []),
    "",
  ].join("\n");
}
