/**
 * A backup restored over an existing data directory (its `binary/` and `blobs/` put back, its newer
 * `index.sqlite` kept): the index lists documents written since the backup, which would be listed by searches
 * and then answer 404. The server finds that at start and rebuilds the index from the sidecars by itself.
 */
import { expect, test } from "bun:test";
import { cpSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Server, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";

async function put(server: Server, id: string): Promise<void> {
  const response = await server.request(
    `/Binary/${id}`,
    { method: "PUT", headers: { "content-type": "text/plain" }, body: id },
    TOKEN,
  );
  await response.arrayBuffer();
  expect(response.status).toBe(201);
}

test("a backup restored under a newer search index is found at start and the index rebuilt by itself", async () => {
  using dir = tempDir();
  const data = join(dir.path, "data");
  const backup = join(dir.path, "backup");
  const args = ["--port", "0", "--data", data, "--token", TOKEN];
  {
    await using server = await startFhirbin(args);
    await put(server, "before-backup");
    expect(await server.stop()).toBe(0);
  }
  for (const part of ["binary", "blobs"]) cpSync(join(data, part), join(backup, part), { recursive: true });
  {
    await using server = await startFhirbin(args);
    await put(server, "after-backup");
    expect(await server.stop()).toBe(0);
  }
  for (const part of ["binary", "blobs"]) {
    rmSync(join(data, part), { recursive: true });
    cpSync(join(backup, part), join(data, part), { recursive: true });
  }
  await using server = await startFhirbin(args);
  await server.stderr.waitFor(/restored from a backup/, "the log line that finds the restore");
  await server.stderr.waitFor(/rebuilt the search index from the sidecars/, "the rebuild's end");
  const readyz = await fetch(`${server.origin}/readyz`);
  expect(readyz.status).toBe(200);
  const search = await server.request("/Binary?_elements=id", {}, TOKEN);
  const bundle = (await search.json()) as { total: number; entry?: Array<{ resource: { id: string } }> };
  expect(bundle.entry?.map((entry) => entry.resource.id)).toEqual(["before-backup"]);
});
