/**
 * Conformance over real HTTP: what real FHIR clients found when every response was validated against the
 * STU3 and R4 schemas (paging, history entries, issue codes per release, unknown elements, caching headers,
 * the bearer challenge, resource elements kept, required elements, release names).
 */
import { describe, expect, test } from "bun:test";
import { startServer, type TestServer } from "../harness.ts";

const FHIR_JSON = "application/fhir+json";
const R4_JSON = "application/fhir+json; fhirVersion=4.0";
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

interface Entry {
  fullUrl: string;
  resource?: { id: string; meta: { versionId: string } };
  request: { method: string; url: string };
  response: { status: string };
}
interface Bundle {
  total: number;
  link: { relation: string; url: string }[];
  entry?: Entry[];
}

/** A write, asserting success. */
async function write(
  srv: TestServer,
  method: "POST" | "PUT",
  path: string,
  body: string,
  contentType = "text/plain",
): Promise<Response> {
  const res = await srv.request(path, { method, body: utf8(body), headers: { "content-type": contentType } });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 201) throw new Error(`${method} ${path}: ${res.status}`);
  return res;
}

/** A request to an absolute URL of the server (a paging link), with the test token. */
function follow(srv: TestServer, url: string): Promise<Response> {
  return fetch(url, { headers: { authorization: `Bearer ${srv.token}` } });
}

const linkOf = (bundle: Bundle, relation: string): string | null =>
  bundle.link.find((link) => link.relation === relation)?.url ?? null;

describe("instance history", () => {
  test("_count pages an instance history with next links, like the type history", async () => {
    await using srv = await startServer();
    for (let n = 1; n <= 6; n++) await write(srv, "PUT", "/Binary/h1", `v${n}`);
    const pages: string[][] = [];
    let url: string | null = `${srv.base}/Binary/h1/_history?_count=2`;
    while (url !== null && pages.length < 5) {
      const res = await follow(srv, url);
      expect(res.status).toBe(200);
      const bundle = (await res.json()) as Bundle;
      expect(bundle.total).toBe(6);
      pages.push((bundle.entry ?? []).map((entry) => entry.resource?.meta.versionId ?? "deleted"));
      url = linkOf(bundle, "next");
    }
    expect(pages).toEqual([
      ["6", "5"],
      ["4", "3"],
      ["2", "1"],
    ]);
  });

  test("the previous link of an instance history page leads back to the page before it", async () => {
    await using srv = await startServer();
    for (let n = 1; n <= 5; n++) await write(srv, "PUT", "/Binary/h3", `v${n}`);
    const versionsAt = async (url: string | null) => {
      if (url === null) throw new Error("no link");
      const bundle = (await (await follow(srv, url)).json()) as Bundle;
      return { bundle, versions: bundle.entry?.map((entry) => entry.resource?.meta.versionId) };
    };
    const first = await versionsAt(`${srv.base}/Binary/h3/_history?_count=2`);
    const second = await versionsAt(linkOf(first.bundle, "next"));
    const back = await versionsAt(linkOf(second.bundle, "previous"));
    expect([first.versions, second.versions, back.versions]).toEqual([
      ["5", "4"],
      ["3", "2"],
      ["5", "4"],
    ]);
    expect(linkOf(back.bundle, "previous")).toBeNull();
  });

  test("a version written while a client pages an instance history does not shift its pages", async () => {
    await using srv = await startServer();
    for (let n = 1; n <= 4; n++) await write(srv, "PUT", "/Binary/h2", `v${n}`);
    const first = (await (await srv.request("/Binary/h2/_history?_count=2")).json()) as Bundle;
    await write(srv, "PUT", "/Binary/h2", "v5");
    const next = linkOf(first, "next");
    if (next === null) throw new Error("no next link");
    const second = (await (await follow(srv, next)).json()) as Bundle;
    expect(second.entry?.map((entry) => entry.resource?.meta.versionId)).toEqual(["2", "1"]);
    expect(linkOf(second, "next")).toBeNull();
  });

  test("a create done by PUT shows up in history as PUT Binary/[id], one done by POST as POST Binary", async () => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/p1", "one");
    await write(srv, "PUT", "/Binary/p1", "two");
    const posted = await write(srv, "POST", "/Binary", "three");
    const postedId = /\/Binary\/([^/]+)\/_history/.exec(posted.headers.get("location") ?? "")?.[1];
    const requests = async (id: string) => {
      const bundle = (await (await srv.request(`/Binary/${id}/_history`)).json()) as Bundle;
      return bundle.entry?.map((entry) => [entry.request.method, entry.request.url, entry.response.status]);
    };
    expect(await requests("p1")).toEqual([
      ["PUT", "Binary/p1", "200"],
      ["PUT", "Binary/p1", "201"],
    ]);
    expect(await requests(postedId ?? "")).toEqual([["POST", "Binary", "201"]]);
    // The type history says the same.
    const all = (await (await srv.request("/Binary/_history")).json()) as Bundle;
    expect(all.entry?.map((entry) => [entry.request.method, entry.request.url])).toEqual([
      ["POST", "Binary"],
      ["PUT", "Binary/p1"],
      ["PUT", "Binary/p1"],
    ]);
  });
});

describe("codes of the release being rendered", () => {
  test("a 410 says not-found in STU3 and DSTU2, whose IssueType has no deleted, and deleted in R4", async () => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/gone", "x");
    await srv.request("/Binary/gone", { method: "DELETE" });
    const codeFor = async (accept: string) => {
      const res = await srv.request("/Binary/gone", { headers: { accept } });
      const outcome = (await res.json()) as { issue: { code: string }[] };
      return [res.status, outcome.issue[0]?.code];
    };
    expect(await codeFor(FHIR_JSON)).toEqual([410, "not-found"]);
    expect(await codeFor("application/json+fhir")).toEqual([410, "not-found"]);
    expect(await codeFor(R4_JSON)).toEqual([410, "deleted"]);
  });

  test("the SUBSETTED tag names the v3 ObservationValue system of the release", async () => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/sum", "x");
    const systemFor = async (accept: string) => {
      const res = await srv.request("/Binary/sum?_summary=true", { headers: { accept } });
      const binary = (await res.json()) as { meta: { tag: { system: string; code: string }[] } };
      return binary.meta.tag.map((tag) => `${tag.system}|${tag.code}`);
    };
    expect(await systemFor(FHIR_JSON)).toEqual(["http://hl7.org/fhir/v3/ObservationValue|SUBSETTED"]);
    expect(await systemFor("application/json+fhir")).toEqual([
      "http://hl7.org/fhir/v3/ObservationValue|SUBSETTED",
    ]);
    expect(await systemFor(R4_JSON)).toEqual([
      "http://terminology.hl7.org/CodeSystem/v3-ObservationValue|SUBSETTED",
    ]);
  });
});

describe("unknown elements (acceptUnknown: no)", () => {
  const refused = async (srv: TestServer, body: string, contentType: string) => {
    const res = await srv.request("/Binary", {
      method: "POST",
      body: utf8(body),
      headers: { "content-type": contentType, accept: FHIR_JSON },
    });
    const outcome = (await res.json()) as { issue: { diagnostics: string }[] };
    return [res.status, outcome.issue[0]?.diagnostics ?? ""];
  };

  test.each([
    ["streamed JSON", '{"resourceType":"Binary","foo":1,"contentType":"text/plain","content":"aGk="}'],
    ["buffered JSON", '{"content":"aGk=","contentType":"text/plain","resourceType":"Binary","foo":1}'],
  ])("a FHIR JSON Binary with an unknown element is refused with 400 naming it (%s)", async (_how, body) => {
    await using srv = await startServer();
    const [status, diagnostics] = await refused(srv, body, FHIR_JSON);
    expect(status).toBe(400);
    expect(diagnostics).toContain("foo");
    expect((await (await srv.request("/Binary?_summary=count")).json()) as Bundle).toMatchObject({
      total: 0,
    });
  });

  test("a FHIR XML Binary with an unknown element is refused with 400 naming it", async () => {
    await using srv = await startServer();
    const body =
      '<Binary xmlns="http://hl7.org/fhir"><foo value="1"/><contentType value="text/plain"/>' +
      '<content value="aGk="/></Binary>';
    const [status, diagnostics] = await refused(srv, body, "application/fhir+xml");
    expect(status).toBe(400);
    expect(diagnostics).toContain("foo");
  });

  test("the known elements of each release are accepted", async () => {
    await using srv = await startServer();
    const stu3 =
      '{"resourceType":"Binary","id":"k3","meta":{"versionId":"9"},"implicitRules":"http://example.org/rules",' +
      '"language":"en","contentType":"text/plain","securityContext":{"reference":"Patient/1"},"content":"aGk="}';
    expect(
      (await srv.request("/Binary/k3", { method: "PUT", body: stu3, headers: { "content-type": FHIR_JSON } }))
        .status,
    ).toBe(201);
    const r4 = '{"resourceType":"Binary","id":"k4","contentType":"text/plain","data":"aGk="}';
    expect(
      (await srv.request("/Binary/k4", { method: "PUT", body: r4, headers: { "content-type": R4_JSON } }))
        .status,
    ).toBe(201);
  });
});

describe("caches", () => {
  test("native and FHIR reads, and their 304s, carry Vary: Accept", async () => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/v1", "hello");
    const varyOf = async (headers: Record<string, string>) => {
      const res = await srv.request("/Binary/v1", { headers });
      await res.arrayBuffer();
      return [res.status, res.headers.get("vary")];
    };
    expect(await varyOf({})).toEqual([200, "Accept"]);
    expect(await varyOf({ accept: FHIR_JSON })).toEqual([200, "Accept"]);
    expect(await varyOf({ "if-none-match": 'W/"1"' })).toEqual([304, "Accept"]);
    expect(await varyOf({ accept: FHIR_JSON, "if-none-match": 'W/"1"' })).toEqual([304, "Accept"]);
  });

  test("with CORS the Vary of a read names Origin as well as Accept", async () => {
    const app = "https://app.example.org";
    await using srv = await startServer({ args: ["--cors-origin", app] });
    await write(srv, "PUT", "/Binary/v2", "hello");
    for (const path of [
      "/Binary/v2",
      "/Binary/v2/_history/1",
      "/Binary/v2/_history",
      "/Binary/missing",
      "/Binary/missing/_history",
    ]) {
      const res = await srv.request(path, { headers: { origin: app, accept: FHIR_JSON } });
      await res.arrayBuffer();
      expect([path, res.headers.get("vary")]).toEqual([path, "Accept, Origin"]);
    }
  });
});

describe("bearer challenge (RFC 6750 section 3.1)", () => {
  test("a 401 without credentials carries no error code; a refused token gets invalid_token", async () => {
    await using srv = await startServer();
    const missing = await srv.request("/Binary/x", { auth: false });
    await missing.arrayBuffer();
    const refusedToken = await srv.request("/Binary/x", { headers: { authorization: "Bearer not-a-token" } });
    await refusedToken.arrayBuffer();
    expect([missing.status, missing.headers.get("www-authenticate")]).toEqual([
      401,
      'Bearer realm="fhirbin"',
    ]);
    expect([refusedToken.status, refusedToken.headers.get("www-authenticate")]).toEqual([
      401,
      'Bearer realm="fhirbin", error="invalid_token"',
    ]);
  });
});

describe("search", () => {
  test("_summary=data is accepted on a search, as R4 search defines it", async () => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/s1", "x");
    const res = await srv.request("/Binary?_summary=data");
    expect(res.status).toBe(200);
    expect(((await res.json()) as Bundle).total).toBe(1);
  });
});

describe("resource elements", () => {
  const TAG = { system: "http://example.org/tags", code: "confidential", display: "Confidential" };

  test("a client's meta.tag and language survive a FHIR JSON create and are read back in JSON and XML", async () => {
    await using srv = await startServer();
    const body = JSON.stringify({
      resourceType: "Binary",
      id: "t1",
      meta: { tag: [TAG] },
      language: "en-GB",
      contentType: "text/plain",
      content: "aGk=",
    });
    expect(
      (await srv.request("/Binary/t1", { method: "PUT", body, headers: { "content-type": FHIR_JSON } }))
        .status,
    ).toBe(201);
    const json = (await (await srv.request("/Binary/t1", { headers: { accept: FHIR_JSON } })).json()) as {
      meta: { tag: unknown[] };
      language: string;
      content: string;
    };
    expect([json.meta.tag, json.language, json.content]).toEqual([[TAG], "en-GB", "aGk="]);
    const xml = await (
      await srv.request("/Binary/t1", { headers: { accept: "application/fhir+xml" } })
    ).text();
    expect(xml).toContain(
      '<tag><system value="http://example.org/tags"/><code value="confidential"/><display value="Confidential"/></tag>',
    );
    expect(xml).toMatch(/<\/meta><language value="en-GB"\/><contentType value="text\/plain"\/>/);
    const summary = (await (
      await srv.request("/Binary/t1?_summary=true", { headers: { accept: R4_JSON } })
    ).json()) as {
      meta: { tag: { code: string }[] };
    };
    expect(summary.meta.tag.map((tag) => tag.code)).toEqual(["confidential", "SUBSETTED"]);
  });

  test("meta.tag and language of a FHIR XML create are kept too", async () => {
    await using srv = await startServer();
    const body =
      '<Binary xmlns="http://hl7.org/fhir"><id value="t2"/><meta><tag><system value="http://example.org/tags"/>' +
      '<code value="confidential"/></tag></meta><language value="fr"/><contentType value="text/plain"/>' +
      '<content value="aGk="/></Binary>';
    expect(
      (
        await srv.request("/Binary/t2", {
          method: "PUT",
          body,
          headers: { "content-type": "application/fhir+xml" },
        })
      ).status,
    ).toBe(201);
    const json = (await (await srv.request("/Binary/t2", { headers: { accept: FHIR_JSON } })).json()) as {
      meta: { tag: unknown[] };
      language: string;
    };
    expect([json.meta.tag, json.language]).toEqual([
      [{ system: "http://example.org/tags", code: "confidential" }],
      "fr",
    ]);
  });
});

describe("required elements", () => {
  test("a Binary without content is refused in STU3 and DSTU2 (1..1) and accepted without data in R4", async () => {
    await using srv = await startServer();
    const post = (body: string, contentType: string) =>
      srv.request("/Binary", { method: "POST", body: utf8(body), headers: { "content-type": contentType } });
    const empty = '{"resourceType":"Binary","contentType":"text/plain"}';
    expect((await post(empty, FHIR_JSON)).status).toBe(400);
    expect((await post(empty, "application/json+fhir")).status).toBe(400);
    expect(
      (
        await post(
          '<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/></Binary>',
          "application/fhir+xml",
        )
      ).status,
    ).toBe(400);
    expect((await post(empty, R4_JSON)).status).toBe(201);
  });
});

describe("R4B and R5", () => {
  test.each([
    ["4.3", "4.3.0"],
    ["5.0", "5.0.0"],
  ])("fhirVersion=%s is answered as that release, with R4's names", async (asked, release) => {
    await using srv = await startServer();
    await write(srv, "PUT", "/Binary/r5", "hi");
    const accept = `application/fhir+json; fhirVersion=${asked}`;
    const metadata = await srv.request("/metadata", { headers: { accept } });
    expect(metadata.headers.get("content-type")).toBe(
      `application/fhir+json; fhirVersion=${asked}; charset=utf-8`,
    );
    expect(((await metadata.json()) as { fhirVersion: string }).fhirVersion).toBe(release);
    const read = await srv.request("/Binary/r5", { headers: { accept } });
    expect(read.headers.get("content-type")).toBe(
      `application/fhir+json; fhirVersion=${asked}; charset=utf-8`,
    );
    expect(((await read.json()) as { data: string }).data).toBe("aGk=");
  });
});
