/**
 * Operations through the compiled executable: /healthz, /readyz and /metrics without a token, the request
 * log on stderr in both formats, and X-Request-ID echoed.
 */
import { describe, expect, test } from "bun:test";
import { startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";

describe("operations endpoints of the executable", () => {
  test("/healthz, /readyz and /metrics answer without a token; the text log has one line per request", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    const health = await fetch(`${server.origin}/healthz`, { headers: { "x-request-id": "probe-1" } });
    expect(health.status).toBe(200);
    expect(health.headers.get("x-request-id")).toBe("probe-1");
    expect(await health.json()).toEqual({ status: "ok" });
    // A new store's search index catches up in the background just after start: ready within seconds.
    let ready = await fetch(`${server.origin}/readyz`);
    for (let tries = 0; ready.status === 503 && tries < 100; tries++) {
      await ready.arrayBuffer();
      await Bun.sleep(50);
      ready = await fetch(`${server.origin}/readyz`);
    }
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { searchIndex: true, store: true } });

    const created = await server.request(
      "/Binary?access_token=NOT-IN-THE-LOG",
      { method: "POST", headers: { "content-type": "text/plain" }, body: "hello" },
      TOKEN,
    );
    expect(created.status).toBe(201);
    await created.arrayBuffer();

    const metrics = await fetch(`${server.origin}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('fhirbin_http_requests_total{interaction="create",status="201"} 1\n');
    expect(text).toContain('fhirbin_http_requests_total{interaction="ops",status="200"} 2\n');
    expect(text).toContain("fhirbin_store_content_bytes_written_total 5\n");

    await server.stderr.waitFor(/ POST \/fhir\/Binary 201 /m, "the log line of the create");
    expect(server.stderr.text).toMatch(/^\S+Z probe-1 GET \/healthz 200 16 [\d.]+ms$/m);
    expect(server.stderr.text).not.toContain("NOT-IN-THE-LOG");
    expect(await server.stop()).toBe(0);
  });

  test("--log-format json writes JSON lines with a generated request id echoed to the client", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([
      "--port",
      "0",
      "--data",
      dir.path,
      "--auth",
      "off",
      "--log-format",
      "json",
    ]);
    const res = await server.request("/Binary/unknown");
    expect(res.status).toBe(404);
    // A read is answered by Bun's router (hot-read.ts), so even its error's body size is logged.
    const bytes = (await res.arrayBuffer()).byteLength;
    const id = res.headers.get("x-request-id") ?? "";
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const [line = ""] = await server.stderr.waitFor(/^\{.*"status":404.*\}$/m, "the JSON log line");
    expect(JSON.parse(line)).toEqual({
      time: expect.stringMatching(/Z$/),
      requestId: id,
      method: "GET",
      path: "/fhir/Binary/unknown",
      status: 404,
      bytes,
      ms: expect.any(Number),
    });
    expect(await server.stop()).toBe(0);
  });

  test("an invalid --log-format is a usage error", async () => {
    using dir = tempDir();
    const { runFhirbin } = await import("./spawn.ts");
    const result = await runFhirbin(["--data", dir.path, "--log-format", "xml"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--log-format: "xml" must be text, json or off');
  });
});
