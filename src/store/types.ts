import type { ResourceElements } from "../fhir/binary.ts";

/** One stored version of a Binary: its metadata, as kept in the sidecar. */
export interface StoredVersion extends ResourceElements {
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: false;
  contentType: string;
  securityContext: string | null;
  size: number;
  sha256: string;
  /**
   * The interaction that made the version: POST (a create) or PUT (an update, or a create with the client's
   * id). Absent in sidecars written before it was recorded: version 1 was then a POST, later ones PUTs.
   */
  method?: WriteMethod;
}

/** The HTTP method of a content write. */
export type WriteMethod = "POST" | "PUT";

/** A deletion: a version with no content (a tombstone), so history and 410 survive it. */
export interface DeletedVersion {
  id: string;
  versionId: number;
  lastUpdated: string;
  deleted: true;
  /**
   * The securityContext of the version it deleted: the id still belongs to that patient, so a
   * patient-scoped token may not take it over with a new version.
   */
  securityContext: string | null;
}

export type VersionRecord = StoredVersion | DeletedVersion;

/** The `If-Match` / `If-None-Match: *` preconditions of a write, and who may write. */
export interface Preconditions {
  /**
   * Called with the current version before any precondition is looked at, each time they are (a fail-fast
   * check, then again under the id's turn): throws when the caller may not write over it, else says whether
   * the caller may read it, that is learn its version number from a 412.
   */
  authorize?: (current: VersionRecord | null) => boolean;
  /** The version the client last saw (`If-Match: W/"n"`), or `*` for "any current version". */
  ifMatch?: number | "*";
  /** `If-None-Match: *`: only create. */
  ifNoneMatch?: boolean;
}

/** What a version records about its content besides the bytes (and, from a Binary resource, its elements). */
export interface ContentMetadata extends ResourceElements {
  contentType: string;
  securityContext: string | null;
}

/** A content write: the body is streamed and counted; more than `maxSize` bytes is a 413. */
export interface WriteRequest extends Preconditions, ContentMetadata {
  body: ReadableStream<Uint8Array> | Uint8Array;
  maxSize: number;
  /**
   * Metadata only known once the body has been read to the end (a streamed Binary resource may name its
   * contentType after the payload): called after the body is consumed and before anything is committed; it
   * replaces contentType and securityContext. A throw refuses the write and nothing is stored.
   */
  metadataAfterBody?: () => ContentMetadata | Promise<ContentMetadata>;
  /**
   * Awaited once the body is stored and its metadata known, before anything is committed (the search
   * index journals the write there). A rejection refuses the write and nothing is stored.
   */
  beforeCommit?: () => Promise<void>;
  /** The interaction recorded with the version: PUT unless given (`create` gives POST). */
  method?: WriteMethod;
}

export interface WriteResult {
  version: StoredVersion;
  /** True when this write created the resource (first version, or first after a deletion). */
  created: boolean;
}

/** What a purge removes: every version but the current one, or every version of a deleted Binary. */
export type PurgeMode = "previous-versions" | "deleted";

/** What a purge removed. */
export interface PurgeResult {
  /** The version numbers removed, ascending (empty when there was nothing to remove). */
  versions: number[];
  /** Content files erased because no remaining version of any id referenced them. */
  blobs: number;
}

/** Hooks of a purge. */
export interface PurgeOptions {
  /**
   * Awaited under the id's turn with the versions about to be removed, before anything is removed (the
   * search index forgets them there). A rejection refuses the purge and nothing is removed.
   */
  beforePurge?: (versions: readonly number[]) => Promise<void>;
}

/**
 * The store contract every driver passes (test/unit/store/contract.ts). Absent is `null`; failure is an
 * exception (FhirError for 412, 413, 503, 507).
 */
export interface Store {
  /** The current version record, or null when the id was never written. */
  current(id: string): Promise<VersionRecord | null>;
  /**
   * What `current` would give when the driver knows it without I/O (from its cache), else undefined: the hot
   * read answers from it without a promise.
   */
  peek(id: string): VersionRecord | null | undefined;
  /** A given version, or null when it does not exist. */
  version(id: string, versionId: number): Promise<VersionRecord | null>;
  /** Every version, newest first; empty when the id was never written. */
  history(id: string): Promise<VersionRecord[]>;
  /** Creates a resource with a new server-assigned id. */
  create(request: WriteRequest): Promise<StoredVersion>;
  /** Writes the next version of `id`, creating it when absent (update-as-create). */
  update(id: string, request: WriteRequest): Promise<WriteResult>;
  /** Adds a deletion version; null when there was nothing to delete (never existed or already deleted). */
  delete(id: string, preconditions?: Preconditions): Promise<DeletedVersion | null>;
  /**
   * Removes versions for good (misfiled documents, retention): their sidecars, and the content no remaining
   * version of any id references. Null when the id was never written; a 409 FhirError for `deleted` on a
   * Binary that is not deleted. Once every version is gone the id is unknown and starts again at 1.
   */
  purge(id: string, mode: PurgeMode, options?: PurgeOptions): Promise<PurgeResult | null>;
  /** The content of a stored version, as a Blob that streams it (a BunFile for the filesystem). */
  content(version: StoredVersion): Blob;
  /** True when writes can currently succeed (for readiness probes). */
  writable(): Promise<boolean>;
  /** Releases the store (the single-instance lock). */
  close(): Promise<void>;
}

/** The store could not be opened (locked by another process, not writable...); the message says why. */
export class StoreOpenError extends Error {
  override name = "StoreOpenError";
}
