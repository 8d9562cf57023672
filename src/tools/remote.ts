/**
 * Where the import and export tools read and write: a stopped data directory (through the Store, which takes
 * the single-instance lock) or a running server (over its FHIR Binary API).
 */
import { formatContentDisposition } from "../fhir/content-disposition.ts";
import { FhirError } from "../fhir/errors.ts";
import { createStore } from "../store/index.ts";
import type { StoredVersion, VersionRecord } from "../store/types.ts";

/**
 * The outcome of a conditional write: the version written, or `conflict` when its precondition failed (the id
 * exists after all, or its current version is no longer the one replaced).
 */
export type PutResult = { versionId: number; created: boolean } | "conflict";

/** What a tool stores with a version besides its bytes; `fileName` null when the version has none. */
export interface WriteMeta {
  contentType: string;
  securityContext: string | null;
  fileName: string | null;
}

/** What the tools need of a store, local or remote. */
export interface DocumentTarget extends AsyncDisposable {
  /** The current version, or null when never written or deleted. */
  current(id: string): Promise<StoredVersion | null>;
  /** A given version, or null. */
  version(id: string, versionId: number): Promise<VersionRecord | null>;
  /** True when `version` has exactly this content (size and SHA-256). */
  holds(version: StoredVersion, size: number, sha256: string): Promise<boolean>;
  /**
   * Writes a version, always conditionally: `replaces` is the current version the write may replace
   * (`If-Match`), or null to only create (`If-None-Match: *`).
   */
  put(id: string, body: Uint8Array, meta: WriteMeta & { replaces: number | null }): Promise<PutResult>;
  /** Deletes `id` (a deletion version), only while `replaces` is its current version (`If-Match`). */
  remove(id: string, replaces: number): Promise<PutResult>;
  /** The content of a version. */
  content(version: StoredVersion): Promise<Blob>;
}

/** Opens a data directory directly (refused while a server holds it). */
export async function openDataTarget(dataDir: string, maxSize: number): Promise<DocumentTarget> {
  const store = await createStore(dataDir);
  const current = async (id: string): Promise<StoredVersion | null> => {
    const record = await store.current(id);
    return record && !record.deleted ? record : null;
  };
  return {
    current,
    version: (id, versionId) => store.version(id, versionId),
    holds: async (version, size, sha256) => version.size === size && version.sha256 === sha256,
    async put(id, body, { contentType, securityContext, fileName, replaces }) {
      try {
        const { version, created } = await store.update(id, {
          contentType,
          securityContext,
          ...(fileName === null ? {} : { fileName }),
          body,
          maxSize,
          ...(replaces === null ? { ifNoneMatch: true } : { ifMatch: replaces }),
        });
        return { versionId: version.versionId, created };
      } catch (error) {
        if (error instanceof FhirError && error.status === 412) return "conflict";
        throw error;
      }
    },
    async remove(id, replaces) {
      try {
        const deleted = await store.delete(id, { ifMatch: replaces });
        return deleted ? { versionId: deleted.versionId, created: false } : "conflict";
      } catch (error) {
        if (error instanceof FhirError && error.status === 412) return "conflict";
        throw error;
      }
    },
    content: async (version) => store.content(version),
    [Symbol.asyncDispose]: () => store.close(),
  };
}

/** A failed request to a running server, with its status and the server's diagnostics when it gave any. */
export class RemoteError extends Error {
  override name = "RemoteError";
}

/** What a 401 means for the tools: no token given, or the one given refused. */
function unauthorizedHint(token: string | null): string {
  return token === null
    ? "the server asks for a bearer token: give --token TOKEN or set FHIRBIN_TOKEN"
    : "the server refused the token given by --token or FHIRBIN_TOKEN";
}

async function failure(response: Response, what: string, token: string | null): Promise<RemoteError> {
  let detail = "";
  try {
    const outcome = (await response.json()) as { issue?: Array<{ diagnostics?: string }> };
    detail = outcome.issue?.[0]?.diagnostics ?? "";
  } catch {
    // Not an OperationOutcome: the status says enough.
  }
  const hint = response.status === 401 ? `: ${unauthorizedHint(token)}` : "";
  return new RemoteError(`${what}: HTTP ${response.status}${detail ? ` (${detail})` : ""}${hint}`);
}

/**
 * Checks once, before any document, that a fhirbin answers at `baseUrl` and accepts the token for reads: a
 * stopped server or a missing token is then one message, not a failure per file.
 */
export async function checkRemote(baseUrl: string, token: string | null): Promise<void> {
  const base = baseUrl.replace(/\/+$/, "");
  let metadata: Response;
  try {
    metadata = await fetch(`${base}/metadata`, { headers: { accept: "application/fhir+json" } });
  } catch (error) {
    const refused = (error as { code?: unknown }).code === "ECONNREFUSED";
    throw new RemoteError(
      `cannot reach ${base}: ${refused ? "connection refused" : (error as Error).message}; is fhirbin running there?`,
    );
  }
  await metadata.arrayBuffer();
  if (metadata.status !== 200)
    throw new RemoteError(
      `${base} is not a FHIR base: GET ${base}/metadata answered HTTP ${metadata.status} (--url is the FHIR base, e.g. http://127.0.0.1:8080/fhir)`,
    );
  // Any id will do: 404 (or 200, 410) says the token may read; 401 and 403 say it may not.
  const probe = await fetch(`${base}/Binary/fhirbin-token-check`, {
    method: "HEAD",
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (probe.status === 401) throw new RemoteError(unauthorizedHint(token));
  if (probe.status === 403) throw new RemoteError("the token may not read Binaries, which the tools need");
}

const VERSION_OF_ETAG = /^W\/"(\d+)"$/;

/** Speaks to a running server at its FHIR base URL. */
export function openRemoteTarget(baseUrl: string, token: string | null): DocumentTarget {
  const base = baseUrl.replace(/\/+$/, "");
  const headers = (extra: Record<string, string> = {}): Record<string, string> =>
    token ? { authorization: `Bearer ${token}`, ...extra } : extra;
  const readRecord = async (id: string, versionId: number | null): Promise<VersionRecord | null> => {
    const path = versionId === null ? `/Binary/${id}` : `/Binary/${id}/_history/${versionId}`;
    const response = await fetch(`${base}${path}`, { method: "HEAD", headers: headers() });
    if (response.status === 404) return null;
    const etag = VERSION_OF_ETAG.exec(response.headers.get("etag") ?? "");
    if (response.status === 410) {
      // A 410 does not say whose the deleted version was; importing never needs it.
      return etag
        ? { id, versionId: Number(etag[1]), lastUpdated: "", deleted: true, securityContext: null }
        : null;
    }
    if (!response.ok || !etag) throw await failure(response, `HEAD ${path}`, token);
    return {
      id,
      versionId: Number(etag[1]),
      lastUpdated: new Date(response.headers.get("last-modified") ?? 0).toISOString(),
      deleted: false,
      contentType: response.headers.get("content-type") ?? "application/octet-stream",
      securityContext: response.headers.get("x-security-context"),
      size: Number(response.headers.get("content-length") ?? 0),
      // Not known from the headers; holds() hashes the content when it needs it.
      sha256: "",
    };
  };
  const current = async (id: string): Promise<StoredVersion | null> => {
    const record = await readRecord(id, null);
    return record && !record.deleted ? record : null;
  };
  const content = async (version: StoredVersion): Promise<Blob> => {
    const path = `/Binary/${version.id}/_history/${version.versionId}`;
    const response = await fetch(`${base}${path}`, { headers: headers() });
    if (!response.ok) throw await failure(response, `GET ${path}`, token);
    return response.blob();
  };
  return {
    current,
    version: (id, versionId) => readRecord(id, versionId),
    async holds(version, size, sha256) {
      // The headers give the size; the content is only fetched and hashed when that matches.
      if (version.size !== size) return false;
      const bytes = await (await content(version)).bytes();
      return new Bun.CryptoHasher("sha256").update(bytes).digest("hex") === sha256;
    },
    async put(id, body, { contentType, securityContext, fileName, replaces }) {
      const extra: Record<string, string> = { "content-type": contentType, prefer: "return=minimal" };
      if (securityContext) extra["x-security-context"] = securityContext;
      if (fileName !== null) extra["content-disposition"] = formatContentDisposition("attachment", fileName);
      if (replaces === null) extra["if-none-match"] = "*";
      else extra["if-match"] = `W/"${replaces}"`;
      const response = await fetch(`${base}/Binary/${id}`, { method: "PUT", headers: headers(extra), body });
      if (response.status === 412) {
        await response.arrayBuffer();
        return "conflict";
      }
      if (response.status !== 200 && response.status !== 201)
        throw await failure(response, `PUT /Binary/${id}`, token);
      await response.arrayBuffer();
      const etag = VERSION_OF_ETAG.exec(response.headers.get("etag") ?? "");
      return { versionId: Number(etag?.[1] ?? 0), created: response.status === 201 };
    },
    async remove(id, replaces) {
      const response = await fetch(`${base}/Binary/${id}`, {
        method: "DELETE",
        headers: headers({ "if-match": `W/"${replaces}"` }),
      });
      if (response.status !== 204 && response.status !== 412)
        throw await failure(response, `DELETE /Binary/${id}`, token);
      await response.arrayBuffer();
      if (response.status === 412) return "conflict";
      const etag = VERSION_OF_ETAG.exec(response.headers.get("etag") ?? "");
      if (!etag) throw new RemoteError(`DELETE /Binary/${id}: HTTP 204 without the deletion's ETag`);
      return { versionId: Number(etag[1]), created: false };
    },
    content,
    [Symbol.asyncDispose]: async () => {},
  };
}
