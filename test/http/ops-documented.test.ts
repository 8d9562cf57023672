/**
 * The README documents every field of `/readyz` and every metric and interaction label of `/metrics`: an
 * operator writing alerts from the README must find every name the endpoints give.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { startServer } from "../harness.ts";

const README = await Bun.file(join(import.meta.dir, "../../README.md")).text();
/** The README's Operations section, up to its Limits. */
const OPERATIONS = README.slice(README.indexOf("## Operations"), README.indexOf("### Limits"));

test("every /readyz check and every /metrics name and interaction is documented in the README", async () => {
  await using server = await startServer({ args: ["--log-format", "off"] });
  // One request of each interaction, so that /metrics names them all.
  const id = (
    await (
      await server.request("/Binary", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "x",
      })
    ).headers.get("location")
  )
    ?.split("/Binary/")[1]
    ?.split("/")[0];
  const requests: Array<[string, RequestInit]> = [
    [`/Binary/${id}`, {}],
    [`/Binary/${id}/_history/1`, {}],
    [`/Binary/${id}/_history`, {}],
    ["/Binary/_history", {}],
    ["/Binary?_count=1", {}],
    [`/Binary/${id}`, { method: "PUT", headers: { "content-type": "text/plain" }, body: "y" }],
    [`/Binary/${id}`, { method: "DELETE" }],
    ["/metadata", {}],
    ["/no-such-route", {}],
  ];
  for (const [path, init] of requests) await (await server.request(path, init)).arrayBuffer();
  await (await fetch(`${server.origin}/healthz`)).arrayBuffer();

  const ready = (await (await fetch(`${server.origin}/readyz`)).json()) as {
    checks: Record<string, boolean>;
  };
  const metrics = await (await fetch(`${server.origin}/metrics`)).text();
  const names = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1] as string);
  const interactions = [
    ...new Set([...metrics.matchAll(/interaction="([^"]+)"/g)].map((m) => m[1] as string)),
  ];

  const undocumented = (found: string[]): string[] =>
    found.filter((name) => !OPERATIONS.includes(`\`${name}\``));
  expect(Object.keys(ready.checks).sort()).toEqual(["searchIndex", "store"]);
  expect(interactions).toContain("history-type");
  expect({
    readyz: undocumented(Object.keys(ready.checks)),
    metrics: undocumented(names),
    interactions: undocumented(interactions),
  }).toEqual({ readyz: [], metrics: [], interactions: [] });
});
