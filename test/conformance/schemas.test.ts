/**
 * Everything fhirbin emits as FHIR, validated against HL7's official schemas (validate.ts): Binary reads,
 * write responses under each Prefer, searchset and history Bundles, the OperationOutcome of every error
 * status, and the CapabilityStatement; in JSON and XML; as STU3, R4, and R4B and R5 (served with R4's names,
 * so checked against R4's schemas). DSTU2 is left out: HL7 publishes no JSON schema for it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { withDeadline } from "../deadline.ts";
import { startServer, TEST_TOKEN, type TestServer } from "../harness.ts";
import { mountProblem, run } from "../tmpfs.ts";
import {
  createJsonValidator,
  type JsonValidator,
  type Release,
  type Sample,
  validateXml,
  XMLLINT_MISSING,
} from "./validate.ts";

if (XMLLINT_MISSING) {
  console.warn(`NOTICE: the XML schema checks are SKIPPED: ${XMLLINT_MISSING}`);
  if (process.env.CI === "true") {
    test("xmllint is installed, so that the XML schema checks can run in CI", () => {
      throw new Error(XMLLINT_MISSING as string);
    });
  }
}

const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
const SERVER_ARGS = [
  "--jwt-secret",
  SECRET,
  "--max-size",
  "16KiB",
  "--deny-types",
  "application/x-msdownload",
];

/** How a response is asked for: the server, and the Accept parameter naming the release (R4B, R5). */
interface Flavour {
  label: string;
  release: Release;
  server: "stu3" | "r4";
  parameter: string;
}
const FLAVOURS: readonly Flavour[] = [
  { label: "STU3", release: "STU3", server: "stu3", parameter: "" },
  { label: "R4", release: "R4", server: "r4", parameter: "" },
  { label: "R4B", release: "R4", server: "stu3", parameter: "; fhirVersion=4.3" },
  { label: "R5", release: "R4", server: "stu3", parameter: "; fhirVersion=5.0" },
];
const SYNTAXES = ["json", "xml"] as const;

/** Every flavour in both syntaxes, with the Accept header that asks for it. */
const VARIANTS = FLAVOURS.flatMap((flavour) =>
  SYNTAXES.map((syntax) => ({
    ...flavour,
    syntax,
    accept: `application/fhir+${syntax}${flavour.parameter}`,
  })),
);
type Variant = (typeof VARIANTS)[number];

const servers: Partial<Record<Flavour["server"], TestServer>> = {};
const validators: Partial<Record<Release, JsonValidator>> = {};

beforeAll(async () => {
  servers.stu3 = await startServer({ args: SERVER_ARGS });
  servers.r4 = await startServer({ args: [...SERVER_ARGS, "--fhir-version", "R4"] });
  for (const server of Object.values(servers)) await seed(server);
  // Compiled once for the file: each takes seconds.
  validators.STU3 = createJsonValidator("STU3");
  validators.R4 = createJsonValidator("R4");
});
afterAll(async () => {
  for (const server of Object.values(servers)) await server[Symbol.asyncDispose]();
});

function validatorOf(release: Release): JsonValidator {
  const validate = validators[release];
  if (!validate) throw new Error(`the ${release} JSON schema did not compile`);
  return validate;
}

function serverOf(flavour: Flavour): TestServer {
  const server = servers[flavour.server];
  if (!server) throw new Error(`the ${flavour.server} server did not start`);
  return server;
}

const PDF = new TextEncoder().encode("%PDF-1.4 a document");

/** The Binaries every server holds: plain, with every element a client may set, empty, deleted, versioned. */
async function seed(server: TestServer): Promise<void> {
  const put = async (id: string, init: RequestInit): Promise<void> => {
    const res = await server.request(`/Binary/${id}`, { method: "PUT", ...init });
    if (!res.ok) throw new Error(`seeding Binary/${id}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  await put("pdf", { body: PDF, headers: { "content-type": "application/pdf" } });
  await put("full", {
    headers: { "content-type": "application/fhir+json" },
    body: JSON.stringify({
      resourceType: "Binary",
      id: "full",
      meta: {
        tag: [
          { system: "http://example.org/tags", version: "1", code: "x", display: "X", userSelected: true },
        ],
      },
      implicitRules: "http://example.org/rules",
      language: "en-GB",
      contentType: "text/plain; charset=utf-8",
      securityContext: { reference: "Patient/example" },
      content: btoa("with every element"),
    }),
  });
  await put("empty", { body: "", headers: { "content-type": "text/plain" } });
  await put("versioned", { body: "one", headers: { "content-type": "text/plain" } });
  await put("versioned", { body: "two", headers: { "content-type": "text/plain" } });
  await put("gone", { body: "soon deleted", headers: { "content-type": "text/plain" } });
  const deleted = await server.request("/Binary/gone", { method: "DELETE" });
  if (deleted.status !== 204) throw new Error(`seeding the deletion: ${deleted.status}`);
}

/** The SUBSETTED tag's code: a Binary carrying it may lack its payload. */
const SUBSETTED = "SUBSETTED";

/** The body of a response as a sample of `variant`, after checking its status and that it is FHIR. */
async function sampleOf(
  name: string,
  variant: Pick<Variant, "label" | "release" | "syntax">,
  res: Response,
  status: number,
): Promise<Sample> {
  const text = await res.text();
  expect({ name, status: res.status }).toEqual({ name, status });
  expect(res.headers.get("content-type") ?? "").toStartWith(`application/fhir+${variant.syntax}`);
  return { name: `${name} [${variant.label}]`, release: variant.release, syntax: variant.syntax, text };
}

/** The resources of a JSON document: itself, and each Bundle entry's. */
function resourcesOf(resource: Record<string, unknown>): Record<string, unknown>[] {
  const entries = Array.isArray(resource.entry)
    ? (resource.entry as { resource?: Record<string, unknown> }[])
    : [];
  return [resource, ...entries.flatMap((entry) => (entry.resource ? [entry.resource] : []))];
}

function isSubsetted(resource: Record<string, unknown>): boolean {
  const tags = (resource.meta as { tag?: { code?: string }[] } | undefined)?.tag ?? [];
  return tags.some((tag) => tag.code === SUBSETTED);
}

/**
 * The one exception HL7's schemas are allowed: STU3 makes `Binary.content` 1..1, so a Binary in summary
 * form fails the 3.0.1 XSD, by design (R4 search.html#summary: the SUBSETTED tag marks a resource with
 * elements left out). The JSON schema does not require it; there, every Binary without content must be
 * tagged SUBSETTED, which is what makes the XSD's complaint about the same documents the expected one.
 */
const STU3_SUBSETTED_BINARY =
  /: Element '\{http:\/\/hl7\.org\/fhir\}Binary': Missing child element\(s\)\. Expected is (?:one of )?\( (?:\{http:\/\/hl7\.org\/fhir\}securityContext, )?\{http:\/\/hl7\.org\/fhir\}content \)\.$/;

/**
 * A copy of an R4-named CapabilityStatement whose fhirVersion is the last release R4's schema copies know:
 * 4.0.0 for the JSON schema, whose enumeration stops there and so rejects 4.0.1; 4.0.1 for the XSD. R4B and R5
 * statements name 4.3.0 and 5.0.0, which neither can know. Nothing else is changed. STU3 statements need no
 * copy: the 3.0.1 XSD types fhirVersion as an `id`, so 3.0.2 passes it, as it passes the JSON schema.
 */
function withR4SchemaFhirVersion(sample: Sample): Sample {
  const known = sample.syntax === "json" ? "4.0.0" : "4.0.1";
  const text =
    sample.syntax === "json"
      ? JSON.stringify({ ...JSON.parse(sample.text), fhirVersion: known })
      : sample.text.replace(/<fhirVersion value="[^"]*"\/>/, `<fhirVersion value="${known}"/>`);
  return { ...sample, text };
}

/** Validates every sample against its release's schema and expects no problem but the STU3 exception. */
function expectValid(samples: readonly Sample[]): void {
  expect(samples.length).toBeGreaterThan(0);
  const problems: string[] = [];
  for (const sample of samples.filter((one) => one.syntax === "json")) {
    const resource = JSON.parse(sample.text) as Record<string, unknown>;
    const found = validatorOf(sample.release)(resource).map(
      (problem) => `${sample.name} (${sample.release} JSON): ${problem}`,
    );
    problems.push(...found);
    if (sample.release === "STU3") {
      for (const binary of resourcesOf(resource).filter((one) => one.resourceType === "Binary")) {
        if (binary.content === undefined && !isSubsetted(binary))
          problems.push(`${sample.name}: Binary/${binary.id} has no content and is not tagged ${SUBSETTED}`);
      }
    }
  }
  if (!XMLLINT_MISSING) {
    const xml = samples.filter((one) => one.syntax === "xml");
    const failures = validateXml(xml).filter(
      (failure) => !(failure.includes("(STU3 XML)") && STU3_SUBSETTED_BINARY.test(failure)),
    );
    problems.push(...failures);
  }
  expect(problems).toEqual([]);
}

/** Requests `path` as `variant` with the test token (`headers` added). */
function ask(variant: Variant, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("accept")) headers.set("accept", variant.accept);
  return serverOf(variant).request(path, { ...init, headers });
}

/** Follows a Bundle's link (an absolute URL) as `variant`. */
async function follow(variant: Variant, bundle: Sample, relation: string): Promise<Response> {
  const links = (JSON.parse(bundle.text) as { link?: { relation: string; url: string }[] }).link ?? [];
  const url = links.find((link) => link.relation === relation)?.url;
  if (!url) throw new Error(`${bundle.name} has no ${relation} link`);
  return fetch(url, { headers: { accept: variant.accept, authorization: `Bearer ${TEST_TOKEN}` } });
}

/** The JSON twin of a variant: paging links are read from JSON, whatever the syntax checked. */
function inJson(variant: Variant): Variant {
  const twin = VARIANTS.find((one) => one.label === variant.label && one.syntax === "json");
  if (!twin) throw new Error(`no JSON variant of ${variant.label}`);
  return twin;
}

/** Fetches a first page as `variant`, and the page its `relation` link leads to; both as samples. */
async function pages(variant: Variant, name: string, path: string, relation: string): Promise<Sample[]> {
  const first = await sampleOf(name, variant, await ask(variant, path), 200);
  const json = inJson(variant);
  const linked = await follow(variant, await sampleOf(name, json, await ask(json, path), 200), relation);
  return [first, await sampleOf(`${name}, its ${relation} page`, variant, linked, 200)];
}

const tokenFor = (scope: string): Promise<string> =>
  new SignJWT({ sub: "tester", scope })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(SECRET));

describe.each(VARIANTS.map((variant) => [variant.label, variant.syntax, variant] as const))(
  "%s %s",
  (_label, _syntax, variant) => {
    test("Binary reads validate: full, _summary=true, _elements, every element, empty content, vread", async () => {
      const reads: [string, string][] = [
        ["read", "/Binary/pdf"],
        ["read _summary=true", "/Binary/pdf?_summary=true"],
        ["read _summary=false", "/Binary/pdf?_summary=false"],
        ["read _summary=data", "/Binary/pdf?_summary=data"],
        ["read _summary=text", "/Binary/full?_summary=text"],
        ["read _elements=contentType", "/Binary/pdf?_elements=contentType"],
        ["read _pretty=true", "/Binary/full?_pretty=true"],
        ["read of every element", "/Binary/full"],
        ["read of every element _summary=true", "/Binary/full?_summary=true"],
        ["read of empty content", "/Binary/empty"],
        ["vread", "/Binary/versioned/_history/1"],
      ];
      const samples: Sample[] = [];
      for (const [name, path] of reads)
        samples.push(await sampleOf(name, variant, await ask(variant, path), 200));
      expectValid(samples);
    });

    test("the CapabilityStatement validates (when R4-named, as a copy with a fhirVersion R4's schemas know)", async () => {
      const statement = await sampleOf("CapabilityStatement", variant, await ask(variant, "/metadata"), 200);
      const release = { STU3: "3.0.2", R4: "4.0.1", R4B: "4.3.0", R5: "5.0.0" }[variant.label];
      expect(statement.text).toContain(
        variant.syntax === "json" ? `"fhirVersion":"${release}"` : `<fhirVersion value="${release}"/>`,
      );
      expectValid([variant.release === "R4" ? withR4SchemaFhirVersion(statement) : statement]);
    });

    // R4B and R5 differ from R4 by their release alone, which only the CapabilityStatement names: the rest
    // is checked as STU3 and R4.
    if (variant.label === variant.release) {
      test("create and update responses validate under each Prefer return", async () => {
        const id = `written-${variant.label}-${variant.syntax}`;
        const samples: Sample[] = [];
        const write = async (
          name: string,
          method: string,
          path: string,
          prefer: string | null,
          status: number,
        ) => {
          const headers: Record<string, string> = { "content-type": "text/plain" };
          if (prefer) headers.prefer = `return=${prefer}`;
          const res = await ask(variant, path, { method, headers, body: `${name}: some text` });
          if (prefer === "minimal") {
            expect({ name, status: res.status, body: await res.text() }).toEqual({ name, status, body: "" });
          } else samples.push(await sampleOf(`${name}, Prefer ${prefer ?? "absent"}`, variant, res, status));
        };
        for (const prefer of [null, "minimal", "representation", "OperationOutcome"]) {
          await write("create by POST", "POST", "/Binary", prefer, 201);
          await write("create by PUT", "PUT", `/Binary/${id}-${prefer ?? "none"}`, prefer, 201);
          await write("update", "PUT", `/Binary/${id}-${prefer ?? "none"}`, prefer, 200);
        }
        const body =
          variant.syntax === "json"
            ? JSON.stringify({ resourceType: "Binary", contentType: "text/plain", data: btoa("a FHIR body") })
            : `<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><data value="${btoa("a FHIR body")}"/></Binary>`;
        const fhirBody = await ask(variant, "/Binary", {
          method: "POST",
          headers: { "content-type": `application/fhir+${variant.syntax}`, prefer: "return=representation" },
          body,
        });
        samples.push(await sampleOf("create from a FHIR Binary body", variant, fhirBody, 201));
        expectValid(samples);
      });

      test("searchset Bundles validate: matches, the outcome entry of warnings, paging links, counts, _elements", async () => {
        const paged = await pages(
          variant,
          "search paged, an unknown parameter warned",
          "/Binary?_sort=_id&_count=2&unknown=x",
          "next",
        );
        // The pages hold what is to be checked: the warnings' outcome entry, and both paging links.
        expect(
          paged.map((page) => ["outcome", "previous"].filter((word) => page.text.includes(word))),
        ).toEqual([["outcome"], ["previous"]]);
        const samples: Sample[] = [
          ...paged,
          await sampleOf("search", variant, await ask(variant, "/Binary?_sort=-_lastUpdated"), 200),
          await sampleOf("search _summary=count", variant, await ask(variant, "/Binary?_summary=count"), 200),
          await sampleOf("search _summary=true", variant, await ask(variant, "/Binary?_summary=true"), 200),
          await sampleOf(
            "search _elements",
            variant,
            await ask(variant, "/Binary?_elements=contentType"),
            200,
          ),
          await sampleOf(
            "search by contenttype",
            variant,
            await ask(variant, "/Binary?contenttype=application/pdf"),
            200,
          ),
          await sampleOf(
            "search without match",
            variant,
            await ask(variant, "/Binary?_id=nothing-here"),
            200,
          ),
          await sampleOf(
            "search by POST _search",
            variant,
            await ask(variant, "/Binary/_search", {
              method: "POST",
              headers: { "content-type": "application/x-www-form-urlencoded" },
              body: "_id=pdf,full",
            }),
            200,
          ),
        ];
        expectValid(samples);
      });

      test("history Bundles validate: instance and type level, with deletes, paged", async () => {
        // A deletion of the moment, so that the type history's first page has it whatever was written before.
        const id = `deleted-${variant.label}-${variant.syntax}`;
        for (const method of ["PUT", "DELETE"]) {
          const res = await ask(variant, `/Binary/${id}`, {
            method,
            headers: { "content-type": "text/plain" },
            body: method === "PUT" ? "x" : null,
          });
          expect({ method, ok: res.ok }).toEqual({ method, ok: true });
          await res.arrayBuffer();
        }
        const samples: Sample[] = [
          await sampleOf("instance history", variant, await ask(variant, "/Binary/versioned/_history"), 200),
          await sampleOf(
            "instance history with a delete",
            variant,
            await ask(variant, `/Binary/${id}/_history`),
            200,
          ),
          ...(await pages(variant, "instance history paged", "/Binary/versioned/_history?_count=1", "next")),
          await sampleOf("type history", variant, await ask(variant, "/Binary/_history"), 200),
          ...(await pages(variant, "type history paged", "/Binary/_history?_count=2", "next")),
        ];
        // The deletion is an entry of both the instance and the type history.
        const withDelete = samples
          .filter((sample) => sample.text.includes("DELETE"))
          .map((sample) => sample.name);
        expect(withDelete).toEqual(
          expect.arrayContaining([
            `instance history with a delete [${variant.label}]`,
            `type history [${variant.label}]`,
          ]),
        );
        expectValid(samples);
      });

      test("the OperationOutcome of every error status validates", async () => {
        const reader = `Bearer ${await tokenFor("user/Binary.r")}`;
        const errors: [string, number, string, RequestInit][] = [
          ["invalid id", 400, `/Binary/${"x".repeat(65)}`, {}],
          [
            "malformed body",
            400,
            "/Binary",
            { method: "POST", headers: { "content-type": `application/fhir+${variant.syntax}` }, body: "{<" },
          ],
          ["no token", 401, "/Binary/pdf", { headers: { authorization: "" } }],
          [
            "a scope without create",
            403,
            "/Binary",
            { method: "POST", headers: { authorization: reader, "content-type": "text/plain" }, body: "x" },
          ],
          [
            "an unknown search parameter, strict",
            400,
            "/Binary?odd=1",
            { headers: { prefer: "handling=strict" } },
          ],
          ["unknown id", 404, "/Binary/never-was", {}],
          ["unknown route", 404, "/Patient/1", {}],
          [
            "POST on an instance",
            405,
            "/Binary/pdf",
            { method: "POST", headers: { "content-type": "text/plain" }, body: "x" },
          ],
          ["deleted", 410, "/Binary/gone", {}],
          [
            "If-Match of another version",
            412,
            "/Binary/pdf",
            { method: "PUT", headers: { "content-type": "text/plain", "if-match": 'W/"99"' }, body: "x" },
          ],
          [
            "over --max-size",
            413,
            "/Binary",
            { method: "POST", headers: { "content-type": "text/plain" }, body: "x".repeat(17 * 1024) },
          ],
          [
            "a denied type",
            415,
            "/Binary",
            { method: "POST", headers: { "content-type": "application/x-msdownload" }, body: "MZ" },
          ],
          [
            "an unknown Content-Encoding",
            415,
            "/Binary",
            {
              method: "POST",
              headers: { "content-type": "text/plain", "content-encoding": "br" },
              body: "x",
            },
          ],
        ];
        const samples: Sample[] = [];
        for (const [name, status, path, init] of errors) {
          const res = await ask(variant, path, init);
          samples.push(await sampleOf(`${status} ${name}`, variant, res, status));
        }
        expectValid(samples);
      });
    }
  },
);

describe.each(
  FLAVOURS.filter((flavour) => flavour.parameter === "").map((flavour) => [flavour.label, flavour] as const),
)("%s, answers given in the server's own release", (_label, flavour) => {
  // A request whose format cannot be served, and a native read, are answered in FHIR JSON of the server's
  // release (fhir-binary-rules.md section 2: error bodies are "JSON when the request was native").
  const json = { label: flavour.label, release: flavour.release, syntax: "json" as const };
  test("the OperationOutcomes of a format not supported (406) and a range outside the document (416) validate", async () => {
    const server = serverOf(flavour);
    expectValid([
      await sampleOf("406 _format", json, await server.request("/Binary/pdf?_format=yaml"), 406),
      await sampleOf(
        "406 fhirVersion",
        json,
        await server.request("/Binary/pdf", {
          headers: { accept: "application/fhir+json; fhirVersion=9.9" },
        }),
        406,
      ),
      await sampleOf(
        "416 range",
        json,
        await server.request("/Binary/pdf", { headers: { range: "bytes=1000-2000" } }),
        416,
      ),
    ]);
  });
});

describe("regressions found by the schemas", () => {
  const r4Xml = VARIANTS.find((one) => one.label === "R4" && one.syntax === "xml") as Variant;
  const r4Json = inJson(r4Xml);
  const stu3Xml = VARIANTS.find((one) => one.label === "STU3" && one.syntax === "xml") as Variant;

  test("an empty document read as R4 has no data element: an empty value attribute fails HL7's XSD", async () => {
    const json = await sampleOf("empty", r4Json, await ask(r4Json, "/Binary/empty"), 200);
    expect(Object.keys(JSON.parse(json.text))).not.toContain("data");
    expectValid([json, await sampleOf("empty", r4Xml, await ask(r4Xml, "/Binary/empty"), 200)]);
  });

  test("a diagnostic quoting a character XML cannot carry is still well-formed FHIR XML", async () => {
    expectValid([
      await sampleOf("400 _summary", stu3Xml, await ask(stu3Xml, "/Binary/pdf?_summary=%01%EF%BF%BE"), 400),
      await sampleOf("400 _summary", r4Xml, await ask(r4Xml, "/Binary/pdf?_summary=%01"), 400),
      await sampleOf("search warning", r4Xml, await ask(r4Xml, "/Binary?odd%1B=1"), 200),
    ]);
  });

  test("a content type with runs of white space is a FHIR code in the resource, and as stored natively", async () => {
    const spaced = 'text/plain;  name="a  b"';
    const put = await ask(r4Json, "/Binary/spaced", {
      method: "PUT",
      headers: { "content-type": spaced },
      body: "x",
    });
    expect(put.status).toBe(201);
    await put.arrayBuffer();
    const json = await sampleOf("spaced", r4Json, await ask(r4Json, "/Binary/spaced"), 200);
    expectValid([json, await sampleOf("spaced", r4Xml, await ask(r4Xml, "/Binary/spaced"), 200)]);
    // The same type: a quoted-pair `\ ` stands for a space.
    expect(JSON.parse(json.text).contentType).toBe('text/plain; name="a \\ b"');
    const native = await ask(r4Json, "/Binary/spaced", { headers: { accept: "*/*" } });
    expect(native.headers.get("content-type")).toBe(spaced);
    await native.arrayBuffer();
  });

  test.each([
    ["an empty code", { code: "" }],
    ["a code with a leading space", { code: " x" }],
    ["a code with a double space", { code: "a  b" }],
    ["a system with a space", { system: "http://example.org/a b", code: "x" }],
    ["an empty display", { code: "x", display: "" }],
  ])("a meta.tag with %s is refused with 400: echoed, it would fail HL7's schemas", async (_name, tag) => {
    const echoed = { resourceType: "Binary", meta: { tag: [tag] }, contentType: "text/plain" };
    expect(validatorOf("R4")(echoed)).not.toEqual([]);
    const res = await ask(r4Json, "/Binary", {
      method: "POST",
      headers: { "content-type": "application/fhir+json", prefer: "return=representation" },
      body: JSON.stringify({
        resourceType: "Binary",
        meta: { tag: [tag] },
        contentType: "text/plain",
        data: "eA==",
      }),
    });
    expectValid([await sampleOf("refused tag", r4Json, res, 400)]);
  });
});

/** STU3 and R4 (the latter asked for by the fhirVersion parameter) in both syntaxes, from one server. */
const STU3_AND_R4 = (["STU3", "R4"] as const).flatMap((release) =>
  SYNTAXES.map((syntax) => ({
    label: release,
    release,
    syntax,
    accept: `application/fhir+${syntax}${release === "R4" ? "; fhirVersion=4.0" : ""}`,
  })),
);

/** A response read off a socket to its close. */
function parseResponse(bytes: Buffer): Response {
  const end = bytes.indexOf("\r\n\r\n");
  const [statusLine = "", ...lines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return new Response(bytes.subarray(end + 4), { status: Number(statusLine.split(" ")[1]), headers });
}

/** An upload that sends its head and the start of its body, then nothing more, holding its place. */
function stalledUpload(server: TestServer, accept: string): { answer(): Promise<Response> } & Disposable {
  const { hostname, port } = new URL(server.origin);
  const socket = connect(Number(port), hostname);
  const received: Buffer[] = [];
  socket.on("data", (data: Buffer) => received.push(data));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.write(
    `POST ${new URL(server.base).pathname}/Binary HTTP/1.1\r\nhost: localhost\r\n` +
      `authorization: Bearer ${TEST_TOKEN}\r\naccept: ${accept}\r\ncontent-type: text/plain\r\n` +
      "content-length: 100000\r\n\r\nthe start of the body",
  );
  return {
    answer: async () => {
      await withDeadline(closed, "the answer to a stalled upload", WAIT_MS);
      return parseResponse(Buffer.concat(received));
    },
    [Symbol.dispose]: () => socket.destroy(),
  };
}

const WAIT_MS = 10_000;

describe("the OperationOutcomes of a stalled upload (408) and a busy server (503) validate", () => {
  test("408: no part of the body arrived in time", async () => {
    await using server = await startServer({ args: ["--body-timeout", "300ms"] });
    const samples: Sample[] = [];
    for (const variant of STU3_AND_R4) {
      using upload = stalledUpload(server, variant.accept);
      samples.push(await sampleOf("408 stalled upload", variant, await upload.answer(), 408));
    }
    expectValid(samples);
  });

  test("503: more requests in flight than --max-in-flight", async () => {
    await using server = await startServer({ args: ["--max-in-flight", "1"] });
    using _upload = stalledUpload(server, "application/fhir+json");
    // The upload holds the one place once the server has taken it: then every other request is refused.
    const refused = async (accept: string): Promise<Response> => {
      for (const end = performance.now() + WAIT_MS; ; ) {
        const res = await fetch(`${server.base}/metadata`, { headers: { accept } });
        if (res.status === 503 || performance.now() > end) return res;
        await res.arrayBuffer();
      }
    };
    const samples: Sample[] = [];
    for (const variant of STU3_AND_R4)
      samples.push(await sampleOf("503 busy", variant, await refused(variant.accept), 503));
    expectValid(samples);
  });
});

test("the CapabilityStatement of a server with static tokens only, or with authentication off, validates", async () => {
  const samples: Sample[] = [];
  for (const args of [[], ["--auth", "off"]]) {
    await using server = await startServer({ args });
    for (const variant of STU3_AND_R4) {
      const res = await fetch(`${server.base}/metadata`, { headers: { accept: variant.accept } });
      const statement = await sampleOf(`CapabilityStatement ${args.join(" ")}`, variant, res, 200);
      samples.push(variant.release === "R4" ? withR4SchemaFhirVersion(statement) : statement);
    }
  }
  expectValid(samples);
});

const MOUNT_PROBLEM = mountProblem();
if (MOUNT_PROBLEM) {
  console.warn(`NOTICE: the 507 schema check is SKIPPED: cannot mount a tmpfs (${MOUNT_PROBLEM})`);
  if (process.env.CI === "true") {
    test("a tmpfs can be mounted, so that the 507 schema check can run in CI", () => {
      throw new Error(MOUNT_PROBLEM);
    });
  }
}

describe.skipIf(MOUNT_PROBLEM !== null)("the OperationOutcome of a full disk (507) validates", () => {
  let mount = "";
  let server: TestServer | null = null;
  beforeAll(async () => {
    mount = mkdtempSync(join(tmpdir(), "fhirbin-schemas-disk-"));
    expect(run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount)).toBeNull();
    server = await startServer({ args: ["--data", join(mount, "data")] });
  });
  afterAll(async () => {
    // The store writes as it closes: room first.
    rmSync(join(mount, "filler"), { force: true });
    await server?.[Symbol.asyncDispose]();
    run("umount", "-l", mount);
    rmSync(mount, { recursive: true, force: true });
  });

  test("507: no space left for the content", async () => {
    if (!server) throw new Error("the server did not start");
    // Every free page taken, so that the next upload cannot be stored.
    const fd = openSync(join(mount, "filler"), "w");
    try {
      for (const chunk = new Uint8Array(4096); ; ) writeSync(fd, chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      closeSync(fd);
    }
    const samples: Sample[] = [];
    for (const variant of STU3_AND_R4) {
      const res = await server.request("/Binary", {
        method: "POST",
        headers: { accept: variant.accept, "content-type": "application/octet-stream" },
        body: new Uint8Array(64 * 1024),
      });
      samples.push(await sampleOf("507 full disk", variant, res, 507));
    }
    expectValid(samples);
  });
});
