/**
 * Concurrency through HTTP (issue 3), against the compiled executable: concurrent writers to one id never
 * lose or duplicate a version, If-Match and If-None-Match: * let exactly one of them win, and a read never
 * sees a mix of two versions.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { tempDir } from "../harness.ts";
import { Fhirbin, historyVersions, isContiguous, sha256Hex, versionOf } from "./exe.ts";

const WRITERS = 50;

const dir = tempDir("fhirbin-concurrency-");
let server: Fhirbin;
beforeAll(async () => {
  server = await Fhirbin.start({ dataDir: dir.path });
});
afterAll(async () => {
  await server[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

/** Sends `count` PUTs to `id` at once, body i being `body-<i>`; resolves with the responses in order. */
async function racingPuts(
  id: string,
  count: number,
  headers: Record<string, string> = {},
): Promise<Response[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      server.request(`/Binary/${id}`, {
        method: "PUT",
        body: `body-${i}`,
        headers: { "content-type": "text/plain", ...headers },
      }),
    ),
  );
}

/** How many responses had each status. */
function statusCounts(responses: Response[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const res of responses) counts[res.status] = (counts[res.status] ?? 0) + 1;
  return counts;
}

async function readText(path: string): Promise<string> {
  const res = await server.request(path);
  expect(res.status).toBe(200);
  return res.text();
}

describe("concurrent writers to one id", () => {
  test(`${WRITERS} PUTs without If-Match make ${WRITERS} contiguous versions, each holding its own body`, async () => {
    const responses = await racingPuts("race-plain", WRITERS);
    expect(statusCounts(responses)).toEqual({ 200: WRITERS - 1, 201: 1 });
    const versions = responses.map(versionOf);
    expect([...versions].sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: WRITERS }, (_, i) => i + 1),
    );
    const history = await historyVersions(server, "race-plain");
    expect(history).toHaveLength(WRITERS);
    expect(isContiguous(history)).toBe(true);
    const bodies = await Promise.all(versions.map((v) => readText(`/Binary/race-plain/_history/${v}`)));
    expect(bodies).toEqual(responses.map((_, i) => `body-${i}`));
  });

  test(`${WRITERS} PUTs with the same If-Match: one succeeds, ${WRITERS - 1} get 412`, async () => {
    const first = await server.request("/Binary/race-match", {
      method: "PUT",
      body: "original",
      headers: { "content-type": "text/plain" },
    });
    expect(first.status).toBe(201);
    const responses = await racingPuts("race-match", WRITERS, { "if-match": 'W/"1"' });
    expect(statusCounts(responses)).toEqual({ 200: 1, 412: WRITERS - 1 });
    const refused = responses.find((res) => res.status === 412);
    expect(await refused?.json()).toMatchObject({ resourceType: "OperationOutcome" });
    expect(await historyVersions(server, "race-match")).toEqual([2, 1]);
    const winner = responses.findIndex((res) => res.status === 200);
    expect(await readText("/Binary/race-match")).toBe(`body-${winner}`);
  });

  test(`${WRITERS} creates of one new id with If-None-Match: * make exactly one 201`, async () => {
    const responses = await racingPuts("race-create", WRITERS, { "if-none-match": "*" });
    expect(statusCounts(responses)).toEqual({ 201: 1, 412: WRITERS - 1 });
    expect(await historyVersions(server, "race-create")).toEqual([1]);
    const winner = responses.findIndex((res) => res.status === 201);
    expect(await readText("/Binary/race-create")).toBe(`body-${winner}`);
  });
});

describe("reads during a replacing PUT", () => {
  test("return the old or the new bytes in full, never a mix (native and FHIR JSON)", async () => {
    const contents = [0, 1].map(() => crypto.getRandomValues(new Uint8Array(1024 * 1024)));
    const hashes = contents.map(sha256Hex);
    const put = async (content: Uint8Array): Promise<void> => {
      const res = await server.request("/Binary/replaced", {
        method: "PUT",
        body: content,
        headers: { "content-type": "application/octet-stream" },
      });
      expect(res.ok).toBe(true);
      await res.arrayBuffer();
    };
    await put(contents[0] as Uint8Array);

    let writing = true;
    const seen: string[] = [];
    const reader = async (fhir: boolean): Promise<void> => {
      while (writing) {
        const res = await server.request(`/Binary/replaced${fhir ? "?_format=json" : ""}`);
        expect(res.status).toBe(200);
        const bytes = fhir
          ? Uint8Array.fromBase64(((await res.json()) as { content: string }).content)
          : new Uint8Array(await res.arrayBuffer());
        seen.push(sha256Hex(bytes));
      }
    };
    const readers = Array.from({ length: 4 }, (_, i) => reader(i % 2 === 1));
    for (let i = 1; i <= 4; i++) await put(contents[i % 2] as Uint8Array);
    writing = false;
    await Promise.all(readers);

    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(seen.filter((hash) => !hashes.includes(hash))).toEqual([]);
  });
});
