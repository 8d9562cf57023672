/**
 * Content negotiation for Binary (fhir-binary-rules.md section 2): `_format` beats `Accept`; FHIR only when
 * asked for; native otherwise. Pure functions over header and parameter strings.
 */
import { FhirError } from "./errors.ts";
import { fhirSyntaxOf, isLegacyFhirMime, parseMediaType } from "./mime.ts";
import { FHIR_VERSIONS, type FhirVersion, parseFhirVersionParameter } from "./version.ts";

export type Syntax = "json" | "xml";

/** A FHIR representation: syntax, the MIME type to answer with, and the release whose names are used. */
export interface FhirFormat {
  syntax: Syntax;
  mime: string;
  version: FhirVersion;
}

export type Representation = { kind: "native" } | ({ kind: "fhir" } & FhirFormat);

// R4 http.html#mime-type: "_format=json, xml" and the MIME types; text/json, text/xml and application/json
// appear in the wild (CC seed) and are accepted as well.
const FORMAT_ALIASES: Readonly<Record<string, Syntax>> = {
  json: "json",
  "application/json": "json",
  "text/json": "json",
  "application/fhir+json": "json",
  "application/json+fhir": "json",
  xml: "xml",
  "application/xml": "xml",
  "text/xml": "xml",
  "application/fhir+xml": "xml",
  "application/xml+fhir": "xml",
};

/** Builds the FHIR format for a requested MIME essence and its fhirVersion parameter. */
function fhirFormat(
  syntax: Syntax,
  essence: string,
  versionParam: string | undefined,
  fallback: FhirVersion,
): FhirFormat {
  let version = fallback;
  if (versionParam !== undefined) {
    const requested = parseFhirVersionParameter(versionParam);
    if (!requested) throw new FhirError(406, "not-supported", `fhirVersion ${versionParam} is not supported`);
    version = requested;
  } else if (isLegacyFhirMime(essence)) {
    // A DSTU2 MIME type asks for DSTU2 names: the caller is a DSTU2 client.
    version = FHIR_VERSIONS.DSTU2;
  }
  // "A legacy DSTU2 MIME type in the request gets the same type back"; a modern FHIR type likewise.
  const mime = fhirSyntaxOf(essence) ? essence : syntax === "json" ? version.json : version.xml;
  return { syntax, mime, version };
}

/** Interprets a `_format` value; throws 406 for anything that is not JSON or XML. */
export function parseFormatParameter(value: string, fallback: FhirVersion): FhirFormat {
  // A `+` sent unescaped in a query string arrives as a space: `application/fhir json`.
  const [type = "", ...rest] = value.split(";");
  const normalised = [type.trim().replace(/ /g, "+"), ...rest].join(";");
  const media = normalised.includes("/") ? parseMediaType(normalised) : null;
  const essence = media ? media.essence : normalised.toLowerCase();
  const syntax = FORMAT_ALIASES[essence];
  if (!syntax) throw new FhirError(406, "not-supported", `_format ${JSON.stringify(value)} is not supported`);
  return fhirFormat(syntax, essence, media?.params.get("fhirversion"), fallback);
}

interface AcceptEntry {
  essence: string;
  params: ReadonlyMap<string, string>;
  q: number;
}

/** Parses an Accept header into its entries; malformed entries are skipped, as RFC 9110 lets a server do. */
export function parseAccept(header: string): AcceptEntry[] {
  const entries: AcceptEntry[] = [];
  for (const part of header.split(",")) {
    // Media ranges may use wildcards (`*/*`, `image/*`), which the media type grammar does not allow.
    const media = parseMediaType(
      part.replace(/^\s*\*\/\*/, "any/any").replace(/^\s*([^/\s]+)\/\*/, "$1/any"),
    );
    if (!media) continue;
    const q = media.params.has("q") ? Number(media.params.get("q")) : 1;
    if (!Number.isFinite(q) || q < 0 || q > 1) continue;
    entries.push({ essence: media.essence, params: media.params, q });
  }
  return entries;
}

/** The FHIR entry of an Accept header when one is among the most preferred, else null. */
function preferredFhirEntry(accept: string): AcceptEntry | null {
  const entries = parseAccept(accept).filter((entry) => entry.q > 0);
  const top = Math.max(...entries.map((entry) => entry.q));
  // "the most preferred entry (highest q; a tie goes to FHIR)"
  return entries.find((entry) => entry.q === top && fhirSyntaxOf(entry.essence)) ?? null;
}

/**
 * Decides how a Binary read is represented. FHIR only when `_format` says so or the most preferred Accept
 * entry is a FHIR MIME type; everything else, including no Accept at all, is native (CC Query 1, MUST).
 */
export function negotiateBinary(
  format: string | null,
  accept: string | null,
  fallback: FhirVersion,
): Representation {
  if (format !== null) return { kind: "fhir", ...parseFormatParameter(format, fallback) };
  // Every FHIR MIME type contains "fhir": an Accept without it cannot ask for FHIR, and needs no parsing.
  const entry = accept && /fhir/i.test(accept) ? preferredFhirEntry(accept) : null;
  if (!entry) return { kind: "native" };
  const syntax = fhirSyntaxOf(entry.essence) ?? "json";
  return { kind: "fhir", ...fhirFormat(syntax, entry.essence, entry.params.get("fhirversion"), fallback) };
}

/**
 * The FHIR format for a response that is always a resource (metadata, Bundles, OperationOutcomes, write
 * results): `_format`, else a FHIR or generic JSON/XML Accept entry, else the request body's FHIR syntax,
 * else JSON.
 */
export function negotiateResource(
  format: string | null,
  accept: string | null,
  bodyType: string | null,
  fallback: FhirVersion,
): FhirFormat {
  if (format !== null) return parseFormatParameter(format, fallback);
  const entries = accept ? parseAccept(accept).filter((entry) => entry.q > 0) : [];
  entries.sort((a, b) => b.q - a.q);
  for (const entry of entries) {
    const syntax = FORMAT_ALIASES[entry.essence];
    if (syntax) return fhirFormat(syntax, entry.essence, entry.params.get("fhirversion"), fallback);
  }
  const body = bodyType ? parseMediaType(bodyType) : null;
  const bodySyntax = body ? fhirSyntaxOf(body.essence) : null;
  if (body && bodySyntax)
    return fhirFormat(bodySyntax, body.essence, body.params.get("fhirversion"), fallback);
  return fhirFormat("json", "json", undefined, fallback);
}
