/** The in-memory driver: the same contract without a disk, for tests and throwaway demos. */
import { randomUUID } from "node:crypto";
import type {
  DeletedVersion,
  Preconditions,
  Store,
  StoredVersion,
  VersionRecord,
  WriteRequest,
  WriteResult,
} from "./types.ts";
import { checkPreconditions, consumeBody, createKeyedMutex, nextDeleted, nextStored } from "./versioning.ts";

/** Creates an empty in-memory store. */
export function createMemoryStore(): Store {
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

  return {
    current: async (id) => current(id),
    peek: current,
    version: async (id, versionId) => versions.get(id)?.[versionId - 1] ?? null,
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
    content: (version: StoredVersion) => blobs.get(version.sha256) ?? new Blob([]),
    writable: async () => true,
    close: async () => {},
  };
}
