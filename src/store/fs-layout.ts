/**
 * Where things live in a data directory (storage.md). Ids never become file names as they are: the encoding
 * survives case-insensitive file systems (Windows, macOS), Windows device names (`CON`) and trailing dots,
 * and the ids `.` and `..`.
 */
import { join } from "node:path";
import { isValidId } from "../fhir/id.ts";

/**
 * Encodes an already validated id as a directory name: `_` prefix (no device name or dot-only name can
 * result), each upper-case letter as `+` and its lower-case form, each `.` as `~`. `Abc.1` -> `_+abc~1`.
 * The mapping is injective, and the result is the same whatever case the file system folds to.
 */
export function encodeId(id: string): string {
  return `_${id.replace(/[A-Z.]/g, (c) => (c === "." ? "~" : `+${c.toLowerCase()}`))}`;
}

/**
 * Inverts `encodeId` (`_+abc~1` is `Abc.1`); null for a name that no id encodes to (not fhirbin's, or
 * edited by hand).
 */
export function decodeId(name: string): string | null {
  if (!name.startsWith("_")) return null;
  const id = name
    .slice(1)
    .replace(/\+([a-z])|~/g, (match, letter: string | undefined) =>
      match === "~" ? "." : (letter ?? "").toUpperCase(),
    );
  return isValidId(id) && encodeId(id) === name ? id : null;
}

/** Two hex characters of the id's hash spread ids over 256 directories. */
export function fanOf(id: string): string {
  return new Bun.CryptoHasher("sha256").update(id).digest("hex").slice(0, 2);
}

const FAN = /^[0-9a-f]{2}$/;

/** True for the name of a fan-out directory (two hex digits). */
export function isFanName(name: string): boolean {
  return FAN.test(name);
}

/** The file name of version `versionId`'s sidecar of the id encoded as `encoded`, in its fan-out directory. */
export function sidecarFileName(encoded: string, versionId: number): string {
  return `${encoded}.${versionId}.json`;
}

/**
 * The file name of the record of the first version an id keeps once a purge removed the ones before it
 * (`<enc-id>.first.json`); encoded ids hold no dot, so it is never a sidecar's name.
 */
export function firstFileName(encoded: string): string {
  return `${encoded}.first.json`;
}

const SIDECAR_NAME = /^(_[a-z0-9+~-]+)\.([1-9][0-9]*)\.json$/;
const FIRST_NAME = /^(_[a-z0-9+~-]+)\.first\.json$/;

/**
 * The sidecars among the names of a fan-out directory, as version numbers (in listing order) by encoded id;
 * `firsts` the encoded ids with a first-version record, `others` the names that are neither.
 */
export function groupSidecars(names: readonly string[]): {
  versions: Map<string, number[]>;
  firsts: Set<string>;
  others: string[];
} {
  const versions = new Map<string, number[]>();
  const firsts = new Set<string>();
  const others: string[] = [];
  for (const name of names) {
    const match = SIDECAR_NAME.exec(name);
    if (!match) {
      const first = FIRST_NAME.exec(name);
      if (first) firsts.add(first[1] ?? "");
      else others.push(name);
      continue;
    }
    const [, encoded = "", n] = match;
    const known = versions.get(encoded);
    if (known) known.push(Number(n));
    else versions.set(encoded, [Number(n)]);
  }
  return { versions, firsts, others };
}

/**
 * Paths inside one data directory. Sidecars lie side by side in the fan-out directory of their id, with no
 * directory per id: a create then makes two new files and no directory, and fsyncs no directory that
 * exists only for it. Data directories of the earlier layout (`<fan>/<enc-id>/<n>.json`) are
 * converted when opened (fs-migrate.ts); `flat` marks one that needs no conversion.
 */
export function layout(root: string) {
  return {
    /** Who holds the lock (pid, host, start time), for people and the refusal message. */
    lock: join(root, ".lock"),
    /** The lock itself, held by the operating system (fs-lock.ts). */
    osLock: join(root, ".lock.sqlite"),
    tmp: join(root, "tmp"),
    blobs: join(root, "blobs", "sha256"),
    binary: join(root, "binary"),
    flat: join(root, "binary", ".flat"),
    /** Journals of purges under way (fs-purge.ts), replayed by the next start when a crash cut one short. */
    purges: join(root, "purges"),
    blobDir: (sha256: string): string => join(root, "blobs", "sha256", sha256.slice(0, 2)),
    blob: (sha256: string): string => join(root, "blobs", "sha256", sha256.slice(0, 2), sha256),
    fanDir: (id: string): string => join(root, "binary", fanOf(id)),
    sidecar: (id: string, versionId: number): string =>
      join(root, "binary", fanOf(id), sidecarFileName(encodeId(id), versionId)),
    /** The record of the first version `id` keeps (absent: 1). */
    first: (id: string): string => join(root, "binary", fanOf(id), firstFileName(encodeId(id))),
  };
}

export type Layout = ReturnType<typeof layout>;
