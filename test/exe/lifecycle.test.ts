/**
 * The life cycle of the executable: one process per data directory (the lock, stale locks taken over),
 * SIGTERM and SIGINT ending it cleanly, and an upload in flight at SIGTERM still completing.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { type Server, spawnFhirbin, startFhirbin, tempDir, waitUntil, withDeadline } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";

/** Answers once the server serves requests (and so has set up everything that follows startup). */
async function expectServing(server: Server): Promise<void> {
  const res = await server.request("/metadata");
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** The pid of a process that has certainly exited. */
async function deadPid(): Promise<number> {
  const proc = Bun.spawn(["true"]);
  expect(await proc.exited).toBe(0);
  return proc.pid;
}

describe("one process per data directory", () => {
  test("a second process refuses to start; after the first stops, a new one starts", async () => {
    using dir = tempDir();
    const lock = join(dir.path, ".lock");
    const args = ["--port", "0", "--data", dir.path, "--token", TOKEN];
    await using first = await startFhirbin(args);
    await expectServing(first);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: first.pid, host: hostname() });

    await using second = spawnFhirbin(args);
    expect(await second.exited()).toBe(1);
    expect(second.stdout.text).toBe("");
    expect(second.stderr.text).toStartWith(
      `fhirbin: the data directory ${dir.path} is in use by process ${first.pid} on ${hostname()} `,
    );
    expect(second.stderr.text).toEndWith("; stop it first\n");

    // The refused process left the first one and its lock alone.
    await expectServing(first);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: first.pid });

    expect(await first.stop("SIGTERM")).toBe(0);
    expect(existsSync(lock)).toBe(false);

    await using third = await startFhirbin(args);
    await expectServing(third);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: third.pid });
    expect(await third.stop("SIGTERM")).toBe(0);
  });

  test("a stale lock left by a dead process is taken over", async () => {
    using dir = tempDir();
    const lock = join(dir.path, ".lock");
    const pid = await deadPid();
    writeFileSync(lock, `${JSON.stringify({ pid, host: hostname(), started: new Date().toISOString() })}\n`);

    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    await expectServing(server);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: server.pid, host: hostname() });
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });

  test("a lock torn by a crash (not JSON) is taken over", async () => {
    using dir = tempDir();
    const lock = join(dir.path, ".lock");
    writeFileSync(lock, '{"pid": 12');

    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    await expectServing(server);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: server.pid });
    expect(await server.stop("SIGTERM")).toBe(0);
  });

  // The lock is the operating system's: a `.lock` that names another host (a container started again under
  // a new host name) is only a leftover, which kept such a store locked for good.
  test("a .lock naming another host, with no process holding the lock, is taken over", async () => {
    using dir = tempDir();
    const lock = join(dir.path, ".lock");
    const holder = { pid: await deadPid(), host: `not-${hostname()}`, started: new Date().toISOString() };
    writeFileSync(lock, `${JSON.stringify(holder)}\n`);

    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    await expectServing(server);
    expect(JSON.parse(readFileSync(lock, "utf8"))).toMatchObject({ pid: server.pid, host: hostname() });
    expect(await server.stop("SIGTERM")).toBe(0);
  });
});

describe("signals", () => {
  test.each(["SIGTERM", "SIGINT"] as const)(
    "%s stops the server with exit status 0 and releases the lock",
    async (signal) => {
      using dir = tempDir();
      await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
      await expectServing(server);
      expect(await server.stop(signal)).toBe(0);
      expect(server.stderr.text).toContain("stopping: finishing requests in flight\n");
      expect(existsSync(join(dir.path, ".lock"))).toBe(false);
      expect(server.stdout.lines).toEqual([`listening on ${server.base}`]);
    },
  );

  // Regression: the `listening on` line was printed before the SIGTERM/SIGINT listeners were installed, so a
  // supervisor stopping the server as soon as it reported ready killed it outright (no clean exit, lock left).
  test("SIGTERM sent as soon as the `listening on` line appears still stops the server cleanly", async () => {
    const ATTEMPTS = 10;
    using dir = tempDir();
    const outcomes: Array<{ exitCode: number | null; signalCode: NodeJS.Signals | number | null }> = [];
    // A race, so several attempts: before the fix at least a quarter of them were killed.
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--auth", "off"]);
      await server.stop("SIGTERM");
      outcomes.push({ exitCode: server.process.exitCode, signalCode: server.process.signalCode });
    }
    expect(outcomes).toEqual(Array(ATTEMPTS).fill({ exitCode: 0, signalCode: null }));
    // Ten process starts: more than bun's 5 s default on a loaded 2-core machine.
  }, 60_000);

  test("an upload in flight when SIGTERM arrives completes (201) before the process exits 0", async () => {
    using dir = tempDir();
    const args = ["--port", "0", "--data", dir.path, "--token", TOKEN];
    const chunks = Array.from({ length: 4 }, (_, i) => new TextEncoder().encode(`chunk ${i} `.repeat(4096)));
    let id: string;
    {
      await using server = await startFhirbin(args);
      await expectServing(server);

      let sendRest = (): void => {};
      const restMayFollow = new Promise<void>((resolve) => {
        sendRest = resolve;
      });
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(chunks[0] as Uint8Array);
          void (async () => {
            await restMayFollow;
            // A slow client: the remaining chunks trickle in over ~300 ms.
            for (const chunk of chunks.slice(1)) {
              await Bun.sleep(100);
              controller.enqueue(chunk);
            }
            controller.close();
          })();
        },
      });
      const response = server.request(
        "/Binary",
        { method: "POST", body, headers: { "content-type": "text/plain" }, duplex: "half" } as RequestInit,
        TOKEN,
      );

      // The server is streaming this upload to a temp file: the request is in flight.
      const tmp = join(dir.path, "tmp");
      await waitUntil(() => readdirSync(tmp).length > 0, "the upload to reach the store");
      server.process.kill("SIGTERM");
      await server.stderr.waitFor(/^stopping: /m, "the server to begin stopping");
      sendRest();

      const res = await withDeadline(response, "the response to the upload");
      expect(res.status).toBe(201);
      await res.arrayBuffer();
      id = /\/Binary\/([^/]+)\/_history\/1$/.exec(res.headers.get("location") ?? "")?.[1] ?? "";
      expect(await server.exited()).toBe(0);
    }
    {
      // The upload was committed whole.
      await using server = await startFhirbin(args);
      const read = await server.request(`/Binary/${id}`, {}, TOKEN);
      expect(read.status).toBe(200);
      expect(new Uint8Array(await read.arrayBuffer())).toEqual(new Uint8Array(Buffer.concat(chunks)));
      expect(await server.stop("SIGTERM")).toBe(0);
    }
  });
});
