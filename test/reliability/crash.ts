/**
 * Crash test (`npm run test:crash`, issue 3): 8 clients create and update documents of 0 B to 8 MiB while
 * the server is killed with SIGKILL at random moments and restarted on the same data directory. Every
 * write acknowledged with 2xx must then read back byte-identical, each id's versions must be exactly 1..n,
 * `fhirbin verify` must be clean and no temp file may survive a start.
 *
 * A kill -9 keeps the page cache, so this proves the commit order (content linked before its sidecar), not
 * that fsync is called: the durability-order test (order.test.ts) proves that.
 *
 * CRASH_KILLS (default 40) sets the number of kills.
 */
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  entriesOf,
  Fhirbin,
  historyVersions,
  idOf,
  isContiguous,
  runSuite,
  sha256Hex,
  verifyDataDir,
  versionOf,
  withDeadline,
} from "./exe.ts";

const KILLS = Number(process.env.CRASH_KILLS ?? 40);
const CLIENTS = 8;
/** Ids updated with PUT by every client, so writers to one id race for version numbers. */
const ID_POOL = Array.from({ length: 12 }, (_, i) => `crash-${i}`);
const MiB = 1024 * 1024;
/** The moment of each kill, after the clients start: uniform in this range (ms). */
const KILL_AFTER = [50, 1500] as const;

/** A write acknowledged with 2xx: what must be readable after any later crash. */
interface Ack {
  id: string;
  version: number;
  sha256: string;
  size: number;
}

/** Random bytes that bodies are cut from (cheaper than fresh randomness for every 8 MiB body). */
const POOL = new Uint8Array(8 * MiB + 64);
for (let offset = 0; offset < POOL.length; offset += 65_536) {
  crypto.getRandomValues(POOL.subarray(offset, offset + 65_536));
}

const randomInt = (min: number, max: number): number => min + Math.floor(Math.random() * (max - min + 1));

/** 0 B to 8 MiB, weighted towards small documents, as clinical documents are. */
function pickSize(): number {
  const r = Math.random();
  if (r < 0.08) return 0;
  if (r < 0.55) return randomInt(1, 64 * 1024);
  if (r < 0.9) return randomInt(64 * 1024, MiB);
  return randomInt(MiB, 8 * MiB);
}

let serial = 0;
/** Small bodies written before, re-sent now and then so identical content (one shared blob) is covered. */
const recent: Uint8Array[] = [];

function nextBody(): Uint8Array {
  if (recent.length > 0 && Math.random() < 0.05) return recent[randomInt(0, recent.length - 1)] as Uint8Array;
  const size = pickSize();
  const start = randomInt(0, POOL.length - size);
  const body = POOL.slice(start, start + size);
  // A serial number at the front keeps bodies distinct even when they are cut from the same place.
  if (size >= 8) new DataView(body.buffer).setFloat64(0, ++serial, true);
  if (size <= 64 * 1024) {
    recent.push(body);
    if (recent.length > 16) recent.shift();
  }
  return body;
}

interface Tally {
  acks: Ack[];
  /** Requests cut off by a kill (connection refused or reset): neither acknowledged nor refused. */
  cut: number;
  unexpected: string[];
}

/** One client: writes until its server dies. */
async function client(server: Fhirbin, tally: Tally): Promise<void> {
  for (;;) {
    const body = nextBody();
    const put = Math.random() < 0.6;
    const id = put ? (ID_POOL[randomInt(0, ID_POOL.length - 1)] as string) : null;
    const sha256 = sha256Hex(body);
    let res: Response;
    try {
      res = await server.request(put ? `/Binary/${id}` : "/Binary", {
        method: put ? "PUT" : "POST",
        body,
        headers: { "content-type": "application/octet-stream" },
      });
    } catch {
      tally.cut++;
      return;
    }
    if (res.status === 200 || res.status === 201) {
      const ackedId = id ?? idOf(res);
      const version = versionOf(res);
      if (ackedId && version) tally.acks.push({ id: ackedId, version, sha256, size: body.length });
      else tally.unexpected.push(`${res.status} without Location or ETag: ${[...res.headers].join(" ")}`);
    } else {
      tally.unexpected.push(`${put ? `PUT /Binary/${id}` : "POST /Binary"} answered ${res.status}`);
    }
    // The status line is the acknowledgement; the body may be cut by the next kill.
    await res.arrayBuffer().catch(() => {});
  }
}

/** Runs `work` over `items`, `limit` at a time. */
async function inParallel<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

await runSuite("crash", async (checks) => {
  const { check } = checks;
  const dataDir = await mkdtemp(join(tmpdir(), "fhirbin-crash-"));
  const tmp = join(dataDir, "tmp");
  const tally: Tally = { acks: [], cut: 0, unexpected: [] };
  let tempsLeft = 0;
  let survived = 0;
  let completed = false;
  const started = performance.now();
  try {
    for (let kill = 1; kill <= KILLS; kill++) {
      tempsLeft += (await entriesOf(tmp)).length;
      await using server = await Fhirbin.start({ dataDir, lifetimeMs: 60_000 });
      const leftover = await entriesOf(tmp);
      check(leftover.length === 0, `start ${kill} left temp files: ${leftover.join(", ")}`);
      const clients = Array.from({ length: CLIENTS }, () => client(server, tally));
      // The kill moment is the random variable here, not a synchronisation.
      await Bun.sleep(randomInt(...KILL_AFTER));
      await server.stop("SIGKILL");
      await withDeadline(Promise.all(clients), `the clients to see kill ${kill}`, 30_000);
      survived++;
    }

    await using server = await Fhirbin.start({ dataDir, lifetimeMs: 300_000 });
    const leftover = await entriesOf(tmp);
    check(leftover.length === 0, `the final start left temp files: ${leftover.join(", ")}`);
    check(tally.unexpected.length === 0, `unexpected answers: ${tally.unexpected.slice(0, 5).join("; ")}`);

    // No version acknowledged twice.
    const byVersion = new Map<string, Ack>();
    for (const ack of tally.acks) {
      const key = `${ack.id}/_history/${ack.version}`;
      check(!byVersion.has(key), `${key} was acknowledged to two writes`);
      byVersion.set(key, ack);
    }

    // Every acknowledged write reads back byte-identical.
    let bytes = 0;
    await inParallel(tally.acks, 8, async (ack) => {
      const res = await server.request(`/Binary/${ack.id}/_history/${ack.version}`);
      const body = new Uint8Array(await res.arrayBuffer());
      bytes += body.length;
      check(
        res.status === 200 && sha256Hex(body) === ack.sha256,
        `acknowledged ${ack.id}/_history/${ack.version} (${ack.size} B, sha256 ${ack.sha256}) reads back as ` +
          `${res.status}, ${body.length} B, sha256 ${sha256Hex(body)}`,
      );
    });

    // Per id: versions exactly 1..n in history, every acknowledged one among them, the current one readable.
    const ids = [...new Set([...ID_POOL, ...tally.acks.map((ack) => ack.id)])];
    await inParallel(ids, 8, async (id) => {
      const versions = await historyVersions(server, id);
      check(isContiguous(versions), `history of ${id} is not n..1: ${versions.join(",")}`);
      const newest = versions[0] ?? 0;
      for (const ack of tally.acks) {
        if (ack.id === id)
          check(ack.version <= newest, `${id}/_history/${ack.version} is missing from history`);
      }
      if (newest === 0) return;
      const current = await server.request(`/Binary/${id}`);
      const body = await current.arrayBuffer();
      check(
        current.status === 200 && body.byteLength === Number(current.headers.get("content-length")),
        `current version of ${id} reads as ${current.status} (${body.byteLength} B)`,
      );
    });

    check((await server.stop("SIGTERM")) === 0, "the final server did not stop cleanly");
    const verify = await verifyDataDir(dataDir);
    const { ids: verifiedIds, versions, blobs, findings, orphans } = verify.report;
    check(
      verify.exitCode === 0,
      `fhirbin verify exited ${verify.exitCode}: ${JSON.stringify(findings.slice(0, 10))}`,
    );
    check(
      tally.acks.length >= KILLS,
      `only ${tally.acks.length} writes were acknowledged: the test proved little`,
    );

    const seconds = (performance.now() - started) / 1000;
    console.log(
      `crash: kills survived ${survived}/${KILLS}; acknowledged writes checked ${tally.acks.length} ` +
        `(${(bytes / MiB).toFixed(1)} MiB read back); requests cut off by kills ${tally.cut}; ` +
        `temp files left by kills and swept at start ${tempsLeft}; in ${seconds.toFixed(1)} s`,
    );
    console.log(
      `crash: fhirbin verify: status ${verify.exitCode}, ${verifiedIds} ids, ${versions} versions, ${blobs} blobs, ` +
        `${findings.length} findings, ${orphans.length} orphans`,
    );
    completed = true;
  } finally {
    // Kept for inspection when something failed.
    if (completed && checks.failures === 0) rmSync(dataDir, { recursive: true, force: true });
    else console.log(`crash: data directory kept: ${dataDir}`);
  }
});
