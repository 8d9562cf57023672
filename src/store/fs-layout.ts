/**
 * Where things live in a data directory (storage.md). Ids never become file names as they are: the encoding
 * survives case-insensitive file systems (Windows, macOS), Windows device names (`CON`) and trailing dots,
 * and the ids `.` and `..`.
 */
import { join } from "node:path";

/**
 * Encodes an already validated id as a directory name: `_` prefix (no device name or dot-only name can
 * result), each upper-case letter as `+` and its lower-case form, each `.` as `~`. `Abc.1` -> `_+abc~1`.
 * The mapping is injective, and the result is the same whatever case the file system folds to.
 */
export function encodeId(id: string): string {
  return `_${id.replace(/[A-Z.]/g, (c) => (c === "." ? "~" : `+${c.toLowerCase()}`))}`;
}

/** Two hex characters of the id's hash spread ids over 256 directories. */
export function fanOf(id: string): string {
  return new Bun.CryptoHasher("sha256").update(id).digest("hex").slice(0, 2);
}

/** Paths inside one data directory. */
export function layout(root: string) {
  return {
    lock: join(root, ".lock"),
    tmp: join(root, "tmp"),
    blobs: join(root, "blobs", "sha256"),
    binary: join(root, "binary"),
    blobDir: (sha256: string): string => join(root, "blobs", "sha256", sha256.slice(0, 2)),
    blob: (sha256: string): string => join(root, "blobs", "sha256", sha256.slice(0, 2), sha256),
    resourceDir: (id: string): string => join(root, "binary", fanOf(id), encodeId(id)),
    sidecar: (id: string, versionId: number): string =>
      join(root, "binary", fanOf(id), encodeId(id), `${versionId}.json`),
  };
}

export type Layout = ReturnType<typeof layout>;
