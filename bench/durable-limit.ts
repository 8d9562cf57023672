/**
 * The durability limit of a create in Bun: the least a server can do and still promise that an acknowledged
 * document survives a power cut. It streams the body to a temp file, fsyncs it, links it into place, fsyncs
 * the directory, and answers 201; fhirbin's store does that (storage.md) plus hashing and a sidecar.
 * Usage: bun bench/durable-limit.ts DIR; prints `listening on URL` once it accepts connections.
 */
import { randomUUID } from "node:crypto";
import { type FileHandle, link, mkdir, open, unlink } from "node:fs/promises";

const root = process.argv[2];
if (!root) throw new Error("usage: bun bench/durable-limit.ts DIR");
const temp = `${root}/tmp`;
const docs = `${root}/docs`;
await mkdir(temp, { recursive: true });
await mkdir(docs, { recursive: true });

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let offset = 0; offset < chunk.byteLength; ) {
    offset += (await handle.write(chunk, offset, chunk.byteLength - offset)).bytesWritten;
  }
}

async function fsync(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  development: false,
  maxRequestBodySize: 1024 * 1024 * 1024,
  idleTimeout: 0,
  async fetch(request) {
    const name = randomUUID();
    const handle = await open(`${temp}/${name}`, "wx", 0o640);
    try {
      for await (const chunk of request.body ?? []) await writeAll(handle, chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(`${temp}/${name}`, `${docs}/${name}`);
    await fsync(docs);
    await unlink(`${temp}/${name}`);
    return new Response(null, { status: 201 });
  },
});
console.log(`listening on http://${server.hostname}:${server.port}`);
process.once("SIGTERM", () => server.stop().then(() => process.exit(0)));
