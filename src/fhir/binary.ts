/**
 * The Binary resource: building its FHIR JSON/XML form (streamed, payload base64-encoded chunk by chunk)
 * and reading a Binary resource sent as a request body.
 */
import { collectWhileStreaming } from "../gc.ts";
import { FhirError } from "./errors.ts";
import type { FhirFormat } from "./format.ts";
import { parseMediaType, toFhirCode } from "./mime.ts";
import type { Resource } from "./outcome.ts";
import type { FhirVersion } from "./version.ts";
import { FHIR_NS, parseXml, toXml, type XmlNode } from "./xml.ts";

/** A Coding of `meta.tag` (R4 datatypes.html#Coding), its elements in spec order. */
export interface TagCoding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
  userSelected?: boolean;
}

/**
 * The elements of a Binary resource a client sets besides its content: part of the resource, so kept with
 * the version (as HAPI keeps them) and rendered on FHIR reads. Each is absent when the client sent none.
 */
export interface ResourceElements {
  implicitRules?: string;
  language?: string;
  /** `meta.tag`, without the SUBSETTED tag fhirbin adds itself. */
  tags?: TagCoding[];
  /**
   * The document's original file name, from the write's `Content-Disposition`: shown to FHIR clients as the
   * FILE_NAME_EXTENSION of `meta`, and named again in the native read's `Content-Disposition`.
   */
  fileName?: string;
}

/** The URL of the extension of `Binary.meta` that carries the document's original file name. */
export const FILE_NAME_EXTENSION = "https://fhirbin.dev/fhir/StructureDefinition/file-name";

/** The resource elements of `source` that are set, and nothing else (a sidecar holds only those). */
export function resourceElements({
  implicitRules,
  language,
  tags,
  fileName,
}: ResourceElements): ResourceElements {
  return {
    ...(implicitRules === undefined ? {} : { implicitRules }),
    ...(language === undefined ? {} : { language }),
    ...(tags === undefined || tags.length === 0 ? {} : { tags }),
    ...(fileName === undefined ? {} : { fileName }),
  };
}

/** What a Binary resource says about one stored version. */
export interface BinaryHeader extends ResourceElements {
  id: string;
  versionId: number;
  lastUpdated: string;
  contentType: string;
  securityContext: string | null;
}

/**
 * The tag marking a resource with elements left out (R4 search.html#summary). Its code system moved to
 * terminology.hl7.org in R4; STU3 and DSTU2 name it `http://hl7.org/fhir/v3/ObservationValue`.
 */
export function subsettedTag(version: FhirVersion): Readonly<Record<string, string>> {
  return {
    system:
      version.name === "R4"
        ? "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
        : "http://hl7.org/fhir/v3/ObservationValue",
    code: "SUBSETTED",
    display: "Resource encoded in summary mode",
  };
}

/** Builds the Binary resource (spec element order) with an optional base64 payload. */
export function toBinaryResource(
  header: BinaryHeader,
  version: FhirVersion,
  payload: string | null,
): Resource {
  // Meta's extension comes first among its children, as Element's elements precede Meta's own (the XML is
  // written in this order).
  const meta: Record<string, unknown> = {
    ...(header.fileName === undefined
      ? {}
      : { extension: [{ url: FILE_NAME_EXTENSION, valueString: header.fileName }] }),
    versionId: String(header.versionId),
    lastUpdated: header.lastUpdated,
  };
  const tags = [...(header.tags ?? []), ...(payload === null ? [subsettedTag(version)] : [])];
  if (tags.length > 0) meta.tag = tags;
  const resource: Resource = { resourceType: "Binary", id: header.id, meta };
  if (header.implicitRules !== undefined) resource.implicitRules = header.implicitRules;
  if (header.language !== undefined) resource.language = header.language;
  resource.contentType = toFhirCode(header.contentType);
  if (version.hasSecurityContext && header.securityContext) {
    resource.securityContext = { reference: header.securityContext };
  }
  // No bytes, no `data` from R4, where it is 0..1: a value is never empty (R4 xml.html: an attribute is either
  // absent or holds content), and HL7's R4 XSD refuses `value=""` (base64Binary is 4-character groups).
  // `content` is 1..1 until STU3, so there it stays, as "", which the STU3 schemas accept.
  if (payload !== null && !(payload === "" && version.payload === "data"))
    resource[version.payload] = payload;
  return resource;
}

/** Serialises any resource in a FHIR format. */
export function serialise(resource: Resource, format: FhirFormat, pretty: boolean): string {
  return format.syntax === "json"
    ? JSON.stringify(resource, null, pretty ? 2 : undefined)
    : toXml(resource, pretty);
}

// Stands in for the payload while the envelope is serialised; the payload is the last element in both
// syntaxes, so the last occurrence is the one to split at.
const PAYLOAD_MARK = "FHIRBIN-PAYLOAD-MARK";

/**
 * The text before and after the base64 payload of a Binary of `size` bytes in the given format; an empty
 * R4 Binary has no payload element (toBinaryResource), so all of it is the head.
 */
export function binaryEnvelope(
  header: BinaryHeader & { size: number },
  format: FhirFormat,
  pretty: boolean,
): { head: string; tail: string } {
  if (header.size === 0)
    return { head: serialise(toBinaryResource(header, format.version, ""), format, pretty), tail: "" };
  const text = serialise(toBinaryResource(header, format.version, PAYLOAD_MARK), format, pretty);
  const at = text.lastIndexOf(PAYLOAD_MARK);
  return { head: text.slice(0, at), tail: text.slice(at + PAYLOAD_MARK.length) };
}

/** Length of the base64 encoding of `size` bytes (padded). */
export function base64Length(size: number): number {
  return Math.ceil(size / 3) * 4;
}

const encoder = new TextEncoder();
/** Bytes base64-encoded at a time: a multiple of 3, so no piece but the last needs padding. */
const ENCODE_PIECE = 48 * 1024;

/**
 * Streams a Binary resource: head, the content base64-encoded chunk by chunk (each chunk a multiple of
 * 3 bytes, the remainder carried over), tail. Memory stays bounded by the source's chunk size.
 */
export function binaryStream(
  head: string,
  content: ReadableStream<Uint8Array>,
  tail: string,
): ReadableStream<Uint8Array> {
  let carry = new Uint8Array(0);
  let read = 0;
  const encode = new TransformStream<Uint8Array, Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(head));
    },
    transform(chunk, controller) {
      const bytes = carry.length ? concat(carry, chunk) : chunk;
      const usable = bytes.length - (bytes.length % 3);
      // Small pieces: the garbage of each (a string and its bytes) stays small, and the collector keeps up
      // with it; whole 512 KiB file chunks let RSS climb by tens of MiB (bench/memory.ts).
      for (let at = 0; at < usable; at += ENCODE_PIECE) {
        const end = Math.min(at + ENCODE_PIECE, usable);
        controller.enqueue(encoder.encode(bytes.subarray(at, end).toBase64()));
      }
      carry = bytes.slice(usable);
      read += chunk.byteLength;
      collectWhileStreaming(read, chunk.byteLength);
    },
    flush(controller) {
      controller.enqueue(encoder.encode(carry.toBase64() + tail));
    },
  });
  return content.pipeThrough(encode);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * The most of a FHIR request body ever held in memory to be parsed, counted on decoded bytes: a body read
 * whole (not a Binary, or a JSON Binary whose payload comes before its resourceType), and the elements
 * other than the payload of a streamed Binary. Parsing costs many times the text (a 32 MiB JSON array
 * took 390 MiB), so a 32 KiB gzip bomb must stop here, long before --max-size.
 */
export const BUFFERED_PARSE_LIMIT = 4 * 1024 * 1024;

/** The 413 for a streamed Binary whose elements other than the payload pass BUFFERED_PARSE_LIMIT. */
export function envelopeTooLarge(): FhirError {
  const mib = BUFFERED_PARSE_LIMIT / (1024 * 1024);
  return new FhirError(413, "too-long", `The Binary's elements other than the payload exceed ${mib} MiB`);
}

/** A Binary resource received in a request body. */
export interface ParsedBinary extends ResourceElements {
  id: string | null;
  contentType: string;
  securityContext: string | null;
  data: Uint8Array;
}

/** The small elements of a Binary resource as a reader found them, before they are checked. */
export interface BinaryFields {
  /** The names of the resource's elements (JSON members, XML child elements). */
  names: readonly string[];
  id: unknown;
  contentType: unknown;
  /** `securityContext.reference`: undefined when securityContext is absent, null when it has none. */
  reference: unknown;
  implicitRules: unknown;
  language: unknown;
  /** `meta.tag` as a list of codings, each a record of its elements' values; undefined when absent. */
  tags: unknown;
}

/**
 * The elements of Binary in DSTU2, STU3 and R4 (`content` until STU3, `data` from R4; both are taken in every
 * release, being one element renamed). STU3's CapabilityStatement says `acceptUnknown: no`, so anything else
 * is refused rather than silently dropped.
 */
const KNOWN_ELEMENTS: ReadonlySet<string> = new Set([
  "resourceType",
  "id",
  "meta",
  "implicitRules",
  "language",
  "contentType",
  "securityContext",
  "content",
  "data",
]);
const CODING_ELEMENTS: ReadonlySet<string> = new Set([
  "system",
  "version",
  "code",
  "display",
  "userSelected",
]);
/**
 * The values a Coding's text elements may have, as the FHIR primitive each is (R4 datatypes.html#primitive:
 * uri, string, code, string; the patterns of HL7's schemas), so that no tag is kept that the schemas refuse
 * once it is echoed: never empty, a uri without whitespace, a code with "no whitespace other than single
 * spaces in the contents".
 */
const CODING_VALUES: Readonly<Record<"system" | "version" | "code" | "display", RegExp>> = {
  system: /^\S+$/,
  version: /^[ \r\n\t\S]+$/,
  code: /^\S+( \S+)*$/,
  display: /^[ \r\n\t\S]+$/,
};
// BCP 47 (the binding of Resource.language): `en`, `en-GB`, `zh-Hant-TW`.
const LANGUAGE = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;

/**
 * Decodes base64Binary strictly: `Buffer.from(s, "base64")` silently drops data after padding
 * (storage.md), so anything a strict decoder refuses is a 400.
 */
export function decodeBase64(value: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(value, { lastChunkHandling: "strict" });
  } catch {
    throw new FhirError(400, "value", "Binary payload is not valid base64");
  }
}

// A reference such as `Patient/123`, or an absolute URL: printable ASCII, no spaces.
const REFERENCE = /^[!-~]{1,1024}$/;

/** Checks the small elements of a Binary resource; shared by the whole-body and the streaming readers. */
export function checkBinaryHeader({
  names,
  id,
  contentType,
  reference,
  implicitRules,
  language,
  tags,
}: BinaryFields): Omit<ParsedBinary, "data"> {
  const unknown = names.filter((name) => !KNOWN_ELEMENTS.has(name));
  if (unknown.length > 0) {
    throw new FhirError(
      400,
      "structure",
      `Binary has elements this server does not know: ${unknown.join(", ")}`,
    );
  }
  if (typeof contentType !== "string" || !parseMediaType(contentType)) {
    throw new FhirError(400, "required", "Binary.contentType is required and must be a valid MIME type");
  }
  if (reference !== undefined && (typeof reference !== "string" || !REFERENCE.test(reference))) {
    throw new FhirError(
      400,
      "value",
      "Binary.securityContext.reference must be a reference such as Patient/123",
    );
  }
  if (id !== undefined && typeof id !== "string")
    throw new FhirError(400, "value", "Binary.id must be a string");
  if (implicitRules !== undefined && (typeof implicitRules !== "string" || !REFERENCE.test(implicitRules)))
    throw new FhirError(400, "value", "Binary.implicitRules must be a URI");
  if (language !== undefined && (typeof language !== "string" || !LANGUAGE.test(language)))
    throw new FhirError(400, "value", "Binary.language must be a language code such as en-GB");
  return {
    id: id ?? null,
    contentType: contentType.trim(),
    securityContext: (reference as string | undefined) ?? null,
    ...resourceElements({
      implicitRules: implicitRules as string | undefined,
      language: language as string | undefined,
      tags: tags === undefined ? undefined : checkTags(tags),
    }),
  };
}

/** Checks `meta.tag`: codings of strings (userSelected a boolean, `true`/`false` in XML), nothing else. */
function checkTags(tags: unknown): TagCoding[] {
  const bad = (): FhirError =>
    new FhirError(
      400,
      "value",
      "Binary.meta.tag must be codings (system, version, code, display, userSelected) of non-empty " +
        "values: a system without spaces, a code without leading, trailing or repeated spaces",
    );
  if (!Array.isArray(tags)) throw bad();
  return tags.map((tag: unknown): TagCoding => {
    if (typeof tag !== "object" || tag === null || Array.isArray(tag)) throw bad();
    const fields = tag as Record<string, unknown>;
    if (Object.keys(fields).some((name) => !CODING_ELEMENTS.has(name))) throw bad();
    const text = (name: keyof typeof CODING_VALUES): string | undefined => {
      const value = fields[name];
      if (value !== undefined && (typeof value !== "string" || !CODING_VALUES[name].test(value))) throw bad();
      return value;
    };
    const selected = fields.userSelected;
    if (selected !== undefined && ![true, false, "true", "false"].includes(selected as boolean)) throw bad();
    const coding: TagCoding = {};
    for (const name of ["system", "version", "code", "display"] as const) {
      const value = text(name);
      if (value !== undefined) coding[name] = value;
    }
    if (selected !== undefined) coding.userSelected = selected === true || selected === "true";
    return coding;
  });
}

/**
 * The one payload among `content` and `data` (undefined when absent), as base64 text; "" when neither, which
 * only R4 allows: `content` is 1..1 in STU3 and DSTU2, `data` 0..1 from R4.
 */
export function checkPayload(payloads: readonly unknown[], version: FhirVersion): string {
  const present = payloads.filter((payload) => payload !== undefined);
  if (present.length > 1) throw new FhirError(400, "structure", "Binary has both content and data");
  if (present.length === 0 && version.payload === "content")
    throw new FhirError(400, "required", `Binary.content is required in ${version.name}`);
  // An element present without a value (`"data": null`, `<data>..</data>`) is malformed, not empty content.
  const payload = present.length === 0 ? "" : present[0];
  if (typeof payload !== "string")
    throw new FhirError(400, "value", "Binary payload must be a base64 string");
  return payload;
}

function checkedBinary(
  fields: BinaryFields,
  payloads: readonly unknown[],
  version: FhirVersion,
): ParsedBinary {
  // The payload first, as the streaming readers meet it before the end of the body.
  const data = decodeBase64(checkPayload(payloads, version));
  return { ...checkBinaryHeader(fields), data };
}

/** `securityContext.reference` of a FHIR JSON Binary: undefined when absent, null when not an object. */
export function jsonReference(context: unknown): unknown {
  if (context === undefined) return undefined;
  return typeof context === "object" && context ? Reflect.get(context, "reference") : null;
}

/** `meta.tag` of a FHIR JSON Binary: undefined when absent, null when meta is not an object. */
export function jsonTags(meta: unknown): unknown {
  if (meta === undefined) return undefined;
  return typeof meta === "object" && meta && !Array.isArray(meta) ? Reflect.get(meta, "tag") : null;
}

/**
 * Reads a FHIR JSON body written in `version`. Returns null when it is well-formed JSON but not a Binary
 * resource: R4 says such content "is accepted as is", so the caller stores it raw. Throws 400 when it is not
 * JSON at all.
 */
export function parseBinaryJson(text: string, version: FhirVersion): ParsedBinary | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FhirError(400, "structure", "Malformed JSON in the request body");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const json = value as Record<string, unknown>;
  if (json.resourceType !== "Binary") return null;
  const fields: BinaryFields = {
    names: Object.keys(json),
    id: json.id,
    contentType: json.contentType,
    reference: jsonReference(json.securityContext),
    implicitRules: json.implicitRules,
    language: json.language,
    tags: jsonTags(json.meta),
  };
  return checkedBinary(fields, [json.content, json.data], version);
}

/** The `value` attribute of a single child element, undefined when absent. */
function childValue(node: XmlNode, name: string): unknown {
  const child = node[name];
  if (child === undefined) return undefined;
  if (Array.isArray(child)) throw new FhirError(400, "structure", `Binary.${name} appears more than once`);
  return typeof child === "string" ? null : child["@value"];
}

/** The names of an element's children (attributes left out). */
function childNames(node: XmlNode): string[] {
  return Object.keys(node).filter((name) => !name.startsWith("@"));
}

/** `meta.tag` of a FHIR XML Binary as codings of their children's values; undefined when absent. */
function xmlTags(meta: XmlNode | XmlNode[] | string | undefined): unknown {
  if (meta === undefined || typeof meta === "string") return undefined;
  if (Array.isArray(meta)) throw new FhirError(400, "structure", "Binary.meta appears more than once");
  const tags = meta.tag;
  if (tags === undefined) return undefined;
  return (Array.isArray(tags) ? tags : [tags]).map((tag) =>
    typeof tag === "string"
      ? {}
      : Object.fromEntries(childNames(tag).map((name) => [name, childValue(tag, name)])),
  );
}

/**
 * Reads a FHIR XML body written in `version`; null when it is well-formed XML but not a Binary in the FHIR
 * namespace.
 */
export function parseBinaryXml(text: string, version: FhirVersion): ParsedBinary | null {
  const { name, node } = parseXml(text);
  if (name !== "Binary" || node["@xmlns"] !== FHIR_NS) return null;
  const context = node.securityContext;
  if (Array.isArray(context))
    throw new FhirError(400, "structure", "Binary.securityContext appears more than once");
  const reference =
    context === undefined ? undefined : typeof context === "string" ? null : childValue(context, "reference");
  const fields: BinaryFields = {
    names: childNames(node),
    id: childValue(node, "id"),
    contentType: childValue(node, "contentType"),
    reference,
    implicitRules: childValue(node, "implicitRules"),
    language: childValue(node, "language"),
    tags: xmlTags(node.meta),
  };
  return checkedBinary(fields, [childValue(node, "content"), childValue(node, "data")], version);
}
