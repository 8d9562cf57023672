/**
 * Search and type-level history (fhir-binary-rules.md section 6): `GET [base]/Binary?...`,
 * `POST [base]/Binary/_search` and `GET [base]/Binary/_history`. Thin handlers over the search index.
 */
import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";
import { type FhirFormat, negotiateResource } from "../fhir/format.ts";
import { parseMediaType } from "../fhir/mime.ts";
import { toSearchBundle, toTypeHistoryBundle } from "../fhir/search-bundle.ts";
import { isStrictHandling, parseHistoryParams, parseSearchParams } from "../fhir/search-params.ts";
import type { IndexedStore } from "../search/indexed-store.ts";
import { historyPage, searchPage } from "../search/paging.ts";
import type { Principal } from "../security/scopes.ts";
import { createAuthenticator, insufficientScope, requirePermission } from "./auth.ts";
import { baseUrlOf } from "./base-url.ts";
import type { ConnectionGuard } from "./limits.ts";
import { resourceResponse } from "./respond.ts";

/** The largest form body of a `POST _search`: parameters, not documents. */
const MAX_FORM_BYTES = 64 * 1024;

/**
 * Reads a `POST _search` body. R4 http.html#search: "the parameters are in the body with Content-Type
 * application/x-www-form-urlencoded"; an empty body needs no Content-Type.
 */
async function readForm(
  request: Request,
  body: ReadableStream<Uint8Array> | null,
): Promise<[string, string][]> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (body) {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > MAX_FORM_BYTES) {
        throw new FhirError(413, "too-long", `A search form is limited to ${MAX_FORM_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  }
  if (size === 0) return [];
  const type = parseMediaType(request.headers.get("content-type") ?? "")?.essence;
  if (type !== "application/x-www-form-urlencoded") {
    throw new FhirError(
      415,
      "not-supported",
      "POST _search takes application/x-www-form-urlencoded parameters",
    );
  }
  return [...new URLSearchParams(Buffer.concat(chunks).toString("utf8"))];
}

/** The search routes under the FHIR base path. */
export function searchRoutes({
  config,
  store,
  guard,
}: {
  config: Config;
  store: IndexedStore;
  guard: ConnectionGuard;
}) {
  const authenticate = createAuthenticator(config);
  const baseOf = baseUrlOf(config);
  // "Entries are always FHIR Binary resources, never native": the Bundle is JSON unless XML is asked for.
  const formatOf = (request: Request, entries: readonly [string, string][]): FhirFormat =>
    negotiateResource(
      entries.find(([name]) => name === "_format")?.[1] ?? null,
      request.headers.get("accept"),
      null,
      config.fhirVersion,
    );

  const search = (request: Request, principal: Principal, entries: [string, string][]): Response => {
    const permission = requirePermission(principal, "search");
    const format = formatOf(request, entries);
    const params = parseSearchParams(entries, { strict: isStrictHandling(request.headers.get("prefer")) });
    const base = baseOf(request);
    // A patient-scoped token finds only its patient's Binaries.
    const patient = permission === "patient-only" ? `Patient/${principal.patient}` : null;
    const page = store.readIndex(() => searchPage(store, params, `${base}/Binary`, patient));
    return resourceResponse(toSearchBundle(page, base, format.version, params.elements), format, {
      pretty: params.pretty,
    });
  };

  return new Elysia({ name: "fhirbin-search", prefix: config.basePath })
    .resolve(async ({ request }) => ({ principal: await authenticate(request) }))
    .get("/Binary", ({ request, principal }) =>
      search(request, principal, [...new URL(request.url).searchParams]),
    )
    .post(
      "/Binary/_search",
      async ({ request, principal }) =>
        // Parameters may be in both the URL and the body (R4 http.html#search).
        search(request, principal, [
          ...new URL(request.url).searchParams,
          ...(await readForm(request, guard.body(request))),
        ]),
      { parse: "none" },
    )
    .get("/Binary/_history", ({ request, principal }) => {
      // The type-level history spans every patient: a patient-scoped token may not list it.
      if (requirePermission(principal, "history") === "patient-only") throw insufficientScope("history");
      const entries = [...new URL(request.url).searchParams];
      const format = formatOf(request, entries);
      const params = parseHistoryParams(entries, { strict: isStrictHandling(request.headers.get("prefer")) });
      const base = baseOf(request);
      const { records, total, links } = store.readIndex(() =>
        historyPage(store, params, `${base}/Binary/_history`),
      );
      return resourceResponse(toTypeHistoryBundle(records, base, format.version, total, links), format, {
        pretty: params.pretty,
      });
    });
}
