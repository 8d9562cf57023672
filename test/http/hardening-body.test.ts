/**
 * Request bodies and requests that must cost little and be answered as the client's fault: FHIR bodies
 * parsed whole are capped at 4 MiB of decoded bytes (gzip bombs of a Patient included), and deep XML,
 * broken chunked framing, clients gone mid-upload, HTTP/1.0 without Host and CONNECT are 400s, never an
 * "unexpected error" or a server failure in the audit trail.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { BUFFERED_PARSE_LIMIT } from "../../src/fhir/binary.ts";
import { type AuditFacts, auditLine } from "../../src/security/audit.ts";
import { withDeadline } from "../deadline.ts";
import { startFhirbin, tempDir, WAIT_MS, waitUntil } from "../exe/spawn.ts";
import { startServer, TEST_TOKEN, type TestServer } from "../harness.ts";

const MiB = 1024 * 1024;
const AUTH = `Authorization: Bearer ${TEST_TOKEN}\r\n`;

/** Items (log lines, audit events) as they arrive, with a wait for the first that matches. */
class Collected<T> {
  readonly items: T[] = [];
  #wake = new Set<() => void>();

  push = (item: T): void => {
    this.items.push(item);
    for (const wake of this.#wake) wake();
  };

  /** The first item from index `from` on that matches, once there is one. */
  async waitFor(matches: (item: T) => boolean, what: string, from = 0): Promise<T> {
    let wake: () => void = () => {};
    const found = new Promise<T>((resolve) => {
      wake = () => {
        const item = this.items.slice(from).find(matches);
        if (item !== undefined) resolve(item);
      };
      this.#wake.add(wake);
      wake();
    });
    try {
      return await withDeadline(found, what, WAIT_MS);
    } finally {
      this.#wake.delete(wake);
    }
  }
}

/** A document of `size` bytes, `head` + `fill`... + `tail`, gzip-compressed: hundreds of times smaller. */
function gzipBomb(head: string, tail: string, size: number, fill = "a"): Uint8Array {
  const text = Buffer.alloc(size, fill);
  text.write(head);
  text.write(tail, size - tail.length);
  return Bun.gzipSync(text);
}
const jsonPatientBomb = (size: number): Uint8Array =>
  gzipBomb('{"resourceType":"Patient","text":"', '"}', size);
const xmlPatientBomb = (size: number): Uint8Array =>
  gzipBomb('<Patient xmlns="http://hl7.org/fhir"><text value="', '"/></Patient>', size);

// Errors come back as FHIR JSON whatever syntax was sent.
const ACCEPT_JSON = { accept: "application/fhir+json" };
const gzipped = (body: Uint8Array, contentType: string): RequestInit => ({
  method: "POST",
  body,
  headers: { "content-type": contentType, "content-encoding": "gzip", ...ACCEPT_JSON },
});

/** The status of a response, once its body has been read. */
async function drainedStatus(response: Response): Promise<number> {
  await response.arrayBuffer();
  return response.status;
}

/** The status and the OperationOutcome's diagnostics of a response. */
async function outcomeOf(response: Response): Promise<{ status: number; diagnostics: string }> {
  const text = await response.text();
  const outcome = JSON.parse(text) as { resourceType: string; issue: { diagnostics: string }[] };
  expect(outcome.resourceType).toBe("OperationOutcome");
  return { status: response.status, diagnostics: outcome.issue[0]?.diagnostics ?? "" };
}

/** Sends raw bytes and resolves with everything the server sent back until it closed (or we did). */
function rawExchange(
  origin: string,
  parts: readonly (string | (() => Promise<void>))[],
  { closeAfter = false }: { closeAfter?: boolean } = {},
): Promise<string> {
  const url = new URL(origin);
  return withDeadline(
    new Promise<string>((resolve, reject) => {
      let data = "";
      const socket = connect(Number(url.port), url.hostname, async () => {
        for (const part of parts) {
          if (typeof part === "string") socket.write(part);
          else await part();
        }
        if (closeAfter) socket.destroy();
      });
      socket.on("data", (chunk) => {
        data += chunk.toString("latin1");
        // A complete response with a Content-Length: nothing more to wait for.
        const head = data.indexOf("\r\n\r\n");
        const length = /\r\ncontent-length: (\d+)\r\n/i.exec(data.slice(0, head + 2))?.[1];
        if (head >= 0 && length !== undefined && data.length >= head + 4 + Number(length)) socket.destroy();
      });
      socket.on("error", reject);
      socket.on("close", () => resolve(data));
    }),
    "a raw exchange",
    WAIT_MS,
  );
}

/** Splits a raw HTTP response into its status and its JSON body. */
function parseRaw(response: string): { status: number; body: { resourceType?: string } } {
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0);
  const text = response.slice(response.indexOf("\r\n\r\n") + 4);
  return { status, body: text ? (JSON.parse(text) as { resourceType?: string }) : {} };
}

/** The peak resident memory of a process so far (Linux VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN) / 1024;
}

let srv: TestServer;
const logs = new Collected<string>();
const audits = new Collected<AuditFacts>();
beforeAll(async () => {
  srv = await startServer({
    args: ["--max-size", "64MiB"],
    log: logs.push,
    audit: {
      record: async (facts) => {
        audits.push(facts);
      },
      flush: async () => {},
    },
  });
});
afterAll(async () => {
  await srv?.[Symbol.asyncDispose]();
});

/** Files below the data directory's `binary/` (sidecars): what a refused write must not add. */
const sidecars = (): string[] =>
  readdirSync(join(srv.dataDir, "binary"), { recursive: true }).map(String).sort();

describe("FHIR bodies parsed whole are capped at 4 MiB of decoded bytes", () => {
  test("a gzip bomb of a FHIR JSON Patient is refused with 413 naming the 4 MiB cap, nothing stored", async () => {
    const before = sidecars();
    const bomb = jsonPatientBomb(256 * MiB);
    expect(bomb.length).toBeLessThan(MiB);
    const { status, diagnostics } = await outcomeOf(
      await srv.request("/Binary", gzipped(bomb, "application/fhir+json")),
    );
    expect({ status, names: diagnostics.includes("at most 4 MiB once decoded") }).toEqual({
      status: 413,
      names: true,
    });
    expect(sidecars()).toEqual(before);
  });

  test("a gzip bomb of a FHIR XML Patient is refused with 413 naming the 4 MiB cap, nothing stored", async () => {
    const before = sidecars();
    const { status, diagnostics } = await outcomeOf(
      await srv.request("/Binary", gzipped(xmlPatientBomb(256 * MiB), "application/fhir+xml")),
    );
    expect({ status, names: diagnostics.includes("at most 4 MiB once decoded") }).toEqual({
      status: 413,
      names: true,
    });
    expect(sidecars()).toEqual(before);
  });

  test("a FHIR JSON Patient just under the cap is still stored as sent", async () => {
    const body = `{"resourceType":"Patient","text":"${"a".repeat(BUFFERED_PARSE_LIMIT - 64)}"}`;
    const res = await srv.request("/Binary", {
      method: "POST",
      body,
      headers: { "content-type": "application/fhir+json" },
    });
    expect(res.status).toBe(201);
    const read = await srv.request(new URL(res.headers.get("location") ?? "").pathname.slice(5));
    expect(await read.text()).toBe(body);
  });

  test("a JSON Binary over 4 MiB with its payload before resourceType is 413, saying to put the payload last", async () => {
    const body = JSON.stringify({
      contentType: "application/pdf",
      data: new Uint8Array(4 * MiB).toBase64(),
      resourceType: "Binary",
    });
    const { status, diagnostics } = await outcomeOf(
      await srv.request("/Binary", {
        method: "POST",
        body,
        headers: { "content-type": "application/fhir+json" },
      }),
    );
    expect({
      status,
      advice: /resourceType.*first and the payload .* last.* raw bytes/.test(diagnostics),
    }).toEqual({ status: 413, advice: true });
  });

  test.each([
    [
      "JSON",
      "application/fhir+json",
      '{"resourceType":"Binary","contentType":"text/plain",',
      (i: number) => `"x${i}":"${"b".repeat(1000)}",`,
      '"data":"aGk="}',
    ],
    [
      "XML",
      "application/fhir+xml",
      '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/>',
      (i: number) => `<!-- ${i} ${"b".repeat(1000)} -->`,
      '<data value="aGk="/></Binary>',
    ],
  ])(
    "a streamed %s Binary with over 4 MiB of elements besides its payload is refused with 413",
    async (_name, contentType, head, filler, tail) => {
      const body = head + Array.from({ length: 5000 }, (_, i) => filler(i)).join("") + tail;
      const { status, diagnostics } = await outcomeOf(
        await srv.request("/Binary", gzipped(Bun.gzipSync(body), contentType)),
      );
      expect({ status, diagnostics }).toEqual({
        status: 413,
        diagnostics: "The Binary's elements other than the payload exceed 4 MiB",
      });
    },
  );

  test.each([
    ["gzip", (bytes: Uint8Array<ArrayBuffer>) => Bun.gzipSync(bytes)],
    ["deflate", (bytes: Uint8Array<ArrayBuffer>) => new Uint8Array(deflateSync(bytes))],
    ["raw deflate", (bytes: Uint8Array<ArrayBuffer>) => Bun.deflateSync(bytes)],
  ])("a %s bomb of a raw upload is cut at --max-size counted on decoded bytes", async (coding, compress) => {
    const before = sidecars();
    const bomb = compress(new Uint8Array(128 * MiB));
    expect(bomb.length).toBeLessThan(MiB);
    const res = await srv.request("/Binary", {
      method: "POST",
      body: bomb,
      headers: { "content-type": "application/octet-stream", "content-encoding": coding.replace("raw ", "") },
    });
    expect(await outcomeOf(res)).toEqual({
      status: 413,
      diagnostics: `The content is larger than the limit of ${64 * MiB} bytes`,
    });
    expect(sidecars()).toEqual(before);
  });
});

describe("gzip bombs against the executable", () => {
  test("a gzip bomb of a FHIR JSON and of an XML Patient is refused without the peak RSS growing 48 MiB", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([
      ...["--port", "0", "--data", dir.path, "--token", TEST_TOKEN, "--max-size", "64MiB"],
      ...["--log-format", "off"],
    ]);
    const post = (body: Uint8Array, contentType: string): Promise<number> =>
      server.request("/Binary", gzipped(body, contentType), TEST_TOKEN).then(drainedStatus);
    // Warm-up: the same code paths (inflating, buffering, refusing) once each, so only the bombs are measured.
    for (const size of [64 * 1024, 5 * MiB]) {
      await post(jsonPatientBomb(size), "application/fhir+json");
      await post(xmlPatientBomb(size), "application/fhir+xml");
    }
    const baseline = peakRssMiB(server.pid);
    // 32 MiB once inflated: under the old whole-body limit (85 MiB here), where parsing it took 160+ MiB.
    const statuses = [
      await post(jsonPatientBomb(32 * MiB), "application/fhir+json"),
      await post(xmlPatientBomb(32 * MiB), "application/fhir+xml"),
    ];
    const growth = Math.round(peakRssMiB(server.pid) - baseline);
    expect({ statuses, growth: growth < 48 ? "under 48 MiB" : `${growth} MiB` }).toEqual({
      statuses: [413, 413],
      growth: "under 48 MiB",
    });
  });

  test("/metadata still answers while three gzip bombs of a Patient are refused", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([
      ...["--port", "0", "--data", dir.path, "--token", TEST_TOKEN, "--log-format", "off"],
    ]);
    // 64 MiB of `[0,0,0...]` from 290 KB: parsed whole, the three stalled /metadata for 7 s and took 1.2 GB.
    const bomb = gzipBomb('{"resourceType":"Patient","x":[0', "]}", 64 * MiB, ",0");
    let settled = false;
    const bombs = Promise.all(
      Array.from({ length: 3 }, () =>
        server.request("/Binary", gzipped(bomb, "application/fhir+json"), TEST_TOKEN).then(drainedStatus),
      ),
    ).finally(() => {
      settled = true;
    });
    const metadata: number[] = [];
    do {
      // A deadline on availability, not a speed target.
      metadata.push(
        await withDeadline(
          server.request("/metadata").then(drainedStatus),
          "/metadata while gzip bombs are sent",
          3_000,
        ),
      );
    } while (!settled);
    expect({ bombs: await bombs, metadata: [...new Set(metadata)] }).toEqual({
      bombs: [413, 413, 413],
      metadata: [200],
    });
  });
});

describe("the client's errors are answered and logged as the client's", () => {
  /** Waits for the log line and audit event of a PUT, then checks no unexpected error was logged. */
  async function recordedAs(id: string, status: number): Promise<void> {
    const path = `/fhir/Binary/${id}`;
    const line = await logs.waitFor((line) => line.includes(` PUT ${path} `), `the log line of ${path}`);
    const audit = await audits.waitFor((facts) => facts.id === id, `the audit event of ${path}`);
    expect({
      logged: Number(line.split(" ")[4]),
      audited: audit.status,
      outcome: JSON.parse(auditLine(audit)).outcome,
    }).toEqual({ logged: status, audited: status, outcome: "4" });
    // A whole round trip after it: anything the failed request still had to log is logged by now.
    await (await srv.request("/metadata", { auth: false })).arrayBuffer();
    expect(logs.items.filter((line) => line.includes("unexpected error"))).toEqual([]);
  }

  test("FHIR XML nested deeper than 100 elements is a 400, not an unexpected error", async () => {
    const deep = `<Patient xmlns="http://hl7.org/fhir">${"<a>".repeat(150)}${"</a>".repeat(150)}</Patient>`;
    const res = await srv.request("/Binary/deep-xml", {
      method: "PUT",
      body: deep,
      headers: { "content-type": "application/fhir+xml", ...ACCEPT_JSON },
    });
    expect((await outcomeOf(res)).status).toBe(400);
    await recordedAs("deep-xml", 400);
  });

  test("a FHIR XML Binary nested deeper than 100 elements is a 400 while streaming", async () => {
    const deep = `<Binary xmlns="http://hl7.org/fhir">${"<a>".repeat(150)}${"</a>".repeat(150)}</Binary>`;
    const { status, diagnostics } = await outcomeOf(
      await srv.request("/Binary", {
        method: "POST",
        body: deep,
        headers: { "content-type": "application/fhir+xml", ...ACCEPT_JSON },
      }),
    );
    expect({ status, diagnostics }).toEqual({
      status: 400,
      diagnostics: "Malformed XML: elements nested more than 100 deep",
    });
  });

  /** A wait until the store opens a new temp file (an upload whose body it reads), from now on. */
  const uploadStarts = (): (() => Promise<void>) => {
    const tmp = join(srv.dataDir, "tmp");
    const before = new Set(readdirSync(tmp));
    return () => waitUntil(() => readdirSync(tmp).some((name) => !before.has(name)), "an upload's temp file");
  };

  test("malformed chunked framing mid-upload is a client error: no unexpected error, audited as the client's", async () => {
    const path = "/fhir/Binary/bad-chunks";
    const answer = await rawExchange(srv.origin, [
      `PUT ${path} HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
      "5\r\nhello\r\n",
      uploadStarts(),
      "ZZ\r\nnot a chunk\r\n0\r\n\r\n",
    ]);
    // Bun answers broken framing itself and closes the connection.
    expect(answer).toStartWith("HTTP/1.1 400");
    await recordedAs("bad-chunks", 400);
  });

  test("a client that disconnects mid-upload leaves no unexpected error and no server failure", async () => {
    const path = "/fhir/Binary/gone-raw";
    const answer = await rawExchange(
      srv.origin,
      [
        `PUT ${path} HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\n`,
        "only the start of the body",
        uploadStarts(),
      ],
      { closeAfter: true },
    );
    expect(answer).toBe("");
    await recordedAs("gone-raw", 400);
  });

  test("a client that disconnects mid-way through a streamed FHIR Binary leaves no unexpected error", async () => {
    const path = "/fhir/Binary/gone-fhir";
    await rawExchange(
      srv.origin,
      [
        `PUT ${path} HTTP/1.1\r\nHost: x\r\n${AUTH}Content-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n`,
        '{"resourceType":"Binary","id":"gone-fhir","data":"aGVsbG8g',
        uploadStarts(),
      ],
      { closeAfter: true },
    );
    await recordedAs("gone-fhir", 400);
  });

  test.each([
    ["GET /fhir/metadata HTTP/1.0\r\n\r\n", "/fhir/metadata"],
    [`GET /fhir/Binary/x HTTP/1.0\r\n${AUTH}\r\n`, "/fhir/Binary/x"],
    [
      `POST /fhir/Binary HTTP/1.0\r\n${AUTH}Content-Type: text/plain\r\nContent-Length: 1\r\n\r\nx`,
      "/fhir/Binary",
    ],
  ])("an HTTP/1.0 request without Host is a 400 OperationOutcome: %j", async (request, path) => {
    const from = logs.items.length;
    const { status, body } = parseRaw(await rawExchange(srv.origin, [request]));
    expect({ status, resourceType: body.resourceType }).toEqual({
      status: 400,
      resourceType: "OperationOutcome",
    });
    const line = await logs.waitFor((line) => line.includes(` ${path} `), `the log line of ${path}`, from);
    expect(Number(line.split(" ")[4])).toBe(400);
    expect(logs.items.filter((line) => line.includes("unexpected error"))).toEqual([]);
  });

  test.each(["127.0.0.1:443", "example.com:443"])(
    "CONNECT %s is a 400 OperationOutcome",
    async (authority) => {
      const { status, body } = parseRaw(
        await rawExchange(srv.origin, [`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`]),
      );
      expect({ status, resourceType: body.resourceType }).toEqual({
        status: 400,
        resourceType: "OperationOutcome",
      });
      expect(logs.items.filter((line) => line.includes("unexpected error"))).toEqual([]);
    },
  );
});
