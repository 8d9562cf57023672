/**
 * A body declared `Content-Encoding: gzip` that holds no complete gzip member is malformed (400), not an
 * empty document: `gzip -c missing-file | curl ... --data-binary @-` sends exactly that.
 */
import { expect, test } from "bun:test";
import { startServer } from "../harness.ts";

const member = Bun.gzipSync(new TextEncoder().encode("a scanned page"));

test.each([
  ["an empty body", new Uint8Array(0)],
  ["a gzip header only", member.subarray(0, 10)],
  ["a member cut short", member.subarray(0, member.length - 4)],
])("an empty gzip stream (%s) is refused with 400 and nothing is stored", async (_, body) => {
  await using server = await startServer();
  const response = await server.request("/Binary", {
    method: "POST",
    headers: { "content-type": "image/tiff", "content-encoding": "gzip" },
    body,
  });
  const outcome = (await response.json()) as { issue: Array<{ code: string }> };
  expect({ status: response.status, code: outcome.issue[0]?.code }).toEqual({ status: 400, code: "invalid" });
  const search = await server.request("/Binary?_summary=count");
  expect(((await search.json()) as { total: number }).total).toBe(0);
});
