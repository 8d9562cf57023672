/**
 * `npm run bench:search`: search at scale (issue 6). For each size (100,000 and 1,000,000 by default, or the
 * sizes given as arguments) it generates a store directly on disk (sidecars, blobs and the search index, as
 * the server would have written them: small contents, a realistic mix of content types, patients and
 * dates), starts the compiled executable on it, and prints the time to the first answered request, search
 * latencies (p50/p99) and the index size. Not a test: nothing is asserted. The stores are deleted afterwards.
 *
 *   npm run build && npm run bench:search            # 100k and 1M
 *   npm run bench:search -- 20000                    # a quick run
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { INDEX_FILE, SearchIndex } from "../src/search/search-index.ts";
import { layout } from "../src/store/fs-layout.ts";
import type { VersionRecord } from "../src/store/types.ts";

const EXE = resolve(import.meta.dir, "../dist/fhirbin");
const TOKEN = "bench-search-token-0123456789";
const SIZES = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const RUNS = 200;

/** The mix of a GP practice's documents (weights in percent). */
const TYPES: readonly [string, number][] = [
  ["application/pdf", 40],
  ["image/jpeg", 14],
  ["text/plain; charset=utf-8", 12],
  ["image/png", 8],
  ["text/html; charset=utf-8", 8],
  ["application/xml", 5],
  ["image/tiff", 5],
  ["application/dicom", 3],
  ["application/msword", 3],
  ["text/rtf", 2],
];
const START = Date.parse("2019-01-01T00:00:00Z");
const END = Date.parse("2026-01-01T00:00:00Z");

/** A small deterministic PRNG (mulberry32), so that runs are comparable. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickType(r: number): string {
  let acc = 0;
  for (const [type, weight] of TYPES) {
    acc += weight / 100;
    if (r < acc) return type;
  }
  return TYPES[0]?.[0] ?? "application/pdf";
}

/** Writes `count` Binaries into a new data directory; returns it with what was generated. */
function generate(count: number): { dir: string; versions: number; seconds: number } {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), "fhirbin-bench-search-"));
  const paths = layout(dir);
  for (const sub of [paths.tmp, paths.blobs, paths.binary]) mkdirSync(sub, { recursive: true });
  const random = prng(count);
  // Small contents, 2,000 distinct ones shared out (identical content is stored once, as the server does).
  const blobs: { sha256: string; size: number }[] = [];
  for (let i = 0; i < 2000; i++) {
    const bytes = new TextEncoder().encode(`document ${i} ${"x".repeat(i % 500)}`);
    const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    mkdirSync(paths.blobDir(sha256), { recursive: true });
    writeFileSync(paths.blob(sha256), bytes);
    blobs.push({ sha256, size: bytes.length });
  }
  for (let fan = 0; fan < 256; fan++) mkdirSync(join(paths.binary, fan.toString(16).padStart(2, "0")));
  writeFileSync(paths.flat, ""); // the current layout: nothing to convert when fhirbin opens it

  // Documents arrive at a growing rate (a practice digitises more each year): t = START + span * sqrt(u).
  const records: VersionRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = crypto.randomUUID();
    const created = START + (END - START) * Math.sqrt(random());
    const blob = blobs[Math.floor(random() * blobs.length)] ?? { sha256: "", size: 0 };
    const patient = random() < 0.85 ? `Patient/${9000000000 + Math.floor(random() * 20000)}` : null;
    const first: VersionRecord = {
      id,
      versionId: 1,
      lastUpdated: new Date(created).toISOString(),
      deleted: false,
      contentType: pickType(random()),
      securityContext: patient,
      size: blob.size,
      sha256: blob.sha256,
    };
    records.push(first);
    const roll = random();
    const later = new Date(Math.min(END, created + random() * 30 * 86_400_000)).toISOString();
    // 4% were corrected once, 1% deleted.
    if (roll < 0.04) records.push({ ...first, versionId: 2, lastUpdated: later });
    else if (roll < 0.05)
      records.push({
        id,
        versionId: 2,
        lastUpdated: later,
        deleted: true,
        securityContext: first.securityContext,
      });
  }
  records.sort((a, b) => Date.parse(a.lastUpdated) - Date.parse(b.lastUpdated));

  const index = SearchIndex.open(join(dir, INDEX_FILE));
  for (let i = 0; i < records.length; i += 20_000) {
    const batch = records.slice(i, i + 20_000);
    for (const record of batch) {
      writeFileSync(paths.sidecar(record.id, record.versionId), `${JSON.stringify(record, null, 2)}\n`);
    }
    index.record(batch);
    if (i % 200_000 === 0) process.stderr.write(`\r  generating: ${i}/${records.length} versions`);
  }
  index.analyse();
  index.setMeta("state", "clean");
  index.setMeta("full-scan", "0");
  index.close();
  process.stderr.write("\r\x1b[K");
  return { dir, versions: records.length, seconds: (performance.now() - started) / 1000 };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function stats(samples: number[]): { p50: number; p99: number } {
  const sorted = samples.toSorted((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

const auth = { authorization: `Bearer ${TOKEN}` };

async function timed(
  url: string,
): Promise<{ ms: number; body: { total?: number; link?: { relation: string; url: string }[] } }> {
  const started = performance.now();
  const res = await fetch(url, { headers: auth });
  const body = (await res.json()) as { total?: number; link?: { relation: string; url: string }[] };
  const ms = performance.now() - started;
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${JSON.stringify(body)}`);
  return { ms, body };
}

function duKiB(path: string): number {
  const out = Bun.spawnSync(["du", "-sk", path]).stdout.toString();
  return Number(out.split(/\s/)[0]);
}

interface Row {
  size: number;
  versions: number;
  generateS: number;
  storeMiB: number;
  indexMiB: number;
  listeningMs: number;
  firstRequestMs: number;
  pdf: { p50: number; p99: number };
  pdfTotal: number;
  lastUpdated: { p50: number; p99: number };
  lastUpdatedRecent: { p50: number; p99: number };
  paging: { p50: number; p99: number };
  tenPages: { p50: number; p99: number };
}

async function measure(size: number): Promise<Row> {
  process.stderr.write(`${size.toLocaleString("en")} documents:\n`);
  const generated = generate(size);
  try {
    const indexBytes = ["", "-wal"].reduce((sum, suffix) => {
      try {
        return sum + statSync(join(generated.dir, INDEX_FILE) + suffix).size;
      } catch {
        return sum;
      }
    }, 0);
    // The files stay in the page cache, as for a server restarted on a busy machine.
    const spawned = performance.now();
    const proc = Bun.spawn([EXE, "--port", "0", "--data", generated.dir, "--token", TOKEN], {
      stdout: "pipe",
      stderr: "ignore",
    });
    try {
      const reader = proc.stdout.getReader();
      let text = "";
      let match: RegExpExecArray | null = null;
      while (!match) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the server exited: ${text}`);
        text += new TextDecoder().decode(value);
        match = /listening on (\S+)/.exec(text);
      }
      const listeningMs = performance.now() - spawned;
      const base = match[1] as string;
      const first = await timed(`${base}/Binary?contenttype=application/pdf`);
      const firstRequestMs = performance.now() - spawned;
      const pdfTotal = first.body.total ?? 0;

      // Warm-up, then the measured runs.
      for (let i = 0; i < 20; i++) await timed(`${base}/Binary?contenttype=application/pdf`);
      const pdf: number[] = [];
      for (let i = 0; i < RUNS; i++) pdf.push((await timed(`${base}/Binary?contenttype=application/pdf`)).ms);

      const random = prng(7);
      const dates: number[] = [];
      const recent: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        // Any day of the whole period: totals from nearly all documents down to none.
        const day = new Date(START + random() * (END - START)).toISOString().slice(0, 10);
        dates.push((await timed(`${base}/Binary?_lastUpdated=gt${day}`)).ms);
        // The operator's usual question: what arrived in the last month or so.
        const since = new Date(END - random() * 45 * 86_400_000).toISOString().slice(0, 19);
        recent.push((await timed(`${base}/Binary?_lastUpdated=gt${since}Z`)).ms);
      }

      const pages: number[] = [];
      const tenPages: number[] = [];
      const starts = [
        "contenttype=application/pdf",
        "_lastUpdated=ge2024",
        "_sort=_id",
        "contenttype=image/png&_sort=_lastUpdated",
      ];
      for (let i = 0; i < RUNS / 10; i++) {
        let url: string | undefined = `${base}/Binary?${starts[i % starts.length]}&_count=20`;
        let total = 0;
        for (let page = 0; page < 10 && url; page++) {
          const { ms, body } = await timed(url);
          pages.push(ms);
          total += ms;
          url = body.link?.find((l) => l.relation === "next")?.url;
        }
        tenPages.push(total);
      }
      return {
        size,
        versions: generated.versions,
        generateS: generated.seconds,
        storeMiB: duKiB(generated.dir) / 1024,
        indexMiB: indexBytes / 2 ** 20,
        listeningMs,
        firstRequestMs,
        pdf: stats(pdf),
        pdfTotal,
        lastUpdated: stats(dates),
        lastUpdatedRecent: stats(recent),
        paging: stats(pages),
        tenPages: stats(tenPages),
      };
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  } finally {
    rmSync(generated.dir, { recursive: true, force: true });
  }
}

const f = (n: number): string => (n < 10 ? n.toFixed(1) : Math.round(n).toString());
const rows: Row[] = [];
for (const size of SIZES.length > 0 ? SIZES : [100_000, 1_000_000]) rows.push(await measure(size));

const cores = (await import("node:os")).availableParallelism();
console.log(`\nSearch benchmark (${cores} cores, ${RUNS} requests per query, one client; times in ms)\n`);
const head = ["", ...rows.map((row) => `${row.size.toLocaleString("en")} documents`)];
const table: string[][] = [
  ["versions stored (4% updated, 1% deleted)", ...rows.map((r) => r.versions.toLocaleString("en"))],
  ["store on disk / index on disk", ...rows.map((r) => `${f(r.storeMiB)} MiB / ${f(r.indexMiB)} MiB`)],
  ["start to `listening on`", ...rows.map((r) => f(r.listeningMs))],
  ["start to first answered search", ...rows.map((r) => f(r.firstRequestMs))],
  [
    "`contenttype=application/pdf` p50 / p99",
    ...rows.map((r) => `${f(r.pdf.p50)} / ${f(r.pdf.p99)} (total ${r.pdfTotal.toLocaleString("en")})`),
  ],
  [
    "`_lastUpdated=gt<any day>` p50 / p99",
    ...rows.map((r) => `${f(r.lastUpdated.p50)} / ${f(r.lastUpdated.p99)}`),
  ],
  [
    "`_lastUpdated=gt<last 45 days>` p50 / p99",
    ...rows.map((r) => `${f(r.lastUpdatedRecent.p50)} / ${f(r.lastUpdatedRecent.p99)}`),
  ],
  ["one page of 20 (10 pages deep) p50 / p99", ...rows.map((r) => `${f(r.paging.p50)} / ${f(r.paging.p99)}`)],
  ["10 pages in a row p50 / p99", ...rows.map((r) => `${f(r.tenPages.p50)} / ${f(r.tenPages.p99)}`)],
  ["generating the store (not fhirbin)", ...rows.map((r) => `${f(r.generateS)} s`)],
];
console.log(`| ${head.join(" | ")} |`);
console.log(`|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`);
for (const line of table) console.log(`| ${line.join(" | ")} |`);
