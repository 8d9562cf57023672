/**
 * JWT bearer tokens over real HTTP, signed in the test with `jose`: HS256 with a secret, RS256 with a PEM
 * public key, ES256 from a JWKS file. Every bad token is a 401 with the bearer challenge.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { startServer, type TestServer, tempDir } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const ISSUER = "https://auth.example.org";
const AUDIENCE = "https://fhirbin.example.org/fhir";
const CHALLENGE = 'Bearer realm="fhirbin", error="invalid_token"';
const now = (): number => Math.floor(Date.now() / 1000);
const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

const CLAIMS: JWTPayload = {
  iss: ISSUER,
  aud: AUDIENCE,
  sub: "clinician-1",
  scope: "user/Binary.cruds",
};

type Key = CryptoKey | Uint8Array;

function sign(key: Key, alg: string, claims: JWTPayload = {}, kid?: string): Promise<string> {
  const jwt = new SignJWT({ ...CLAIMS, ...claims })
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setIssuedAt();
  if (claims.exp === undefined) jwt.setExpirationTime("5m");
  return jwt.sign(key);
}

async function status(srv: TestServer, token: string): Promise<{ status: number; challenge: string | null }> {
  const res = await srv.request("/Binary/doc", { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return { status: res.status, challenge: res.headers.get("www-authenticate") };
}

const dir = tempDir();
const secret = new TextEncoder().encode(SECRET);
let rsa: CryptoKeyPair;
let ec: CryptoKeyPair;
let rsaPem: string;
let hs: TestServer;
let rs: TestServer;
let es: TestServer;

beforeAll(async () => {
  rsa = await generateKeyPair("RS256");
  ec = await generateKeyPair("ES256");
  rsaPem = await exportSPKI(rsa.publicKey);
  writeFileSync(join(dir.path, "rsa.pem"), rsaPem);
  const jwk = { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" };
  writeFileSync(join(dir.path, "jwks.json"), JSON.stringify({ keys: [jwk] }));
  const checks = ["--jwt-issuer", ISSUER, "--jwt-audience", AUDIENCE];
  hs = await startServer({ args: ["--jwt-secret", SECRET, ...checks] });
  rs = await startServer({ args: ["--jwt-public-key", join(dir.path, "rsa.pem"), ...checks] });
  es = await startServer({ args: ["--jwks", join(dir.path, "jwks.json"), ...checks] });
  for (const srv of [hs, rs, es]) {
    const res = await srv.request("/Binary/doc", {
      method: "PUT",
      body: "hello",
      headers: { "content-type": "text/plain" },
    });
    await res.arrayBuffer();
  }
});

afterAll(async () => {
  for (const srv of [hs, rs, es]) await srv?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

describe("valid tokens are accepted", () => {
  test("HS256 with the shared secret", async () => {
    expect(await status(hs, await sign(secret, "HS256"))).toEqual({ status: 200, challenge: null });
  });
  test("RS256 with the PEM public key", async () => {
    expect(await status(rs, await sign(rsa.privateKey, "RS256"))).toEqual({ status: 200, challenge: null });
  });
  test("ES256 with a key of the JWKS file", async () => {
    expect(await status(es, await sign(ec.privateKey, "ES256", {}, "ec-1"))).toEqual({
      status: 200,
      challenge: null,
    });
  });
  test("a token expired a few seconds ago is within the clock skew", async () => {
    expect(await status(hs, await sign(secret, "HS256", { exp: now() - 5 }))).toEqual({
      status: 200,
      challenge: null,
    });
  });
  test("an audience list containing ours", async () => {
    const token = await sign(secret, "HS256", { aud: ["other", AUDIENCE] });
    expect((await status(hs, token)).status).toBe(200);
  });
  test("the static test token still works beside JWTs", async () => {
    expect(await status(hs, hs.token)).toEqual({ status: 200, challenge: null });
  });
});

describe("bad tokens: 401 with the bearer challenge", () => {
  const BAD: [string, () => Promise<[TestServer, string]>][] = [
    ["HS256 expired", async () => [hs, await sign(secret, "HS256", { exp: now() - 600 })]],
    ["RS256 expired", async () => [rs, await sign(rsa.privateKey, "RS256", { exp: now() - 600 })]],
    ["HS256 not yet valid", async () => [hs, await sign(secret, "HS256", { nbf: now() + 600 })]],
    [
      "HS256 without exp",
      async () => [hs, await new SignJWT(CLAIMS).setProtectedHeader({ alg: "HS256" }).sign(secret)],
    ],
    ["HS256 wrong audience", async () => [hs, await sign(secret, "HS256", { aud: "https://elsewhere" })]],
    [
      "RS256 wrong audience",
      async () => [rs, await sign(rsa.privateKey, "RS256", { aud: "https://elsewhere" })],
    ],
    ["HS256 no audience", async () => [hs, await sign(secret, "HS256", { aud: undefined })]],
    ["HS256 wrong issuer", async () => [hs, await sign(secret, "HS256", { iss: "https://evil" })]],
    ["HS256 wrong secret", async () => [hs, await sign(new TextEncoder().encode(`${SECRET}x`), "HS256")]],
    [
      "alg none (HS256 server)",
      async () => [
        hs,
        `${base64url({ alg: "none", typ: "JWT" })}.${base64url({ ...CLAIMS, exp: now() + 300 })}.`,
      ],
    ],
    [
      "alg none (RS256 server)",
      async () => [rs, `${base64url({ alg: "none" })}.${base64url({ ...CLAIMS, exp: now() + 300 })}.`],
    ],
    [
      "HS256 tampered payload",
      async () => {
        const [header, , signature] = (await sign(secret, "HS256")).split(".");
        return [hs, `${header}.${base64url({ ...CLAIMS, sub: "admin", exp: now() + 300 })}.${signature}`];
      },
    ],
    [
      "RS256 tampered signature",
      async () => {
        const token = await sign(rsa.privateKey, "RS256");
        const flipped = token.at(-2) === "A" ? "B" : "A";
        return [rs, `${token.slice(0, -2)}${flipped}${token.at(-1)}`];
      },
    ],
    [
      "HS256 signed with the RSA public key (algorithm confusion)",
      async () => [rs, await sign(new TextEncoder().encode(rsaPem), "HS256")],
    ],
    ["HS256 token on an RS256-only server", async () => [rs, await sign(secret, "HS256")]],
    ["RS256 token on an HS256-only server", async () => [hs, await sign(rsa.privateKey, "RS256")]],
    [
      "RS256 signed by another key",
      async () => [rs, await sign((await generateKeyPair("RS256")).privateKey, "RS256")],
    ],
    ["ES256 with an unknown kid", async () => [es, await sign(ec.privateKey, "ES256", {}, "other")]],
    ["garbage with JWT dots", async () => [hs, "aaaa.bbbb.cccc"]],
  ];

  test.each(BAD)("%s", async (_name, make) => {
    const [srv, token] = await make();
    expect(await status(srv, token)).toEqual({ status: 401, challenge: CHALLENGE });
  });
});

describe("JWT configuration", () => {
  test("a short HS256 secret, an unreadable key and a bad JWKS are reported together", async () => {
    const bad = join(dir.path, "bad.json");
    writeFileSync(bad, '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}');
    const { loadConfig } = await import("../../src/config.ts");
    let problems: readonly string[] = [];
    try {
      loadConfig(
        ["--jwt-secret", "short", "--jwt-public-key", join(dir.path, "nope.pem"), "--jwks", bad],
        {},
      );
    } catch (error) {
      problems = (error as { problems: readonly string[] }).problems;
    }
    expect(problems).toHaveLength(3);
    expect(problems.join("\n")).not.toContain("short");
  });

  test("the secret can come from FHIRBIN_JWT_SECRET", async () => {
    await using srv = await startServer({ env: { FHIRBIN_JWT_SECRET: SECRET } });
    const res = await srv.request("/Binary/none", {
      headers: { authorization: `Bearer ${await sign(secret, "HS256")}` },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(404);
  });
});

describe("SMART discovery", () => {
  test("/.well-known/smart-configuration answers without a token when JWTs are on", async () => {
    const res = await hs.request("/.well-known/smart-configuration", { auth: false });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      issuer: ISSUER,
      capabilities: ["permission-v1", "permission-v2", "permission-patient", "permission-user"],
      "fhirbin-token-algorithms": ["HS256"],
    });
  });

  test("the CapabilityStatement names the SMART-on-FHIR service", async () => {
    const res = await rs.request("/metadata", { auth: false });
    const statement = (await res.json()) as { rest: { security: { service?: unknown[] } }[] };
    expect(statement.rest[0]?.security.service).toEqual([
      {
        coding: [{ system: "http://hl7.org/fhir/restful-security-service", code: "SMART-on-FHIR" }],
        text: "SMART on FHIR",
      },
    ]);
  });

  test("without JWTs there is no smart-configuration and no SMART service", async () => {
    await using plain = await startServer();
    const res = await plain.request("/.well-known/smart-configuration", { auth: false });
    await res.arrayBuffer();
    const statement = (await (await plain.request("/metadata", { auth: false })).json()) as {
      rest: { security: { service?: unknown[] } }[];
    };
    expect({ status: res.status, service: statement.rest[0]?.security.service }).toEqual({
      status: 404,
      service: undefined,
    });
  });
});
