/**
 * A port in use is a start-up error, whoever holds it: Elysia's Bun adapter asks for SO_REUSEPORT by
 * default, with which a second server starts silently and the kernel spreads connections over both stores.
 */
import { expect, test } from "bun:test";
import { createServer } from "node:net";
import { runFhirbin, startFhirbin, tempDir } from "./spawn.ts";

test("a second fhirbin on the port of a running one exits 1 naming the port, and the first keeps it", async () => {
  using firstData = tempDir();
  using secondData = tempDir();
  await using first = await startFhirbin(["--port", "0", "--data", firstData.path, "--auth", "off"]);
  const second = await runFhirbin(["--port", String(first.port), "--data", secondData.path, "--auth", "off"]);
  expect({ exitCode: second.exitCode, stdout: second.stdout }).toEqual({ exitCode: 1, stdout: "" });
  expect(second.stderr).toContain(
    `cannot listen on 127.0.0.1:${first.port}: port ${first.port} is in use (by another fhirbin or another program)`,
  );
  expect((await first.request("/metadata")).status).toBe(200);
});

test("a port held by another program is a start-up error naming the port", async () => {
  using data = tempDir();
  await using other = await listening();
  const result = await runFhirbin(["--port", String(other.port), "--data", data.path, "--auth", "off"]);
  expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 1, stdout: "" });
  expect(result.stderr).toContain(`port ${other.port} is in use`);
});

/** A plain TCP listener on a free loopback port, as any other program would hold it. */
async function listening(): Promise<{ port: number } & AsyncDisposable> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return {
    port: address.port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
