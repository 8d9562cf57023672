/** Rules every driver shares: preconditions, next version numbers, streaming a body with a size cap. */
import { resourceElements } from "../fhir/binary.ts";
import { FhirError } from "../fhir/errors.ts";
import { collectWhileStreaming } from "../gc.ts";
import type {
  ContentMetadata,
  DeletedVersion,
  Preconditions,
  PurgeMode,
  StoredVersion,
  VersionRecord,
  WriteMethod,
  WriteRequest,
} from "./types.ts";

/** What consuming a write's body establishes: its size and hash, and its final metadata. */
export interface WrittenContent extends ContentMetadata {
  size: number;
  sha256: string;
}

/**
 * Checks that the caller may write over the current version, then `If-Match` and `If-None-Match: *`
 * against it; 412 when they fail. R4 http.html#concurrency: "If the version id given in the If-Match header
 * does not match, the server returns a 412 Precondition Failed status code instead of updating the
 * resource." Authorization comes first so that a 412 tells nothing to a caller that may not write here, and
 * it names the current version only to a caller that may read it.
 */
export function checkPreconditions(
  current: VersionRecord | null,
  { authorize, ifMatch, ifNoneMatch }: Preconditions,
): void {
  const readable = authorize?.(current) ?? true;
  if (ifNoneMatch && current && !current.deleted) {
    throw new FhirError(412, "conflict", `Binary/${current.id} already exists (If-None-Match: *)`);
  }
  if (ifMatch === undefined) return;
  if (!current || (ifMatch !== "*" && current.versionId !== ifMatch)) {
    const have = !readable ? "" : current ? ` (version ${current.versionId})` : " (no version)";
    throw new FhirError(412, "conflict", `If-Match ${ifMatch} does not match the current version${have}`);
  }
}

/** The record for the next content version after `current`. */
export function nextStored(
  id: string,
  current: VersionRecord | null,
  content: WrittenContent,
  method: WriteMethod,
): StoredVersion {
  return {
    id,
    versionId: (current?.versionId ?? 0) + 1,
    lastUpdated: nextTimestamp(current),
    deleted: false,
    contentType: content.contentType,
    securityContext: content.securityContext,
    ...resourceElements(content),
    size: content.size,
    sha256: content.sha256,
    method,
  };
}

/** The tombstone that follows `current`, keeping its securityContext. */
export function nextDeleted(current: VersionRecord): DeletedVersion {
  return {
    id: current.id,
    versionId: current.versionId + 1,
    lastUpdated: nextTimestamp(current),
    deleted: true,
    securityContext: current.securityContext,
  };
}

// lastUpdated strictly increases per resource, so history order and If-Modified-Since stay meaningful even
// when the clock steps back.
function nextTimestamp(current: VersionRecord | null): string {
  const now = Date.now();
  const previous = current ? Date.parse(current.lastUpdated) : 0;
  return new Date(Math.max(now, previous + 1)).toISOString();
}

/**
 * Feeds a write's body to `sink` chunk by chunk, hashing and counting as it flows; stops with 413 as soon
 * as more than `maxSize` bytes arrived, whatever Content-Length said. Then settles the metadata.
 */
export async function consumeBody(
  request: WriteRequest,
  sink: (chunk: Uint8Array) => Promise<void> | void,
): Promise<WrittenContent> {
  const { body, maxSize, contentType, securityContext, metadataAfterBody, beforeCommit } = request;
  const hasher = new Bun.CryptoHasher("sha256");
  let size = 0;
  const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = body instanceof Uint8Array ? [body] : body;
  for await (const chunk of chunks) {
    size += chunk.byteLength;
    if (size > maxSize) throw tooLarge(maxSize);
    hasher.update(chunk);
    await sink(chunk);
    collectWhileStreaming(size, chunk.byteLength);
  }
  const metadata = (await metadataAfterBody?.()) ?? {
    contentType,
    securityContext,
    ...resourceElements(request),
  };
  await beforeCommit?.();
  return { ...metadata, size, sha256: hasher.digest("hex") };
}

/** The 413 for a body over the size limit. */
export function tooLarge(maxSize: number): FhirError {
  return new FhirError(413, "too-long", `The content is larger than the limit of ${maxSize} bytes`);
}

/** Serialises writes per key, so concurrent writers to one id take versions in turn. */
export function createKeyedMutex(): <T>(key: string, work: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<unknown>>();
  return async (key, work) => {
    const previous = tails.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.catch(() => {});
    tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}

/**
 * The versions a purge of `mode` removes from an id whose versions are `first`..`current.versionId`: all of
 * them for `deleted` (409 unless the Binary is deleted: a live document is deleted first, so that the
 * removal is a decision in its own history), else all but the current one.
 */
export function versionsToPurge(current: VersionRecord, first: number, mode: PurgeMode): number[] {
  if (mode === "deleted" && !current.deleted) {
    throw new FhirError(
      409,
      "conflict",
      `Binary/${current.id} is not deleted: delete it first, or expunge only its previous versions`,
    );
  }
  const last = mode === "deleted" ? current.versionId : current.versionId - 1;
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => first + i);
}
