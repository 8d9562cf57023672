/** Turns a write request's body into what the store takes: raw bytes, or the payload of a Binary resource. */
import { parseBinaryJson, parseBinaryXml } from "../fhir/binary.ts";
import { FhirError } from "../fhir/errors.ts";
import { fhirSyntaxOf, parseMediaType } from "../fhir/mime.ts";

export interface WriteInput {
  contentType: string;
  securityContext: string | null;
  body: ReadableStream<Uint8Array> | Uint8Array;
  /** The Binary resource the body held, with its id (null when it had none); null for raw content. */
  resource: { id: string | null } | null;
}

/** The largest FHIR-wrapped body: the payload grows by 4/3 in base64, plus room for the envelope. */
export function wrappedLimit(maxSize: number): number {
  return Math.ceil(maxSize / 3) * 4 + 64 * 1024;
}

/** Decodes `Content-Encoding: gzip | deflate` while streaming; 415 for any other coding. */
function decoded(request: Request): ReadableStream<Uint8Array> | null {
  const coding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  const body = request.body;
  if (coding === "identity" || coding === "") return body;
  if (coding !== "gzip" && coding !== "x-gzip" && coding !== "deflate") {
    throw new FhirError(415, "not-supported", `Content-Encoding ${coding} is not supported (gzip, deflate)`);
  }
  return body ? decompress(body, coding === "deflate" ? "deflate" : "gzip") : null;
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

/** Reads a whole (small) body as UTF-8 text, stopping with 413 past `limit` bytes. */
async function readText(stream: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream ?? []) {
    size += chunk.byteLength;
    if (size > limit) throw new FhirError(413, "too-long", `The request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new FhirError(400, "structure", "The request body is not valid UTF-8");
  }
}

/**
 * Reads a create/update body. R4: "the data is accepted as is ... except for the special case where the
 * content is actually a Binary resource". A FHIR JSON/XML body must be well-formed; a Binary resource in it
 * is unwrapped, anything else is stored as sent.
 */
export async function readWriteInput(request: Request, maxSize: number): Promise<WriteInput> {
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
  const raw = { contentType: contentType.trim(), securityContext, resource: null };
  if (!syntax) return { ...raw, body: stream ?? new Uint8Array(0) };

  const text = await readText(stream, limit);
  const binary = syntax === "json" ? parseBinaryJson(text) : parseBinaryXml(text);
  if (!binary) return { ...raw, body: new TextEncoder().encode(text) };
  return {
    contentType: binary.contentType,
    securityContext: binary.securityContext,
    body: binary.data,
    resource: { id: binary.id },
  };
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
