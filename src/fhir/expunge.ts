/**
 * The `$expunge` operation on a Binary instance, named and shaped as HAPI FHIR's
 * (https://hapifhir.io/hapi-fhir/docs/server_jpa/configuration.html#expunge): a `Parameters` body with
 * `expungePreviousVersions` and `expungeDeletedResources` as `valueBoolean`, answered with a `Parameters`
 * holding `count`, the versions removed. Pure functions over the body text.
 */
import { FhirError } from "./errors.ts";
import type { Syntax } from "./format.ts";
import type { Resource } from "./outcome.ts";
import { FHIR_NS, parseXml, type XmlNode } from "./xml.ts";

/** The operation's canonical URL in the CapabilityStatement (fhirbin's own: no FHIR release defines it). */
export const EXPUNGE_DEFINITION = "urn:fhirbin:OperationDefinition:Binary-i-expunge";

/** What an `$expunge` removes: every version but the current one, or every version of a deleted Binary. */
export type ExpungeMode = "previous-versions" | "deleted";

const NAMES = ["expungePreviousVersions", "expungeDeletedResources"] as const;

/** The booleans a client may send, by parameter name (absent ones are false). */
type Flags = Record<(typeof NAMES)[number], boolean>;

function invalid(diagnostics: string): FhirError {
  return new FhirError(400, "invalid", `$expunge: ${diagnostics}`);
}

/** One parameter: its name and its value as JSON has it (XML's `value` attribute already as a boolean). */
function setFlag(flags: Flags, name: unknown, value: unknown): void {
  if (typeof name !== "string" || !(NAMES as readonly string[]).includes(name))
    throw invalid(`unknown parameter ${JSON.stringify(name)}; expected ${NAMES.join(" or ")}`);
  if (typeof value !== "boolean") throw invalid(`${name} needs a valueBoolean`);
  flags[name as keyof Flags] = value;
}

/** Reads the flags from a FHIR JSON Parameters resource. */
function flagsOfJson(text: string): Flags {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new FhirError(400, "structure", "$expunge: the body is not valid JSON");
  }
  const resource = body as { resourceType?: unknown; parameter?: unknown };
  if (typeof body !== "object" || body === null || resource.resourceType !== "Parameters")
    throw invalid("the body must be a Parameters resource");
  const flags: Flags = { expungePreviousVersions: false, expungeDeletedResources: false };
  const parameters = resource.parameter ?? [];
  if (!Array.isArray(parameters)) throw invalid("Parameters.parameter must be an array");
  for (const parameter of parameters as { name?: unknown; valueBoolean?: unknown }[])
    setFlag(flags, parameter?.name, parameter?.valueBoolean);
  return flags;
}

/** The `value` attribute of a child element, or undefined. */
function attribute(node: XmlNode, child: string): unknown {
  const element = node[child];
  return element && typeof element === "object" && !Array.isArray(element) ? element["@value"] : undefined;
}

/** Reads the flags from a FHIR XML Parameters resource. */
function flagsOfXml(text: string): Flags {
  const { name, node } = parseXml(text);
  if (name !== "Parameters" || node["@xmlns"] !== FHIR_NS)
    throw invalid("the body must be a Parameters resource in the FHIR namespace");
  const flags: Flags = { expungePreviousVersions: false, expungeDeletedResources: false };
  const parameters = node.parameter ?? [];
  for (const parameter of Array.isArray(parameters) ? parameters : [parameters]) {
    if (typeof parameter === "string") throw invalid("a parameter element has no name");
    const value = attribute(parameter, "valueBoolean");
    setFlag(
      flags,
      attribute(parameter, "name"),
      value === "true" ? true : value === "false" ? false : value === undefined ? undefined : value,
    );
  }
  return flags;
}

/**
 * The purge an `$expunge` body asks for. `expungeDeletedResources` removes every version of a deleted
 * Binary, which includes its previous versions, so it wins when both are true. Neither: 400.
 */
export function parseExpunge(text: string, syntax: Syntax): ExpungeMode {
  const flags = syntax === "json" ? flagsOfJson(text) : flagsOfXml(text);
  if (flags.expungeDeletedResources) return "deleted";
  if (flags.expungePreviousVersions) return "previous-versions";
  throw invalid("set expungePreviousVersions or expungeDeletedResources to true");
}

/** HAPI's answer: a Parameters with `count`, the number of versions removed. */
export function toExpungeResult(count: number): Resource {
  return { resourceType: "Parameters", parameter: [{ name: "count", valueInteger: count }] };
}
