/** CORS for browser SMART apps, and HTTPS served directly with `--tls-cert` / `--tls-key`. */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../../src/cli.ts";
import { ConfigError, loadConfig } from "../../src/config.ts";
import { startServer, TEST_TOKEN, tempDir } from "../harness.ts";

const APP = "https://app.example.org";

describe("CORS", () => {
  test("a preflight from an allowed origin is a 204 allowing Authorization", async () => {
    await using srv = await startServer({
      args: ["--cors-origin", APP, "--cors-origin", "http://localhost:3000"],
    });
    const res = await srv.request("/Binary/x", {
      method: "OPTIONS",
      auth: false,
      headers: {
        origin: APP,
        "access-control-request-method": "PUT",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    await res.arrayBuffer();
    expect({
      status: res.status,
      origin: res.headers.get("access-control-allow-origin"),
      methods: res.headers.get("access-control-allow-methods"),
      authorization: /\bAuthorization\b/.test(res.headers.get("access-control-allow-headers") ?? ""),
      credentials: res.headers.get("access-control-allow-credentials"),
      vary: res.headers.get("vary"),
    }).toEqual({
      status: 204,
      origin: APP,
      methods: "GET, HEAD, POST, PUT, DELETE",
      authorization: true,
      credentials: null,
      vary: "Origin",
    });
  });

  test("requests from an allowed origin can read ETag and Location, 401s included", async () => {
    await using srv = await startServer({ args: ["--cors-origin", APP] });
    const created = await srv.request("/Binary", {
      method: "POST",
      body: "x",
      headers: { origin: APP, "content-type": "text/plain" },
    });
    await created.arrayBuffer();
    const denied = await srv.request("/Binary/x", { auth: false, headers: { origin: APP } });
    await denied.arrayBuffer();
    expect({
      status: created.status,
      origin: created.headers.get("access-control-allow-origin"),
      exposes: (created.headers.get("access-control-expose-headers") ?? "")
        .split(", ")
        .filter((h) => ["ETag", "Location", "WWW-Authenticate"].includes(h)),
      deniedOrigin: denied.headers.get("access-control-allow-origin"),
    }).toEqual({
      status: 201,
      origin: APP,
      exposes: ["ETag", "Location", "WWW-Authenticate"],
      deniedOrigin: APP,
    });
  });

  test("another origin gets no CORS headers, preflight or not", async () => {
    await using srv = await startServer({ args: ["--cors-origin", APP] });
    const preflight = await srv.request("/Binary/x", {
      method: "OPTIONS",
      auth: false,
      headers: { origin: "https://evil.example", "access-control-request-method": "GET" },
    });
    await preflight.arrayBuffer();
    const read = await srv.request("/Binary/x", { headers: { origin: "https://evil.example" } });
    await read.arrayBuffer();
    expect([
      preflight.headers.get("access-control-allow-origin"),
      preflight.headers.get("access-control-allow-headers"),
      read.headers.get("access-control-allow-origin"),
    ]).toEqual([null, null, null]);
  });

  test("without --cors-origin nothing is added", async () => {
    await using srv = await startServer();
    const res = await srv.request("/Binary/x", { headers: { origin: APP } });
    await res.arrayBuffer();
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  test("origins that are not origins are refused, all of them reported", () => {
    expect(() =>
      loadConfig(["--cors-origin", "https://a.example/path", "--cors-origin", "a.example"], {}),
    ).toThrow(ConfigError);
    try {
      loadConfig([], { FHIRBIN_CORS_ORIGINS: "https://a.example/, ftp://b.example, *" });
    } catch (error) {
      expect((error as ConfigError).problems).toHaveLength(2);
    }
  });
});

describe("TLS", () => {
  test("--tls-cert and --tls-key serve HTTPS; the listening line says https", async () => {
    using dir = tempDir();
    const cert = join(dir.path, "cert.pem");
    const key = join(dir.path, "key.pem");
    const openssl = Bun.spawnSync(
      [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stderr: "pipe" },
    );
    expect(openssl.exitCode).toBe(0);

    let stop: () => void = () => {};
    let listening: (line: string) => void = () => {};
    const line = new Promise<string>((resolve) => {
      listening = resolve;
    });
    const errors: string[] = [];
    const exited = runCli(
      [
        "serve",
        "--port",
        "0",
        "--data",
        join(dir.path, "data"),
        "--token",
        TEST_TOKEN,
        "--tls-cert",
        cert,
        "--tls-key",
        key,
      ],
      {},
      { out: (text) => listening(text), err: (text) => errors.push(text) },
      {
        once: (_signal, listener) => {
          stop = listener;
        },
      },
    );
    const base = (await line).replace(/^listening on /, "");
    try {
      expect(base).toStartWith("https://127.0.0.1:");
      const res = await fetch(`${base}/metadata`, { tls: { rejectUnauthorized: false } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      // The certificate is not trusted by default: plain fetch refuses it, so the traffic really is TLS.
      await expect(fetch(`${base}/metadata`)).rejects.toThrow();
    } finally {
      stop();
    }
    expect(await exited).toBe(0);
  });

  test("one of the pair alone, or files that are not PEM, are configuration problems", () => {
    using dir = tempDir();
    const junk = join(dir.path, "junk");
    writeFileSync(junk, "not pem");
    const problemsOf = (argv: string[]): readonly string[] => {
      try {
        loadConfig(argv, {});
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problemsOf(["--tls-cert", junk])).toHaveLength(1);
    expect(problemsOf(["--tls-cert", junk, "--tls-key", junk])).toHaveLength(2);
    expect(problemsOf(["--tls-cert", join(dir.path, "missing"), "--tls-key", junk])).toHaveLength(2);
  });
});
