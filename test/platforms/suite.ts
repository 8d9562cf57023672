/**
 * One suite for every platform's executable, run through its emulator (platforms.ts): what a user who drops
 * the file onto a server relies on, from the first start on an empty directory to a kill -9 in the middle of
 * writes. `full` adds what the core leaves out: large streamed documents, case-only ids, import and export.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  type RunResult,
  runFhirbin,
  type Server,
  type SpawnOptions,
  spawnFhirbin,
  startFhirbin,
  tempDir,
  waitUntil,
} from "../exe/spawn.ts";
import { mountVfat, vfatProblem } from "../vfat.ts";
import type { Platform, PlatformDir } from "./platforms.ts";

const TOKEN = "platform-suite-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
const MiB = 1024 * 1024;

/** Registers the suite; a platform that cannot run here says why, and fails under CI rather than skip. */
export function platformSuite(platform: Platform, { full }: { full: boolean }): void {
  const { missing } = platform;
  if (missing !== null) {
    console.warn(`NOTICE: the ${platform.name} tests are skipped: ${missing}`);
    if (process.env.CI === "true") {
      test(`the ${platform.name} tests can run in CI`, () => {
        throw new Error(missing);
      });
    }
  }
  const options: SpawnOptions = { command: platform.command, startMs: platform.startMs };
  const serveArgs = (dir: Pick<PlatformDir, "arg">): string[] => [
    "serve",
    "--port",
    "0",
    "--data",
    dir.arg,
    "--token",
    TOKEN,
  ];
  const serve = (dir: Pick<PlatformDir, "arg">): Promise<Server> => startFhirbin(serveArgs(dir), options);
  const run = (args: readonly string[]): Promise<RunResult> => runFhirbin(args, options);

  const fatProblem = full ? vfatProblem() : null;
  if (fatProblem !== null) console.warn(`NOTICE: the ${platform.name} FAT test is skipped: ${fatProblem}`);

  // Emulated starts take seconds each: every test allows for a few of them.
  describe.skipIf(missing !== null)(platform.name, () => {
    test("first start on an empty data directory; create, read, update, vread, history, search, delete (410)", async () => {
      using dir = platform.dataDir("crud");
      await using server = await serve(dir);

      const created = await server.request("/Binary", {
        method: "POST",
        headers: { ...auth, "content-type": "application/pdf", "x-security-context": "Patient/1" },
        body: "%PDF-1.4 first",
      });
      expect(created.status).toBe(201);
      const id = (created.headers.get("location") ?? "").match(/\/Binary\/([^/]+)\//)?.[1] ?? "";
      expect(id).not.toBe("");

      const fhirJson = await server.request("/Binary", {
        method: "POST",
        headers: { ...auth, "content-type": "application/fhir+json" },
        body: JSON.stringify({ resourceType: "Binary", contentType: "text/plain", content: btoa("wrapped") }),
      });
      expect(fhirJson.status).toBe(201);
      const { id: wrappedId } = (await fhirJson.json()) as { id: string };
      const wrapped = await server.request(`/Binary/${wrappedId}`, { headers: auth });
      expect(await wrapped.text()).toBe("wrapped");

      const native = await server.request(`/Binary/${id}`, { headers: auth });
      expect(native.headers.get("content-type")).toBe("application/pdf");
      expect(await native.text()).toBe("%PDF-1.4 first");
      const asJson = await server.request(`/Binary/${id}?_format=json`, { headers: auth });
      expect(await asJson.json()).toMatchObject({
        resourceType: "Binary",
        id,
        contentType: "application/pdf",
      });
      const asXml = await server.request(`/Binary/${id}?_format=xml`, { headers: auth });
      expect(await asXml.text()).toContain(`<id value="${id}"/>`);

      const updated = await server.request(`/Binary/${id}`, {
        method: "PUT",
        headers: { ...auth, "content-type": "application/pdf", "if-match": 'W/"1"' },
        body: "%PDF-1.4 second",
      });
      expect(updated.status).toBe(200);
      expect(updated.headers.get("etag")).toBe('W/"2"');
      const v1 = await server.request(`/Binary/${id}/_history/1`, { headers: auth });
      expect(await v1.text()).toBe("%PDF-1.4 first");
      const history = await server.request(`/Binary/${id}/_history?_format=json`, { headers: auth });
      expect(((await history.json()) as { total: number }).total).toBe(2);
      const search = await server.request("/Binary?_format=json&contenttype=application/pdf", {
        headers: auth,
      });
      expect(((await search.json()) as { total: number }).total).toBe(1);

      const deleted = await server.request(`/Binary/${id}`, { method: "DELETE", headers: auth });
      expect(deleted.status).toBe(204);
      const gone = await server.request(`/Binary/${id}`, { headers: auth });
      expect(gone.status).toBe(410);
      await gone.arrayBuffer();
      expect(await server.stop(platform.stopSignal)).toBe(0);
    }, 90_000);

    test("a restart keeps the data; a second instance on the same directory is refused", async () => {
      using dir = platform.dataDir("restart");
      {
        await using first = await serve(dir);
        expect((await put(first, "kept", "kept bytes")).status).toBe(201);
        await using second = spawnFhirbin(
          ["serve", "--port", "0", "--data", dir.arg, "--token", TOKEN],
          options,
        );
        expect(await second.exited(platform.startMs)).toBe(1);
        expect(second.stderr.text).toContain("in use");
        expect(await first.stop(platform.stopSignal)).toBe(0);
      }
      await using again = await serve(dir);
      const read = await again.request("/Binary/kept", { headers: auth });
      expect(await read.text()).toBe("kept bytes");
    }, 120_000);

    test("kill -9 during concurrent writes: after the restart (stale lock and all) every acknowledged write reads back", async () => {
      using dir = platform.dataDir("kill");
      const acknowledged = new Map<string, string>();
      {
        await using server = await serve(dir);
        let stop = false;
        const writer = async (worker: number): Promise<void> => {
          for (let n = 0; !stop; n++) {
            const id = `w${worker}-${n}`;
            const body = `${id} `.repeat(1 + ((n * 37) % 500));
            const response = await put(server, id, body).catch(() => null);
            if (response?.status === 201) acknowledged.set(id, body);
          }
        };
        const writers = Array.from({ length: 4 }, (_, worker) => writer(worker));
        await waitUntil(() => acknowledged.size >= 40, "40 acknowledged writes", platform.startMs);
        server.process.kill("SIGKILL");
        await server.exited(platform.startMs);
        stop = true;
        await Promise.all(writers);
      }
      // The killed holder's details are still there: the restart must not take them for a live holder.
      expect(JSON.parse(readFileSync(join(dir.host, ".lock"), "utf8"))).toHaveProperty("pid");
      await using restarted = await serve(dir);
      for (const [id, body] of acknowledged) {
        const read = await restarted.request(`/Binary/${id}`, { headers: auth });
        expect(read.status).toBe(200);
        expect(await read.text()).toBe(body);
      }
      expect(await restarted.stop(platform.stopSignal)).toBe(0);
      const verify = await run(["verify", "--data", dir.arg]);
      // A write cut off by the kill may have committed unacknowledged: there are at least as many ids.
      expect(verify.stdout).toContain(" 0 findings");
      expect(verify.exitCode).toBe(0);
    }, 180_000);

    if (!full) return;

    test("ids that differ only in case, Windows device names and a trailing dot are created, read and deleted apart", async () => {
      using dir = platform.dataDir("names");
      await using server = await serve(dir);
      for (const id of AWKWARD_IDS) expect((await put(server, id, `content of ${id}`)).status).toBe(201);
      for (const id of AWKWARD_IDS) {
        const read = await server.request(`/Binary/${id}`, { headers: auth });
        expect(`${read.status} ${await read.text()}`).toBe(`200 content of ${id}`);
      }
      for (const id of AWKWARD_IDS) {
        const deleted = await server.request(`/Binary/${id}`, { method: "DELETE", headers: auth });
        expect(deleted.status).toBe(204);
        // The others are still there: deleting one name removed no other.
        const gone = await server.request(`/Binary/${id}`, { headers: auth });
        expect(gone.status).toBe(410);
        await gone.arrayBuffer();
      }
      expect(await server.stop(platform.stopSignal)).toBe(0);
    }, 120_000);

    test("export --all keeps apart ids that differ only in case or are device names, and import brings every version back", async () => {
      using dir = platform.dataDir("names-source");
      {
        await using server = await serve(dir);
        for (const id of AWKWARD_IDS) {
          expect((await put(server, id, `first of ${id}`)).status).toBe(201);
          expect((await put(server, id, `second of ${id}`)).status).toBe(200);
        }
        expect(await server.stop(platform.stopSignal)).toBe(0);
      }
      using out = platform.dataDir("names-export");
      const exported = await run(["export", "--all", out.arg, "--data", dir.arg]);
      expect(exported.stderr).toContain(`exported ${AWKWARD_IDS.length} current documents`);
      expect(exported.exitCode).toBe(0);
      // One content file per version and one metadata file per id: none written over another.
      expect(readdirSync(join(out.host, "_metadata")).length).toBe(AWKWARD_IDS.length);
      expect(readdirSync(join(out.host, "_versions")).length).toBe(AWKWARD_IDS.length);

      using copy = platform.dataDir("names-copy");
      const imported = await run(["import", out.arg, "--data", copy.arg]);
      expect(imported.exitCode).toBe(0);
      await using server = await serve(copy);
      for (const id of AWKWARD_IDS) {
        const current = await server.request(`/Binary/${id}`, { headers: auth });
        expect(`${current.headers.get("etag")} ${await current.text()}`).toBe(`W/"2" second of ${id}`);
        const first = await server.request(`/Binary/${id}/_history/1`, { headers: auth });
        expect(await first.text()).toBe(`first of ${id}`);
      }
    }, 180_000);

    test("a 64 MiB streamed upload and download are byte-identical with bounded memory; a Range read", async () => {
      using dir = platform.dataDir("large");
      await using server = await serve(dir);
      const size = 64 * MiB;
      const block = new Uint8Array(MiB);
      for (let i = 0; i < block.length; i++) block[i] = (i * 7 + (i >> 10)) & 0xff;
      const hasher = new Bun.CryptoHasher("sha256");
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === size) return controller.close();
          const chunk = block.slice();
          chunk[0] = sent / MiB;
          hasher.update(chunk);
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      });
      // The spawned process is fhirbin itself (chroot, env and wine exec one another), not a wrapper.
      expect(processName(server.pid)).toBe(platform.processName);
      const before = peakRssBytes(server.pid);
      const created = await server.request("/Binary/large", {
        method: "PUT",
        headers: { ...auth, "content-type": "application/octet-stream" },
        body,
        duplex: "half",
      } as RequestInit);
      expect(created.status).toBe(201);
      const expected = hasher.digest("hex");

      const read = await server.request("/Binary/large", { headers: auth });
      const back = new Bun.CryptoHasher("sha256");
      let received = 0;
      for await (const chunk of read.body as ReadableStream<Uint8Array>) {
        back.update(chunk);
        received += chunk.length;
      }
      expect(received).toBe(size);
      expect(back.digest("hex")).toBe(expected);
      // Streamed both ways: the peak resident memory grew by well under the document's size.
      const growth = peakRssBytes(server.pid) - before;
      console.info(
        `${platform.name}: peak RSS ${(before / MiB) | 0} MiB at start, grew by ${(growth / MiB) | 0} MiB`,
      );
      expect(growth).toBeLessThan(size / 2);

      const range = await server.request("/Binary/large", {
        headers: { ...auth, range: "bytes=1048576-1048579" },
      });
      expect(range.status).toBe(206);
      expect(range.headers.get("content-range")).toBe(`bytes 1048576-1048579/${size}`);
      expect([...new Uint8Array(await range.arrayBuffer())]).toEqual([1, ...block.slice(1, 4)]);
    }, 180_000);

    test("a data directory whose path is longer than 260 characters (MAX_PATH) is used like any other", async () => {
      using parent = platform.dataDir("long");
      const segments = ["d".repeat(100), "e".repeat(100), "f".repeat(50), "data dir"];
      const dir = { arg: [parent.arg, ...segments].join(platform.sep), host: join(parent.host, ...segments) };
      expect(dir.arg.length).toBeGreaterThan(260);
      {
        await using server = await serve(dir);
        expect((await put(server, "long", "long path bytes")).status).toBe(201);
        expect(await (await server.request("/Binary/long", { headers: auth })).text()).toBe(
          "long path bytes",
        );
        expect(await server.stop(platform.stopSignal)).toBe(0);
      }
      expect(readdirSync(join(dir.host, "binary"))).not.toEqual([]);
      const verify = await run(["verify", "--data", dir.arg]);
      expect(verify.stdout).toContain(" 0 findings");
      expect(verify.exitCode).toBe(0);
    }, 120_000);

    test.skipIf(fatProblem !== null)(
      "a data directory on FAT (no hard links, as on most USB disks) is refused at start, naming the reason",
      async () => {
        using dir = platform.dataDir("fat");
        using _ = mountVfat(dirname(dir.host));
        const refused = await run(serveArgs(dir));
        expect(refused.exitCode).toBe(1);
        expect(refused.stderr).toContain(
          `the data directory ${dir.arg} is on a file system without hard links`,
        );
      },
      90_000,
    );

    test("a write flushes the directories it adds names to (on Windows, FlushFileBuffers on each)", async () => {
      using dir = platform.dataDir("flush");
      using traceDir = tempDir("fhirbin-trace-");
      const trace = join(traceDir.path, "fsync.trace");
      // strace follows fhirbin and its threads; -y names each descriptor's file as this machine sees it.
      const tracer = ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o", trace];
      await using server = await startFhirbin(serveArgs(dir), {
        command: [...tracer, ...platform.command],
        startMs: platform.startMs * 2,
      });
      // The traced process is strace's child; it is the one to stop (and to kill should the test fail).
      await using traced = tracee(server.pid);
      const body = "flushed bytes";
      expect((await put(server, "flushed", body)).status).toBe(201);
      const sha256 = new Bun.CryptoHasher("sha256").update(body).digest("hex");
      const fan = new Bun.CryptoHasher("sha256").update("flushed").digest("hex").slice(0, 2);
      const flushed = [join(dir.host, "blobs", "sha256", sha256.slice(0, 2)), join(dir.host, "binary", fan)];
      // Answered only after both flushes; strace writes each line as the call returns.
      const lines = readFileSync(trace, "utf8").split("\n");
      for (const path of flushed) expect(lines.some((line) => line.includes(`<${path}>) = 0`))).toBe(true);
      traced.kill(platform.stopSignal);
      expect(await server.exited(platform.startMs)).toBe(0);
    }, 120_000);

    test("import, export --all and verify through the executable", async () => {
      using dir = platform.dataDir("tools");
      using files = platform.dataDir("files");
      await Bun.write(join(files.host, "letter-1.txt"), "letter one");
      await Bun.write(join(files.host, "scan 2.pdf"), "%PDF-1.4 scan");
      const imported = await run(["import", files.arg, "--data", dir.arg, "--id-from-filename"]);
      expect(imported.exitCode).toBe(0);

      using out = platform.dataDir("export");
      const exported = await run(["export", "--all", out.arg, "--data", dir.arg]);
      expect(exported.exitCode).toBe(0);
      expect(readdirSync(out.host).length).toBeGreaterThan(0);

      const verify = await run(["verify", "--data", dir.arg]);
      expect(verify.exitCode).toBe(0);

      await using server = await serve(dir);
      expect(await (await server.request("/Binary/letter-1", { headers: auth })).text()).toBe("letter one");
    }, 180_000);
  });
}

/** Ids whose file names Windows and macOS would fold together, or take for a device, or strip the dot of. */
const AWKWARD_IDS = [
  "Abc",
  "abc",
  "ABC",
  "CON",
  "con",
  "NUL",
  "COM1",
  "aux",
  "Con.txt",
  "LPT9.pdf",
  "a.",
  "a",
];

function put(server: Server, id: string, body: string): Promise<Response> {
  return server
    .request(`/Binary/${id}`, { method: "PUT", headers: { ...auth, "content-type": "text/plain" }, body })
    .then(async (response) => {
      await response.arrayBuffer();
      return response;
    });
}

/** The process that `pid` (strace) started, killed when disposed if it is still running. */
function tracee(pid: number): { kill(signal: NodeJS.Signals): void } & AsyncDisposable {
  const child = Number(readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ")[0]);
  const kill = (signal: NodeJS.Signals): void => {
    try {
      process.kill(child, signal);
    } catch {
      // Gone already.
    }
  };
  return { kill, [Symbol.asyncDispose]: async () => kill("SIGKILL") };
}

/** What /proc calls a process: its program's file name. */
function processName(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
}

/** The peak resident set of a process (VmHWM), read from /proc: Wine and qemu run as Linux processes. */
function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
  return kib * 1024;
}
