/**
 * The parts of issue 7 the other executable suites do not reach: the offline API docs and the demo app as
 * the executable serves them (embedded assets, no CDN), and `fhirbin verify` finding a flipped byte and a
 * missing blob with a non-zero exit.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runFhirbin, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-docs-token-0123456789";

describe("docs and demo app served by the executable", () => {
  test("/docs references only its embedded script, /docs/json lists the Binary routes, / serves the app", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    const docs = await fetch(`${server.origin}/docs`);
    expect(docs.status).toBe(200);
    const html = await docs.text();
    const scripts = [...html.matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1] ?? "");
    expect(scripts.length).toBeGreaterThan(0);
    for (const src of scripts) {
      expect(src.startsWith("/")).toBe(true);
      const asset = await fetch(server.origin + src);
      expect(asset.status).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
    }
    const spec = (await (await fetch(`${server.origin}/docs/json`)).json()) as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(spec.openapi).toStartWith("3.");
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(["/fhir/Binary", "/fhir/Binary/{id}", "/fhir/Binary/{id}/_history/{vid}"]),
    );
    const app = await fetch(`${server.origin}/`);
    expect(app.status).toBe(200);
    expect(app.headers.get("content-type")).toStartWith("text/html");
    expect(await app.text()).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
  });
});

describe("fhirbin verify through the executable", () => {
  test("a clean store passes; a flipped byte and a missing blob are findings with exit status 1", async () => {
    using dir = tempDir();
    {
      await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
      for (const body of ["first document", "second document"]) {
        const res = await server.request(
          "/Binary",
          { method: "POST", headers: { "content-type": "text/plain" }, body },
          TOKEN,
        );
        expect(res.status).toBe(201);
      }
      expect(await server.stop()).toBe(0);
    }
    expect((await runFhirbin(["verify", "--data", dir.path])).exitCode).toBe(0);

    const blobs = readdirSync(join(dir.path, "blobs", "sha256"), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
    expect(blobs.length).toBe(2);
    const [flipped = "", missing = ""] = blobs;
    const bytes = readFileSync(flipped);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    writeFileSync(flipped, bytes);
    rmSync(missing);

    const result = await runFhirbin(["verify", "--data", dir.path]);
    expect(result.exitCode).toBe(1);
    const report = result.stdout + result.stderr;
    expect(report).toContain(flipped.slice(dir.path.length + 1));
    expect(report).toContain(missing.slice(dir.path.length + 1));
  });
});
