/**
 * The in-process limit of a native read: a bare `Bun.serve` answering every request with `Bun.file` of the
 * file named by the last path segment, nothing else (no auth, no negotiation, no metadata headers).
 * Usage: bun bench/bare-bun.ts DIR; prints `listening on URL` once it accepts connections.
 */
const root = process.argv[2];
if (!root) throw new Error("usage: bun bench/bare-bun.ts DIR");

// Only plain file names: nothing outside DIR is served.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  development: false,
  fetch(request) {
    const name = request.url.slice(request.url.lastIndexOf("/") + 1);
    if (!NAME.test(name)) return new Response(null, { status: 404 });
    return new Response(Bun.file(`${root}/${name}`));
  },
});
console.log(`listening on http://${server.hostname}:${server.port}`);
process.once("SIGTERM", () => server.stop().then(() => process.exit(0)));
