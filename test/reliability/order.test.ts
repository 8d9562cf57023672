/**
 * Durability order (issue 3): one create runs under strace and the system calls must follow storage.md's
 * write order. Bun 1.4 on Linux writes files with write(2) from its thread pool, links with link(2),
 * fsyncs directories opened O_RDONLY, and writes the response with sendto(2) on the accepted socket
 * (epoll, no io_uring); `-yy` names the file or socket behind every descriptor, so no fd bookkeeping is needed.
 * Order is taken from strace's output order (a call's exit line before the next call's entry line), which
 * is exact under ptrace, rather than from timestamps.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "../harness.ts";
import { Fhirbin, sha256Hex } from "./exe.ts";

const SYSCALLS = [
  "openat",
  "open",
  "write",
  "pwrite64",
  "writev",
  "pwritev",
  "pwritev2",
  "fsync",
  "fdatasync",
  "link",
  "linkat",
  "rename",
  "renameat",
  "renameat2",
  "sendto",
  "sendmsg",
  "sendfile",
  "close",
  "io_uring_setup",
  "io_uring_enter",
];
/** Calls that can put response bytes on a socket. */
const SOCKET_WRITES = new Set(["write", "writev", "sendto", "sendmsg", "sendfile"]);

const STRACE = Bun.which("strace");

/** strace's absence (or ptrace being forbidden) skips the suite with a notice, instead of failing it. */
function straceProblem(): string | null {
  if (!STRACE) return "strace is not installed (Debian: apt-get install strace)";
  const probe = Bun.spawnSync([STRACE, "-f", "-o", "/dev/null", "true"], { stderr: "pipe" });
  return probe.exitCode === 0 ? null : `strace cannot trace here: ${probe.stderr.toString().trim()}`;
}
const problem = straceProblem();
if (problem) console.warn(`NOTICE: durability order test SKIPPED: ${problem}`);

/** One system call: where its entry and its exit appear in the trace, its name, arguments and result. */
interface Call {
  entry: number;
  exit: number;
  line: string;
  name: string;
  args: string;
  result: string;
}

/** Parses `strace -f -tt` output (pids are padded to 5 columns), joining `<unfinished ...>` calls with their `resumed` halves. */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const pending = new Map<string, Call>();
  text.split("\n").forEach((line, index) => {
    const unfinished = /^(\d+) +\S+ (\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (unfinished) {
      const [, pid = "", name = "", args = ""] = unfinished;
      pending.set(pid, { entry: index, exit: -1, line, name, args, result: "" });
      return;
    }
    const resumed = /^(\d+) +\S+ <\.\.\. (\w+) resumed>(.*)\) += (.*)$/.exec(line);
    if (resumed) {
      const [, pid = "", , args = "", result = ""] = resumed;
      const call = pending.get(pid);
      pending.delete(pid);
      if (call)
        calls.push({
          ...call,
          exit: index,
          args: call.args + args,
          result,
          line: `${call.line} ... ${line}`,
        });
      return;
    }
    const complete = /^\d+ +\S+ (\w+)\((.*)\) += (.*)$/.exec(line);
    if (complete) {
      const [, name = "", args = "", result = ""] = complete;
      calls.push({ entry: index, exit: index, line, name, args, result });
    }
  });
  return calls.sort((a, b) => a.entry - b.entry);
}

/** The path `strace -yy` shows for a call's first (descriptor) argument. */
const fdPath = (call: Call): string => /^\d+<(.*?)>/.exec(call.args)?.[1] ?? "";
/** The two quoted paths of a link(2). */
const linkPaths = (call: Call): [string, string] => {
  const [, from = "", to = ""] = /^"([^"]*)", "([^"]*)"/.exec(call.args) ?? [];
  return [from, to];
};

/** A traced fhirbin, killed if the test ends before stopping it (strace 6.1 has no --kill-on-exit). */
function killedOnDispose(pid: number): { pid: number } & Disposable {
  return {
    pid,
    [Symbol.dispose]: () => {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone: stopped by the test.
      }
    },
  };
}

/** The one call matching `predicate`; fails listing the calls on files of `dataDir` when there is not one. */
function only(calls: Call[], dataDir: string, what: string, predicate: (call: Call) => boolean): Call {
  const found = calls.filter(predicate);
  if (found.length === 1) return found[0] as Call;
  const context = calls.filter((c) => c.name !== "close" && c.line.includes(dataDir)).map((c) => c.line);
  throw new Error(
    `expected exactly one ${what}, found ${found.length}; calls on the data directory:\n${context.join("\n")}`,
  );
}

/** The first call matching `predicate`, if any. */
const first = (calls: Call[], predicate: (call: Call) => boolean): Call | null =>
  calls.find(predicate) ?? null;

/** "in order" when `earlier` returned before `later` was entered, else both lines, for the failure message. */
const order = (earlier: Call | null, later: Call | null): string =>
  earlier && later && earlier.exit < later.entry
    ? "in order"
    : `${earlier?.line ?? "(never called)"} NOT BEFORE ${later?.line ?? "(never called)"}`;

/** fhirbin started under strace on `dataDir`, writing the trace to `trace`; the pid to signal is fhirbin's. */
async function startTraced(
  dataDir: string,
  trace: string,
): Promise<{ server: Fhirbin; tracee: { pid: number } & Disposable }> {
  const server = await Fhirbin.start({
    dataDir,
    wrapper: [
      STRACE ?? "strace",
      "-f",
      "-yy",
      "-tt",
      "-s",
      "32",
      "-e",
      `trace=${SYSCALLS.join(",")}`,
      "-o",
      trace,
    ],
  });
  // Signals go to fhirbin itself (its pid is in the lock), not to strace, which would detach from it.
  const tracee = killedOnDispose(
    (JSON.parse(readFileSync(join(dataDir, ".lock"), "utf8")) as { pid: number }).pid,
  );
  return { server, tracee };
}

describe.skipIf(problem !== null)("durability order under strace", () => {
  test("content fsync < blob link < blob dir fsync < sidecar link < sidecar dir fsync < first response byte", async () => {
    using dir = tempDir("fhirbin-order-");
    const trace = join(dir.path, "trace");
    const dataDir = join(dir.path, "data");
    const body = crypto.getRandomValues(new Uint8Array(48 * 1024));
    const sha = sha256Hex(body);
    const started = await startTraced(dataDir, trace);
    await using server = started.server;
    using tracee = started.tracee;
    const res = await server.request("/Binary", {
      method: "POST",
      body,
      headers: { "content-type": "application/pdf" },
    });
    expect(res.status).toBe(201);
    await res.arrayBuffer();
    expect(await server.stop("SIGTERM", tracee.pid)).toBe(0);

    const calls = parseTrace(readFileSync(trace, "utf8"));
    expect(calls.filter((call) => call.name.startsWith("io_uring")).map((call) => call.line)).toEqual([]);

    const isLinkTo = (suffix: string) => (c: Call) => c.name === "link" && linkPaths(c)[1].endsWith(suffix);
    const blobLink = only(calls, dataDir, "link into blobs/", isLinkTo(`/${sha}`));
    const [contentTemp, blob] = linkPaths(blobLink);
    const sidecarLink = only(calls, dataDir, "link of a sidecar", isLinkTo(".1.json"));
    const [sidecarTemp, sidecar] = linkPaths(sidecarLink);
    const isFsyncOf =
      (...paths: string[]) =>
      (c: Call) =>
        c.name === "fsync" && paths.includes(fdPath(c));
    const after = (call: Call, predicate: (c: Call) => boolean) => (c: Call) =>
      c.entry > call.exit && predicate(c);
    const contentWrites = calls.filter((c) => c.name === "write" && fdPath(c) === contentTemp);
    // The content's inode has two names once linked: an fsync through either counts.
    const contentFsync = first(calls, isFsyncOf(contentTemp, blob));
    const evidence = {
      lastContentWrite: contentWrites.at(-1) ?? null,
      contentFsync,
      blobLink,
      blobDirFsync: first(calls, after(blobLink, isFsyncOf(dirname(blob)))),
      sidecarFsync: first(calls, isFsyncOf(sidecarTemp)),
      sidecarLink,
      sidecarDirFsync: first(calls, after(sidecarLink, isFsyncOf(dirname(sidecar)))),
      response: first(calls, (c) => SOCKET_WRITES.has(c.name) && fdPath(c).startsWith("TCP")),
    };
    console.log(
      Object.entries(evidence)
        .map(([name, call]) => `${name.padEnd(16)} ${call?.line ?? "(never called)"}`)
        .join("\n"),
    );

    expect({
      "content written before its fsync": order(evidence.lastContentWrite, contentFsync),
      "content fsync before its link into blobs/": order(contentFsync, blobLink),
      "content fsync before the sidecar link": order(contentFsync, sidecarLink),
      "blob directory fsync before the sidecar link": order(evidence.blobDirFsync, sidecarLink),
      "sidecar fsync before its link": order(evidence.sidecarFsync, sidecarLink),
      "sidecar directory fsync before the first response byte": order(
        evidence.sidecarDirFsync,
        evidence.response,
      ),
    }).toEqual({
      "content written before its fsync": "in order",
      "content fsync before its link into blobs/": "in order",
      "content fsync before the sidecar link": "in order",
      "blob directory fsync before the sidecar link": "in order",
      "sidecar fsync before its link": "in order",
      "sidecar directory fsync before the first response byte": "in order",
    });
    expect(evidence.response?.args).toContain("HTTP/1.1 201");
  });

  test("a write's audit event is appended and fsynced, and a read's appended, before their first response byte", async () => {
    using dir = tempDir("fhirbin-order-");
    const trace = join(dir.path, "trace");
    const dataDir = join(dir.path, "data");
    const started = await startTraced(dataDir, trace);
    await using server = started.server;
    using tracee = started.tracee;
    const created = await server.request("/Binary/letter", {
      method: "PUT",
      body: "discharge letter",
      headers: { "content-type": "text/plain" },
    });
    expect(created.status).toBe(201);
    await created.arrayBuffer();
    const read = await server.request("/Binary/letter");
    expect(await read.text()).toBe("discharge letter");
    expect(await server.stop("SIGTERM", tracee.pid)).toBe(0);

    const calls = parseTrace(readFileSync(trace, "utf8"));
    const auditDir = join(dataDir, "audit");
    const isAuditWrite = (c: Call) => c.name === "write" && fdPath(c).startsWith(`${auditDir}/`);
    const isResponse = (status: string) => (c: Call) =>
      SOCKET_WRITES.has(c.name) && fdPath(c).startsWith("TCP") && c.args.includes(`HTTP/1.1 ${status}`);
    const createEvent = first(calls, isAuditWrite);
    const createResponse = first(calls, isResponse("201"));
    const evidence = {
      createEvent,
      createEventFsync: createEvent
        ? first(
            calls,
            (c) => c.entry > createEvent.exit && c.name === "fsync" && fdPath(c) === fdPath(createEvent),
          )
        : null,
      createResponse,
      readEvent: createResponse
        ? first(calls, (c) => c.entry > createResponse.exit && isAuditWrite(c))
        : null,
      readResponse: first(calls, isResponse("200")),
    };
    console.log(
      Object.entries(evidence)
        .map(([name, call]) => `${name.padEnd(16)} ${call?.line ?? "(never called)"}`)
        .join("\n"),
    );
    expect({
      "the create's event written before the 201": order(createEvent, createResponse),
      "the create's event fsynced before the 201": order(evidence.createEventFsync, createResponse),
      "the read's event written before the 200": order(evidence.readEvent, evidence.readResponse),
    }).toEqual({
      "the create's event written before the 201": "in order",
      "the create's event fsynced before the 201": "in order",
      "the read's event written before the 200": "in order",
    });
  });
});
