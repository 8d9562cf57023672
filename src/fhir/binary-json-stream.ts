/**
 * Reads a FHIR JSON Binary resource as it streams in: the top-level object is tokenised, small members are
 * kept (bounded), and the `content`/`data` string goes through a strict base64 decoder chunk by chunk, so a
 * payload of hundreds of MiB never exists whole as text or as bytes.
 */
import { type Base64Decoder, createBase64Decoder } from "./base64-stream.ts";
import {
  BUFFERED_PARSE_LIMIT,
  checkBinaryHeader,
  checkPayload,
  envelopeTooLarge,
  jsonReference,
  jsonTags,
  type ParsedBinary,
} from "./binary.ts";
import { FhirError } from "./errors.ts";
import { type ScanState, scanChunk } from "./scan-chunk.ts";
import type { FhirVersion } from "./version.ts";

/** Largest member other than the payload (id, meta, contentType, securityContext...). */
export const SMALL_MEMBER_LIMIT = 64 * 1024;

/**
 * What the scanner knows so far. `binary`: resourceType "Binary" came before the payload, the payload
 * streams. `other`: not a Binary that can be streamed (another resource, not an object, the payload before
 * resourceType, or malformed before that point); the caller reads the body whole and decides as before.
 */
export type JsonScanState = ScanState;

/** A push scanner: `push` each chunk (it returns the payload bytes decoded from it), then `end` once. */
export interface BinaryJsonScanner {
  readonly state: JsonScanState;
  push(chunk: Uint8Array): Uint8Array[];
  /** Checks the whole resource once the body ended; throws 400 on anything a whole-body parse refuses. */
  end(): Omit<ParsedBinary, "data">;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const PAYLOADS = new Set(["content", "data"]);
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8", { fatal: true });

type Phase = "start" | "key" | "key-text" | "colon" | "value" | "small" | "payload" | "after" | "done";

function malformed(): FhirError {
  return new FhirError(400, "structure", "Malformed JSON in the request body");
}

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

/** Creates a scanner for one request body, written in `version`. */
export function createBinaryJsonScanner(version: FhirVersion): BinaryJsonScanner {
  let state: JsonScanState = "undecided";
  let phase: Phase = "start";
  // After a comma a key must follow; right after `{` the object may also close.
  let mayClose = true;
  let key: number[] = [];
  let keyEscaped = false;
  let small: number[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let pendingEscape = "";
  let decoder: Base64Decoder | null = null;
  const members = new Map<string, unknown>();
  let streamed = 0;
  // Bytes outside the payload: the members kept for end() must stay bounded however many there are.
  let envelope = 0;

  /** Errors before the scanner decided send the body down the whole-body path, which reports them. */
  const fail = (error: FhirError): never => {
    if (state === "undecided") state = "other";
    throw error;
  };

  const finishSmall = (): void => {
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(Uint8Array.from(small)));
    } catch {
      fail(malformed());
    }
    const name = utf8.decode(Uint8Array.from(key));
    // JSON.parse would let the last duplicate win; a proxy that checked the first could then be bypassed.
    if (members.has(name)) throw new FhirError(400, "structure", `Binary has the member ${name} twice`);
    members.set(name, value);
    if (name === "resourceType" && state === "undecided") state = value === "Binary" ? "binary" : "other";
    small = [];
    phase = "after";
  };

  /** Feeds payload text to the decoder, resolving JSON escapes (`\/` is common, `\n` is whitespace). */
  const payloadEscape = (sequence: string): string => {
    switch (sequence[1]) {
      case "/":
        return "/";
      case "n":
      case "r":
      case "t":
      case "f":
        return " ";
      case "u":
        return String.fromCharCode(Number.parseInt(sequence.slice(2), 16));
      case "\\":
      case '"':
      case "b":
        return "!"; // Well-formed JSON but not base64: the decoder refuses it.
      default:
        return fail(malformed());
    }
  };

  /**
   * Scans payload text from `from`; returns where the string ended (or the chunk length). The text up to the
   * closing quote is decoded at once and its escapes resolved by one regular expression, so a payload with
   * an escape every few characters (`\/`, `\n`) stays fast; an escape cut by the chunk end is carried.
   */
  const scanPayload = (chunk: Uint8Array, from: number, out: Uint8Array[]): number => {
    const active = decoder as Base64Decoder;
    let quote = chunk.indexOf(QUOTE, from);
    while (quote >= 0 && isEscaped(chunk, from, quote, pendingEscape === "\\")) {
      quote = chunk.indexOf(QUOTE, quote + 1);
    }
    const closed = quote >= 0;
    const end = closed ? quote : chunk.length;
    const piece = chunk.subarray(from, end);
    // A raw control character is not allowed inside a JSON string (RFC 8259 section 7).
    if (hasControlByte(piece)) fail(malformed());
    const carried = pendingEscape;
    pendingEscape = "";
    const text = (carried + latin1.decode(piece)).replace(ESCAPE, (sequence, _code, offset, whole) => {
      if (sequence.length === 6 || (sequence.length === 2 && sequence[1] !== "u")) {
        return payloadEscape(sequence);
      }
      // Incomplete: carried to the next chunk when the chunk ends here, malformed when the string does.
      if (closed || offset + sequence.length !== whole.length) fail(malformed());
      pendingEscape = sequence;
      return "";
    });
    out.push(active.push(text));
    if (!closed) return chunk.length;
    out.push(active.end());
    decoder = null;
    phase = "after";
    return end + 1;
  };

  const step = (byte: number): void => {
    if (++envelope > BUFFERED_PARSE_LIMIT) fail(envelopeTooLarge());
    switch (phase) {
      case "start":
        if (isSpace(byte)) return;
        if (byte !== 0x7b) fail(malformed());
        phase = "key";
        return;
      case "key":
        if (isSpace(byte)) return;
        if (byte === 0x7d && mayClose) {
          phase = "done";
          return;
        }
        if (byte !== QUOTE) fail(malformed());
        key = [];
        phase = "key-text";
        return;
      case "key-text":
        if (keyEscaped) {
          keyEscaped = false;
        } else if (byte === BACKSLASH) {
          keyEscaped = true;
        } else if (byte === QUOTE) {
          phase = "colon";
          return;
        }
        if (key.length > 256) fail(malformed());
        key.push(byte);
        return;
      case "colon":
        if (isSpace(byte)) return;
        if (byte !== 0x3a) fail(malformed());
        phase = "value";
        return;
      case "value": {
        if (isSpace(byte)) return;
        const name = String.fromCharCode(...key);
        if (PAYLOADS.has(name) && byte === QUOTE) {
          // The payload before resourceType: only the whole-body path can tell what the document is.
          if (state === "undecided") fail(malformed());
          if (decoder || streamed > 0 || members.has("content") || members.has("data")) {
            throw new FhirError(400, "structure", "Binary has both content and data");
          }
          streamed++;
          decoder = createBase64Decoder();
          phase = "payload";
          return;
        }
        small = [byte];
        depth = byte === 0x7b || byte === 0x5b ? 1 : 0;
        inString = byte === QUOTE;
        escaped = false;
        phase = "small";
        return;
      }
      case "small":
        if (inString) {
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) inString = false;
        } else if (byte === QUOTE) {
          inString = true;
        } else if (byte === 0x7b || byte === 0x5b) {
          depth++;
        } else if (byte === 0x7d || byte === 0x5d) {
          if (depth === 0 && byte === 0x7d) {
            finishSmall();
            phase = "done";
            return;
          }
          depth--;
        } else if (byte === 0x2c && depth === 0) {
          finishSmall();
          mayClose = false;
          phase = "key";
          return;
        }
        if (small.length >= SMALL_MEMBER_LIMIT) {
          fail(new FhirError(413, "too-long", `A Binary element other than the payload exceeds 64 KiB`));
        }
        small.push(byte);
        return;
      case "after":
        if (isSpace(byte)) return;
        if (byte === 0x2c) {
          mayClose = false;
          phase = "key";
        } else if (byte === 0x7d) {
          phase = "done";
        } else {
          fail(malformed());
        }
        return;
      case "done":
        if (!isSpace(byte)) fail(malformed());
        return;
      default:
        return;
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
      if (phase !== "done") throw malformed();
      const payloads = [members.get("content"), members.get("data")];
      checkPayload(streamed > 0 ? [...payloads, ""] : payloads, version);
      return checkBinaryHeader({
        names: [...members.keys()],
        id: members.get("id"),
        contentType: members.get("contentType"),
        reference: jsonReference(members.get("securityContext")),
        implicitRules: members.get("implicitRules"),
        language: members.get("language"),
        tags: jsonTags(members.get("meta")),
      });
    },
  };
}

/** A JSON escape, or the start of one cut off by the end of a chunk (`\`, `\u`, `\u0`...). */
const ESCAPE = /\\(u[0-9a-fA-F]{0,4}|[^u]?)/g;

function hasControlByte(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] as number) < 0x20) return true;
  return false;
}

/** True when the quote at `at` follows an odd run of backslashes (counting one carried from the last chunk). */
function isEscaped(chunk: Uint8Array, from: number, at: number, carriedBackslash: boolean): boolean {
  let run = 0;
  let i = at - 1;
  while (i >= from && chunk[i] === BACKSLASH) {
    run++;
    i--;
  }
  if (i < from && carriedBackslash) run++;
  return run % 2 === 1;
}
