/**
 * Search and type-level history over real HTTP (fhir-binary-rules.md section 6): every parameter and
 * prefix, partial dates, keyset paging that neither skips nor repeats while documents are added, JSON and XML
 * Bundles, `_summary=count`, `_elements`, strict handling, `POST _search` and `GET /Binary/_history`.
 */
import { describe, expect, test } from "bun:test";
import { XMLParser } from "fast-xml-parser";
import { SignJWT } from "jose";
import { startServer, type TestServer } from "../harness.ts";

const FHIR_JSON = "application/fhir+json; charset=utf-8";
const FHIR_XML = "application/fhir+xml; charset=utf-8";
// STU3's system (the server default); R4 moved it to terminology.hl7.org.
const SUBSETTED = {
  system: "http://hl7.org/fhir/v3/ObservationValue",
  code: "SUBSETTED",
  display: "Resource encoded in summary mode",
};

interface Entry {
  fullUrl: string;
  resource: Record<string, unknown> & { resourceType: string; id?: string };
  search?: { mode: string };
  request?: { method: string; url: string };
}
interface Bundle {
  resourceType: string;
  type: string;
  total?: number;
  link: { relation: string; url: string }[];
  entry?: Entry[];
}

/** PUTs a document (update-as-create); resolves with its lastUpdated. */
async function put(
  srv: TestServer,
  id: string,
  contentType = "application/pdf",
  headers: Record<string, string> = {},
) {
  const res = await srv.request(`/Binary/${id}`, {
    method: "PUT",
    body: `content of ${id}`,
    headers: { "content-type": contentType, ...headers },
  });
  if (res.status !== 200 && res.status !== 201)
    throw new Error(`PUT ${id}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { meta: { lastUpdated: string } }).meta.lastUpdated;
}

async function search(srv: TestServer, query: string, init: RequestInit = {}): Promise<Bundle> {
  const res = await srv.request(`/Binary${query}`, init);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /Binary${query}: ${res.status} ${text}`);
  expect(res.headers.get("content-type")).toBe(FHIR_JSON);
  return JSON.parse(text) as Bundle;
}

/** GETs an absolute link of a Bundle with the test token. */
async function follow(srv: TestServer, url: string): Promise<Bundle> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${srv.token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Bundle;
}

const matches = (bundle: Bundle): string[] =>
  (bundle.entry ?? []).filter((e) => e.search?.mode === "match").map((e) => e.resource.id ?? "");
const link = (bundle: Bundle, relation: string): string | undefined =>
  bundle.link.find((l) => l.relation === relation)?.url;

/** The ids of a history Bundle's entries (deletions have no resource: their fullUrl names them). */
const entryIds = (bundle: Bundle): string[] =>
  (bundle.entry ?? []).map((e) => e.resource?.id ?? e.fullUrl.replace(/^.*\//, ""));

/** Follows `next` links from the first page to the last; resolves with each page's ids. */
async function allPages(
  srv: TestServer,
  first: Bundle,
  between: () => Promise<void> = async () => {},
  idsOf: (bundle: Bundle) => string[] = matches,
) {
  const pages = [idsOf(first)];
  let page = first;
  for (let next = link(page, "next"); next; next = link(page, "next")) {
    await between();
    page = await follow(srv, next);
    pages.push(idsOf(page));
  }
  return { pages, last: page };
}

describe("contenttype", () => {
  test("exact types, essences, parameters, code systems and lists", async () => {
    await using srv = await startServer();
    await put(srv, "pdf", "application/pdf");
    await put(srv, "txt", "text/plain");
    await put(srv, "txt-utf8", "text/plain; charset=UTF-8");
    await put(srv, "png", "image/png");
    const found = async (value: string) =>
      matches(await search(srv, `?_sort=_id&contenttype=${encodeURIComponent(value)}`));
    expect(await found("application/pdf")).toEqual(["pdf"]);
    // No parameters in the query: also the types with parameters.
    expect(await found("text/plain")).toEqual(["txt", "txt-utf8"]);
    // Parameters in the query: exactly (type, names and charset case-insensitive).
    expect(await found("text/plain; charset=utf-8")).toEqual(["txt-utf8"]);
    expect(await found("TEXT/Plain;Charset=UTF-8")).toEqual(["txt-utf8"]);
    expect(await found("urn:ietf:bcp:13|image/png")).toEqual(["png"]);
    expect(await found("http://example.org/types|image/png")).toEqual([]);
    expect(await found("application/pdf,image/png")).toEqual(["pdf", "png"]);
    expect(await found("video/mp4")).toEqual([]);
    const bad = await srv.request("/Binary?contenttype=pdf");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ resourceType: "OperationOutcome", issue: [{ code: "value" }] });
  });

  test("entries are Binaries in summary form with fullUrl and search.mode match, never the payload", async () => {
    await using srv = await startServer();
    const lastUpdated = await put(srv, "ctx", "application/pdf", {
      "x-security-context": "Patient/9000000009",
    });
    const bundle = await search(srv, "?contenttype=application/pdf");
    expect(bundle).toEqual({
      resourceType: "Bundle",
      type: "searchset",
      total: 1,
      link: [{ relation: "self", url: `${srv.base}/Binary?contenttype=application%2Fpdf&_count=20` }],
      entry: [
        {
          fullUrl: `${srv.base}/Binary/ctx`,
          resource: {
            resourceType: "Binary",
            id: "ctx",
            meta: { versionId: "1", lastUpdated, tag: [SUBSETTED] },
            contentType: "application/pdf",
            securityContext: { reference: "Patient/9000000009" },
          },
          search: { mode: "match" },
        },
      ],
    });
  });
});

describe("_id", () => {
  test("one id, a comma list, unknown ids, and invalid ids", async () => {
    await using srv = await startServer();
    for (const id of ["a", "b", "c"]) await put(srv, id);
    expect(matches(await search(srv, "?_id=b"))).toEqual(["b"]);
    expect(matches(await search(srv, "?_id=c,a,zz&_sort=_id"))).toEqual(["a", "c"]);
    expect(matches(await search(srv, "?_id=zz"))).toEqual([]);
    expect((await srv.request("/Binary?_id=a_b")).status).toBe(400);
  });
});

describe("_lastUpdated", () => {
  const PREFIXES = ["", "eq", "gt", "ge", "lt", "le"] as const;
  // In UTC, an ISO instant's first n characters are the range of a partial date of that precision: the
  // oracle compares those prefixes as strings, independently of the server's date arithmetic.
  const oracle = (prefix: string, value: string, instant: string): boolean => {
    const cut = instant.slice(0, value.length);
    switch (prefix) {
      case "gt":
        return cut > value;
      case "ge":
        return cut >= value;
      case "lt":
        return cut < value;
      case "le":
        return cut <= value;
      default:
        return cut === value;
    }
  };

  test("every prefix with every precision: year, month, day, minute, second, millisecond", async () => {
    await using srv = await startServer();
    const docs: [string, string][] = [];
    for (let i = 0; i < 6; i++) docs.push([`d${i}`, await put(srv, `d${i}`)]);
    const pivot = (docs[3] as [string, string])[1];
    // 2024 | 2024-03 | 2024-03-05 | 2024-03-05T10:30 | 2024-03-05T10:30:15 | 2024-03-05T10:30:15.123
    for (const length of [4, 7, 10, 16, 19, 23]) {
      const value = pivot.slice(0, length);
      for (const prefix of PREFIXES) {
        // Seconds and milliseconds are written with a Z, the shorter forms without a zone (UTC).
        const query = `${prefix}${value}${length >= 19 ? "Z" : ""}`;
        const bundle = await search(srv, `?_sort=_lastUpdated&_count=100&_lastUpdated=${query}`);
        const expected = docs.filter(([, instant]) => oracle(prefix, value, instant)).map(([id]) => id);
        expect({ query, found: matches(bundle), total: bundle.total }).toEqual({
          query,
          found: expected,
          total: expected.length,
        });
      }
    }
  });

  test("a time zone offset, two parameters as a range, and invalid values", async () => {
    await using srv = await startServer();
    const t0 = await put(srv, "first");
    const t1 = await put(srv, "second");
    // The same instant written in +01:00 (the + escaped, as a client must).
    const shifted = new Date(Date.parse(t1) + 3_600_000).toISOString().replace("Z", "+01:00");
    expect(matches(await search(srv, `?_lastUpdated=${encodeURIComponent(shifted)}`))).toEqual(["second"]);
    const range = `?_sort=_lastUpdated&_lastUpdated=ge${t0}&_lastUpdated=le${t1}`;
    expect(matches(await search(srv, range))).toEqual(["first", "second"]);
    expect(matches(await search(srv, `?_lastUpdated=gt${t1}&_lastUpdated=lt${t0}`))).toEqual([]);
    for (const bad of ["2024-13", "yesterday", "ne2024", "2024,2025"]) {
      const res = await srv.request(`/Binary?_lastUpdated=${bad}`);
      expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
      await res.arrayBuffer();
    }
  });
});

describe("_sort and _count", () => {
  test("the four orders, newest first by default", async () => {
    await using srv = await startServer();
    for (const id of ["b", "c", "a"]) await put(srv, id);
    expect(matches(await search(srv, ""))).toEqual(["a", "c", "b"]);
    expect(matches(await search(srv, "?_sort=-_lastUpdated"))).toEqual(["a", "c", "b"]);
    expect(matches(await search(srv, "?_sort=_lastUpdated"))).toEqual(["b", "c", "a"]);
    expect(matches(await search(srv, "?_sort=_id"))).toEqual(["a", "b", "c"]);
    expect(matches(await search(srv, "?_sort=-_id"))).toEqual(["c", "b", "a"]);
    expect((await srv.request("/Binary?_sort=contenttype")).status).toBe(400);
  });

  test("_count pages with next and previous links; the total stays on every page", async () => {
    await using srv = await startServer();
    const ids = Array.from({ length: 25 }, (_, i) => `doc-${String(i).padStart(2, "0")}`);
    for (const id of ids) await put(srv, id);
    const first = await search(srv, "?_sort=_id&_count=10");
    expect(link(first, "previous")).toBeUndefined();
    expect(link(first, "self")).toBe(`${srv.base}/Binary?_sort=_id&_count=10`);
    const { pages, last } = await allPages(srv, first);
    expect(pages).toEqual([ids.slice(0, 10), ids.slice(10, 20), ids.slice(20)]);
    expect(last.total).toBe(25);
    expect(link(last, "next")).toBeUndefined();
    // And back again.
    const previous = await follow(srv, link(last, "previous") ?? "");
    expect(matches(previous)).toEqual(ids.slice(10, 20));
    expect(previous.total).toBe(25);
    const firstAgain = await follow(srv, link(previous, "previous") ?? "");
    expect(matches(firstAgain)).toEqual(ids.slice(0, 10));
    expect(link(firstAgain, "previous")).toBeUndefined();
    // The self link of a later page is that page.
    expect(matches(await follow(srv, link(previous, "self") ?? ""))).toEqual(ids.slice(10, 20));
  });

  test("_count above the maximum is served as 1000; a cursor that is not ours is a 400", async () => {
    await using srv = await startServer();
    await put(srv, "a");
    expect(link(await search(srv, "?_count=5000"), "self")).toBe(`${srv.base}/Binary?_count=1000`);
    const res = await srv.request("/Binary?_cursor=not-a-cursor");
    expect(res.status).toBe(400);
    await res.arrayBuffer();
  });
});

describe("paging while documents are added, updated and deleted", () => {
  test.each(["_lastUpdated", "-_lastUpdated", "_id", "-_id"])(
    "_sort=%s: every document present at the first page is seen exactly once",
    async (sort) => {
      await using srv = await startServer();
      const initial = Array.from({ length: 23 }, (_, i) => `m${String(i * 2).padStart(3, "0")}`);
      for (const id of initial) await put(srv, id);
      let added = 0;
      const first = await search(srv, `?_sort=${sort}&_count=4`);
      const { pages } = await allPages(srv, first, async () => {
        // Between pages: new documents (ids interleaved with the existing ones), some at once.
        await Promise.all([1, 2, 3].map(() => put(srv, `m${String(added++ * 2 + 1).padStart(3, "0")}`)));
      });
      const seen = pages.flat();
      expect(seen.toSorted()).toEqual(initial);
      expect(new Set(seen).size).toBe(seen.length);
      // A new search sees the new documents.
      expect((await search(srv, "?_summary=count")).total).toBe(initial.length + added);
    },
  );

  test("updates and deletions after the first page do not move entries between pages", async () => {
    await using srv = await startServer();
    const initial = Array.from({ length: 12 }, (_, i) => `u${String(i).padStart(2, "0")}`);
    for (const id of initial) await put(srv, id);
    const first = await search(srv, "?_sort=_lastUpdated&_count=5");
    let round = 0;
    const { pages } = await allPages(srv, first, async () => {
      // Move an already seen document to the end (an update) and delete an unseen one.
      await put(srv, `u${String(round).padStart(2, "0")}`, "text/plain");
      const res = await srv.request(`/Binary/u${String(11 - round).padStart(2, "0")}`, { method: "DELETE" });
      expect(res.status).toBe(204);
      round++;
    });
    expect(pages.flat()).toEqual(initial);
    // A new search: the updated ones once each, the deleted ones gone.
    const now = await search(srv, "?_sort=_id&_count=100");
    expect(matches(now)).toEqual(initial.slice(0, 10));
  });
});

describe("deleted and updated documents", () => {
  test("deletions are not matched; an update is matched once, as its new version", async () => {
    await using srv = await startServer();
    await put(srv, "kept");
    await put(srv, "gone");
    await put(srv, "changed", "application/pdf");
    await put(srv, "changed", "image/png");
    expect((await srv.request("/Binary/gone", { method: "DELETE" })).status).toBe(204);
    const bundle = await search(srv, "?_sort=_id");
    expect(matches(bundle)).toEqual(["changed", "kept"]);
    expect(bundle.entry?.[0]?.resource).toMatchObject({ meta: { versionId: "2" }, contentType: "image/png" });
    expect(matches(await search(srv, "?contenttype=application/pdf&_sort=_id"))).toEqual(["kept"]);
  });
});

describe("_summary and _elements", () => {
  test("_summary=count and _count=0 give only the total", async () => {
    await using srv = await startServer();
    for (const id of ["a", "b", "c"]) await put(srv, id, id === "c" ? "image/png" : "application/pdf");
    for (const query of [
      "?_summary=count&contenttype=application/pdf",
      "?_count=0&contenttype=application/pdf",
    ]) {
      const bundle = await search(srv, query);
      expect(bundle).toEqual({
        resourceType: "Bundle",
        type: "searchset",
        total: 2,
        link: [{ relation: "self", url: expect.stringContaining(`${srv.base}/Binary?`) }],
      });
    }
  });

  test("_summary=true is the default summary form; _summary=maybe is refused", async () => {
    await using srv = await startServer();
    await put(srv, "a");
    expect(matches(await search(srv, "?_summary=true"))).toEqual(["a"]);
    expect((await srv.request("/Binary?_summary=maybe")).status).toBe(400);
  });

  test("_elements keeps id, meta and the listed elements", async () => {
    await using srv = await startServer();
    await put(srv, "a", "application/pdf", { "x-security-context": "Patient/1" });
    const only = async (elements: string) =>
      (await search(srv, `?_elements=${elements}`)).entry?.[0]?.resource;
    expect(await only("contentType")).toEqual({
      resourceType: "Binary",
      id: "a",
      meta: expect.objectContaining({ tag: [SUBSETTED] }),
      contentType: "application/pdf",
    });
    expect(await only("securityContext")).toEqual({
      resourceType: "Binary",
      id: "a",
      meta: expect.objectContaining({ versionId: "1" }),
      securityContext: { reference: "Patient/1" },
    });
    expect(Object.keys((await only("data,content")) ?? {})).toEqual(["resourceType", "id", "meta"]);
  });
});

const xmlParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", isArray: () => true });

describe("formats: always a Bundle, JSON or XML, never native", () => {
  test.each([
    ["_format=xml", "?_format=xml", {}],
    ["_format=application/fhir+xml", `?_format=${encodeURIComponent("application/fhir+xml")}`, {}],
    ["Accept: application/fhir+xml", "", { accept: "application/fhir+xml" }],
    ["Accept: application/xml", "", { accept: "application/xml" }],
  ])("%s gives an XML searchset", async (_name, query, headers) => {
    await using srv = await startServer();
    await put(srv, "a", "text/plain", { "x-security-context": "Patient/1" });
    const res = await srv.request(`/Binary${query}`, { headers });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(FHIR_XML);
    const doc = xmlParser.parse(await res.text());
    const bundle = doc.Bundle[0];
    expect(bundle["@xmlns"]).toEqual(["http://hl7.org/fhir"]);
    expect(bundle.type[0]["@value"]).toEqual(["searchset"]);
    expect(bundle.total[0]["@value"]).toEqual(["1"]);
    expect(bundle.link[0].relation[0]["@value"]).toEqual(["self"]);
    const entry = bundle.entry[0];
    expect(entry.fullUrl[0]["@value"]).toEqual([`${srv.base}/Binary/a`]);
    const binary = entry.resource[0].Binary[0];
    expect(binary["@xmlns"]).toEqual(["http://hl7.org/fhir"]);
    expect(binary.id[0]["@value"]).toEqual(["a"]);
    expect(binary.contentType[0]["@value"]).toEqual(["text/plain"]);
    expect(binary.securityContext[0].reference[0]["@value"]).toEqual(["Patient/1"]);
    expect(binary.content).toBeUndefined();
    expect(entry.search[0].mode[0]["@value"]).toEqual(["match"]);
  });

  test.each([
    ["no Accept", {}],
    ["Accept: */*", { accept: "*/*" }],
    ["Accept: application/pdf (the stored type)", { accept: "application/pdf" }],
    ["Accept: application/fhir+json", { accept: "application/fhir+json" }],
  ])("%s gives a JSON searchset", async (_name, headers) => {
    await using srv = await startServer();
    await put(srv, "a");
    expect(matches(await search(srv, "", { headers }))).toEqual(["a"]);
  });

  test("fhirVersion=4.0 and an R4 server use R4's Bundle and Binary; a DSTU2 server its MIME type", async () => {
    await using srv = await startServer({ args: ["--fhir-version", "DSTU2"] });
    await put(srv, "a", "text/plain", { "x-security-context": "Patient/1" });
    const dstu2 = await srv.request("/Binary");
    expect(dstu2.headers.get("content-type")).toBe("application/json+fhir; charset=utf-8");
    // DSTU2 Binary has no securityContext.
    expect(((await dstu2.json()) as Bundle).entry?.[0]?.resource.securityContext).toBeUndefined();
    const r4 = await srv.request("/Binary", {
      headers: { accept: "application/fhir+json; fhirVersion=4.0" },
    });
    expect(r4.headers.get("content-type")).toBe(FHIR_JSON);
    expect(((await r4.json()) as Bundle).entry?.[0]?.resource.securityContext).toEqual({
      reference: "Patient/1",
    });
  });

  test("an unsupported _format is a 406", async () => {
    await using srv = await startServer();
    const res = await srv.request("/Binary?_format=application/pdf");
    expect(res.status).toBe(406);
    await res.arrayBuffer();
  });

  test("_pretty indents", async () => {
    await using srv = await startServer();
    const res = await srv.request("/Binary?_pretty=true");
    expect(await res.text()).toStartWith('{\n  "resourceType": "Bundle"');
  });
});

describe("unknown parameters", () => {
  test("lenient (the default): ignored, with a warning OperationOutcome entry (search.mode outcome)", async () => {
    await using srv = await startServer();
    await put(srv, "a");
    const bundle = await search(srv, "?subject=Patient/1&contenttype=application/pdf&_include=Binary:x");
    expect(matches(bundle)).toEqual(["a"]);
    expect(link(bundle, "self")).toBe(`${srv.base}/Binary?contenttype=application%2Fpdf&_count=20`);
    const outcome = bundle.entry?.find((e) => e.search?.mode === "outcome");
    expect(outcome).toEqual({
      fullUrl: expect.stringMatching(/^urn:uuid:[0-9a-f-]{36}$/),
      resource: {
        resourceType: "OperationOutcome",
        issue: [
          { severity: "warning", code: "not-supported", diagnostics: expect.stringContaining("subject") },
          { severity: "warning", code: "not-supported", diagnostics: expect.stringContaining("_include") },
        ],
      },
      search: { mode: "outcome" },
    });
  });

  test("Prefer: handling=strict: a 400 OperationOutcome naming the parameter", async () => {
    await using srv = await startServer();
    const res = await srv.request("/Binary?subject=Patient/1", { headers: { prefer: "handling=strict" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      resourceType: "OperationOutcome",
      issue: [
        { severity: "error", code: "not-supported", diagnostics: expect.stringContaining('"subject"') },
      ],
    });
    const known = await srv.request("/Binary?_count=1", { headers: { prefer: "handling=strict" } });
    expect(known.status).toBe(200);
    await known.arrayBuffer();
  });

  test("an unsupported modifier is a 400 even when lenient", async () => {
    await using srv = await startServer();
    const res = await srv.request("/Binary?contenttype:not=application/pdf");
    expect(res.status).toBe(400);
    await res.arrayBuffer();
  });
});

describe("POST [base]/Binary/_search", () => {
  test("form parameters, merged with those of the URL, give the same Bundle as GET", async () => {
    await using srv = await startServer();
    await put(srv, "a", "application/pdf");
    await put(srv, "b", "image/png");
    await put(srv, "c", "application/pdf");
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const res = await srv.request("/Binary/_search?_sort=_id", {
      method: "POST",
      headers: form,
      body: "contenttype=application%2Fpdf&_count=1",
    });
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(matches(bundle)).toEqual(["a"]);
    expect(bundle.total).toBe(2);
    // Paging continues with GET links.
    expect(link(bundle, "self")).toBe(`${srv.base}/Binary?_sort=_id&contenttype=application%2Fpdf&_count=1`);
    expect(matches(await follow(srv, link(bundle, "next") ?? ""))).toEqual(["c"]);
    const count = await srv.request("/Binary/_search", {
      method: "POST",
      headers: form,
      body: "_summary=count",
    });
    expect(((await count.json()) as Bundle).total).toBe(3);
    const empty = await srv.request("/Binary/_search", { method: "POST" });
    expect(matches((await empty.json()) as Bundle)).toHaveLength(3);
  });

  test("a body that is not a form is a 415; strict handling applies too", async () => {
    await using srv = await startServer();
    const json = await srv.request("/Binary/_search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"contenttype":"application/pdf"}',
    });
    expect(json.status).toBe(415);
    await json.arrayBuffer();
    const strict = await srv.request("/Binary/_search", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", prefer: "handling=strict" },
      body: "color=blue",
    });
    expect(strict.status).toBe(400);
    await strict.arrayBuffer();
  });
});

describe("GET [base]/Binary/_history", () => {
  test("every version of every Binary, newest first, deletions as DELETE entries", async () => {
    await using srv = await startServer();
    await put(srv, "a");
    await put(srv, "b");
    await put(srv, "a", "text/plain");
    expect((await srv.request("/Binary/b", { method: "DELETE" })).status).toBe(204);
    const res = await srv.request("/Binary/_history");
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as Bundle;
    expect(bundle).toMatchObject({ resourceType: "Bundle", type: "history", total: 4 });
    expect(
      bundle.entry?.map((e) => [e.fullUrl.replace(`${srv.base}/`, ""), e.request?.method, e.request?.url]),
    ).toEqual([
      ["Binary/b", "DELETE", "Binary/b"],
      ["Binary/a", "PUT", "Binary/a"],
      // Created by PUT, so PUT entries too.
      ["Binary/b", "PUT", "Binary/b"],
      ["Binary/a", "PUT", "Binary/a"],
    ]);
    expect(bundle.entry?.[1]?.resource).toMatchObject({ id: "a", meta: { versionId: "2" } });
  });

  test("_count pages newest first, stable while documents are added; _since keeps the later versions", async () => {
    await using srv = await startServer();
    const times: string[] = [];
    for (let i = 0; i < 7; i++) times.push(await put(srv, `h${i}`));
    const first = (await (await srv.request("/Binary/_history?_count=3")).json()) as Bundle;
    let extra = 0;
    const { pages, last } = await allPages(
      srv,
      first,
      async () => {
        await put(srv, `new${extra++}`);
      },
      entryIds,
    );
    expect(pages).toEqual([["h6", "h5", "h4"], ["h3", "h2", "h1"], ["h0"]]);
    expect(last.total).toBe(7);
    const back = await follow(srv, link(last, "previous") ?? "");
    expect(entryIds(back)).toEqual(["h3", "h2", "h1"]);
    const since = (await (await srv.request(`/Binary/_history?_since=${times[5]}`)).json()) as Bundle;
    expect(entryIds(since)).toEqual(["new1", "new0", "h6", "h5"]);
    expect(since.total).toBe(4);
  });

  test("strict handling refuses unknown parameters; a bad _since is a 400", async () => {
    await using srv = await startServer();
    const strict = await srv.request("/Binary/_history?_at=2024", { headers: { prefer: "handling=strict" } });
    expect(strict.status).toBe(400);
    await strict.arrayBuffer();
    const bad = await srv.request("/Binary/_history?_since=soon");
    expect(bad.status).toBe(400);
    await bad.arrayBuffer();
    const xml = await srv.request("/Binary/_history?_format=xml");
    expect(xml.headers.get("content-type")).toBe(FHIR_XML);
    expect(await xml.text()).toContain('<type value="history"/>');
  });
});

describe("access", () => {
  test.each([
    ["GET", "/Binary"],
    ["POST", "/Binary/_search"],
    ["GET", "/Binary/_history"],
  ])("%s %s needs a token", async (method, path) => {
    await using srv = await startServer();
    const res = await srv.request(path, { method, auth: false });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("Bearer");
    await res.arrayBuffer();
  });
});

describe("SMART scopes", () => {
  const SECRET = "a-test-secret-of-at-least-32-bytes-0123456789";
  const tokenFor = (scope: string): Promise<string> =>
    new SignJWT({ sub: "tester", scope, patient: "p1" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(SECRET));

  test("search needs the s permission; a patient scope finds only its patient's Binaries", async () => {
    await using srv = await startServer({ args: ["--jwt-secret", SECRET] });
    await put(srv, "mine", "application/pdf", { "x-security-context": "Patient/p1" });
    await put(srv, "theirs", "application/pdf", { "x-security-context": "Patient/p2" });
    await put(srv, "nobody", "application/pdf");
    const as = async (scope: string, path: string) =>
      srv.request(path, { headers: { authorization: `Bearer ${await tokenFor(scope)}` } });

    const own = await as("patient/Binary.rs", "/Binary?_sort=_id");
    expect(own.status).toBe(200);
    const bundle = (await own.json()) as Bundle;
    expect({ found: matches(bundle), total: bundle.total }).toEqual({ found: ["mine"], total: 1 });
    const count = (await (await as("patient/Binary.s", "/Binary?_summary=count")).json()) as Bundle;
    expect(count.total).toBe(1);
    const all = (await (await as("user/Binary.s", "/Binary?_sort=_id")).json()) as Bundle;
    expect(matches(all)).toEqual(["mine", "nobody", "theirs"]);

    const noSearch = await as("user/Binary.r", "/Binary");
    expect(noSearch.status).toBe(403);
    await noSearch.arrayBuffer();
    // The type history spans every patient.
    const history = await as("patient/Binary.rs", "/Binary/_history");
    expect(history.status).toBe(403);
    await history.arrayBuffer();
    expect((await as("user/Binary.r", "/Binary/_history")).status).toBe(200);
  });
});

describe("the in-memory driver", () => {
  test("searches through the same index code", async () => {
    await using srv = await startServer({ driver: "memory" });
    await put(srv, "a", "application/pdf");
    await put(srv, "b", "image/png");
    expect(matches(await search(srv, "?contenttype=image/png"))).toEqual(["b"]);
    expect(((await (await srv.request("/Binary/_history")).json()) as Bundle).total).toBe(2);
  });
});
