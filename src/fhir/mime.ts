/** A parsed media type: lower-cased essence (`type/subtype`) and parameters with lower-cased names. */
export interface MediaType {
  essence: string;
  params: ReadonlyMap<string, string>;
}

// RFC 6838 section 4.2 restricted-name, for type and subtype.
const RESTRICTED_NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
// RFC 9110 section 5.6.2 token and 5.6.4 quoted-string (ASCII only: non-ASCII is refused outright).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~]|\\\\[\\t -~])*"';
const MEDIA_TYPE = new RegExp(
  `^(${RESTRICTED_NAME}/${RESTRICTED_NAME})((?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*)[ \\t]*$`,
);
const PARAMETER = new RegExp(`;[ \\t]*(${TOKEN})=(${TOKEN}|${QUOTED})`, "g");

/** Parses a media type by the RFC 6838 / RFC 9110 grammar; null when it does not conform. */
export function parseMediaType(value: string): MediaType | null {
  // Only spaces and tabs are optional white space (RFC 9110 section 5.6.3); CR, LF, NBSP or a BOM are refused.
  const match = MEDIA_TYPE.exec(value.replace(/^[ \t]+|[ \t]+$/g, ""));
  if (!match?.[1]) return null;
  const params = new Map<string, string>();
  for (const [, name = "", raw = ""] of (match[2] ?? "").matchAll(PARAMETER)) {
    params.set(name.toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw);
  }
  return { essence: match[1].toLowerCase(), params };
}

/**
 * A media type as the FHIR `code` Binary.contentType is: "no leading or trailing whitespace and ... no
 * whitespace other than single spaces in the contents" (HL7's XSD). The meaning is kept: optional white space
 * (RFC 9110 section 5.6.3, around `;`) becomes one space, and in a quoted string each white space character
 * after the first of a run is escaped (RFC 9110 section 5.6.4: a quoted-pair `\ ` stands for the space).
 */
export function toFhirCode(mediaType: string): string {
  return mediaType
    .trim()
    .replace(/"(?:[^"\\]|\\.)*"|[ \t]+/g, (part) =>
      part.startsWith('"')
        ? part.replace(
            /([ \t])([ \t]+)/g,
            (_, first: string, rest: string) => first + rest.replace(/[ \t]/g, "\\$&"),
          )
        : " ",
    );
}

/** The four FHIR MIME types: STU3+ and the legacy DSTU2 forms. */
const FHIR_JSON = new Set(["application/fhir+json", "application/json+fhir"]);
const FHIR_XML = new Set(["application/fhir+xml", "application/xml+fhir"]);

/** `json` or `xml` when the essence is a FHIR MIME type, else null. */
export function fhirSyntaxOf(essence: string): "json" | "xml" | null {
  if (FHIR_JSON.has(essence)) return "json";
  if (FHIR_XML.has(essence)) return "xml";
  return null;
}

/** True for the legacy DSTU2 FHIR MIME types. */
export function isLegacyFhirMime(essence: string): boolean {
  return essence === "application/json+fhir" || essence === "application/xml+fhir";
}

// Types a browser renders without running script; everything else (HTML, SVG, XML, JavaScript,
// unknown types) could script the server's origin and is sent as an attachment in a sandbox.
const PASSIVE = new Set([
  "application/pdf",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "text/plain",
]);

/** True when a stored type may be shown inline: it cannot carry script. */
export function isPassiveType(essence: string): boolean {
  return PASSIVE.has(essence) || essence.startsWith("audio/") || essence.startsWith("video/");
}

const EXTENSIONS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/svg+xml": "svg",
    "text/plain": "txt",
    "text/html": "html",
    "application/xhtml+xml": "xhtml",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/json": "json",
    "application/fhir+json": "json",
    "application/fhir+xml": "xml",
    "application/dicom": "dcm",
    "application/zip": "zip",
  }),
);

/** A file extension for a stored type (used in Content-Disposition file names), or `bin`. */
export function extensionFor(essence: string): string {
  return EXTENSIONS.get(essence) ?? "bin";
}
