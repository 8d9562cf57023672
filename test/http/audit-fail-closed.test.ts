/**
 * The audit trail fails closed: no access without its audit record. A request is answered only once its
 * event is in the day file; when the event cannot be appended (a full disk) the request gets a 503 and
 * nothing of the document, and the file never keeps a partial line. A read that fails is audited with the
 * status it was answered with. The write-then-fsync order of a write's event is checked under strace in
 * test/reliability/order.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type AuditEvent,
  type AuditSink,
  auditFileName,
  createAuditLog,
  readAuditEvents,
} from "../../src/security/audit.ts";
import { startServer, type TestServer, tempDir } from "../harness.ts";
import { mountProblem, run } from "../tmpfs.ts";

const SECRET_TEXT = "the patient's discharge letter";

/** The day file's lines as written: every one must be a whole AuditEvent, and the file must end a line. */
function trailLines(auditDir: string): string[] {
  const text = readFileSync(join(auditDir, auditFileName(new Date())), "utf8");
  expect(text.endsWith("\n")).toBe(true);
  return text.slice(0, -1).split("\n");
}

/** The request ids of the trail's events; throws on a line that is not JSON. */
function eventIds(auditDir: string): string[] {
  return trailLines(auditDir).map((line) => (JSON.parse(line) as AuditEvent).id);
}

/** Expects the 503 of a request whose event could not be appended: an OperationOutcome and nothing else. */
async function expectRefused(res: Response, method = "GET"): Promise<void> {
  const text = await res.text();
  expect({
    status: res.status,
    retryAfter: res.headers.get("retry-after"),
    requestId: res.headers.get("x-request-id") !== null,
    leaks: text.includes(SECRET_TEXT) || text.includes(Buffer.from(SECRET_TEXT).toString("base64")),
  }).toEqual({ status: 503, retryAfter: "30", requestId: true, leaks: false });
  if (method !== "HEAD") {
    expect(JSON.parse(text)).toMatchObject({
      resourceType: "OperationOutcome",
      issue: [{ code: "transient" }],
    });
  }
}

describe("when the audit trail cannot be appended to", () => {
  const dir = tempDir();
  const auditDir = join(dir.path, "audit");
  const real = createAuditLog(auditDir, () => {});
  let failing = false;
  // The real trail, until the test makes every append fail as a full disk would.
  const sink: AuditSink = {
    record: (facts) =>
      failing
        ? Promise.reject(Object.assign(new Error("no space left"), { code: "ENOSPC" }))
        : real.record(facts),
    flush: () => real.flush(),
  };
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ audit: sink });
    const res = await srv.request("/Binary/letter", {
      method: "PUT",
      body: SECRET_TEXT,
      headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(201);
    failing = true;
  });
  afterAll(async () => {
    await srv?.[Symbol.asyncDispose]();
    dir[Symbol.dispose]();
  });

  test("reads, vreads, histories and searches answer 503 with none of the document", async () => {
    for (const [path, method] of [
      ["/Binary/letter", "GET"],
      ["/Binary/letter", "HEAD"],
      ["/Binary/letter?_format=json", "GET"],
      ["/Binary/letter/_history/1", "GET"],
      ["/Binary/letter/_history", "GET"],
      ["/Binary?_id=letter", "GET"],
      ["/Binary/_history", "GET"],
      ["/Binary/missing", "GET"],
      ["/Binary/missing/_history", "GET"],
    ] as const) {
      await expectRefused(await srv.request(path, { method }), method);
    }
  });

  test("a write whose event cannot be appended is not acknowledged: 503", async () => {
    const res = await srv.request("/Binary/letter", {
      method: "PUT",
      body: `${SECRET_TEXT}, amended`,
      headers: { "content-type": "text/plain" },
    });
    await expectRefused(res);
  });
});

describe("a read whose content file is missing", () => {
  test("is answered 500 and audited as 500, not as the 200 it started as", async () => {
    using dir = tempDir();
    const auditDir = join(dir.path, "audit");
    const sink = createAuditLog(auditDir, () => {});
    await using srv = await startServer({ audit: sink });
    const created = await srv.request("/Binary/lost", {
      method: "PUT",
      body: SECRET_TEXT,
      headers: { "content-type": "text/plain" },
    });
    expect(created.status).toBe(201);
    const sha256 = new Bun.CryptoHasher("sha256").update(SECRET_TEXT).digest("hex");
    unlinkSync(join(srv.dataDir, "blobs", "sha256", sha256.slice(0, 2), sha256));

    const read = await srv.request("/Binary/lost", { headers: { "x-request-id": "lost-read" } });
    const text = await read.text();
    const event = (await readAuditEvents(auditDir, {})).find((e) => e.id === "lost-read");
    expect({
      status: read.status,
      leaks: text.includes(SECRET_TEXT),
      audited: event && { outcome: event.outcome, desc: event.outcomeDesc },
    }).toEqual({ status: 500, leaks: false, audited: { outcome: "8", desc: "HTTP 500" } });
  });
});

describe("a partial last line", () => {
  test("left by a crash is cut back at start-up, logged, and the next event starts on a line of its own", async () => {
    using dir = tempDir();
    const auditDir = join(dir.path, "audit");
    mkdirSync(auditDir);
    const whole = '{"resourceType":"AuditEvent","id":"before-the-crash"}\n';
    writeFileSync(join(auditDir, auditFileName(new Date())), `${whole}{"resourceType":"AuditEv`);
    const logged: string[] = [];
    const sink = createAuditLog(auditDir, (line) => logged.push(line));
    expect(logged).toEqual([expect.stringMatching(/^audit: cut back a partial last line \(24 bytes\) of /)]);
    await using srv = await startServer({ audit: sink });
    const read = await srv.request("/Binary/none", { headers: { "x-request-id": "after-the-crash" } });
    expect(read.status).toBe(404);
    expect(eventIds(auditDir)).toEqual(["before-the-crash", "after-the-crash"]);
  });
});

const problem = mountProblem();
if (problem) console.warn(`NOTICE: audit disk-full tests SKIPPED: cannot mount a tmpfs (${problem})`);

// A small answer waits for the events of its turn, a large one has its event appended at once (logging.ts):
// both must be refused when the event does not fit.
const DOCUMENTS = [
  ["a small document", SECRET_TEXT],
  ["a large document", SECRET_TEXT.repeat(Math.ceil(32_768 / SECRET_TEXT.length))],
] as const;

for (const [label, document] of DOCUMENTS)
  describe.skipIf(problem !== null)(`an audit trail on a full disk, reads of ${label}`, () => {
    // The trail alone on a tiny tmpfs; the store stays on the ordinary temporary disk.
    const mount = mkdtempSync(join(tmpdir(), "fhirbin-audit-full-"));
    const auditDir = join(mount, "audit");
    const filler = join(mount, "filler");
    const logged: string[] = [];
    let srv: TestServer;
    beforeAll(async () => {
      expect(run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mount)).toBeNull();
      srv = await startServer({ audit: createAuditLog(auditDir, (line) => logged.push(line)) });
      const res = await srv.request("/Binary/letter", {
        method: "PUT",
        body: document,
        headers: { "content-type": "text/plain", "x-request-id": "created" },
      });
      expect(res.status).toBe(201);
    });
    afterAll(async () => {
      await srv?.[Symbol.asyncDispose]();
      run("umount", "-l", mount);
      rmSync(mount, { recursive: true, force: true });
    });

    test("reads are refused with 503 once an event does not fit, and no torn line is left", async () => {
      // Every free page taken: the day file can only grow into what is left of its last page.
      const fd = openSync(filler, "w");
      try {
        for (const chunk = new Uint8Array(4096); ; ) writeSync(fd, chunk);
      } catch (error) {
        expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
      } finally {
        closeSync(fd);
      }
      // A page holds a few events at most: the first read past it must be refused.
      const statuses: number[] = [];
      for (let i = 0; i < 50 && !statuses.includes(503); i++) {
        const res = await srv.request("/Binary/letter", { headers: { "x-request-id": `read-${i}` } });
        if (res.status === 503) await expectRefused(res);
        else await res.arrayBuffer();
        statuses.push(res.status);
      }
      expect(statuses.at(-1)).toBe(503);
      expect(statuses.slice(0, -1).every((status) => status === 200)).toBe(true);
      expect(logged).toContain("audit: cannot append to the audit trail: ENOSPC");
      // Only the reads answered are in the trail, each on a whole line.
      expect(eventIds(auditDir)).toEqual(["created", ...statuses.slice(0, -1).map((_, i) => `read-${i}`)]);
    });

    test("with space again, reads are answered and their events follow on lines of their own", async () => {
      const before = eventIds(auditDir);
      rmSync(filler);
      const res = await srv.request("/Binary/letter", { headers: { "x-request-id": "after-space" } });
      expect({ status: res.status, text: await res.text() }).toEqual({ status: 200, text: document });
      expect(eventIds(auditDir)).toEqual([...before, "after-space"]);
    });
  });
