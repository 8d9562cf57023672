/**
 * Reads a FHIR XML Binary resource as it streams in. A small lexer for the constrained FHIR shape (root
 * `Binary` in the FHIR namespace, children carrying `value` attributes) keeps the small elements and streams
 * the `value` attribute of `content`/`data` through a strict base64 decoder, chunk by chunk. `<!DOCTYPE` and
 * `<!ENTITY` are refused (fhir-binary-rules.md section 5); comments and processing instructions are skipped.
 */
import { type Base64Decoder, createBase64Decoder } from "./base64-stream.ts";
import {
  BUFFERED_PARSE_LIMIT,
  checkBinaryHeader,
  checkPayload,
  envelopeTooLarge,
  type ParsedBinary,
} from "./binary.ts";
import { FhirError } from "./errors.ts";
import { type ScanState, scanChunk } from "./scan-chunk.ts";
import type { FhirVersion } from "./version.ts";
import { decodeReferences, FHIR_NS, XML_MAX_DEPTH } from "./xml.ts";

/** Largest markup (one tag, comment or processing instruction) outside the payload. */
const MARKUP_LIMIT = 64 * 1024;
const PAYLOADS = new Set(["content", "data"]);
// Root children whose value attribute is kept as it is.
const SMALL_VALUES = new Set(["id", "contentType", "implicitRules", "language"]);
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });
// A payload element's tag up to the opening quote of its value attribute.
const PAYLOAD_VALUE = /^<(content|data)(?:\s+[^\s=<>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s+value\s*=\s*["']$/;
const ATTRIBUTE = /\s+([^\s=<>/]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/gy;
const NAME = /^[A-Za-z_:][\w.:-]*/;

/** A push scanner with the same protocol as the JSON one. */
export interface BinaryXmlScanner {
  readonly state: ScanState;
  push(chunk: Uint8Array): Uint8Array[];
  end(): Omit<ParsedBinary, "data">;
}

function malformed(why: string): FhirError {
  return new FhirError(400, "structure", `Malformed XML: ${why}`);
}

interface Tag {
  name: string;
  attributes: Map<string, string>;
  closing: boolean;
  empty: boolean;
}

/** Parses one complete tag (`<a b="c">`, `<a/>`, `</a>`). */
function parseTag(text: string): Tag {
  const closing = text.startsWith("</");
  const empty = text.endsWith("/>");
  const inner = text.slice(closing ? 2 : 1, empty ? -2 : -1);
  const name = NAME.exec(inner)?.[0];
  if (!name) throw malformed(`bad tag ${JSON.stringify(text.slice(0, 40))}`);
  const attributes = new Map<string, string>();
  ATTRIBUTE.lastIndex = name.length;
  for (let match = ATTRIBUTE.exec(inner); match; match = ATTRIBUTE.exec(inner)) {
    const [, key = "", double, single] = match;
    if (attributes.has(key)) throw malformed(`repeated attribute ${key}`);
    attributes.set(key, decodeReferences(double ?? single ?? ""));
    if (ATTRIBUTE.lastIndex === inner.length) break;
  }
  const rest = inner.slice(attributes.size ? ATTRIBUTE.lastIndex : name.length);
  if (rest.trim() !== "" || (closing && (attributes.size > 0 || empty))) {
    throw malformed(`bad tag ${JSON.stringify(text.slice(0, 40))}`);
  }
  return { name, attributes, closing, empty };
}

/** A character or entity reference, or the start of one cut off by the end of a chunk. */
const REFERENCE = /&([^;&]*);?/g;

/** Creates a scanner for one request body, written in `version`. */
export function createBinaryXmlScanner(version: FhirVersion): BinaryXmlScanner {
  let state: ScanState = "undecided";
  // "text": between tags; "markup": inside `<...>`; "payload": inside the streamed value attribute.
  let phase: "text" | "markup" | "payload" = "text";
  let markup: number[] = [];
  // Bytes seen before the current markup: the XML declaration is only allowed at the very start.
  let offset = 0;
  let markupAt = 0;
  let quote = 0;
  let reference = "";
  let decoder: Base64Decoder | null = null;
  const stack: string[] = [];
  let rootClosed = false;
  const values = new Map<string, unknown>();
  // The root's child elements, and meta.tag as codings of their children's values.
  const names: string[] = [];
  const tags: Record<string, unknown>[] = [];
  let payloads = 0;

  const fail = (error: FhirError): never => {
    // Before the root element decided, the whole-body parser reports the problem (or stores the body raw).
    if (state === "undecided") state = "other";
    throw error;
  };

  const keep = (name: string, value: unknown): void => {
    if (values.has(name)) fail(malformed(`Binary.${name} appears more than once`));
    values.set(name, value);
  };

  const element = (tag: Tag): void => {
    if (tag.closing) {
      if (stack.pop() !== tag.name) fail(malformed(`unexpected </${tag.name}>`));
      if (stack.length === 0) rootClosed = true;
      return;
    }
    if (rootClosed) fail(malformed("content after the root element"));
    const depth = stack.length;
    const parent = stack.at(-1);
    if (depth === 1 && !names.includes(tag.name)) names.push(tag.name);
    if (depth === 0) {
      state = tag.name === "Binary" && tag.attributes.get("xmlns") === FHIR_NS ? "binary" : "other";
    } else if (depth === 1 && PAYLOADS.has(tag.name)) {
      // The streamed value was counted when it began; a payload element without one is malformed.
      if (!tag.attributes.has("value")) keep("payload", null);
    } else if (depth === 1 && SMALL_VALUES.has(tag.name)) {
      keep(tag.name, tag.attributes.get("value") ?? null);
    } else if (depth === 1 && tag.name === "securityContext") {
      keep("securityContext", undefined);
    } else if (depth === 2 && parent === "securityContext" && tag.name === "reference") {
      keep("reference", tag.attributes.get("value") ?? null);
    } else if (depth === 2 && parent === "meta" && tag.name === "tag") {
      tags.push({});
    } else if (depth === 3 && parent === "tag" && stack[1] === "meta") {
      const coding = tags.at(-1) ?? {};
      if (Object.hasOwn(coding, tag.name))
        fail(malformed(`Binary.meta.tag.${tag.name} appears more than once`));
      coding[tag.name] = tag.attributes.get("value") ?? null;
    }
    if (tag.empty) {
      if (depth === 0) rootClosed = true;
    } else {
      if (depth >= XML_MAX_DEPTH) fail(malformed(`elements nested more than ${XML_MAX_DEPTH} deep`));
      stack.push(tag.name);
    }
  };

  const finishMarkup = (): void => {
    const text = utf8.decode(Uint8Array.from(markup));
    markup = [];
    phase = "text";
    if (/^<\?xml[\s?]/i.test(text) && markupAt !== 0) fail(malformed("XML declaration not at the start"));
    if (text.startsWith("<?") || text.startsWith("<!--")) return;
    if (/^<!(DOCTYPE|ENTITY)/i.test(text)) {
      fail(new FhirError(400, "security", "XML with a DOCTYPE or ENTITY declaration is not accepted"));
    }
    if (text.startsWith("<!")) fail(malformed("unexpected declaration or CDATA"));
    element(parseTag(text));
  };

  /** True once the markup collected so far is a complete comment, PI or tag. */
  const markupEnds = (): boolean => {
    const n = markup.length;
    if (markup[1] === 0x21 && markup[2] === 0x2d && markup[3] === 0x2d) {
      return n >= 7 && markup[n - 2] === 0x2d && markup[n - 3] === 0x2d;
    }
    if (markup[1] === 0x3f) return markup[n - 2] === 0x3f;
    return quote === 0;
  };

  /**
   * Scans the payload value from `from` to its closing quote (or the chunk end) at once; references such as
   * `&#10;` are resolved by one regular expression, and one cut by the chunk end is carried.
   */
  const scanPayload = (chunk: Uint8Array, from: number, out: Uint8Array[]): number => {
    const active = decoder as Base64Decoder;
    const at = chunk.indexOf(quote, from);
    const closed = at >= 0;
    const end = closed ? at : chunk.length;
    const carried = reference;
    reference = "";
    const text = (carried + latin1.decode(chunk.subarray(from, end))).replace(
      REFERENCE,
      (sequence, _body, offset, whole) => {
        if (sequence.endsWith(";")) return decodeReferences(sequence);
        // Cut by the chunk end: carried; anywhere else it is not well-formed.
        if (closed || offset + sequence.length !== whole.length || sequence.length > 12) {
          fail(malformed("invalid reference"));
        }
        reference = sequence;
        return "";
      },
    );
    if (text.includes("<")) fail(malformed("< in an attribute value"));
    out.push(active.push(text));
    if (!closed) return chunk.length;
    out.push(active.end());
    decoder = null;
    // The tag goes on as if the value had been empty; its other attributes are still checked.
    markup.push(quote, quote);
    quote = 0;
    phase = "markup";
    return end + 1;
  };

  const step = (byte: number): void => {
    if (++offset > BUFFERED_PARSE_LIMIT) fail(envelopeTooLarge());
    if (phase === "text") {
      if (byte === 0x3c) {
        markupAt = offset - 1;
        markup = [byte];
        phase = "markup";
      } else if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) {
        // FHIR XML keeps values in attributes; text would silently be dropped.
        if (stack.length === 0) fail(malformed("text outside the root element"));
        fail(new FhirError(400, "value", "Binary elements carry their values in value attributes"));
      }
      return;
    }
    if (markup.length >= MARKUP_LIMIT) {
      fail(new FhirError(413, "too-long", "A Binary element other than the payload exceeds 64 KiB"));
    }
    markup.push(byte);
    if (quote !== 0) {
      if (byte === quote) quote = 0;
    } else if ((byte === 0x22 || byte === 0x27) && markup[1] !== 0x21 && markup[1] !== 0x3f) {
      quote = byte;
      if (state === "binary" && stack.length === 1) {
        const name = PAYLOAD_VALUE.exec(latin1.decode(Uint8Array.from(markup)))?.[1];
        if (name) {
          if (payloads++ > 0) fail(malformed("Binary has both content and data"));
          markup.pop();
          decoder = createBase64Decoder();
          phase = "payload";
        }
      }
    } else if (byte === 0x3e && markupEnds()) {
      finishMarkup();
    }
  };

  return {
    get state() {
      return state;
    },
    push(chunk) {
      return scanChunk(chunk, {
        state: () => state,
        inPayload: () => phase === "payload",
        scanPayload,
        step,
      });
    },
    end() {
      if (!rootClosed || phase !== "text" || stack.length > 0) throw malformed("the document ended early");
      const present = values.has("payload") ? [values.get("payload")] : [];
      checkPayload(payloads > 0 ? [...present, ""] : present, version);
      if (values.has("securityContext") && !values.has("reference")) values.set("reference", null);
      return checkBinaryHeader({
        names,
        id: values.get("id"),
        contentType: values.get("contentType"),
        reference: values.get("reference"),
        implicitRules: values.get("implicitRules"),
        language: values.get("language"),
        tags: names.includes("meta") && tags.length > 0 ? tags : undefined,
      });
    },
  };
}
