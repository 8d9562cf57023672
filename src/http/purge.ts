/**
 * `POST [base]/Binary/[id]/$expunge`: removes versions for good (a document filed to the wrong patient, or
 * past its retention), as HAPI FHIR's operation of that name. A thin handler over `Store.purge`.
 */
import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import { FhirError } from "../fhir/errors.ts";
import { parseExpunge, toExpungeResult } from "../fhir/expunge.ts";
import { negotiateResource } from "../fhir/format.ts";
import { fhirSyntaxOf, parseMediaType } from "../fhir/mime.ts";
import type { Principal } from "../security/scopes.ts";
import type { Store } from "../store/types.ts";
import { createAuthenticator } from "./auth.ts";
import { requireId } from "./binary.ts";
import type { ConnectionGuard } from "./limits.ts";
import { resourceResponse } from "./respond.ts";

/** The largest `$expunge` body: a Parameters of two booleans. */
const MAX_PARAMETERS_BYTES = 64 * 1024;

/**
 * Throws 403 unless the caller may purge: the static token (or auth off), or a `system/` scope that may
 * delete Binaries. Erasing a patient's documents for good is an operator's act, never a patient's or a
 * user's app's, whatever their own delete rights.
 */
function requirePurgeRights(principal: Principal): void {
  if (principal.grants === "all") return;
  if (principal.grants.some((grant) => grant.context === "system" && grant.actions.has("d"))) return;
  throw new FhirError(
    403,
    "forbidden",
    "$expunge needs the static token or a system-level token that may delete Binaries (system/Binary.d)",
  );
}

/** Reads the body as text, refusing one over MAX_PARAMETERS_BYTES while it streams. */
async function readParameters(body: ReadableStream<Uint8Array> | null): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_PARAMETERS_BYTES)
      throw new FhirError(413, "too-long", `An $expunge body is limited to ${MAX_PARAMETERS_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The `$expunge` route under the FHIR base path. */
export function purgeRoutes({
  config,
  store,
  guard,
}: {
  config: Config;
  store: Store;
  guard: ConnectionGuard;
}) {
  const authenticate = createAuthenticator(config);
  return new Elysia({ name: "fhirbin-purge", prefix: config.basePath })
    .resolve(async ({ request }) => ({ principal: await authenticate(request) }))
    .post(
      "/Binary/:id/$expunge",
      async ({ request, principal, params }) => {
        requirePurgeRights(principal);
        const id = requireId(params.id);
        const bodyType = request.headers.get("content-type");
        const syntax = fhirSyntaxOf(parseMediaType(bodyType ?? "")?.essence ?? "");
        if (!syntax)
          throw new FhirError(
            415,
            "not-supported",
            "$expunge takes a Parameters resource in FHIR JSON or XML",
          );
        // Before anything is removed: an unsupported _format is a 406 that must leave the store as it was.
        const format = negotiateResource(
          new URL(request.url).searchParams.get("_format"),
          request.headers.get("accept"),
          bodyType,
          config.fhirVersion,
        );
        const mode = parseExpunge(await readParameters(guard.body(request)), syntax);
        const result = await store.purge(id, mode);
        if (!result) throw new FhirError(404, "not-found", `Binary/${id} is not known`);
        return resourceResponse(toExpungeResult(result.versions.length), format);
      },
      { parse: "none" },
    );
}
