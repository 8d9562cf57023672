/**
 * Validation against HL7's official FHIR schemas (test/fixtures/fhir-schemas, gzipped): JSON with Ajv's
 * draft-06 support, XML with xmllint's XSD validation, all the documents of a release in one xmllint run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import Ajv, { type ErrorObject } from "ajv";
import draft06 from "ajv/dist/refs/json-schema-draft-06.json" with { type: "json" };

/** The releases HL7 publishes schemas for that fhirbin's names follow (R4B and R5 are served as R4). */
export type Release = "STU3" | "R4";

/** A response body to validate, named for the failure messages. */
export interface Sample {
  name: string;
  release: Release;
  syntax: "json" | "xml";
  text: string;
}

const FIXTURES = join(import.meta.dir, "../fixtures/fhir-schemas");
const XSD_FILES = ["fhir-single.xsd", "fhir-xhtml.xsd", "xml.xsd"] as const;

function fixture(release: Release, file: string): Buffer {
  return gunzipSync(readFileSync(join(FIXTURES, release.toLowerCase(), `${file}.gz`)));
}

/** Why the XML checks cannot run here (xmllint, from Debian's libxml2-utils, is missing), or null. */
export const XMLLINT_MISSING: string | null =
  Bun.which("xmllint") === null
    ? "xmllint is not installed (apt-get install libxml2-utils): the XML schema checks cannot run"
    : null;

/** The problems of one JSON resource against a release's schema; none when it validates. */
export type JsonValidator = (resource: unknown) => string[];

/**
 * Compiles a release's JSON schema once (3 MB: seconds). The verdict is the whole schema's, as HL7 publishes
 * it; the messages come from the resource type's own definition, with each Bundle entry's resource explained
 * on its own rather than as the failed `oneOf` over every resource type.
 */
export function createJsonValidator(release: Release): JsonValidator {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addMetaSchema(draft06);
  const { id: _draft04Id, ...schema } = JSON.parse(fixture(release, "fhir.schema.json").toString("utf8"));
  // R4's schema names itself with draft-04's `id` (draft-06 says `$id`), which Ajv refuses; nothing refers
  // to that name, so it is dropped, and the schema is known by a key of ours.
  ajv.addSchema(schema, "fhir");
  const root = ajv.getSchema("fhir");
  if (!root) throw new Error(`the ${release} JSON schema did not compile`);
  const describe = ({ instancePath, message, params }: ErrorObject, path = ""): string =>
    `${path + instancePath || "/"} ${message ?? "is invalid"} ${JSON.stringify(params)}`;
  const explain = (resource: unknown, path: string): string[] => {
    const type = (resource as { resourceType?: unknown } | null)?.resourceType;
    const check = typeof type === "string" ? ajv.getSchema(`fhir#/definitions/${type}`) : undefined;
    if (!check) return [`${path || "/"} resourceType ${JSON.stringify(type)} is not a ${release} resource`];
    if (check(resource)) return [];
    const own = (check.errors ?? []).filter(
      (error) => !/^\/entry\/\d+\/resource(\/|$)/.test(error.instancePath),
    );
    const entries = (resource as { entry?: unknown }).entry;
    const nested = Array.isArray(entries)
      ? entries.flatMap((entry: { resource?: unknown }, i) =>
          entry?.resource === undefined ? [] : explain(entry.resource, `${path}/entry/${i}/resource`),
        )
      : [];
    return [...own.map((error) => describe(error, path)), ...nested];
  };
  return (resource) => {
    if (root(resource)) return [];
    const problems = explain(resource, "");
    return problems.length > 0 ? problems : (root.errors ?? []).slice(0, 10).map((error) => describe(error));
  };
}

/** The XSDs of each release, written out once per process for xmllint (which resolves their imports). */
const xsdDirs = new Map<Release, string>();
function xsdOf(release: Release): string {
  let dir = xsdDirs.get(release);
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), `fhirbin-xsd-${release.toLowerCase()}-`));
    for (const file of XSD_FILES) writeFileSync(join(dir, file), fixture(release, file));
    xsdDirs.set(release, dir);
    process.once("exit", () => rmSync(dir as string, { recursive: true, force: true }));
  }
  return join(dir, "fhir-single.xsd");
}

/**
 * Validates XML documents against their release's XSD with `xmllint --noout --schema`, one run per release;
 * returns each failure as "name: xmllint's message". Throws when xmllint is missing: callers check first.
 */
export function validateXml(samples: readonly Sample[]): string[] {
  if (XMLLINT_MISSING) throw new Error(XMLLINT_MISSING);
  const failures: string[] = [];
  for (const release of ["STU3", "R4"] as const) {
    const documents = samples.filter((sample) => sample.release === release);
    if (documents.length === 0) continue;
    const dir = mkdtempSync(join(tmpdir(), "fhirbin-xml-"));
    try {
      const files = documents.map((sample, i) => {
        const file = join(dir, `${i}.xml`);
        writeFileSync(file, sample.text);
        return file;
      });
      const result = Bun.spawnSync(["xmllint", "--noout", "--schema", xsdOf(release), ...files], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const output = `${result.stdout.toString()}${result.stderr.toString()}`;
      files.forEach((file, i) => {
        const name = `${documents[i]?.name} (${release} XML)`;
        const lines = output.split("\n").filter((line) => line.startsWith(`${file}:`));
        if (lines.length > 0)
          failures.push(...lines.map((line) => `${name}: ${line.slice(file.length + 1)}`));
        else if (!output.includes(`${file} validates`)) failures.push(`${name}: not validated\n${output}`);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return failures;
}
