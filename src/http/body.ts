/** Turns a write request's body into what the store takes: raw bytes, or the payload of a Binary resource. */
import type { ParsedBinary } from "../fhir/binary.ts";
import { BUFFERED_PARSE_LIMIT, parseBinaryJson, parseBinaryXml, resourceElements } from "../fhir/binary.ts";
import { createBinaryJsonScanner } from "../fhir/binary-json-stream.ts";
import { createBinaryXmlScanner } from "../fhir/binary-xml-stream.ts";
import { parseContentDisposition } from "../fhir/content-disposition.ts";
import { FhirError } from "../fhir/errors.ts";
import { fhirSyntaxOf, parseMediaType } from "../fhir/mime.ts";
import type { FhirVersion } from "../fhir/version.ts";
import type { ContentMetadata, WriteRequest } from "../store/types.ts";

/** What a write request gives the store: its metadata, and the body that feeds it. */
export type WriteInput = Pick<
  WriteRequest,
  | "contentType"
  | "securityContext"
  | "implicitRules"
  | "language"
  | "tags"
  | "fileName"
  | "body"
  | "metadataAfterBody"
>;

/** The largest FHIR-wrapped body: the payload grows by 4/3 in base64, plus room for the envelope. */
export function wrappedLimit(maxSize: number): number {
  return Math.ceil(maxSize / 3) * 4 + 64 * 1024;
}

/** Decodes `Content-Encoding: gzip | deflate` while streaming; 415 for any other coding. */
function decoded(request: Pick<Request, "headers" | "body">): ReadableStream<Uint8Array> | null {
  const coding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  const body = request.body;
  if (coding === "identity" || coding === "") return body;
  if (coding !== "gzip" && coding !== "x-gzip" && coding !== "deflate") {
    throw new FhirError(415, "not-supported", `Content-Encoding ${coding} is not supported (gzip, deflate)`);
  }
  // An empty body is no gzip member at all (RFC 1952 section 2.2: "A gzip file consists of a series of
  // members"): storing it as an empty document would hide that the client's compression failed.
  if (!body) throw new FhirError(400, "invalid", `The body is empty, so it is not valid ${coding} data`);
  return decompress(body, coding === "deflate" ? "deflate" : "gzip");
}

/** True when two bytes open a zlib stream (RFC 1950: deflate method, header checksum a multiple of 31). */
function isZlibHeader(first: number, second: number): boolean {
  return (first & 0x0f) === 8 && ((first << 8) | second) % 31 === 0;
}

/**
 * Streams `body` through a decompressor. HTTP's deflate is zlib-wrapped (RFC 9110 section 8.4.1.2), but
 * many clients send raw deflate: the first two bytes tell which. Corrupt input is a 400, not a 500.
 */
function decompress(
  body: ReadableStream<Uint8Array>,
  coding: "gzip" | "deflate",
): ReadableStream<Uint8Array> {
  const source = body.getReader();
  type Reader = { read(): Promise<{ done: boolean; value?: Uint8Array }> };
  let output: Reader | null = null;
  const open = async (): Promise<Reader> => {
    const first = await source.read();
    const head = first.value ?? new Uint8Array(0);
    const zlib = head.length >= 2 && isZlibHeader(head[0] ?? 0, head[1] ?? 0);
    const rest = new ReadableStream<Uint8Array>({
      start(controller) {
        if (head.length > 0) controller.enqueue(head);
        if (first.done) controller.close();
      },
      async pull(controller) {
        const next = await source.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    });
    const format = coding === "gzip" ? "gzip" : zlib ? "deflate" : "deflate-raw";
    // bun-types declare DecompressionStream over NonSharedUint8Array; request bodies are never shared.
    const inflate = new DecompressionStream(format) as unknown as TransformStream<Uint8Array, Uint8Array>;
    return rest.pipeThrough(inflate).getReader();
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        output ??= await open();
        const next = await output.read();
        if (next.done || !next.value) controller.close();
        else controller.enqueue(next.value);
      } catch {
        controller.error(new FhirError(400, "invalid", `The body is not valid ${coding} data`));
      }
    },
    cancel: (reason) => source.cancel(reason),
  });
}

function bodyTooLarge(limit: number): FhirError {
  return new FhirError(413, "too-long", `The request body is larger than ${limit} bytes`);
}

/**
 * The 413 for a FHIR body read whole past BUFFERED_PARSE_LIMIT. Only a Binary whose payload can stream may
 * be larger: in XML any Binary in the FHIR namespace, in JSON one whose resourceType precedes the payload.
 */
function notStreamable(syntax: "json" | "xml"): FhirError {
  const mib = BUFFERED_PARSE_LIMIT / (1024 * 1024);
  const how =
    syntax === "json"
      ? 'put "resourceType": "Binary" first and the payload (content or data) last'
      : 'send a Binary in the FHIR namespace (<Binary xmlns="http://hl7.org/fhir">)';
  return new FhirError(
    413,
    "too-long",
    `A FHIR ${syntax.toUpperCase()} body that is not a streamable Binary resource is parsed in memory, ` +
      `at most ${mib} MiB once decoded: ${how}, or send the document as raw bytes with its own Content-Type`,
  );
}

/**
 * Reads the rest of a body to be parsed whole as UTF-8 text after `chunks`, stopping with `overflow()` (a
 * 413) past `limit` decoded bytes.
 */
async function readText(
  reader: { read(): Promise<{ done: boolean; value?: Uint8Array }> },
  chunks: Uint8Array[],
  limit: number,
  overflow: () => FhirError,
): Promise<string> {
  let size = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  for (let next = await reader.read(); !next.done && next.value; next = await reader.read()) {
    size += next.value.byteLength;
    if (size > limit) throw overflow();
    chunks.push(next.value);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new FhirError(400, "structure", "The request body is not valid UTF-8");
  }
}

/** Checks a PUT body's id. R4 http.html#update: "the request body SHALL be a Resource with an id element
 * that has an identical value to the [id] in the URL". */
function checkedId(binary: Pick<ParsedBinary, "id">, urlId: string | null): void {
  if (urlId !== null && binary.id !== urlId) {
    throw new FhirError(
      400,
      "invalid",
      `The Binary's id (${binary.id ?? "none"}) must equal the URL id ${urlId}`,
    );
  }
}

/**
 * What a Binary resource gives the store besides its payload. A Binary has no file name: the request's
 * `Content-Disposition` may still give one (in `raw`).
 */
function contentMetadataOf(binary: Omit<ParsedBinary, "data">, raw: ContentMetadata): ContentMetadata {
  const { contentType, securityContext } = binary;
  return { contentType, securityContext, ...resourceElements({ ...binary, fileName: raw.fileName }) };
}

/**
 * Reads a FHIR JSON/XML body. While a scanner cannot yet tell whether the body is a Binary whose payload can
 * stream, the chunks are kept; once it can, the payload is decoded to the store as it arrives and the small
 * elements are checked when the body ends (they may follow the payload). Anything else is read whole, at
 * most BUFFERED_PARSE_LIMIT decoded bytes of it whatever `limit` (from --max-size) allows.
 */
async function readFhirBody(
  stream: ReadableStream<Uint8Array> | null,
  syntax: "json" | "xml",
  limit: number,
  raw: ContentMetadata,
  urlId: string | null,
  version: FhirVersion,
): Promise<WriteInput> {
  const empty = new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  const reader = (stream ?? empty).getReader();
  const scanner = syntax === "json" ? createBinaryJsonScanner(version) : createBinaryXmlScanner(version);
  const chunks: Uint8Array[] = [];
  const buffered = Math.min(limit, BUFFERED_PARSE_LIMIT);
  const overflow = (): FhirError =>
    limit <= BUFFERED_PARSE_LIMIT ? bodyTooLarge(limit) : notStreamable(syntax);
  // A function, so that the loop condition does not narrow the state it reads after each push.
  const streams = (): boolean => scanner.state === "binary";
  let size = 0;
  let pending: Uint8Array[] = [];
  while (scanner.state === "undecided") {
    const next = await reader.read();
    if (next.done) break;
    size += next.value.byteLength;
    if (size > limit) throw bodyTooLarge(limit);
    pending = scanner.push(next.value);
    // The chunk that shows a streamable Binary is not kept, however large Bun made it.
    if (!streams() && size > buffered) throw overflow();
    chunks.push(next.value);
  }
  if (scanner.state !== "binary") {
    const text = await readText(reader, chunks, buffered, overflow);
    const binary = syntax === "json" ? parseBinaryJson(text, version) : parseBinaryXml(text, version);
    if (!binary) return { ...raw, body: new TextEncoder().encode(text) };
    checkedId(binary, urlId);
    return { ...contentMetadataOf(binary, raw), body: binary.data };
  }
  let header: Omit<ParsedBinary, "data"> | null = null;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (pending.length === 0) {
        const next = await reader.read();
        if (next.done) {
          header = scanner.end();
          controller.close();
          return;
        }
        size += next.value.byteLength;
        if (size > limit) throw bodyTooLarge(limit);
        pending = scanner.push(next.value);
      }
      controller.enqueue(pending.shift() as Uint8Array);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const metadataAfterBody = (): ContentMetadata => {
    if (!header) throw new FhirError(400, "structure", "The Binary resource ended early");
    checkedId(header, urlId);
    return contentMetadataOf(header, raw);
  };
  return { ...raw, body, metadataAfterBody };
}

/**
 * Reads a create/update body. R4: "the data is accepted as is ... except for the special case where the
 * content is actually a Binary resource". A FHIR JSON/XML body must be well-formed; a Binary resource in it
 * (written in `version`) is unwrapped, anything else is stored as sent. A `Content-Disposition` naming a
 * file gives the version its file name, whatever the body.
 */
export async function readWriteInput(
  request: Pick<Request, "headers" | "body">,
  maxSize: number,
  urlId: string | null,
  version: FhirVersion,
): Promise<WriteInput> {
  const contentType = request.headers.get("content-type");
  if (!contentType) throw new FhirError(400, "required", "Content-Type is required");
  const media = parseMediaType(contentType);
  if (!media) throw new FhirError(400, "value", "Content-Type is not a valid MIME type (RFC 6838)");
  const securityContext = request.headers.get("x-security-context");
  if (securityContext !== null && !/^[!-~]{1,1024}$/.test(securityContext)) {
    throw new FhirError(400, "value", "X-Security-Context must be a reference such as Patient/123");
  }

  const syntax = fhirSyntaxOf(media.essence);
  const limit = syntax ? wrappedLimit(maxSize) : maxSize;
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (!request.headers.has("content-encoding") && declared > limit) {
    throw new FhirError(413, "too-long", `The content is larger than the limit of ${maxSize} bytes`);
  }
  const stream = decoded(request);
  const disposition = request.headers.get("content-disposition");
  const fileName = disposition === null ? null : parseContentDisposition(disposition);
  const raw = {
    contentType: contentType.trim(),
    securityContext,
    ...(fileName === null ? {} : { fileName }),
  };
  if (!syntax) return { ...raw, body: stream ?? new Uint8Array(0) };
  return readFhirBody(stream, syntax, limit, raw, urlId, version);
}

/** The `return` preference of a Prefer header (R4 http.html#prefer), or null. */
export function preferredReturn(
  header: string | null,
): "minimal" | "representation" | "OperationOutcome" | null {
  const match = /(?:^|[,;\s])return\s*=\s*"?(minimal|representation|OperationOutcome)"?(?=$|[,;\s])/i.exec(
    header ?? "",
  );
  const value = match?.[1]?.toLowerCase();
  if (value === "minimal") return "minimal";
  if (value === "representation") return "representation";
  return value === "operationoutcome" ? "OperationOutcome" : null;
}
