/**
 * `Content-Disposition` (RFC 6266) and the file names it carries: read from a write request's header
 * (`filename`, and `filename*` as an RFC 8187 ext-value), checked, and written back on native reads.
 */
import { FhirError } from "./errors.ts";

/** The most UTF-8 bytes a file name may take: what common file systems allow in one name. */
export const MAX_FILE_NAME_BYTES = 255;

/** RFC 9110 section 5.6.2: `token = 1*tchar`. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
/** RFC 9110 section 5.6.4: a quoted-string of qdtext and quoted-pairs (obs-text included). */
const QUOTED = /^"((?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*)"/;
/** RFC 8187 section 3.2.1: `ext-value = charset "'" [ language ] "'" value-chars`. */
const EXT_VALUE =
  /^([A-Za-z0-9!#$%&+^_`{}~-]+)'([A-Za-z0-9-]*)'((?:%[0-9A-Fa-f]{2}|[A-Za-z0-9!#$&+.^_`|~-])*)$/;
/** C0 and C1 controls, DEL, and the bidirectional overrides that make `exe.pdf` look like `fdp.exe`. */
const CONTROL = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

function malformed(why: string): FhirError {
  return new FhirError(400, "value", `Content-Disposition is malformed (RFC 6266): ${why}`);
}

/**
 * The parameters of a `Content-Disposition` value by lower-case name, after its disposition type (any
 * token: `inline`, `attachment`, `form-data`...). RFC 6266 section 4.1: "Content-Disposition header field
 * values with multiple instances of the same parameter name are invalid."
 */
function parseParameters(header: string): Map<string, { value: string; quoted: boolean }> {
  let rest = header.replace(/^[ \t]+/, "");
  const type = TOKEN.exec(rest)?.[0];
  if (type === undefined) throw malformed("it does not start with a disposition type such as attachment");
  rest = rest.slice(type.length);
  const params = new Map<string, { value: string; quoted: boolean }>();
  for (;;) {
    rest = rest.replace(/^[ \t]+/, "");
    if (rest === "") return params;
    if (!rest.startsWith(";")) throw malformed(`unexpected ${JSON.stringify(rest.slice(0, 20))}`);
    rest = rest.slice(1).replace(/^[ \t]+/, "");
    // A trailing `;` carries nothing: tolerated, as user agents do.
    if (rest === "") return params;
    const name = TOKEN.exec(rest)?.[0];
    if (name === undefined) throw malformed("a parameter has no name");
    rest = rest.slice(name.length).replace(/^[ \t]+/, "");
    if (!rest.startsWith("=")) throw malformed(`the parameter ${name} has no value`);
    rest = rest.slice(1).replace(/^[ \t]+/, "");
    const quoted = QUOTED.exec(rest);
    const token = quoted ? undefined : TOKEN.exec(rest)?.[0];
    if (!quoted && token === undefined) throw malformed(`the parameter ${name} has no valid value`);
    const key = name.toLowerCase();
    if (params.has(key)) throw malformed(`the parameter ${key} appears more than once`);
    params.set(key, {
      value: quoted ? (quoted[1] ?? "").replace(/\\([\s\S])/g, "$1") : (token ?? ""),
      quoted: quoted !== null,
    });
    rest = rest.slice(quoted ? quoted[0].length : (token ?? "").length);
  }
}

/** Decodes an RFC 8187 ext-value: UTF-8 (which recipients must support) or ISO-8859-1. */
function decodeExtValue(text: string): string {
  const match = EXT_VALUE.exec(text);
  if (!match) throw malformed("filename* is not an RFC 8187 ext-value such as UTF-8''letter%20A.pdf");
  const charset = (match[1] ?? "").toLowerCase();
  if (charset !== "utf-8" && charset !== "iso-8859-1")
    throw malformed(`filename* is in ${match[1]}: only UTF-8 and ISO-8859-1 are supported`);
  const encoded = match[3] ?? "";
  const bytes = Buffer.from(
    encoded.replace(/%([0-9A-Fa-f]{2})|[\s\S]/g, (char, hex: string | undefined) =>
      hex === undefined ? char : String.fromCharCode(Number.parseInt(hex, 16)),
    ),
    "latin1",
  );
  if (charset === "iso-8859-1") return bytes.toString("latin1");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw malformed("filename* is not valid UTF-8 once percent-decoded");
  }
}

/**
 * A plain `filename` as the header's bytes give it. RFC 6266 leaves non-ASCII there undefined; clients
 * (curl with a typed name) send UTF-8, which Bun hands over byte by byte: decoded as UTF-8 when it is.
 */
function decodePlain(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range itself
  if (/^[\x00-\x7f]*$/.test(value)) return value;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(value, "latin1"));
  } catch {
    return value;
  }
}

/** The first thing wrong with a file name (one without a path), or null when it may be kept. */
export function fileNameProblem(name: string): string | null {
  if (name === "") return "is empty";
  if (/[/\\]/.test(name)) return "has a path";
  if (name === "." || name === "..") return "is not a file name";
  if (CONTROL.test(name)) return "has control characters";
  if (!name.isWellFormed()) return "is not valid Unicode";
  const bytes = Buffer.byteLength(name);
  if (bytes > MAX_FILE_NAME_BYTES)
    return `is ${bytes} bytes long in UTF-8: at most ${MAX_FILE_NAME_BYTES} are kept`;
  return null;
}

/**
 * The file name a client gave: anything up to its last `/` or `\` left out (a browser may send a whole
 * path); 400 when what is left is not a usable name (control characters anywhere are refused, so a name can
 * never break a header line).
 */
export function toFileName(given: string): string {
  const problem = CONTROL.test(given) ? "has control characters" : null;
  const name = given.slice(Math.max(given.lastIndexOf("/"), given.lastIndexOf("\\")) + 1);
  const why = problem ?? fileNameProblem(name);
  if (why !== null) throw new FhirError(400, "value", `The file name in Content-Disposition ${why}`);
  return name;
}

/**
 * The file name of a write request's `Content-Disposition`, or null when the header names none. RFC 6266
 * section 4.3: "when both "filename" and "filename*" are present in a single header field value,
 * recipients SHOULD pick "filename*" and ignore "filename"". Throws 400 for a malformed header or name.
 */
export function parseContentDisposition(header: string): string | null {
  const params = parseParameters(header);
  const extended = params.get("filename*");
  if (extended) {
    if (extended.quoted) throw malformed("filename* takes an RFC 8187 ext-value, not a quoted string");
    return toFileName(decodeExtValue(extended.value));
  }
  const plain = params.get("filename");
  return plain === undefined ? null : toFileName(decodePlain(plain.value));
}

/** RFC 8187 section 3.2.1 `attr-char`: what a `filename*` value keeps as is; the rest is percent-encoded. */
function encodeExtValue(name: string): string {
  return encodeURIComponent(name.toWellFormed()).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * A `Content-Disposition` value naming `fileName`, as RFC 6266 appendix D advises: a `filename` in plain
 * printable ASCII first (accents dropped, anything else, and `"`, `\` and `%`, as `_`), for user agents
 * that do not read `filename*`, then the name itself as `filename*` in UTF-8. Nothing of the name can end
 * the quoted string or the header line.
 */
export function formatContentDisposition(type: "inline" | "attachment", fileName: string): string {
  const fallback = fileName
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[^\x20-\x7e]|["\\%]/g, "_");
  return `${type}; filename="${fallback}"; filename*=UTF-8''${encodeExtValue(fileName)}`;
}
