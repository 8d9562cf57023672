/**
 * FHIR XML: the only importer of fast-xml-parser. Parsing refuses DTDs before the parser sees them;
 * serialising follows the FHIR convention (values in `value` attributes, resources in the FHIR namespace).
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { FhirError } from "./errors.ts";
import type { Resource } from "./outcome.ts";

export const FHIR_NS = "http://hl7.org/fhir";

/** A parsed element: attributes under `@name`, children by name (arrays when repeated). */
export type XmlNode = { [key: string]: XmlNode | XmlNode[] | string };

const PREDEFINED: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/**
 * Decodes the five predefined entities and character references (XML 1.0 section 4.1); any other `&` is not
 * well-formed. Done here rather than by the parser, which handles either too little or HTML's entities too.
 */
export function decodeReferences(text: string): string {
  return text.replace(/&([^;&]*);?/g, (whole, body: string) => {
    const code = /^#x([0-9a-fA-F]{1,6})$/.exec(body)?.[1] ?? /^#([0-9]{1,7})$/.exec(body)?.[1];
    const point = code === undefined ? Number.NaN : Number.parseInt(code, body.startsWith("#x") ? 16 : 10);
    const named = PREDEFINED[body];
    if (whole.endsWith(";") && named !== undefined && Object.hasOwn(PREDEFINED, body)) return named;
    if (whole.endsWith(";") && point >= 1 && point <= 0x10ffff) return String.fromCodePoint(point);
    throw new FhirError(400, "structure", `Malformed XML: invalid reference ${JSON.stringify(whole)}`);
  });
}

/**
 * How deep elements may nest (fast-xml-parser's default, made explicit so the scanner and the messages agree):
 * FHIR resources nest a few dozen levels at most.
 */
export const XML_MAX_DEPTH = 100;

const parser = new XMLParser({
  maxNestedTags: XML_MAX_DEPTH,
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: false,
  attributeValueProcessor: (_name: string, value: string) => decodeReferences(value),
  tagValueProcessor: (_name: string, value: string) => decodeReferences(value),
});

/**
 * Parses an XML document into its root element name and node. "any `<!DOCTYPE` is rejected with 400 before
 * parsing; entities are not processed" (fhir-binary-rules.md section 5), which shuts out XXE and entity
 * expansion attacks.
 */
export function parseXml(text: string): { name: string; node: XmlNode } {
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    throw new FhirError(400, "security", "XML with a DOCTYPE or ENTITY declaration is not accepted");
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new FhirError(400, "structure", `Malformed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  let parsed: XmlNode;
  try {
    parsed = parser.parse(text) as XmlNode;
  } catch (error) {
    if (error instanceof FhirError) throw error;
    // Well-formed XML the parser still refuses is the client's: above all, nesting past maxNestedTags.
    const why = error instanceof Error ? error.message : String(error);
    throw new FhirError(400, "structure", `Malformed XML: ${why} (at most ${XML_MAX_DEPTH} nested elements)`);
  }
  const names = Object.keys(parsed).filter((key) => !key.startsWith("#") && !key.startsWith("?"));
  const name = names[0];
  const node = name === undefined ? undefined : parsed[name];
  if (
    names.length !== 1 ||
    name === undefined ||
    node === undefined ||
    typeof node === "string" ||
    Array.isArray(node)
  ) {
    throw new FhirError(400, "structure", "XML must have exactly one root element");
  }
  return { name, node };
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "\n": "&#10;",
  "\r": "&#13;",
  "\t": "&#9;",
};

/**
 * What an attribute value cannot hold as it is: the markup characters, the whitespace an XML parser would
 * normalise, and every character XML 1.0 cannot carry at all (section 2.2: "Char ::= #x9 | #xA | #xD |
 * [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"; a character reference "MUST match the production for
 * Char", section 4.1), such as a control character quoted from a request into a diagnostic.
 */
const UNSAFE_IN_ATTRIBUTE = /[&<>"\n\r\t]|[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Escapes text for a double-quoted attribute value; characters XML cannot carry become U+FFFD. */
export function escapeAttribute(value: string): string {
  return value.replace(UNSAFE_IN_ATTRIBUTE, (c) => ESCAPES[c] ?? "\uFFFD");
}

/**
 * Serialises a FHIR JSON resource as FHIR XML. Properties are written in insertion order, which callers keep
 * in spec order; primitives become `value` attributes and nested resources are wrapped in their type element.
 */
export function toXml(resource: Resource, pretty = false): string {
  const out: string[] = [];
  const nl = pretty ? "\n" : "";
  const pad = (depth: number): string => (pretty ? "  ".repeat(depth) : "");

  const writeResource = (value: Resource, depth: number): void => {
    out.push(`${pad(depth)}<${value.resourceType} xmlns="${FHIR_NS}">${nl}`);
    writeChildren(value, depth + 1);
    out.push(`${pad(depth)}</${value.resourceType}>${nl}`);
  };
  const writeChildren = (value: Record<string, unknown>, depth: number): void => {
    for (const [name, child] of Object.entries(value)) {
      if (name === "resourceType" || child === undefined || child === null) continue;
      for (const item of Array.isArray(child) ? child : [child]) writeElement(name, item, depth);
    }
  };
  const writeElement = (name: string, value: unknown, depth: number): void => {
    if (typeof value !== "object" || value === null) {
      out.push(`${pad(depth)}<${name} value="${escapeAttribute(String(value))}"/>${nl}`);
      return;
    }
    // An extension's url is an attribute in XML (R4 extensibility.html#Extension), not a child element.
    const { url, ...children } = value as Record<string, unknown>;
    if (name === "extension" && typeof url === "string") {
      out.push(`${pad(depth)}<${name} url="${escapeAttribute(url)}">${nl}`);
      writeChildren(children, depth + 1);
    } else {
      out.push(`${pad(depth)}<${name}>${nl}`);
      if ("resourceType" in value) writeResource(value as Resource, depth + 1);
      else writeChildren(value as Record<string, unknown>, depth + 1);
    }
    out.push(`${pad(depth)}</${name}>${nl}`);
  };

  writeResource(resource, 0);
  return `<?xml version="1.0" encoding="UTF-8"?>${nl}${out.join("")}`;
}
