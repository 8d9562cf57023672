/**
 * A refused bearer token is answered tersely (the answer must not help guess a valid one) and logged with
 * why it was refused, for the operator; a header without the Bearer scheme says so, which reveals nothing.
 */
import { expect, test } from "bun:test";
import { SignJWT } from "jose";
import { startServer } from "../harness.ts";

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const AUDIENCE = "https://fhirbin.example.org/fhir";

async function refusal(
  log: string[],
  request: (path: string, init: RequestInit & { auth?: boolean }) => Promise<Response>,
  authorization: string,
): Promise<{ status: number; diagnostics: string; logged: string[] }> {
  const before = log.length;
  const response = await request("/Binary/doc", { headers: { authorization } });
  const outcome = (await response.json()) as { issue: Array<{ diagnostics: string }> };
  return {
    status: response.status,
    diagnostics: outcome.issue[0]?.diagnostics ?? "",
    logged: log.slice(before),
  };
}

test("a JWT refused for a missing exp or a wrong aud is answered tersely and logged with the reason", async () => {
  const log: string[] = [];
  await using server = await startServer({
    args: ["--jwt-secret", SECRET, "--jwt-audience", AUDIENCE, "--log-format", "off"],
    log: (line) => log.push(line),
  });
  const key = new TextEncoder().encode(SECRET);
  const noExp = await new SignJWT({ aud: AUDIENCE, sub: "a" }).setProtectedHeader({ alg: "HS256" }).sign(key);
  const wrongAud = await new SignJWT({ aud: "https://elsewhere.example.org", sub: "a" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(key);

  const missing = await refusal(log, server.request, `Bearer ${noExp}`);
  expect(missing).toEqual({
    status: 401,
    diagnostics: "The bearer token is not valid",
    logged: [
      expect.stringMatching(/^401 on GET \/fhir\/Binary\/doc: refused the JWT: .*"exp".*ERR_JWT_CLAIM/),
    ],
  });
  const audience = await refusal(log, server.request, `Bearer ${wrongAud}`);
  expect(audience).toEqual({
    status: 401,
    diagnostics: "The bearer token is not valid",
    logged: [
      expect.stringMatching(/^401 on GET \/fhir\/Binary\/doc: refused the JWT: .*"aud".*ERR_JWT_CLAIM/),
    ],
  });
  // Neither the answer nor the log holds the token.
  expect(log.join("\n")).not.toContain(noExp);
  expect(log.join("\n")).not.toContain(wrongAud);
});

test("an Authorization header without the Bearer scheme says the scheme is missing", async () => {
  const log: string[] = [];
  await using server = await startServer({ log: (line) => log.push(line) });
  const answer = await refusal(log, server.request, server.token);
  expect(answer.status).toBe(401);
  expect(answer.diagnostics).toContain("no Bearer scheme");
  expect(answer.diagnostics).toContain("Authorization: Bearer <token>");
  expect(answer.diagnostics).not.toContain(server.token);
});
