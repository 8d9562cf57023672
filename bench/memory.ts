/**
 * `npm run bench:memory`: peak RSS of the compiled server over its idle baseline while it serves a 1 GiB
 * document natively, as FHIR JSON and as FHIR XML (one request, then 8 at once), and while it receives a
 * 1 GiB raw upload and a 256 MiB FHIR JSON upload. Linux only (/proc). Not a timed test.
 *
 * Each case resets the kernel's peak (`echo 5 > /proc/<pid>/clear_refs` zeroes VmHWM) and reads VmRSS just
 * before as the baseline; VmRSS is also polled every 10 ms in case the reset is not permitted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TOKEN = "bench-token-0123456789abcdef";
const ROOT = resolve(import.meta.dir, "..");
/** Targets from issue 4: growth over idle for a single request, and for 8 concurrent reads. */
const SINGLE_TARGET = 64 * MiB;
const CONCURRENT_TARGET = 160 * MiB;

// The same flags as `npm run build`, so the numbers are those of the shipped executable.
const BUILD_FLAGS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.build as string)
  .split(/\s+/)
  .filter((flag) => flag.startsWith("--") && !flag.startsWith("--outfile"));
// BENCH_ONLY=upload,json runs only the cases whose name contains one of the words.
const ONLY = process.env.BENCH_ONLY?.split(",") ?? null;

const work = mkdtempSync(join(tmpdir(), "fhirbin-bench-"));
const exe = join(work, "fhirbin");
// Built here rather than in dist/, so a concurrent `npm run build` cannot swap the binary mid-run.
const build = Bun.spawnSync([process.execPath, "build", ...BUILD_FLAGS, "src/main.ts", "--outfile", exe], {
  cwd: ROOT,
  stdout: "ignore",
  stderr: "inherit",
});
if (build.exitCode !== 0) throw new Error("bun build --compile failed");

const server = Bun.spawn(
  [exe, "serve", "--port", "0", "--data", join(work, "data"), "--token", TOKEN, "--max-size", "1GiB"],
  { stdout: "pipe", stderr: "inherit" },
);
const base = await listeningUrl(server.stdout);
const pid = server.pid;

async function listeningUrl(stdout: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stdout) {
    text += decoder.decode(chunk, { stream: true });
    const match = /listening on (\S+)/.exec(text);
    if (match?.[1]) return match[1];
  }
  throw new Error(`the server exited before listening: ${text}`);
}

function statusKiB(field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? 0);
}

/** Runs `work` and returns the server's peak RSS growth over its RSS just before, in bytes. */
async function peakGrowth(work: () => Promise<void>): Promise<{ growth: number; seconds: number }> {
  await Bun.sleep(500); // Let the previous case's sockets close and the server go idle.
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // Not permitted here: the polled VmRSS still gives the peak (to within the polling interval).
  }
  const baseline = statusKiB("VmRSS");
  let polled = baseline;
  const poll = setInterval(() => {
    polled = Math.max(polled, statusKiB("VmRSS"));
  }, 10);
  const started = performance.now();
  try {
    await work();
  } finally {
    clearInterval(poll);
  }
  const peak = Math.max(polled, statusKiB("VmHWM"));
  return { growth: (peak - baseline) * 1024, seconds: (performance.now() - started) / 1000 };
}

const auth = { authorization: `Bearer ${TOKEN}` };

/** A streamed body of `size` bytes: a 1 MiB random block repeated (contents do not matter here). */
function generated(
  size: number,
  block = crypto.getRandomValues(new Uint8Array(64 * 1024)),
): ReadableStream<Uint8Array> {
  let sent = 0;
  const mib = new Uint8Array(MiB).map((_, i) => block[i % block.length] as number);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= size) return controller.close();
      const next = mib.subarray(0, Math.min(MiB, size - sent));
      sent += next.length;
      controller.enqueue(next);
    },
  });
}

/** A streamed FHIR JSON Binary `id` whose payload is `size` bytes (base64-encoded 192 KiB at a time). */
function fhirJson(id: string, size: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const block = crypto.getRandomValues(new Uint8Array(3 * 64 * 1024));
  const base64 = encoder.encode(block.toBase64());
  let sent = 0;
  let stage: "head" | "payload" | "done" = "head";
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (stage === "head") {
        controller.enqueue(
          encoder.encode(`{"resourceType":"Binary","id":"${id}","contentType":"application/pdf","data":"`),
        );
        stage = "payload";
      } else if (stage === "payload" && sent < size) {
        controller.enqueue(base64);
        sent += block.length;
      } else if (stage === "payload") {
        controller.enqueue(encoder.encode('"}'));
        stage = "done";
      } else {
        controller.close();
      }
    },
  });
}

async function expectOk(res: Response, what: string): Promise<void> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
}

/** Reads a response body to the end without keeping it; returns its length. */
async function drain(res: Response): Promise<number> {
  let length = 0;
  for await (const chunk of res.body ?? []) length += chunk.byteLength;
  return length;
}

async function upload(id: string, contentType: string, body: ReadableStream<Uint8Array>): Promise<void> {
  const res = await fetch(`${base}/Binary/${id}`, {
    method: "PUT",
    headers: { ...auth, "content-type": contentType },
    body,
  });
  await expectOk(res, `PUT ${contentType}`);
  await res.arrayBuffer();
}

async function download(accept: string, expected: (length: number) => boolean, id = "big"): Promise<void> {
  const res = await fetch(`${base}/Binary/${id}`, { headers: { ...auth, accept } });
  await expectOk(res, `GET as ${accept}`);
  const length = await drain(res);
  if (!expected(length)) throw new Error(`GET as ${accept}: unexpected length ${length}`);
}

const native = (): Promise<void> => download("*/*", (length) => length === GiB);
const asJson = (): Promise<void> => download("application/fhir+json", (length) => length > (GiB / 3) * 4);
const asXml = (): Promise<void> => download("application/fhir+xml", (length) => length > (GiB / 3) * 4);
const eight = (read: () => Promise<void>) => async (): Promise<void> => {
  await Promise.all(Array.from({ length: 8 }, read));
};

const cases: [string, number | null, () => Promise<void>][] = [
  ["1 GiB raw upload", SINGLE_TARGET, () => upload("big", "application/pdf", generated(GiB))],
  [
    "256 MiB FHIR JSON upload",
    SINGLE_TARGET,
    () => upload("wrapped", "application/fhir+json", fhirJson("wrapped", 256 * MiB)),
  ],
  ["1 GiB native read", SINGLE_TARGET, native],
  ["1 GiB FHIR JSON read", SINGLE_TARGET, asJson],
  ["1 GiB FHIR XML read", SINGLE_TARGET, asXml],
  ["8 x 1 GiB native reads", CONCURRENT_TARGET, eight(native)],
  ["8 x 1 GiB FHIR JSON reads", CONCURRENT_TARGET, eight(asJson)],
  ["8 x 1 GiB FHIR XML reads", null, eight(asXml)],
];

const rows: string[] = [];
let failed = false;
try {
  await Bun.sleep(1000);
  const cold = statusKiB("VmRSS") * 1024;
  // One small run of every path first: JIT-compiled code, Bun's I/O threads and allocator arenas are paid
  // once per process, not per request, so the baseline is an idle server that has served before.
  await upload("warm", "application/pdf", generated(16 * MiB));
  await upload("warm-json", "application/fhir+json", fhirJson("warm-json", 16 * MiB));
  for (const accept of ["*/*", "application/fhir+json", "application/fhir+xml"]) {
    await download(accept, (length) => length >= 16 * MiB, "warm");
  }
  await Bun.sleep(1000);
  const idle = statusKiB("VmRSS") * 1024;
  for (const [name, target, run] of cases) {
    if (ONLY && !ONLY.some((word) => name.includes(word))) continue;
    const { growth, seconds } = await peakGrowth(run);
    const verdict = target === null ? "(no target)" : growth < target ? "ok" : "MISSED";
    if (verdict === "MISSED") failed = true;
    const limit = target === null ? "-" : `< ${target / MiB}`;
    rows.push(`| ${name} | ${(growth / MiB).toFixed(1)} | ${limit} | ${verdict} | ${seconds.toFixed(1)} |`);
  }
  const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
  console.log(
    `Idle RSS of the compiled server: ${mib(cold)} at start, ${mib(idle)} after the warm-up ` +
      `(Bun ${Bun.version}, ${process.platform}-${process.arch})\n`,
  );
  console.log("| case | peak RSS growth (MiB) | target (MiB) | result | seconds |");
  console.log("|---|---:|---:|---|---:|");
  for (const row of rows) console.log(row);
} finally {
  server.kill();
  await server.exited;
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
