/**
 * `fhirbin serve` as a user runs it: the compiled executable on port 0 with a temporary data directory,
 * spoken to over real HTTP. Startup output, flags > environment > defaults, the generated bearer token,
 * the demo seed and byte-exact round trips.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { XMLParser } from "fast-xml-parser";
import { ROOT, type Server, spawnShell, startFhirbin, tempDir } from "./spawn.ts";

const TOKEN = "exe-test-token-0123456789";
const ENV_TOKEN_A = "env-token-a-0123456789";
const ENV_TOKEN_B = "env-token-b-0123456789";
const FHIR_NS = "http://hl7.org/fhir";

const bytesOf = async (res: Response): Promise<Uint8Array> => new Uint8Array(await res.arrayBuffer());
const fromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));

/** Stops a server with SIGTERM, expecting a clean exit. */
async function stopCleanly(server: Server): Promise<void> {
  expect(await server.stop("SIGTERM")).toBe(0);
}

/** The fhirVersion the CapabilityStatement of a server announces. */
async function fhirVersionOf(server: Server): Promise<string> {
  const res = await server.request("/metadata");
  expect(res.status).toBe(200);
  return ((await res.json()) as { fhirVersion: string }).fhirVersion;
}

/** Creates a document with POST and returns its id, failing unless the server answers 201. */
async function create(server: Server, body: Uint8Array | string, contentType: string, token?: string) {
  const res = await server.request(
    "/Binary",
    { method: "POST", body, headers: { "content-type": contentType } },
    token,
  );
  await res.arrayBuffer();
  expect(res.status).toBe(201);
  const location = res.headers.get("location") ?? "";
  const match = new RegExp(`^${server.base}/Binary/([A-Za-z0-9\\-.]{1,64})/_history/1$`).exec(location);
  if (!match?.[1]) throw new Error(`unexpected Location ${JSON.stringify(location)}`);
  return match[1];
}

describe("startup", () => {
  test("prints exactly one stdout line naming the real port; metadata is open, Binary needs the token", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    expect(server.host).toBe("127.0.0.1");
    expect(server.port).toBeGreaterThan(0);
    expect(server.base).toBe(`http://127.0.0.1:${server.port}/fhir`);

    const metadata = await fetch(`http://127.0.0.1:${server.port}/fhir/metadata`);
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({
      resourceType: "CapabilityStatement",
      fhirVersion: "3.0.2",
      software: { name: "fhirbin" },
    });

    const anonymous = await server.request("/Binary/unknown");
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toStartWith("Bearer ");
    expect(await anonymous.json()).toMatchObject({ resourceType: "OperationOutcome" });
    const anonymousWrite = await server.request("/Binary", {
      method: "POST",
      body: "hello",
      headers: { "content-type": "text/plain" },
    });
    expect(anonymousWrite.status).toBe(401);
    await anonymousWrite.arrayBuffer();
    const wrongToken = await server.request("/Binary/unknown", {}, "not-the-token-0123456789");
    expect(wrongToken.status).toBe(401);
    await wrongToken.arrayBuffer();

    const unknown = await server.request("/Binary/unknown", {}, TOKEN);
    expect(unknown.status).toBe(404);
    await unknown.arrayBuffer();
    const id = await create(server, "hello", "text/plain", TOKEN);
    const read = await server.request(`/Binary/${id}`, {}, TOKEN);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("hello");

    await stopCleanly(server);
    expect(server.stdout.text).toBe(`listening on http://127.0.0.1:${server.port}/fhir\n`);
  });

  test("with nothing but FHIRBIN_PORT=0 and FHIRBIN_DATA it listens on a free port of 127.0.0.1", async () => {
    using dir = tempDir();
    await using server = await startFhirbin([], {
      env: { FHIRBIN_PORT: "0", FHIRBIN_DATA: dir.path, FHIRBIN_TOKENS: TOKEN },
    });
    expect(server.base).toBe(`http://127.0.0.1:${server.port}/fhir`);
    expect(server.port).toBeGreaterThan(0);
    expect(await fhirVersionOf(server)).toBe("3.0.2");
    // The data directory named by the environment is the one in use.
    expect(existsSync(join(dir.path, ".lock"))).toBe(true);
    await stopCleanly(server);
  });
});

/** One row of a precedence table: extra flags, environment and what the server must then do. */
interface Case {
  name: string;
  args: string[];
  env: Record<string, string>;
  expected: string;
}

describe("flags win over environment variables, which win over defaults", () => {
  test.each<Case>([
    { name: "default base path", args: [], env: {}, expected: "/fhir" },
    { name: "FHIRBIN_BASE_PATH", args: [], env: { FHIRBIN_BASE_PATH: "/api" }, expected: "/api" },
    {
      name: "--base-path over FHIRBIN_BASE_PATH",
      args: ["--base-path", "/x"],
      env: { FHIRBIN_BASE_PATH: "/api" },
      expected: "/x",
    },
  ])("$name", async ({ args, env, expected: basePath }) => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN, ...args], {
      env,
    });
    expect(server.base).toBe(`http://127.0.0.1:${server.port}${basePath}`);
    const metadata = await fetch(`${server.origin}${basePath}/metadata`);
    expect(metadata.status).toBe(200);
    await metadata.arrayBuffer();
    for (const other of ["/fhir", "/api", "/x"].filter((path) => path !== basePath)) {
      const elsewhere = await fetch(`${server.origin}${other}/metadata`);
      expect(elsewhere.status).toBe(404);
      await elsewhere.arrayBuffer();
    }
    await stopCleanly(server);
  });

  test.each<Case>([
    { name: "default FHIR version", args: [], env: {}, expected: "3.0.2" },
    { name: "FHIRBIN_FHIR_VERSION=R4", args: [], env: { FHIRBIN_FHIR_VERSION: "R4" }, expected: "4.0.1" },
    {
      name: "--fhir-version DSTU2 over FHIRBIN_FHIR_VERSION=R4",
      args: ["--fhir-version", "DSTU2"],
      env: { FHIRBIN_FHIR_VERSION: "R4" },
      expected: "1.0.2",
    },
  ])("$name", async ({ args, env, expected: release }) => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN, ...args], {
      env,
    });
    expect(await fhirVersionOf(server)).toBe(release);
    await stopCleanly(server);
  });

  test("FHIRBIN_TOKENS: every comma-separated token is accepted", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path], {
      env: { FHIRBIN_TOKENS: `${ENV_TOKEN_A},${ENV_TOKEN_B}` },
    });
    for (const token of [ENV_TOKEN_A, ENV_TOKEN_B]) {
      const res = await server.request("/Binary/unknown", {}, token);
      expect(res.status).toBe(404);
      await res.arrayBuffer();
    }
    const anonymous = await server.request("/Binary/unknown");
    expect(anonymous.status).toBe(401);
    await anonymous.arrayBuffer();
    // Configured tokens: none is generated.
    expect(existsSync(join(dir.path, "auth-token"))).toBe(false);
    await stopCleanly(server);
  });

  test("--token replaces FHIRBIN_TOKENS", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN], {
      env: { FHIRBIN_TOKENS: `${ENV_TOKEN_A},${ENV_TOKEN_B}` },
    });
    const statuses: Record<string, number> = {};
    for (const token of [TOKEN, ENV_TOKEN_A, ENV_TOKEN_B]) {
      const res = await server.request("/Binary/unknown", {}, token);
      statuses[token] = res.status;
      await res.arrayBuffer();
    }
    expect(statuses).toEqual({ [TOKEN]: 404, [ENV_TOKEN_A]: 401, [ENV_TOKEN_B]: 401 });
    await stopCleanly(server);
  });

  test("--port over FHIRBIN_PORT", async () => {
    using dir = tempDir();
    // FHIRBIN_PORT names a port that is not a number: the flag must win before it is ever validated.
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN], {
      env: { FHIRBIN_PORT: "not-a-port" },
    });
    expect(server.port).toBeGreaterThan(0);
    expect(await fhirVersionOf(server)).toBe("3.0.2");
    await stopCleanly(server);
  });
});

describe("the generated bearer token", () => {
  const GENERATED = /^generated a bearer token, kept in (\S+) \(owner-only\):\n {2}(\S+)$/m;
  const TRY = /^try: (curl .*)$/m;

  test("is created on first start (0600), printed once with a curl command, and kept for the next start", async () => {
    using dir = tempDir();
    const tokenFile = join(dir.path, "auth-token");
    let token: string;
    {
      await using first = await startFhirbin(["--port", "0", "--data", dir.path]);
      const [, path, printed = ""] = await first.stderr.waitFor(GENERATED, "the generated token");
      const [, curl = ""] = await first.stderr.waitFor(TRY, "the curl command");
      token = printed;
      expect(path).toBe(tokenFile);
      expect(token.length).toBeGreaterThanOrEqual(32);
      expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
      expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
      expect(curl).toContain(`-H 'Authorization: Bearer ${token}'`);
      expect(curl).toContain(` ${first.base}/Binary`);

      const anonymous = await first.request("/Binary/unknown");
      expect(anonymous.status).toBe(401);
      await anonymous.arrayBuffer();
      const id = await create(first, "kept", "text/plain", token);
      const read = await first.request(`/Binary/${id}`, {}, token);
      expect(await read.text()).toBe("kept");
      await stopCleanly(first);
      expect(first.stdout.lines).toEqual([`listening on ${first.base}`]);
    }
    {
      await using second = await startFhirbin(["--port", "0", "--data", dir.path]);
      const res = await second.request("/Binary/unknown", {}, token);
      expect(res.status).toBe(404);
      await res.arrayBuffer();
      const anonymous = await second.request("/Binary/unknown");
      expect(anonymous.status).toBe(401);
      await anonymous.arrayBuffer();
      await stopCleanly(second);
      expect(second.stderr.text).not.toContain(token);
      expect(second.stderr.text).toContain(`using the bearer token kept in ${tokenFile}`);
      expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
    }
  });

  test.skipIf(!Bun.which("curl"))("the printed curl command works as pasted", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path]);
    const [, curl = ""] = await server.stderr.waitFor(TRY, "the curl command");
    await using shell = spawnShell(`${curl} --silent --show-error --include`);
    expect(await shell.exited()).toBe(0);
    expect(shell.stdout.text).toMatch(/^HTTP\/1\.1 201 /);
    const location = /^location: (\S+)\r$/im.exec(shell.stdout.text)?.[1] ?? "";
    expect(location).toStartWith(`${server.base}/Binary/`);
    await stopCleanly(server);
  });

  test("--auth off: anonymous requests work, a warning is printed and no token is generated", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--auth", "off"]);
    await server.stderr.waitFor(/^authentication is OFF/m, "the warning that authentication is off");
    const id = await create(server, "open", "text/plain");
    const read = await server.request(`/Binary/${id}`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe("open");
    await stopCleanly(server);
    expect(existsSync(join(dir.path, "auth-token"))).toBe(false);
    expect(server.stderr.text).not.toMatch(/generated a bearer token|Bearer/);
  });
});

describe("--seed data/samples", () => {
  const SAMPLES = [
    { file: "consultation-note.txt", contentType: "text/plain; charset=utf-8" },
    { file: "discharge-summary.html", contentType: "text/html; charset=utf-8" },
    { file: "ecg-trace.jpeg", contentType: "image/jpeg" },
    { file: "referral-letter.pdf", contentType: "application/pdf" },
    { file: "wound-photo.png", contentType: "image/png" },
  ].map((sample) => ({
    ...sample,
    id: sample.file.replace(/\.[a-z]+$/, ""),
    bytes: new Uint8Array(readFileSync(join(ROOT, "data", "samples", sample.file))),
  }));
  const xml = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });

  /** Checks every sample in all three representations at `versionId`. */
  async function expectSamples(server: Server, versionId: string): Promise<void> {
    for (const { id, contentType, bytes } of SAMPLES) {
      const native = await server.request(`/Binary/${id}`, {}, TOKEN);
      expect(native.status).toBe(200);
      expect(native.headers.get("content-type")).toBe(contentType);
      expect(native.headers.get("etag")).toBe(`W/"${versionId}"`);
      expect(await bytesOf(native)).toEqual(bytes);

      const json = await server.request(`/Binary/${id}?_format=json`, {}, TOKEN);
      expect(json.status).toBe(200);
      expect(json.headers.get("content-type")).toStartWith("application/fhir+json");
      const resource = (await json.json()) as { content: string };
      expect(resource).toMatchObject({ resourceType: "Binary", id, contentType, meta: { versionId } });
      expect(fromBase64(resource.content)).toEqual(bytes);

      const xmlRes = await server.request(`/Binary/${id}?_format=xml`, {}, TOKEN);
      expect(xmlRes.status).toBe(200);
      expect(xmlRes.headers.get("content-type")).toStartWith("application/fhir+xml");
      const binary = xml.parse(await xmlRes.text()).Binary;
      expect(binary["@xmlns"]).toBe(FHIR_NS);
      expect(binary.id["@value"]).toBe(id);
      expect(binary.meta.versionId["@value"]).toBe(versionId);
      expect(binary.contentType["@value"]).toBe(contentType);
      expect(fromBase64(binary.content["@value"])).toEqual(bytes);
    }
  }

  test("imports every sample byte-identical, readable natively, as JSON and as XML; a restart imports nothing", async () => {
    using dir = tempDir();
    const args = ["--port", "0", "--data", dir.path, "--token", TOKEN, "--seed", "data/samples"];
    {
      await using first = await startFhirbin(args, { cwd: ROOT });
      await expectSamples(first, "1");
      await stopCleanly(first);
      expect(first.stderr.text).toContain(
        `seeded ${SAMPLES.length} sample documents: ${SAMPLES.map((sample) => sample.id).join(", ")}\n`,
      );
    }
    {
      await using second = await startFhirbin(args, { cwd: ROOT });
      await expectSamples(second, "1");
      for (const { id } of SAMPLES) {
        const history = await second.request(`/Binary/${id}/_history`, {}, TOKEN);
        expect(history.status).toBe(200);
        expect(await history.json()).toMatchObject({ resourceType: "Bundle", total: 1 });
      }
      await stopCleanly(second);
      expect(second.stderr.text).not.toContain("seeded");
    }
  });
});

describe("round trips through the executable", () => {
  test("all 256 byte values come back byte-identical, natively and base64 in FHIR JSON", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    const bytes = new Uint8Array(Array.from({ length: 256 }, (_, i) => i));
    const id = await create(server, bytes, "application/octet-stream", TOKEN);

    const native = await server.request(`/Binary/${id}`, {}, TOKEN);
    expect(native.status).toBe(200);
    expect(native.headers.get("content-type")).toBe("application/octet-stream");
    expect(native.headers.get("content-length")).toBe("256");
    expect(await bytesOf(native)).toEqual(bytes);

    const json = await server.request(
      `/Binary/${id}`,
      { headers: { accept: "application/fhir+json" } },
      TOKEN,
    );
    expect(json.status).toBe(200);
    expect(fromBase64(((await json.json()) as { content: string }).content)).toEqual(bytes);
    await stopCleanly(server);
  });

  test("a FHIR JSON Binary PUT is stored unwrapped and read back", async () => {
    using dir = tempDir();
    await using server = await startFhirbin(["--port", "0", "--data", dir.path, "--token", TOKEN]);
    const text = "Patient seen today; café ☕\n";
    const put = await server.request(
      "/Binary/round-trip",
      {
        method: "PUT",
        headers: { "content-type": "application/fhir+json" },
        body: JSON.stringify({
          resourceType: "Binary",
          id: "round-trip",
          contentType: "text/plain; charset=utf-8",
          content: Buffer.from(text).toString("base64"),
        }),
      },
      TOKEN,
    );
    expect(put.status).toBe(201);
    await put.arrayBuffer();

    const native = await server.request("/Binary/round-trip", {}, TOKEN);
    expect(native.status).toBe(200);
    expect(native.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await native.text()).toBe(text);

    const json = await server.request("/Binary/round-trip?_format=json", {}, TOKEN);
    expect(await json.json()).toMatchObject({
      resourceType: "Binary",
      id: "round-trip",
      meta: { versionId: "1" },
      contentType: "text/plain; charset=utf-8",
      content: Buffer.from(text).toString("base64"),
    });
    await stopCleanly(server);
  });
});
