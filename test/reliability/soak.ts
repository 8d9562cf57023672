/**
 * Soak test (`npm run test:soak`, issue 3): a mixed load at a bounded rate on loopback (70% reads, native
 * and FHIR; 25% creates; 5% updates and deletes) for SOAK_MINUTES (default 2). Passes with zero 5xx, every
 * answer as expected, resident memory and open descriptors flat after the warm-up (growth under 10%, both
 * sampled at rest: no request for 3 s), and a clean `fhirbin verify` at the end. Every request has its own
 * connection (no keep-alive), so at rest the server holds no client socket and its descriptor count is
 * comparable from one sample to the next; it also puts connection set-up and tear-down under the load.
 *
 * SOAK_MINUTES sets the duration, SOAK_RATE the requests per second (default 100).
 */
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Fhirbin,
  idOf,
  openConnections,
  pollUntil,
  processUsage,
  runSuite,
  sha256Hex,
  verifyDataDir,
} from "./exe.ts";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 2);
const RATE = Number(process.env.SOAK_RATE ?? 100);
const IN_FLIGHT = 16;
const DURATION_MS = MINUTES * 60_000;
/** Memory and descriptor pools fill up first: growth is measured from the end of the warm-up. */
const WARMUP_MS = Math.min(DURATION_MS / 4, 5 * 60_000);
const GROWTH_LIMIT = 0.1;
const QUIET_MS = 3_000;
const KiB = 1024;

/** What the load knows about a document, so that every read has one right answer. */
interface Doc {
  id: string;
  sha256: string;
  deleted: boolean;
  /** A write to it is in flight: reads and other writes leave it alone meanwhile. */
  busy: boolean;
}

const randomInt = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** Mostly small documents, some larger, a few of several MiB. */
function body(): Uint8Array {
  const r = Math.random();
  const size =
    r < 0.8
      ? randomInt(0, 16 * KiB)
      : r < 0.99
        ? randomInt(16 * KiB, 256 * KiB)
        : randomInt(1024 * KiB, 4096 * KiB);
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65_536)
    crypto.getRandomValues(bytes.subarray(offset, offset + 65_536));
  return bytes;
}

await runSuite("soak", async (checks) => {
  const { check } = checks;
  const dataDir = await mkdtemp(join(tmpdir(), "fhirbin-soak-"));
  await using server = await Fhirbin.start({ dataDir, lifetimeMs: DURATION_MS + 5 * 60_000 });
  const request = (path: string, init: RequestInit = {}): Promise<Response> =>
    server.request(path, { ...init, keepalive: false });
  const docs: Doc[] = [];
  const statuses = new Map<string, number>();
  const unexpected: string[] = [];
  const latencies: number[] = [];
  let serverErrors = 0;

  const expectStatus = (what: string, res: Response, ...allowed: number[]): boolean => {
    const key = `${what} ${res.status}`;
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
    if (res.status >= 500) serverErrors++;
    if (allowed.includes(res.status)) return true;
    unexpected.push(`${what} answered ${res.status}`);
    return false;
  };
  const idle = (): Doc | null => {
    for (let attempt = 0; attempt < 8 && docs.length > 0; attempt++) {
      const doc = docs[randomInt(0, docs.length - 1)] as Doc;
      if (!doc.busy) return doc;
    }
    return null;
  };

  const create = async (): Promise<void> => {
    const content = body();
    const res = await request("/Binary", {
      method: "POST",
      body: content,
      headers: { "content-type": "application/octet-stream" },
    });
    await res.arrayBuffer();
    const id = idOf(res);
    if (expectStatus("create", res, 201) && id)
      docs.push({ id, sha256: sha256Hex(content), deleted: false, busy: false });
  };

  const read = async (doc: Doc): Promise<void> => {
    const format = ["", "", "?_format=json", "?_format=xml"][randomInt(0, 3)] as string;
    const res = await request(`/Binary/${doc.id}${format}`);
    const what = `read${format ? ` ${format.slice(9)}` : " native"}`;
    if (!expectStatus(what, res, doc.deleted ? 410 : 200) || doc.deleted)
      return void (await res.arrayBuffer());
    let bytes: Uint8Array | ArrayBuffer;
    if (format === "") bytes = await res.arrayBuffer();
    else if (format.endsWith("json"))
      bytes = Uint8Array.fromBase64(((await res.json()) as { content?: string }).content ?? "");
    else bytes = Uint8Array.fromBase64(/<content value="([^"]*)"\/>/.exec(await res.text())?.[1] ?? "");
    if (sha256Hex(bytes) !== doc.sha256) unexpected.push(`${what} of ${doc.id} returned other bytes`);
  };

  const updateOrDelete = async (doc: Doc): Promise<void> => {
    doc.busy = true;
    try {
      if (Math.random() < 0.5) {
        const res = await request(`/Binary/${doc.id}`, { method: "DELETE" });
        await res.arrayBuffer();
        if (expectStatus("delete", res, 204)) doc.deleted = true;
      } else {
        const content = body();
        const res = await request(`/Binary/${doc.id}`, {
          method: "PUT",
          body: content,
          headers: { "content-type": "application/octet-stream" },
        });
        await res.arrayBuffer();
        if (expectStatus("update", res, doc.deleted ? 201 : 200))
          Object.assign(doc, { sha256: sha256Hex(content), deleted: false });
      }
    } finally {
      doc.busy = false;
    }
  };

  const oneRequest = async (): Promise<void> => {
    const r = Math.random();
    const doc = r < 0.7 || r >= 0.95 ? idle() : null;
    const started = performance.now();
    if (doc && r < 0.7) await read(doc);
    else if (doc) await updateOrDelete(doc);
    else await create();
    latencies.push(performance.now() - started);
  };

  // Requests start on a fixed schedule (the rate bound), at most IN_FLIGHT at once; `paused` lets the
  // in-flight requests drain so that memory and descriptors are sampled at rest.
  const interval = 1000 / RATE;
  let slot = 0;
  let inFlight = 0;
  let paused = false;
  let stopped = false;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (!stopped) {
      if (paused) {
        await pollUntil(() => !paused || stopped, 60_000, "the load to resume");
        continue;
      }
      const due = started + slot++ * interval;
      if (due > performance.now()) await Bun.sleep(due - performance.now());
      if (paused || stopped) continue;
      inFlight++;
      try {
        await oneRequest();
      } catch (error) {
        unexpected.push(`request failed: ${(error as Error).message}`);
      } finally {
        inFlight--;
      }
    }
  };
  const atRest = async (): Promise<{ rssKiB: number; fds: number }> => {
    paused = true;
    await pollUntil(() => inFlight === 0, 60_000, "the requests in flight to finish");
    const closed = async (): Promise<boolean> => (await openConnections(server.port)) === 0;
    await pollUntil(closed, 10_000, "the server to close the connections of finished requests");
    // Resident memory is compared once the server has been quiet long enough for its idle collection
    // (src/gc.ts: within two seconds): garbage waiting for the collector is not growth, retained memory is.
    await Bun.sleep(QUIET_MS);
    const usage = await processUsage(server.pid);
    paused = false;
    // Missed slots are skipped, not made up in a burst.
    slot = Math.ceil((performance.now() - started) / interval);
    return usage;
  };

  const workers = Array.from({ length: IN_FLIGHT }, worker);
  const peak = { rssKiB: 0, fds: 0 };
  let baseline: { rssKiB: number; fds: number } | null = null;
  let final: { rssKiB: number; fds: number };
  let nextReport = 30_000;
  try {
    while (performance.now() - started < DURATION_MS) {
      // The sampling period, not a synchronisation.
      await Bun.sleep(Math.min(5_000, DURATION_MS - (performance.now() - started)));
      const usage = await processUsage(server.pid);
      peak.rssKiB = Math.max(peak.rssKiB, usage.rssKiB);
      peak.fds = Math.max(peak.fds, usage.fds);
      if (!baseline && performance.now() - started >= WARMUP_MS) baseline = await atRest();
      const seconds = (performance.now() - started) / 1000;
      if (seconds * 1000 >= nextReport) {
        nextReport += 30_000;
        console.log(
          `soak: ${seconds.toFixed(0)} s, ${latencies.length} requests, ${serverErrors} 5xx, ` +
            `RSS ${(usage.rssKiB / 1024).toFixed(1)} MiB, ${usage.fds} fds, ${docs.length} documents`,
        );
      }
    }
    final = await atRest();
  } finally {
    stopped = true;
    await Promise.all(workers);
  }

  const elapsed = (performance.now() - started) / 1000;
  const base = baseline ?? final;
  const rssGrowth = final.rssKiB / base.rssKiB - 1;
  const fdGrowth = final.fds / base.fds - 1;
  latencies.sort((a, b) => a - b);
  const percentile = (p: number): string =>
    (latencies[Math.floor((latencies.length - 1) * p)] ?? 0).toFixed(1);
  const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;

  check(serverErrors === 0, `${serverErrors} responses were 5xx`);
  check(
    unexpected.length === 0,
    `${unexpected.length} unexpected answers, e.g. ${unexpected.slice(0, 5).join("; ")}`,
  );
  check(
    rssGrowth < GROWTH_LIMIT,
    `RSS grew ${percent(rssGrowth)} after the warm-up (${base.rssKiB} -> ${final.rssKiB} KiB)`,
  );
  check(
    fdGrowth < GROWTH_LIMIT,
    `open descriptors grew ${percent(fdGrowth)} after the warm-up (${base.fds} -> ${final.fds})`,
  );
  check(
    latencies.length >= RATE * (DURATION_MS / 1000) * 0.8,
    `only ${latencies.length} requests ran: the rate was not sustained`,
  );
  check((await server.stop("SIGTERM")) === 0, "the server did not stop cleanly");
  const verify = await verifyDataDir(dataDir);
  check(
    verify.exitCode === 0,
    `fhirbin verify exited ${verify.exitCode}: ${JSON.stringify(verify.report.findings.slice(0, 5))}`,
  );

  console.log(
    `soak: ${latencies.length} requests in ${elapsed.toFixed(0)} s (${(latencies.length / elapsed).toFixed(0)}/s, ` +
      `at most ${IN_FLIGHT} in flight), latency p50 ${percentile(0.5)} ms, p99 ${percentile(0.99)} ms, max ${percentile(1)} ms`,
  );
  console.log(
    `soak: 5xx ${serverErrors}; unexpected answers ${unexpected.length}; answers: ${[...statuses].map(([k, n]) => `${k}: ${n}`).join(", ")}`,
  );
  console.log(
    `soak: after a ${(WARMUP_MS / 1000).toFixed(0)} s warm-up, at rest: RSS ${(base.rssKiB / 1024).toFixed(1)} -> ` +
      `${(final.rssKiB / 1024).toFixed(1)} MiB (${percent(rssGrowth)}), fds ${base.fds} -> ${final.fds} (${percent(fdGrowth)}); ` +
      `peak under load: RSS ${(peak.rssKiB / 1024).toFixed(1)} MiB, ${peak.fds} fds`,
  );
  const { ids, versions, blobs, bytes, findings, orphans } = verify.report;
  console.log(
    `soak: fhirbin verify: status ${verify.exitCode}, ${ids} ids, ${versions} versions, ${blobs} blobs ` +
      `(${(bytes / 1024 / 1024).toFixed(1)} MiB), ${findings.length} findings, ${orphans.length} orphans`,
  );
  // Kept for inspection when something failed.
  if (checks.failures === 0) rmSync(dataDir, { recursive: true, force: true });
  else console.log(`soak: data directory kept: ${dataDir}`);
});
