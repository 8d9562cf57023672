/**
 * File names, end to end: the name a write's `Content-Disposition` gives (`filename`, `filename*`) is kept
 * with the version, shown in `Binary.meta.extension` on every FHIR answer (JSON and XML, STU3 and R4), named
 * again in the native read's `Content-Disposition` (inline or attachment as before), searchable with
 * `filename`, sent by `fhirbin import` and carried through `export --all`. Names that would inject a header
 * or a path are refused or reduced to their base name.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createStore } from "../../src/store/index.ts";
import { runExport } from "../../src/tools/export.ts";
import { runImport, type ToolIo } from "../../src/tools/import.ts";
import { startServer, TEST_TOKEN, type TestServer, tempDir } from "../harness.ts";

const EXTENSION = "https://fhirbin.dev/fhir/StructureDefinition/file-name";
const R4_JSON = "application/fhir+json; fhirVersion=4.0";
const R4_XML = "application/fhir+xml; fhirVersion=4.0";
const PDF = "%PDF-1.4\n%%EOF\n";

interface Resource {
  resourceType: string;
  id?: string;
  meta?: { extension?: unknown[]; versionId?: string; tag?: unknown[] };
  [name: string]: unknown;
}
interface Bundle {
  total?: number;
  entry?: { resource?: Resource; request?: { method: string } }[];
}

/** `meta.extension` as a resource naming `name` carries it. */
const named = (name: string) => [{ url: EXTENSION, valueString: name }];

/** RFC 8187 encoding of a name, as a client sends it in `filename*`. */
const ext = (name: string): string =>
  encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Creates a document named by `disposition`; resolves with the response and its JSON body. */
async function upload(
  srv: TestServer,
  disposition: string | null,
  contentType = "application/pdf",
  body: string = PDF,
  init: { method?: string; path?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: Resource; response: Response }> {
  const headers: Record<string, string> = {
    "content-type": contentType,
    accept: "application/fhir+json",
    ...init.headers,
  };
  if (disposition !== null) headers["content-disposition"] = disposition;
  const response = await srv.request(init.path ?? "/Binary", {
    method: init.method ?? "POST",
    body,
    headers,
  });
  return { status: response.status, body: (await response.json()) as Resource, response };
}

async function json<T = Resource>(
  srv: TestServer,
  path: string,
  accept = "application/fhir+json",
): Promise<T> {
  const response = await srv.request(path, { headers: { accept } });
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** The `<meta>` element of a FHIR XML answer, as text. */
async function xmlMeta(srv: TestServer, path: string, accept = "application/fhir+xml"): Promise<string> {
  const response = await srv.request(path, { headers: { accept } });
  expect(response.status).toBe(200);
  return /<meta>.*?<\/meta>/s.exec(await response.text())?.[0] ?? "";
}

describe("a raw upload's file name is kept and shown on every answer", () => {
  test("Referral letter.pdf comes back in meta.extension (JSON and XML, STU3 and R4) and Content-Disposition", async () => {
    await using srv = await startServer();
    const name = "Referral letter.pdf";
    const created = await upload(srv, `attachment; filename*=UTF-8''${ext(name)}`);
    expect(created.status).toBe(201);
    // The create's summary answer names it, before versionId (Meta's extension comes first).
    expect(Object.keys(created.body.meta ?? {})).toEqual(["extension", "versionId", "lastUpdated", "tag"]);
    expect(created.body.meta?.extension).toEqual(named(name));
    const id = created.body.id as string;
    for (const path of [`/Binary/${id}`, `/Binary/${id}/_history/1`]) {
      for (const accept of ["application/fhir+json", R4_JSON]) {
        const resource = await json(srv, path, accept);
        expect(resource.meta?.extension).toEqual(named(name));
        expect(resource[accept === R4_JSON ? "data" : "content"]).toBe(Buffer.from(PDF).toString("base64"));
      }
      for (const accept of ["application/fhir+xml", R4_XML]) {
        expect(await xmlMeta(srv, path, accept)).toMatch(
          new RegExp(
            `^<meta><extension url="${EXTENSION}"><valueString value="Referral letter.pdf"/></extension><versionId value="1"/>`,
          ),
        );
      }
    }
    const summary = await json(srv, `/Binary/${id}?_summary=true`);
    expect(summary.meta?.extension).toEqual(named(name));
    // Native: the same name, inline as a PDF always was.
    const native = await srv.request(`/Binary/${id}`);
    expect(native.headers.get("content-disposition")).toBe(
      `inline; filename="Referral letter.pdf"; filename*=UTF-8''Referral%20letter.pdf`,
    );
    expect(await native.text()).toBe(PDF);
    const head = await srv.request(`/Binary/${id}`, { method: "HEAD" });
    expect(head.headers.get("content-disposition")).toBe(native.headers.get("content-disposition"));
  });

  test("the name is in the instance history, the type history and search Bundles, JSON and XML", async () => {
    await using srv = await startServer();
    const { body } = await upload(srv, 'attachment; filename="knee x-ray.png"', "image/png");
    const id = body.id as string;
    for (const path of [`/Binary/${id}/_history`, "/Binary/_history", `/Binary?_id=${id}`]) {
      for (const accept of ["application/fhir+json", R4_JSON]) {
        const bundle = await json<Bundle>(srv, path, accept);
        expect(bundle.entry?.map((entry) => entry.resource?.meta?.extension)).toEqual([
          named("knee x-ray.png"),
        ]);
      }
      const xml = await (await srv.request(path, { headers: { accept: R4_XML } })).text();
      expect(xml).toContain(
        `<meta><extension url="${EXTENSION}"><valueString value="knee x-ray.png"/></extension><versionId value="1"/>`,
      );
    }
    // `_elements` keeps meta, and so the name.
    const bundle = await json<Bundle>(srv, `/Binary?_id=${id}&_elements=contentType`);
    expect(bundle.entry?.[0]?.resource?.meta?.extension).toEqual(named("knee x-ray.png"));
  });

  test("a document without a name has no extension, and its Content-Disposition is made of its id as before", async () => {
    await using srv = await startServer();
    const { body } = await upload(srv, null);
    expect(body.meta?.extension).toBeUndefined();
    const native = await srv.request(`/Binary/${body.id}`);
    expect(native.headers.get("content-disposition")).toBe(`inline; filename="${body.id}.pdf"`);
    // A header naming no file names none.
    const inline = await upload(srv, "inline");
    expect(inline.status).toBe(201);
    expect(inline.body.meta?.extension).toBeUndefined();
  });

  test("a type that can carry script stays an attachment in a sandbox, now with its name", async () => {
    await using srv = await startServer();
    const { body } = await upload(
      srv,
      "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.html",
      "text/html",
      "<p>hi</p>",
    );
    const native = await srv.request(`/Binary/${body.id}`);
    expect(native.headers.get("content-disposition")).toBe(
      `attachment; filename="resume.html"; filename*=UTF-8''r%C3%A9sum%C3%A9.html`,
    );
    expect(native.headers.get("content-security-policy")).toBe("sandbox; default-src 'none'");
    expect(body.meta?.extension).toEqual(named("résumé.html"));
  });

  test("filename* wins over filename, and a raw UTF-8 filename is read as UTF-8", async () => {
    await using srv = await startServer();
    const both = await upload(
      srv,
      `attachment; filename="fallback.pdf"; filename*=UTF-8''${ext("Überweisung.pdf")}`,
    );
    expect(both.body.meta?.extension).toEqual(named("Überweisung.pdf"));
    const { body } = await srv
      .request(`/Binary/${both.body.id}`, { headers: { accept: "application/fhir+json" } })
      .then(async (response) => ({ body: (await response.json()) as Resource }));
    expect(body.meta?.extension).toEqual(named("Überweisung.pdf"));
  });

  test("each version keeps its own name: an update without one has none, the version before keeps its", async () => {
    await using srv = await startServer();
    const first = await upload(srv, 'attachment; filename="draft.pdf"', "application/pdf", PDF, {
      method: "PUT",
      path: "/Binary/letter-1",
    });
    expect(first.status).toBe(201);
    const second = await upload(srv, null, "application/pdf", `${PDF} v2`, {
      method: "PUT",
      path: "/Binary/letter-1",
    });
    expect(second.status).toBe(200);
    expect(second.body.meta?.extension).toBeUndefined();
    const third = await upload(srv, 'attachment; filename="final.pdf"', "application/pdf", `${PDF} v3`, {
      method: "PUT",
      path: "/Binary/letter-1",
    });
    expect(third.body.meta?.extension).toEqual(named("final.pdf"));
    const history = await json<Bundle>(srv, "/Binary/letter-1/_history");
    expect(history.entry?.map((entry) => entry.resource?.meta?.extension ?? null)).toEqual([
      named("final.pdf"),
      null,
      named("draft.pdf"),
    ]);
    expect((await srv.request("/Binary/letter-1/_history/1")).headers.get("content-disposition")).toStartWith(
      'inline; filename="draft.pdf";',
    );
  });
});

describe("a FHIR Binary body names no file, unless the request has Content-Disposition", () => {
  const binary = (data: string) =>
    JSON.stringify({
      resourceType: "Binary",
      contentType: "text/plain",
      content: Buffer.from(data).toString("base64"),
    });
  const xmlBinary = (data: string) =>
    `<Binary xmlns="http://hl7.org/fhir"><contentType value="text/plain"/><content value="${Buffer.from(data).toString("base64")}"/></Binary>`;

  test.each([
    ["JSON", "application/fhir+json", binary],
    ["XML (streamed)", "application/fhir+xml", xmlBinary],
  ])("%s", async (_, contentType, make) => {
    await using srv = await startServer();
    const plain = await upload(srv, null, contentType, make("no name"));
    expect(plain.status).toBe(201);
    expect(plain.body.contentType).toBe("text/plain");
    expect(plain.body.meta?.extension).toBeUndefined();
    const withName = await upload(srv, 'attachment; filename="notes.txt"', contentType, make("named"));
    expect(withName.status).toBe(201);
    expect(withName.body.contentType).toBe("text/plain");
    expect(withName.body.meta?.extension).toEqual(named("notes.txt"));
    const native = await srv.request(`/Binary/${withName.body.id}`);
    expect(await native.text()).toBe("named");
    expect(native.headers.get("content-disposition")).toStartWith('inline; filename="notes.txt";');
  });
});

describe("a Binary read as FHIR, with its file-name extension, is accepted back", () => {
  test.each([
    ["JSON", "application/fhir+json"],
    ["XML", "application/fhir+xml"],
    ["R4 JSON", R4_JSON],
    ["R4 XML", R4_XML],
  ])("%s", async (_, type) => {
    await using srv = await startServer();
    await upload(srv, 'attachment; filename="letter.pdf"', "application/pdf", PDF, {
      method: "PUT",
      path: "/Binary/round-trip",
    });
    const read = await srv.request("/Binary/round-trip", { headers: { accept: type } });
    const text = await read.text();
    expect(text).toContain(EXTENSION);
    // The extension is not an unknown element: the resource goes back as it came, named by the request.
    const again = await upload(srv, 'attachment; filename="letter.pdf"', type, text, {
      method: "PUT",
      path: "/Binary/round-trip",
    });
    expect(again.status).toBe(200);
    expect(again.body.meta?.extension).toEqual(named("letter.pdf"));
    expect(await (await srv.request("/Binary/round-trip")).text()).toBe(PDF);
  });
});

describe("names that would inject a header or a path", () => {
  test.each([
    ["CR LF in filename*", "attachment; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1.pdf"],
    ["NUL", "attachment; filename*=UTF-8''a%00.pdf"],
    ["a right-to-left override", "attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe"],
    ["an unterminated quote", 'attachment; filename="letter.pdf'],
    ["two filenames", "attachment; filename=a.pdf; filename=b.pdf"],
    ["only a path", 'attachment; filename="../"'],
    ["an empty name", 'attachment; filename=""'],
    ["256 bytes", `attachment; filename="${"n".repeat(252)}.pdf"`],
    ["invalid UTF-8", "attachment; filename*=UTF-8''%C3%28.pdf"],
  ])("%s is a 400 OperationOutcome and nothing is stored", async (_, disposition) => {
    await using srv = await startServer();
    const { status, body } = await upload(srv, disposition);
    expect(status).toBe(400);
    expect(body.resourceType).toBe("OperationOutcome");
    expect(JSON.stringify(body)).toContain("Content-Disposition");
    expect((await json<Bundle>(srv, "/Binary?_summary=count")).total).toBe(0);
  });

  test("a path is reduced to the base name; quotes and backslashes never leave the quoted string", async () => {
    await using srv = await startServer();
    const traversal = await upload(srv, 'attachment; filename="../../etc/passwd"', "text/plain", "x");
    expect(traversal.body.meta?.extension).toEqual(named("passwd"));
    const windows = await upload(srv, 'attachment; filename="C:\\\\Users\\\\me\\\\scan.pdf"');
    expect(windows.body.meta?.extension).toEqual(named("scan.pdf"));
    const quoted = await upload(srv, `attachment; filename*=UTF-8''${ext('say "hi"; x=1.pdf')}`);
    expect(quoted.body.meta?.extension).toEqual(named('say "hi"; x=1.pdf'));
    const native = await srv.request(`/Binary/${quoted.body.id}`);
    const header = native.headers.get("content-disposition");
    expect(header).toBe(
      `inline; filename="say _hi_; x=1.pdf"; filename*=UTF-8''say%20%22hi%22%3B%20x%3D1.pdf`,
    );
    // Read back by a client, the header names exactly the stored file.
    const echoed = await upload(srv, header);
    expect(echoed.body.meta?.extension).toEqual(named('say "hi"; x=1.pdf'));
  });
});

describe("GET [base]/Binary?filename=", () => {
  test("contains, ignoring case and accents; :exact the whole name; only the current version's name", async () => {
    await using srv = await startServer();
    const put = (id: string, name: string | null) =>
      upload(
        srv,
        name === null ? null : `attachment; filename*=UTF-8''${ext(name)}`,
        "application/pdf",
        `${PDF}${id}`,
        {
          method: "PUT",
          path: `/Binary/${id}`,
        },
      );
    await put("referral", "Referral letter.pdf");
    await put("resume", "Résumé 2026.pdf");
    await put("knee", "knee x-ray.png");
    await put("percent", "100%_done.pdf");
    await put("unnamed", null);
    await put("renamed", "old letter.pdf");
    await put("renamed", "minutes.pdf");
    const ids = async (query: string): Promise<string[]> =>
      ((await json<Bundle>(srv, `/Binary?${query}&_sort=_id`)).entry ?? []).map(
        (entry) => entry.resource?.id as string,
      );
    expect(await ids("filename=letter")).toEqual(["referral"]);
    expect(await ids("filename=LETTER")).toEqual(["referral"]);
    expect(await ids("filename:contains=letter")).toEqual(["referral"]);
    expect(await ids(`filename=${encodeURIComponent("resume")}`)).toEqual(["resume"]);
    expect(await ids(`filename=${encodeURIComponent("RÉSUMÉ")}`)).toEqual(["resume"]);
    expect(await ids("filename=.pdf")).toEqual(["percent", "referral", "renamed", "resume"]);
    // % and _ are text, not wildcards.
    expect(await ids(`filename=${encodeURIComponent("0%_")}`)).toEqual(["percent"]);
    expect(await ids("filename=_")).toEqual(["percent"]);
    // A comma separates alternatives; repeated parameters must all hold.
    expect(await ids("filename=knee,minutes")).toEqual(["knee", "renamed"]);
    expect(await ids("filename=pdf&filename=letter")).toEqual(["referral"]);
    expect(await ids(`filename:exact=${encodeURIComponent("Referral letter.pdf")}`)).toEqual(["referral"]);
    expect(await ids(`filename:exact=${encodeURIComponent("referral letter.pdf")}`)).toEqual([]);
    expect(await ids("filename:exact=letter")).toEqual([]);
    expect(await ids("filename=nothing-like-it")).toEqual([]);
    // The count, and paging links that keep the filter.
    const counted = await json<Bundle & { link: { relation: string; url: string }[] }>(
      srv,
      "/Binary?filename=pdf&_count=2",
    );
    expect(counted.total).toBe(4);
    const next = counted.link.find((link) => link.relation === "next")?.url ?? "";
    expect(new URL(next).searchParams.get("filename")).toBe("pdf");
    const page2 = (await (
      await fetch(next, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })
    ).json()) as Bundle;
    expect(page2.entry?.length).toBe(2);
    // An unsupported modifier is refused (R4 search.html#modifiers).
    expect((await srv.request("/Binary?filename:missing=true")).status).toBe(400);
  });

  test("the parameter and the extension are in the CapabilityStatement and the OpenAPI docs", async () => {
    await using srv = await startServer();
    for (const accept of ["application/fhir+json", R4_JSON]) {
      const statement = await json<{
        rest: { resource: { documentation?: string; searchParam: { name: string; type: string }[] }[] }[];
      }>(srv, "/metadata", accept);
      const binary = statement.rest[0]?.resource[0];
      expect(binary?.searchParam).toContainEqual(
        expect.objectContaining({ name: "filename", type: "string" }),
      );
      expect(binary?.documentation).toContain(EXTENSION);
    }
    const docs = (await (await fetch(`${srv.origin}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: { name?: string }[] }>>;
    };
    const searchParameters = docs.paths["/fhir/Binary"]?.get?.parameters?.map((parameter) => parameter.name);
    expect(searchParameters).toContain("filename");
    const writeParameters = JSON.stringify(docs.paths["/fhir/Binary"]?.post?.parameters);
    expect(writeParameters).toContain("Content-Disposition");
  });
});

/** Tool output collected in memory. */
function collect(): ToolIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (line) => lines.push(line), err: (line) => lines.push(line), terminal: null };
}

describe("import and export keep the names", () => {
  test("fhirbin import --url sends each file's base name", async () => {
    await using srv = await startServer();
    using dir = tempDir();
    mkdirSync(join(dir.path, "in"));
    writeFileSync(join(dir.path, "in", "Überweisung Müller.pdf"), PDF);
    writeFileSync(join(dir.path, "in", "knee x-ray.txt"), "a knee");
    const io = collect();
    const status = await runImport([join(dir.path, "in"), "--url", srv.base, "--token", TEST_TOKEN], {}, io);
    expect({ status, lines: io.lines.filter((line) => !line.startsWith("imported ")) }).toEqual({
      status: 0,
      lines: [],
    });
    const names = ((await json<Bundle>(srv, "/Binary?_sort=_id")).entry ?? []).map(
      (entry) => entry.resource?.meta?.extension,
    );
    expect(names.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      named("knee x-ray.txt"),
      named("Überweisung Müller.pdf"),
    ]);
  });

  test("import --data, export --all, then import again (--data and --url) restore every version's name", async () => {
    using dir = tempDir();
    const source = join(dir.path, "in");
    mkdirSync(source);
    writeFileSync(join(source, "letter-1.pdf"), PDF);
    const data = join(dir.path, "store");
    const io = collect();
    expect(await runImport([source, "--data", data, "--id-from-filename"], {}, io)).toBe(0);
    // A second version with another name, and a third with none.
    {
      const store = await createStore(data);
      const body = (text: string) => new TextEncoder().encode(text);
      await store.update("letter-1", {
        contentType: "application/pdf",
        securityContext: null,
        body: body("v2"),
        maxSize: 1024,
        fileName: "Referral letter v2.pdf",
      });
      await store.update("letter-1", {
        contentType: "application/pdf",
        securityContext: null,
        body: body("v3"),
        maxSize: 1024,
      });
      await store.close();
    }
    const folder = join(dir.path, "export");
    expect(await runExport(["--all", folder, "--data", data], {}, io)).toBe(0);
    const metadata = JSON.parse(readFileSync(join(folder, "_metadata", "letter-1.json"), "utf8")) as {
      versions: { fileName?: string; file: string }[];
    };
    expect(metadata.versions.map(({ fileName, file }) => ({ fileName, file }))).toEqual([
      { fileName: "letter-1.pdf", file: "_versions/letter-1.1.pdf" },
      { fileName: "Referral letter v2.pdf", file: "_versions/letter-1.2.pdf" },
      { fileName: undefined, file: "letter-1.pdf" },
    ]);
    const copy = join(dir.path, "copy");
    expect(await runImport([folder, "--data", copy], {}, io)).toBe(0);
    const store = await createStore(copy);
    const history = await store.history("letter-1");
    await store.close();
    expect(history.map((record) => (record.deleted ? "deleted" : (record.fileName ?? null)))).toEqual([
      null,
      "Referral letter v2.pdf",
      "letter-1.pdf",
    ]);
    await using srv = await startServer();
    expect(await runImport([folder, "--url", srv.base, "--token", TEST_TOKEN], {}, io)).toBe(0);
    const bundle = await json<Bundle>(srv, "/Binary/letter-1/_history");
    expect(bundle.entry?.map((entry) => entry.resource?.meta?.extension ?? null)).toEqual([
      null,
      named("Referral letter v2.pdf"),
      named("letter-1.pdf"),
    ]);
  });
});
