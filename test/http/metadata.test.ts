/**
 * The CapabilityStatement over real HTTP (fhir-binary-rules.md section 7): per configured FHIR version, in
 * JSON and XML, without a token.
 */
import { describe, expect, test } from "bun:test";
import { XMLParser } from "fast-xml-parser";
import { startServer } from "../harness.ts";

const FHIR_NS = "http://hl7.org/fhir";
const FHIR_JSON = "application/fhir+json; charset=utf-8";
const FHIR_XML = "application/fhir+xml; charset=utf-8";

const VERSIONS: [string, string[], string, string][] = [
  ["default (STU3)", [], "CapabilityStatement", "3.0.2"],
  ["STU3", ["--fhir-version", "STU3"], "CapabilityStatement", "3.0.2"],
  ["R4", ["--fhir-version", "R4"], "CapabilityStatement", "4.0.1"],
  ["DSTU2", ["--fhir-version", "DSTU2"], "Conformance", "1.0.2"],
];

const INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "create"];

interface BinaryCapability {
  type?: string;
  interaction?: { code?: string }[];
  versioning?: string;
  readHistory?: boolean;
  updateCreate?: boolean;
  conditionalRead?: string;
}

interface CapabilityJson {
  resourceType?: string;
  fhirVersion?: string;
  format?: string[];
  rest?: { mode?: string; resource?: BinaryCapability[] }[];
}

/** The rest[0].resource entry for Binary. */
function binaryEntry(capability: CapabilityJson): BinaryCapability | undefined {
  return capability.rest?.[0]?.resource?.find((resource) => resource.type === "Binary");
}

const xmlParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", isArray: () => true });

describe("CapabilityStatement", () => {
  test.each(VERSIONS)("%s: JSON without a token", async (_name, args, resourceType, fhirVersion) => {
    await using srv = await startServer({ args });
    const res = await srv.request("/metadata", { auth: false });
    expect(res.status).toBe(200);
    const body = (await res.json()) as CapabilityJson;
    expect({ resourceType: body.resourceType, fhirVersion: body.fhirVersion }).toEqual({
      resourceType,
      fhirVersion,
    });
    const formats = body.format ?? [];
    expect(formats.some((format) => /json/.test(format))).toBe(true);
    expect(formats.some((format) => /xml/.test(format))).toBe(true);
    expect(body.rest?.[0]?.mode).toBe("server");
    const binary = binaryEntry(body);
    expect(binary?.interaction?.map((interaction) => interaction.code)).toEqual(
      expect.arrayContaining(INTERACTIONS),
    );
    expect(binary).toMatchObject({
      type: "Binary",
      versioning: "versioned-update",
      readHistory: true,
      updateCreate: true,
    });
    // conditionalRead exists from STU3 on.
    if (resourceType === "CapabilityStatement") expect(binary?.conditionalRead).toBe("full-support");
  });

  test.each(VERSIONS)("%s: the JSON is a FHIR JSON response", async (_name, args) => {
    await using srv = await startServer({ args });
    const res = await srv.request("/metadata", { headers: { accept: "application/fhir+json" } });
    const type = res.headers.get("content-type");
    await res.arrayBuffer();
    if (args.includes("DSTU2"))
      expect([FHIR_JSON, "application/json+fhir; charset=utf-8"]).toContain(type ?? "");
    else expect(type).toBe(FHIR_JSON);
  });

  test.each([
    ["Accept: */*", "", { accept: "*/*" }, "json"],
    ["Accept: application/json", "", { accept: "application/json" }, "json"],
    ["Accept: application/fhir+xml", "", { accept: "application/fhir+xml" }, "xml"],
    ["_format=xml", "?_format=xml", {}, "xml"],
    ["_format=xml beats Accept JSON", "?_format=xml", { accept: "application/fhir+json" }, "xml"],
    ["_format=json", "?_format=json", { accept: "application/fhir+xml" }, "json"],
  ])("%s gives %s", async (_name, query, headers, syntax) => {
    await using srv = await startServer();
    const res = await srv.request(`/metadata${query}`, { auth: false, headers });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(syntax === "json" ? FHIR_JSON : FHIR_XML);
    const text = await res.text();
    if (syntax === "json") expect(JSON.parse(text).resourceType).toBe("CapabilityStatement");
    else expect(text).toMatch(/^(<\?xml[^>]*\?>\s*)?<CapabilityStatement xmlns="http:\/\/hl7\.org\/fhir">/);
  });

  test.each(VERSIONS)("%s: XML with the same content", async (_name, args, resourceType, fhirVersion) => {
    await using srv = await startServer({ args });
    const res = await srv.request("/metadata?_format=xml", { auth: false });
    expect(res.status).toBe(200);
    const doc = xmlParser.parse(await res.text());
    const root = doc[resourceType]?.[0];
    expect(root?.["@xmlns"]).toEqual([FHIR_NS]);
    expect(root?.fhirVersion?.[0]?.["@value"]).toEqual([fhirVersion]);
    const resources = root?.rest?.[0]?.resource ?? [];
    const binary = resources.find(
      (resource: Record<string, { "@value": string[] }[]>) =>
        resource.type?.[0]?.["@value"]?.[0] === "Binary",
    );
    expect(binary?.versioning?.[0]?.["@value"]).toEqual(["versioned-update"]);
    expect(binary?.readHistory?.[0]?.["@value"]).toEqual(["true"]);
    expect(binary?.updateCreate?.[0]?.["@value"]).toEqual(["true"]);
    const codes = (binary?.interaction ?? []).map(
      (interaction: { code: { "@value": string[] }[] }) => interaction.code[0]?.["@value"][0],
    );
    expect(codes).toEqual(expect.arrayContaining(INTERACTIONS));
  });

  test.each([
    ["application/fhir+json; fhirVersion=4.0", 200, "4.0.1"],
    ["application/fhir+json; fhirVersion=3.0", 200, "3.0.2"],
    ["application/fhir+json; fhirVersion=9.9", 406, null],
  ])("Accept: %s on the default server: %d", async (accept, status, fhirVersion) => {
    await using srv = await startServer();
    const res = await srv.request("/metadata", { headers: { accept } });
    expect(res.status).toBe(status);
    const body = (await res.json()) as CapabilityJson;
    if (fhirVersion) expect(body.fhirVersion).toBe(fhirVersion);
    else expect(body.resourceType).toBe("OperationOutcome");
  });
});
