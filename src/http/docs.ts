/**
 * `/docs` (the API reference UI) and `/docs/json` (OpenAPI 3) at the server root, served without a token and
 * without any network: the UI's script is embedded in the executable and served from `/docs/assets/`.
 * The OpenAPI document is written here, beside the routes rather than inside them, and passed to the
 * @elysiajs/swagger plugin as its `documentation`: its paths replace the ones the plugin derives.
 */
import { swagger } from "@elysiajs/swagger";
// The standalone browser bundle of the Scalar API reference; `type: "text"` embeds it in the executable.
import scalarScript from "@scalar/api-reference/browser/standalone.js" with { type: "text" };
import { Elysia } from "elysia";
import type { OpenAPIV3 } from "openapi-types";
import pkg from "../../package.json" with { type: "json" };
import type { Config } from "../config.ts";
import { FILE_NAME_EXTENSION } from "../fhir/binary.ts";

/** Where the docs live at the server root. */
export const DOCS_PATH = "/docs";
export const DOCS_SPEC_PATH = "/docs/json";
/** The local copy of the UI's script (the plugin loads it from a CDN by default). */
export const DOCS_SCRIPT_PATH = "/docs/assets/scalar-api-reference.js";

type Operation = OpenAPIV3.OperationObject;
type Parameter = OpenAPIV3.ParameterObject;
type Responses = OpenAPIV3.ResponsesObject;

const ref = (name: string): OpenAPIV3.ReferenceObject => ({ $ref: `#/components/parameters/${name}` });
const response = (name: string): OpenAPIV3.ReferenceObject => ({ $ref: `#/components/responses/${name}` });
const schema = (name: string): OpenAPIV3.ReferenceObject => ({ $ref: `#/components/schemas/${name}` });
const header = (name: string): OpenAPIV3.ReferenceObject => ({ $ref: `#/components/headers/${name}` });

const FHIR_JSON = "application/fhir+json";
const FHIR_XML = "application/fhir+xml";

/** A FHIR resource in JSON or XML. */
function fhirContent(name: string): OpenAPIV3.ResponseObject["content"] {
  return {
    [FHIR_JSON]: { schema: schema(name) },
    [FHIR_XML]: { schema: { type: "string", description: `The ${name} in FHIR XML` } },
  };
}

/** The headers of every answer that names a version. */
const VERSION_HEADERS = {
  ETag: header("ETag"),
  "Last-Modified": header("Last-Modified"),
  "Content-Location": header("Content-Location"),
  "X-Request-ID": header("X-Request-ID"),
};

/** The error answers of any Binary interaction. */
const COMMON_ERRORS: Responses = {
  "400": response("BadRequest"),
  "401": response("Unauthorized"),
  "403": response("Forbidden"),
  "406": response("NotAcceptable"),
  "500": response("ServerError"),
};

const READ_PARAMETERS = [
  ref("format"),
  ref("summary"),
  ref("pretty"),
  ref("Range"),
  ref("If-Range"),
  ref("If-None-Match"),
  ref("If-Modified-Since"),
  ref("X-Request-ID"),
];

function readOperation(kind: "read" | "vread", method: "GET" | "HEAD"): Operation {
  const vread = kind === "vread";
  const head = method === "HEAD";
  return {
    tags: ["Binary"],
    operationId: `${kind}${head ? "Head" : ""}`,
    summary: head
      ? `${vread ? "Vread" : "Read"} headers only (HEAD): the exact length, no body`
      : vread
        ? "Vread: one version of a Binary"
        : "Read a Binary: native bytes by default, FHIR JSON or XML when asked for",
    description: [
      vread
        ? "Reads version `vid` of the Binary. The deletion version answers 410 Gone."
        : "Reads the current version. 404 when the id is unknown, 410 Gone when it was deleted.",
      "",
      "**Content negotiation.** Without `_format` and with no FHIR type preferred in `Accept`, the stored bytes " +
        "come back with the stored `Content-Type` (*native*). `_format=json|xml` or an `Accept` whose most " +
        "preferred entry is a FHIR MIME type (`application/fhir+json`, `application/fhir+xml`, `application/json+fhir`, " +
        "...) answer the Binary resource, whose `content` (`data` in R4) is the base64 payload. " +
        "`_format` beats `Accept`; a `; fhirVersion=1.0|3.0|4.0` parameter picks the release's names.",
      "",
      "**Native answers** carry `ETag`, `Last-Modified`, `Content-Location`, `Accept-Ranges: bytes`, " +
        "`X-Security-Context` when set and `X-Content-Type-Options: nosniff`. Types that can carry script " +
        "(HTML, SVG, XML, JavaScript, unknown) are sent as attachments with `Content-Security-Policy: sandbox`. " +
        "`Content-Disposition` names the document's original file name when it was given one (`filename` " +
        "and `filename*`), else `{id}.{ext}`.",
      "",
      "One byte `Range` per request answers 206; `If-Range` keeps it only while the version still matches. " +
        "`If-None-Match` / `If-Modified-Since` answer 304.",
    ].join("\n"),
    parameters: [ref("id"), ...(vread ? [ref("vid")] : []), ...READ_PARAMETERS],
    responses: {
      "200": {
        description: head
          ? "The headers the GET would answer, with the exact Content-Length"
          : "The document (native) or the Binary resource (FHIR)",
        headers: {
          ...VERSION_HEADERS,
          "Content-Type": header("Content-Type"),
          "Content-Length": header("Content-Length"),
          "Accept-Ranges": header("Accept-Ranges"),
          "X-Security-Context": header("X-Security-Context"),
          "X-Content-Type-Options": header("X-Content-Type-Options"),
          "Content-Disposition": header("Content-Disposition"),
        },
        ...(head
          ? {}
          : {
              content: {
                "*/*": {
                  schema: { type: "string", format: "binary", description: "The stored bytes (native read)" },
                },
                ...fhirContent("Binary"),
              },
            }),
      },
      "206": {
        description: "One byte range of the native document",
        headers: { ...VERSION_HEADERS, "Content-Range": header("Content-Range") },
        ...(head ? {} : { content: { "*/*": { schema: { type: "string", format: "binary" } } } }),
      },
      "304": {
        description: "Not modified: the `If-None-Match` / `If-Modified-Since` condition hit",
        headers: VERSION_HEADERS,
      },
      ...COMMON_ERRORS,
      "404": response("NotFound"),
      "410": response("Gone"),
      "416": response("RangeNotSatisfiable"),
    },
  };
}

const WRITE_BODY: OpenAPIV3.RequestBodyObject = {
  required: true,
  description:
    "Either the raw document with its own `Content-Type` (a PDF as `application/pdf`, ...), optionally " +
    "`Content-Encoding: gzip|deflate`, or a FHIR Binary resource as `application/fhir+json` / " +
    "`application/fhir+xml` (streamed: the base64 payload may be as large as the size limit).",
  content: {
    "application/octet-stream": {
      schema: { type: "string", format: "binary", description: "Any content type: the stored bytes" },
    },
    [FHIR_JSON]: { schema: schema("Binary") },
    [FHIR_XML]: { schema: { type: "string", description: "A Binary resource in FHIR XML" } },
  },
};

const WRITE_PARAMETERS = [
  ref("X-Security-Context"),
  ref("Content-Disposition"),
  ref("Content-Encoding"),
  ref("Prefer"),
  ref("formatWrite"),
  ref("pretty"),
  ref("X-Request-ID"),
];

function writeResponses(created: boolean, updated: boolean): Responses {
  const written = (description: string): OpenAPIV3.ResponseObject => ({
    description,
    headers: { ...VERSION_HEADERS, ...(created ? { Location: header("Location") } : {}) },
    content: {
      ...fhirContent("Binary"),
      "application/fhir+json; OperationOutcome": { schema: schema("OperationOutcome") },
    },
  });
  return {
    ...(updated
      ? { "200": written("Updated: a new version (the summary form unless `Prefer` says otherwise)") }
      : {}),
    ...(created
      ? { "201": written("Created: version 1 (the summary form unless `Prefer` says otherwise)") }
      : {}),
    ...COMMON_ERRORS,
    "412": response("PreconditionFailed"),
    "413": response("TooLarge"),
    "415": response("UnsupportedMediaType"),
    "503": response("Unavailable"),
    "507": response("InsufficientStorage"),
  };
}

function notAllowed(allow: string, withId = false): Operation {
  return {
    tags: ["Not allowed"],
    summary: `Not allowed: 405 with \`Allow: ${allow}\``,
    ...(withId ? { parameters: [ref("id")] } : {}),
    responses: {
      "401": response("Unauthorized"),
      "405": {
        description: "Method not allowed here, with an OperationOutcome",
        headers: { Allow: header("Allow") },
        content: fhirContent("OperationOutcome"),
      },
    },
  };
}

/** The search and paging parameters of `GET [base]/Binary` (and the form of `POST _search`). */
const SEARCH_PARAMETERS: Parameter[] = [
  {
    name: "_id",
    in: "query",
    description: "Comma-separated ids: only these Binaries",
    schema: { type: "string" },
  },
  {
    name: "contenttype",
    in: "query",
    description:
      "Comma-separated MIME types (`application/pdf,image/png`), optionally `urn:ietf:bcp:13|type`. A type " +
      "without parameters matches any parameters.",
    schema: { type: "string" },
    example: "application/pdf",
  },
  {
    name: "filename",
    in: "query",
    description:
      "Text the document's original file name contains, ignoring case and accents; comma-separated " +
      "alternatives (`\\,` for a comma of the name). `filename:exact` matches the whole name exactly.",
    schema: { type: "string" },
    example: "letter",
  },
  {
    name: "_lastUpdated",
    in: "query",
    description: "An instant or date with a prefix (`eq`, `gt`, `ge`, `lt`, `le`); repeat it for a range",
    schema: { type: "string" },
    example: "ge2026-01-01",
  },
  {
    name: "_sort",
    in: "query",
    description: "`_lastUpdated`, `-_lastUpdated` (newest first), `_id` or `-_id`",
    schema: { type: "string", enum: ["_lastUpdated", "-_lastUpdated", "_id", "-_id"] },
  },
  {
    name: "_count",
    in: "query",
    description: "Entries per page (default 20, at most 1000); `0` answers only the total",
    schema: { type: "integer", minimum: 0, maximum: 1000 },
  },
  {
    name: "_summary",
    in: "query",
    description: "`count`: only the total. Entries are always in the summary form (no payload).",
    schema: { type: "string", enum: ["count", "true", "text", "data", "false"] },
  },
  {
    name: "_elements",
    in: "query",
    description: "Comma-separated elements the entries keep besides id and meta (e.g. `contentType`)",
    schema: { type: "string" },
  },
  {
    name: "_cursor",
    in: "query",
    description: "Opaque paging cursor, taken from the Bundle's `next` / `previous` link",
    schema: { type: "string" },
  },
];

/** The paging parameters of both histories, `GET [base]/Binary/_history` and `.../Binary/{id}/_history`. */
const HISTORY_PAGING: Parameter[] = [
  {
    name: "_since",
    in: "query",
    description: "Only versions at or after this instant",
    schema: { type: "string", format: "date-time" },
  },
  {
    name: "_count",
    in: "query",
    description: "Entries per page (default 20, at most 1000)",
    schema: { type: "integer", minimum: 0, maximum: 1000 },
  },
  {
    name: "_cursor",
    in: "query",
    description: "Opaque paging cursor from a `next` link",
    schema: { type: "string" },
  },
];

/** Builds the OpenAPI document of fhirbin for one configuration (its base path and auth). */
export function toApiDocumentation(config: Config): Partial<OpenAPIV3.Document> {
  const base = config.basePath;
  const smart = config.jwt !== null && config.auth;
  const get = (name: string, operation: Operation): Operation => ({ operationId: name, ...operation });
  const paths: OpenAPIV3.PathsObject = {
    [`${base}/metadata`]: {
      get: get("capabilities", {
        tags: ["Capabilities"],
        summary: "The CapabilityStatement (no token needed)",
        security: [],
        parameters: [ref("formatResource"), ref("pretty")],
        responses: {
          "200": { description: "The CapabilityStatement", content: fhirContent("CapabilityStatement") },
          "406": response("NotAcceptable"),
        },
      }),
      head: get("capabilitiesHead", {
        tags: ["Capabilities"],
        summary: "The CapabilityStatement's headers (HEAD)",
        security: [],
        parameters: [ref("formatResource")],
        responses: { "200": { description: "The headers the GET would answer" } },
      }),
    },
    [`${base}/Binary`]: {
      get: get("search", {
        tags: ["Search and history"],
        summary: "Search Binaries: a searchset Bundle, paged",
        description:
          "Entries are Binary resources in the summary form (never the payload). Unknown parameters are ignored " +
          "unless `Prefer: handling=strict`. Follow the Bundle's `next` link for the next page.",
        parameters: [...SEARCH_PARAMETERS, ref("formatResource"), ref("pretty"), ref("PreferHandling")],
        responses: {
          "200": { description: "A searchset Bundle", content: fhirContent("Bundle") },
          ...COMMON_ERRORS,
        },
      }),
      post: get("create", {
        tags: ["Binary"],
        summary: "Create a Binary with a server-assigned id",
        description: "Answers 201 with `Location: [base]/Binary/{id}/_history/1`.",
        parameters: WRITE_PARAMETERS,
        requestBody: WRITE_BODY,
        responses: writeResponses(true, false),
      }),
      put: get("typePutNotAllowed", notAllowed("POST")),
      patch: get("typePatchNotAllowed", notAllowed("POST")),
      delete: get("typeDeleteNotAllowed", notAllowed("POST")),
    },
    [`${base}/Binary/_search`]: {
      post: get("searchPost", {
        tags: ["Search and history"],
        summary: "Search Binaries with the parameters in a form body",
        description: "The same parameters as `GET [base]/Binary`, in the URL, the body or both.",
        parameters: [ref("formatResource"), ref("pretty"), ref("PreferHandling")],
        requestBody: {
          required: false,
          content: {
            "application/x-www-form-urlencoded": {
              schema: {
                type: "object",
                properties: Object.fromEntries(
                  SEARCH_PARAMETERS.map((p) => [
                    p.name,
                    { ...(p.schema as object), description: p.description },
                  ]),
                ),
              },
            },
          },
        },
        responses: {
          "200": { description: "A searchset Bundle", content: fhirContent("Bundle") },
          ...COMMON_ERRORS,
          "413": response("TooLarge"),
          "415": response("UnsupportedMediaType"),
        },
      }),
    },
    [`${base}/Binary/_history`]: {
      get: get("historyType", {
        tags: ["Search and history"],
        summary: "History of every Binary: a history Bundle, newest first",
        parameters: [...HISTORY_PAGING, ref("formatResource"), ref("pretty")],
        responses: {
          "200": { description: "A history Bundle", content: fhirContent("Bundle") },
          ...COMMON_ERRORS,
        },
      }),
    },
    [`${base}/Binary/{id}`]: {
      get: readOperation("read", "GET"),
      head: readOperation("read", "HEAD"),
      put: get("update", {
        tags: ["Binary"],
        summary: "Update a Binary, or create it with this id",
        description:
          'Writes a new version (200), or version 1 when the id is new (201). `If-Match: W/"n"` makes it ' +
          "safe against lost updates (412 when another version is current); `If-None-Match: *` only creates.",
        parameters: [ref("id"), ref("If-Match"), ref("If-None-Match-Write"), ...WRITE_PARAMETERS],
        requestBody: WRITE_BODY,
        responses: writeResponses(true, true),
      }),
      delete: get("delete", {
        tags: ["Binary"],
        summary: "Delete a Binary (a tombstone version; old versions stay readable)",
        description: "Idempotent. Reads then answer 410 Gone; vread of the older versions still works.",
        parameters: [ref("id"), ref("If-Match"), ref("X-Request-ID")],
        responses: {
          "204": { description: "Deleted", headers: { ETag: header("ETag") } },
          ...COMMON_ERRORS,
          "404": response("NotFound"),
          "412": response("PreconditionFailed"),
          "503": response("Unavailable"),
        },
      }),
      post: get("instancePostNotAllowed", notAllowed("GET, HEAD, PUT, DELETE", true)),
      patch: get("instancePatchNotAllowed", notAllowed("GET, HEAD, PUT, DELETE", true)),
    },
    [`${base}/Binary/{id}/_history`]: {
      get: get("history", {
        tags: ["Search and history"],
        summary: "History of one Binary: a history Bundle, newest first",
        description:
          "Paged like the type history. Entries are in the summary form, with the interaction that made each " +
          "version (`POST`, `PUT`); deletions are `DELETE` entries. 404 when the id is unknown.",
        parameters: [ref("id"), ...HISTORY_PAGING, ref("formatResource"), ref("pretty"), ref("X-Request-ID")],
        responses: {
          "200": { description: "A history Bundle", content: fhirContent("Bundle") },
          ...COMMON_ERRORS,
          "404": response("NotFound"),
        },
      }),
    },
    [`${base}/Binary/{id}/_history/{vid}`]: {
      get: readOperation("vread", "GET"),
      head: readOperation("vread", "HEAD"),
    },
    [`${base}/Binary/{id}/$expunge`]: {
      post: get("expunge", {
        tags: ["Binary"],
        summary: "Remove versions for good (a misfiled document, retention), as HAPI FHIR's $expunge",
        description:
          "A Parameters body with `expungePreviousVersions` (every version but the current one) or " +
          "`expungeDeletedResources` (every version of a deleted Binary; the id then reads 404 and starts " +
          "again at version 1) as `valueBoolean`. Content no remaining version references is erased. Only " +
          "the static token or a `system/` token that may delete Binaries (`system/Binary.d`); 409 when " +
          "`expungeDeletedResources` names a Binary that is not deleted.",
        parameters: [ref("id"), ref("formatResource"), ref("X-Request-ID")],
        requestBody: {
          required: true,
          content: {
            "application/fhir+json": {
              schema: schema("Parameters"),
              example: {
                resourceType: "Parameters",
                parameter: [{ name: "expungePreviousVersions", valueBoolean: true }],
              },
            },
            "application/fhir+xml": { schema: schema("Parameters") },
          },
        },
        responses: {
          "200": { description: "`count`: the versions removed", content: fhirContent("Parameters") },
          ...COMMON_ERRORS,
          "404": response("NotFound"),
          "409": response("Conflict"),
          "413": response("TooLarge"),
          "415": response("UnsupportedMediaType"),
          "503": response("Unavailable"),
        },
      }),
    },
    ...(smart
      ? {
          [`${base}/.well-known/smart-configuration`]: {
            get: get("smartConfiguration", {
              tags: ["Capabilities"],
              summary: "SMART configuration: the supported scopes (no token needed)",
              security: [],
              responses: {
                "200": {
                  description: "SMART App Launch configuration",
                  content: { "application/json": { schema: { type: "object" } } },
                },
              },
            }),
          },
        }
      : {}),
    "/healthz": {
      get: get("healthz", {
        tags: ["Operations"],
        summary: "Liveness: 200 while the process serves requests",
        security: [],
        responses: { "200": jsonAnswer("Alive", { status: { type: "string", enum: ["ok"] } }) },
      }),
      head: get("healthzHead", {
        tags: ["Operations"],
        summary: "Liveness (HEAD)",
        security: [],
        responses: { "200": { description: "Alive" } },
      }),
    },
    "/readyz": {
      get: get("readyz", {
        tags: ["Operations"],
        summary: "Readiness: 200 when the store is writable and every other check passes, else 503",
        security: [],
        responses: {
          "200": jsonAnswer("Ready", READY_PROPERTIES),
          "503": jsonAnswer("Not ready: the failing checks are `false`", READY_PROPERTIES),
        },
      }),
      head: get("readyzHead", {
        tags: ["Operations"],
        summary: "Readiness (HEAD)",
        security: [],
        responses: { "200": { description: "Ready" }, "503": { description: "Not ready" } },
      }),
    },
    "/metrics": {
      get: get("metrics", {
        tags: ["Operations"],
        summary: "Prometheus metrics (text format 0.0.4)",
        security: [],
        responses: {
          "200": {
            description: "Counters and histograms: requests, latency, bytes, documents",
            content: { "text/plain; version=0.0.4": { schema: { type: "string" } } },
          },
        },
      }),
    },
  };
  return {
    info: {
      title: "fhirbin FHIR Binary API",
      version: pkg.version,
      description: [
        // The UI has no navigation of its own: this link is the way back to the demo app at the root.
        "[← Back to the fhirbin documents app](/)",
        "",
        "Clinical documents through the FHIR `Binary` REST API. Every path below the FHIR base " +
          `(\`${base || "/"}\`) needs \`Authorization: Bearer <token>\` except \`metadata\`` +
          (smart ? " and `.well-known/smart-configuration`" : "") +
          "; the operations endpoints at the server root need none.",
        "",
        "Every error is an `OperationOutcome` in the negotiated FHIR format (JSON when the request was native). " +
          "Every answer carries `X-Request-ID` (the client's, or a new UUID).",
      ].join("\n"),
    },
    tags: [
      { name: "Binary", description: "Read, vread, create, update and delete documents" },
      { name: "Search and history", description: "Searchset and history Bundles" },
      { name: "Capabilities", description: "What the server supports" },
      { name: "Operations", description: "Health, readiness and metrics at the server root, no token" },
      { name: "Not allowed", description: "Methods answered with 405" },
    ],
    security: [{ bearer: [] }],
    paths,
    components: COMPONENTS,
  };
}

const READY_PROPERTIES: Record<string, OpenAPIV3.SchemaObject> = {
  status: { type: "string", enum: ["ready", "not ready"] },
  checks: { type: "object", additionalProperties: { type: "boolean" } },
};

function jsonAnswer(description: string, properties: Record<string, OpenAPIV3.SchemaObject>) {
  return {
    description,
    content: { "application/json": { schema: { type: "object" as const, properties } } },
  };
}

function outcome(description: string, headers: Record<string, OpenAPIV3.ReferenceObject> = {}) {
  return { description, headers, content: fhirContent("OperationOutcome") };
}

const COMPONENTS: OpenAPIV3.ComponentsObject = {
  securitySchemes: {
    bearer: {
      type: "http",
      scheme: "bearer",
      description:
        "A static token, a token from the token file, or a JWT (see the README's Security section)",
    },
  },
  parameters: {
    id: {
      name: "id",
      in: "path",
      required: true,
      description: "The logical id: 1-64 characters of `A-Z a-z 0-9 - .`",
      schema: { type: "string", pattern: "^[A-Za-z0-9\\-.]{1,64}$" },
    },
    vid: {
      name: "vid",
      in: "path",
      required: true,
      description: "The version id (1, 2, ...)",
      schema: { type: "string", pattern: "^[0-9]+$" },
    },
    format: {
      name: "_format",
      in: "query",
      description:
        "`json`, `xml` or a FHIR MIME type: answer the Binary resource instead of the native bytes (beats `Accept`)",
      schema: { type: "string" },
      example: "json",
    },
    formatResource: {
      name: "_format",
      in: "query",
      description: "`json` or `xml` (or a FHIR MIME type); beats `Accept`. JSON by default.",
      schema: { type: "string" },
    },
    formatWrite: {
      name: "_format",
      in: "query",
      description: "The format of the answer's resource: `json` or `xml`",
      schema: { type: "string" },
    },
    summary: {
      name: "_summary",
      in: "query",
      description: "`true`: a FHIR read leaves the payload out (tagged SUBSETTED)",
      schema: { type: "string", enum: ["true", "false", "text", "data"] },
    },
    pretty: {
      name: "_pretty",
      in: "query",
      description: "`true` indents the FHIR answer",
      schema: { type: "boolean" },
    },
    Range: {
      name: "Range",
      in: "header",
      description: "One byte range of a native read: `bytes=0-99`, `bytes=100-`, `bytes=-100`",
      schema: { type: "string" },
    },
    "If-Range": {
      name: "If-Range",
      in: "header",
      description: "An ETag or the exact Last-Modified date: the range only while it still matches",
      schema: { type: "string" },
    },
    "If-None-Match": {
      name: "If-None-Match",
      in: "header",
      description: 'Conditional read: 304 when the current version matches (`W/"3"`)',
      schema: { type: "string" },
    },
    "If-None-Match-Write": {
      name: "If-None-Match",
      in: "header",
      description: "`*`: create only; 412 when the id already exists",
      schema: { type: "string", enum: ["*"] },
    },
    "If-Modified-Since": {
      name: "If-Modified-Since",
      in: "header",
      description: "Conditional read: 304 when not modified since (ignored with If-None-Match)",
      schema: { type: "string" },
    },
    "If-Match": {
      name: "If-Match",
      in: "header",
      description: 'Version-aware write: only when the current version is this one (`W/"2"`), else 412',
      schema: { type: "string" },
    },
    Prefer: {
      name: "Prefer",
      in: "header",
      description:
        "`return=minimal` (no body), `return=representation` (the whole resource with its payload) or " +
        "`return=OperationOutcome`; the summary form otherwise",
      schema: { type: "string" },
    },
    PreferHandling: {
      name: "Prefer",
      in: "header",
      description: "`handling=strict`: unknown parameters are a 400 instead of being ignored",
      schema: { type: "string" },
    },
    "X-Security-Context": {
      name: "X-Security-Context",
      in: "header",
      description: "Reference to the resource whose access rules apply, e.g. `Patient/9000000009`",
      schema: { type: "string" },
    },
    "Content-Disposition": {
      name: "Content-Disposition",
      in: "header",
      description:
        "The document's original file name (RFC 6266): `attachment; filename*=UTF-8''Referral%20letter.pdf` " +
        'or `filename="..."`; `filename*` wins. Any path is dropped; control characters, an empty name ' +
        "or more than 255 UTF-8 bytes are a 400. Shown in `Binary.meta.extension` " +
        `(\`${FILE_NAME_EXTENSION}\`).`,
      schema: { type: "string" },
    },
    "Content-Encoding": {
      name: "Content-Encoding",
      in: "header",
      description: "`gzip` or `deflate`: the body is decoded while it streams in (415 for others)",
      schema: { type: "string", enum: ["gzip", "deflate", "identity"] },
    },
    "X-Request-ID": {
      name: "X-Request-ID",
      in: "header",
      description: "1-128 characters of `A-Z a-z 0-9 . _ : @ + = / -`, echoed and logged; a UUID otherwise",
      schema: { type: "string" },
    },
  },
  headers: {
    ETag: { description: 'The version: `W/"3"`', schema: { type: "string" } },
    "Last-Modified": { description: "When the version was written (HTTP date)", schema: { type: "string" } },
    "Content-Location": {
      description: "The version's URL: `[base]/Binary/{id}/_history/{vid}`",
      schema: { type: "string" },
    },
    Location: {
      description: "The new version's URL: `[base]/Binary/{id}/_history/{vid}`",
      schema: { type: "string" },
    },
    "Content-Type": {
      description: "The stored type (native) or the FHIR MIME type",
      schema: { type: "string" },
    },
    "Content-Length": { description: "Exact length in bytes", schema: { type: "integer" } },
    "Content-Range": { description: "`bytes start-end/size`", schema: { type: "string" } },
    "Accept-Ranges": { description: "`bytes` on native reads", schema: { type: "string" } },
    "X-Security-Context": {
      description: "The Binary's securityContext, when set",
      schema: { type: "string" },
    },
    "X-Content-Type-Options": { description: "`nosniff`", schema: { type: "string" } },
    "Content-Disposition": {
      description:
        "`inline` (passive types) or `attachment`, with the original file name as `filename` (ASCII) and " +
        '`filename*` (UTF-8), else `filename="{id}.{ext}"`',
      schema: { type: "string" },
    },
    "X-Request-ID": { description: "The request id, as logged", schema: { type: "string" } },
    "WWW-Authenticate": {
      description:
        'Bearer realm="fhirbin" without a token; with error="invalid_token" for a refused one (or "insufficient_scope")',
      schema: { type: "string" },
    },
    Allow: { description: "The methods this path allows", schema: { type: "string" } },
  },
  responses: {
    BadRequest: outcome("Invalid input: an id, a parameter, a body or a header"),
    Unauthorized: outcome("Missing or invalid bearer token", {
      "WWW-Authenticate": header("WWW-Authenticate"),
    }),
    Forbidden: outcome("The token's scopes do not allow this interaction", {
      "WWW-Authenticate": header("WWW-Authenticate"),
    }),
    NotFound: outcome("No such Binary (or version)"),
    Gone: outcome("The Binary was deleted (or this is its deletion version)", { ETag: header("ETag") }),
    NotAcceptable: outcome("Unsupported `_format` or `fhirVersion`"),
    PreconditionFailed: outcome("`If-Match` / `If-None-Match: *` did not hold"),
    Conflict: outcome("`expungeDeletedResources` on a Binary that is not deleted"),
    TooLarge: outcome("Over the size limit (`--max-size`)"),
    UnsupportedMediaType: outcome("Unsupported `Content-Encoding` or body type"),
    RangeNotSatisfiable: outcome("The range is outside the document (`Content-Range: bytes */size`)"),
    Unavailable: outcome("The store cannot take writes"),
    InsufficientStorage: outcome("The disk is full"),
    ServerError: outcome("Unexpected error: logged, answered with a generic message"),
  },
  schemas: {
    Binary: {
      type: "object",
      description: "A FHIR Binary resource (STU3 names; R4 calls `content` `data`)",
      required: ["resourceType", "contentType"],
      properties: {
        resourceType: { type: "string", enum: ["Binary"] },
        id: { type: "string" },
        meta: {
          type: "object",
          properties: {
            extension: {
              type: "array",
              description: `The original file name, when given: \`{ "url": "${FILE_NAME_EXTENSION}", "valueString": "Referral letter.pdf" }\``,
              items: {
                type: "object",
                properties: { url: { type: "string" }, valueString: { type: "string" } },
              },
            },
            versionId: { type: "string" },
            lastUpdated: { type: "string", format: "date-time" },
          },
        },
        contentType: { type: "string", example: "application/pdf" },
        securityContext: {
          type: "object",
          properties: { reference: { type: "string", example: "Patient/9000000009" } },
        },
        content: { type: "string", format: "byte", description: "The payload, base64 (STU3, DSTU2)" },
        data: { type: "string", format: "byte", description: "The payload, base64 (R4)" },
      },
    },
    Parameters: {
      type: "object",
      description: "A FHIR Parameters resource",
      properties: {
        resourceType: { type: "string", enum: ["Parameters"] },
        parameter: {
          type: "array",
          items: {
            type: "object",
            properties: {
              name: { type: "string" },
              valueBoolean: { type: "boolean" },
              valueInteger: { type: "integer" },
            },
          },
        },
      },
    },
    Bundle: {
      type: "object",
      description: "A searchset or history Bundle",
      properties: {
        resourceType: { type: "string", enum: ["Bundle"] },
        type: { type: "string", enum: ["searchset", "history"] },
        total: { type: "integer" },
        link: {
          type: "array",
          items: {
            type: "object",
            properties: { relation: { type: "string" }, url: { type: "string" } },
          },
        },
        entry: {
          type: "array",
          items: {
            type: "object",
            properties: {
              fullUrl: { type: "string" },
              resource: schema("Binary"),
              request: {
                type: "object",
                properties: { method: { type: "string" }, url: { type: "string" } },
              },
            },
          },
        },
      },
    },
    OperationOutcome: {
      type: "object",
      properties: {
        resourceType: { type: "string", enum: ["OperationOutcome"] },
        issue: {
          type: "array",
          items: {
            type: "object",
            properties: {
              severity: { type: "string" },
              code: { type: "string" },
              diagnostics: { type: "string" },
            },
          },
        },
      },
    },
    CapabilityStatement: {
      type: "object",
      properties: { resourceType: { type: "string", enum: ["CapabilityStatement"] } },
    },
  },
};

/** `/docs`, `/docs/json` and the UI's embedded script, at the server root. */
export function docsRoutes(config: Config) {
  return new Elysia({ name: "fhirbin-docs" })
    .get(
      DOCS_SCRIPT_PATH,
      () =>
        new Response(scalarScript, {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=86400",
            "x-content-type-options": "nosniff",
          },
        }),
      { detail: { hide: true } },
    )
    .use(
      swagger({
        path: DOCS_PATH,
        specPath: DOCS_SPEC_PATH,
        provider: "scalar",
        // The plugin's option for where the UI's script comes from: our own copy, never a CDN.
        scalarCDN: DOCS_SCRIPT_PATH,
        scalarConfig: {
          // The default fonts come from fonts.scalar.com; the "open in client" button links out.
          withDefaultFonts: false,
          hideClientButton: true,
          telemetry: false,
          agent: { disabled: true },
          documentDownloadType: "json",
          // A small API: every operation shown at once.
          defaultOpenAllTags: true,
          showDeveloperTools: "never",
          pageTitle: "fhirbin API",
        } as Record<string, unknown>,
        documentation: toApiDocumentation(config),
        // The demo web app's routes are not part of the API.
        exclude: [/^\/$/, /^\/app(\/|-config)/],
      }),
    );
}
