/** The in-memory driver: the same contract without a disk, for tests and throwaway demos. */
import { randomUUID } from "node:crypto";
import type {
  DeletedVersion,
  Preconditions,
  PurgeMode,
  PurgeOptions,
  PurgeResult,
  Store,
  StoredVersion,
  VersionRecord,
  WriteRequest,
  WriteResult,
} from "./types.ts";
import {
  checkPreconditions,
  consumeBody,
  createKeyedMutex,
  nextDeleted,
  nextStored,
  versionsToPurge,
} from "./versioning.ts";

/** Creates an empty in-memory store. */
export function createMemoryStore(): Store {
  // The versions of an id, oldest first; after a purge of previous versions the first may be above 1.
  const versions = new Map<string, VersionRecord[]>();
  const blobs = new Map<string, Blob>();
  const exclusive = createKeyedMutex();
  const current = (id: string): VersionRecord | null => versions.get(id)?.at(-1) ?? null;
  const append = (record: VersionRecord): void => {
    versions.set(record.id, [...(versions.get(record.id) ?? []), record]);
  };

  const update = async (id: string, request: WriteRequest): Promise<WriteResult> => {
    checkPreconditions(current(id), request);
    const chunks: Uint8Array[] = [];
    const content = await consumeBody(request, (chunk) => {
      chunks.push(chunk.slice());
    });
    return exclusive(id, async () => {
      const previous = current(id);
      checkPreconditions(previous, request);
      const version = nextStored(id, previous, content, request.method ?? "PUT");
      if (!blobs.has(content.sha256)) blobs.set(content.sha256, new Blob(chunks));
      append(version);
      return { version, created: !previous || previous.deleted };
    });
  };

  const purge = (id: string, mode: PurgeMode, options: PurgeOptions = {}): Promise<PurgeResult | null> =>
    exclusive(id, async () => {
      const all = versions.get(id) ?? [];
      const latest = all.at(-1);
      if (!latest) return null;
      const removed = versionsToPurge(latest, all[0]?.versionId ?? 1, mode);
      if (removed.length === 0) return { versions: [], blobs: 0 };
      await options.beforePurge?.(removed);
      const kept = all.filter((v) => !removed.includes(v.versionId));
      if (kept.length > 0) versions.set(id, kept);
      else versions.delete(id);
      // Content is shared by every version with its hash, of any id: erased once none is left.
      const inUse = new Set([...versions.values()].flatMap((list) => list.map(shaOf)));
      let erased = 0;
      for (const sha256 of new Set(all.map(shaOf))) {
        if (sha256 !== null && !inUse.has(sha256) && blobs.delete(sha256)) erased++;
      }
      return { versions: removed, blobs: erased };
    });

  return {
    current: async (id) => current(id),
    peek: current,
    version: async (id, versionId) => versions.get(id)?.find((v) => v.versionId === versionId) ?? null,
    history: async (id) => [...(versions.get(id) ?? [])].reverse(),
    create: async (request) =>
      (await update(randomUUID(), { ...request, ifNoneMatch: true, method: "POST" })).version,
    update,
    delete: (id: string, preconditions: Preconditions = {}): Promise<DeletedVersion | null> =>
      exclusive(id, async () => {
        const previous = current(id);
        checkPreconditions(previous, preconditions);
        if (!previous || previous.deleted) return null;
        const tombstone = nextDeleted(previous);
        append(tombstone);
        return tombstone;
      }),
    purge,
    content: (version: StoredVersion) => blobs.get(version.sha256) ?? new Blob([]),
    writable: async () => true,
    close: async () => {},
  };
}

function shaOf(version: VersionRecord): string | null {
  return version.deleted ? null : version.sha256;
}
