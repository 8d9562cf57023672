/** SMART scope parsing, permission decisions and the token file, as pure functions. */
import { describe, expect, test } from "bun:test";
import { allowedAlgorithms, looksLikeJwt, parseJwks, toPrincipal } from "../../src/security/jwt.ts";
import {
  type Interaction,
  isOwnPatient,
  type Principal,
  parseScope,
  parseScopes,
  permissionFor,
} from "../../src/security/scopes.ts";
import { parseTokenFile, tokenLabel } from "../../src/security/token-file.ts";

const letters = (scope: string): string | null => {
  const grant = parseScope(scope);
  return grant ? `${grant.context}:${[...grant.actions].sort().join("")}` : null;
};

describe("parseScope", () => {
  test.each([
    ["patient/Binary.read", "patient:rs"],
    ["user/Binary.write", "user:cdu"],
    ["system/Binary.*", "system:cdrsu"],
    ["system/*.read", "system:rs"],
    ["user/Binary.c", "user:c"],
    ["user/Binary.cruds", "user:cdrsu"],
    ["patient/Binary.rs", "patient:rs"],
    ["user/Binary.ud", "user:du"],
    ["user/Binary.rc", null],
    ["user/Binary.rr", null],
    ["user/Binary.x", null],
    ["user/Binary.", null],
    ["user/Binary.r?category=x", null],
    ["user/Patient.read", null],
    ["admin/Binary.read", null],
    ["openid", null],
    ["launch/patient", null],
    ["User/Binary.read", null],
    ["user/binary.read", null],
    ["", null],
  ])("%s", (scope, expected) => {
    expect(letters(scope)).toBe(expected);
  });

  test("parseScopes keeps only the Binary grants of a scope string", () => {
    expect(
      parseScopes("openid  user/Patient.read patient/Binary.r\tsystem/*.cud").map((g) => g.context),
    ).toEqual(["patient", "system"]);
  });
});

describe("permissionFor", () => {
  const principal = (scope: string, patient: string | null = "p1"): Principal => ({
    kind: "jwt",
    subject: "s",
    grants: parseScopes(scope),
    patient,
  });
  const ALL: Interaction[] = ["read", "vread", "history", "search", "create", "update", "delete"];
  const decide = (p: Principal) => Object.fromEntries(ALL.map((i) => [i, permissionFor(p, i)]));

  test("a patient scope limits to the patient; a user scope does not", () => {
    expect(decide(principal("patient/Binary.rs user/Binary.c"))).toEqual({
      read: "patient-only",
      vread: "patient-only",
      history: "patient-only",
      search: "patient-only",
      create: "unrestricted",
      update: "denied",
      delete: "denied",
    });
  });

  test("a user scope wins over a patient scope for the same action", () => {
    expect(permissionFor(principal("patient/Binary.r user/Binary.r"), "read")).toBe("unrestricted");
  });

  test("patient scopes without a patient claim grant nothing (fail closed)", () => {
    expect(Object.values(decide(principal("patient/Binary.cruds", null)))).toEqual(ALL.map(() => "denied"));
  });

  test("full-access principals are unrestricted", () => {
    const all: Principal = { kind: "static", subject: "t", grants: "all", patient: null };
    expect(Object.values(decide(all))).toEqual(ALL.map(() => "unrestricted"));
  });

  test("isOwnPatient compares the exact relative reference", () => {
    const p = principal("patient/Binary.r");
    expect(
      [
        "Patient/p1",
        "Patient/p10",
        "patient/p1",
        "Patient/p1/_history/1",
        "http://x/Patient/p1",
        "Group/p1",
      ].map((ref) => isOwnPatient(p, ref)),
    ).toEqual([true, false, false, false, false, false]);
    expect(isOwnPatient(p, null)).toBe(false);
  });
});

describe("JWT helpers", () => {
  test("toPrincipal reads sub, scope (string or scp array) and patient", () => {
    expect(toPrincipal({ sub: "u1", scope: "user/Binary.r", patient: "p9" })).toMatchObject({
      kind: "jwt",
      subject: "u1",
      patient: "p9",
    });
    expect(toPrincipal({ client_id: "app", scp: ["system/Binary.cruds"] }).subject).toBe("app");
    expect(toPrincipal({ scope: 42 }).grants).toEqual([]);
  });

  test("the algorithm allow-list never holds none", () => {
    const settings = {
      secret: "x".repeat(32),
      publicKeyPem: null,
      jwks: { keys: [] },
      issuer: null,
      audience: null,
    };
    expect(allowedAlgorithms(settings)).toEqual(["HS256", "RS256", "ES256"]);
  });

  test.each([
    ["not json", "is not JSON"],
    ["{}", "must be a JWKS"],
    ['{"keys":[{"kty":"oct","k":"eA"}]}', "RSA and EC"],
    ['{"keys":[{"kty":"RSA","n":"x","e":"AQAB","d":"secret"}]}', "private key"],
  ])("parseJwks(%s) is a problem", (text, problem) => {
    expect((parseJwks(text) as { problem: string }).problem).toContain(problem);
  });

  test("looksLikeJwt", () => {
    expect(["a.b.c", "a.b.", "abc", "a.b", "a.b.c.d", "a b.c.d"].map(looksLikeJwt)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
  });
});

describe("parseTokenFile", () => {
  test("tokens, scopes, labels and patients; comments and blank lines ignored", () => {
    const { tokens, problems } = parseTokenFile(
      "# comment\n\nreader-token-0123456789 user/Binary.rs label=reader\r\n" +
        "portal-token-0123456789 patient/Binary.r patient=p1 # trailing comment\n",
    );
    expect(problems).toEqual([]);
    expect(tokens.map(({ label, patient, grants }) => ({ label, patient, n: grants.length }))).toEqual([
      { label: "reader", patient: null, n: 1 },
      { label: tokenLabel("portal-token-0123456789"), patient: "p1", n: 1 },
    ]);
  });

  test("every problem is reported with its line, never with the token", () => {
    const { problems } = parseTokenFile(
      [
        "short user/Binary.r",
        "reader-token-0123456789 user/Binary.rs label=",
        "reader-token-0123456789 user/Binary.zz",
        "patient-token-0123456789 patient/Binary.r",
        "nothing-token-0123456789",
      ].join("\n"),
    );
    expect(problems.map((p) => p.split(":")[0])).toEqual([
      "line 1",
      "line 2",
      "line 3",
      "line 3",
      "line 3",
      "line 4",
      "line 5",
    ]);
    expect(problems.join("\n")).not.toMatch(/token-0123456789|short/);
  });
});
