/**
 * nginx as the static-file peer: one worker, sendfile on, no access log, its own config and temp paths in a
 * temporary directory, listening on a free loopback port.
 */
import { chmod, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, relative } from "node:path";
import { freePort, type Server, spawnPolled } from "./process.ts";

/** The nginx configuration serving `docs` on 127.0.0.1:`port`, with every path under `dir`. */
export function nginxConfig(dir: string, docs: string, port: number): string {
  return `# Written by bench/nginx.ts for one benchmark run.
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr warn;

events {
  worker_connections 1024;
}

http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  # As many requests per connection as Bun allows (unlimited), so neither side pays for reconnecting.
  keepalive_requests 1000000;
  types {
    application/pdf pdf;
  }
  default_type application/octet-stream;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  server {
    listen 127.0.0.1:${port};
    root ${docs};
  }
}
`;
}

function isBelow(parent: string, path: string): boolean {
  const rel = relative(parent, path);
  return rel !== "" && !rel.startsWith("..");
}

/**
 * Starts `nginx` (the binary's path) serving `docs`, ready once `probe` (a path under docs) answers 200.
 * nginx's workers drop root privileges, so `docs` and its parents below the temp dir are made world-readable.
 */
export async function startNginx(nginx: string, dir: string, docs: string, probe: string): Promise<Server> {
  await mkdir(dir, { recursive: true });
  for (let path = docs; isBelow(tmpdir(), path); path = dirname(path)) await chmod(path, 0o755);
  const port = freePort();
  const config = `${dir}/nginx.conf`;
  await Bun.write(config, nginxConfig(dir, docs, port));
  const url = `http://127.0.0.1:${port}`;
  return spawnPolled("nginx", [nginx, "-p", dir, "-e", "stderr", "-c", config], url, async () => {
    const response = await fetch(`${url}/${probe}`);
    await response.arrayBuffer();
    return response.ok;
  });
}
