/**
 * Pages of a search and of the type-level history over the index: keyset (cursor) paging within a
 * snapshot, so that `next` and `previous` neither skip nor repeat entries while documents are added
 * (R4 http.html#paging leaves the paging scheme to the server).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { BinaryHeader } from "../fhir/binary.ts";
import type { HistoryRecord } from "../fhir/bundle.ts";
import type { PageLinks, SearchPage, SearchWarning } from "../fhir/search-bundle.ts";
import {
  type Cursor,
  decodeCursor,
  encodeCursor,
  type HistoryParams,
  invalidCursor,
  type SearchParams,
  type SortKey,
} from "../fhir/search-params.ts";
import type { VersionRecord } from "../store/types.ts";
import type { IndexedStore } from "./indexed-store.ts";
import type { IndexedVersion } from "./search-index.ts";

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** A cursor is padded to a multiple of this before it is sealed: every cursor has the same length. */
const PADDED_BYTES = 256;

/**
 * Seals a cursor with AES-256-GCM under the store's key. Its snapshot and keys are positions in the index,
 * which count every version of the store, and its total is trusted on later pages: clients may neither
 * read nor change it, and padding hides even how many digits the numbers have. `scope` (the search and the
 * patient it is limited to) is authenticated along, so that a cursor pages only the search it was made for.
 */
function sealCursor(cursor: Cursor, key: Uint8Array, scope: string): string {
  const encoded = Buffer.from(encodeCursor(cursor));
  const padded = Buffer.alloc(Math.ceil(encoded.length / PADDED_BYTES) * PADDED_BYTES);
  encoded.copy(padded);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(scope));
  return Buffer.concat([iv, cipher.update(padded), cipher.final(), cipher.getAuthTag()]).toString(
    "base64url",
  );
}

/** Opens a sealed `_cursor` of the given scope; 400 when it was altered or sealed for another scope or key. */
function openCursor(
  text: string,
  key: Uint8Array,
  scope: string,
  sort: SortKey,
  fingerprint: string,
): Cursor {
  const sealed = Buffer.from(text, "base64url");
  if (sealed.length < IV_BYTES + PADDED_BYTES + TAG_BYTES) throw invalidCursor();
  let padded: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(scope));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    padded = Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw invalidCursor();
  }
  const end = padded.indexOf(0);
  return decodeCursor(padded.subarray(0, end < 0 ? padded.length : end).toString(), sort, fingerprint);
}

/** Seals and opens the cursors of one kind of listing, for one caller's scope. */
interface CursorSeal {
  seal(cursor: Cursor): string;
  open(text: string, sort: SortKey, fingerprint: string): Cursor;
}

function cursorSeal(key: Uint8Array, scope: string): CursorSeal {
  return {
    seal: (cursor) => sealCursor(cursor, key, scope),
    open: (text, sort, fingerprint) => openCursor(text, key, scope, sort, fingerprint),
  };
}

/** The URL of a page: `url` with the given parameters and, past the first page, the sealed cursor. */
function pageUrl(
  url: string,
  params: readonly [string, string][],
  cursor: Cursor | null,
  seal: CursorSeal,
): string {
  const all: [string, string][] = cursor ? [...params, ["_cursor", seal.seal(cursor)]] : [...params];
  const query = new URLSearchParams(all);
  return `${url}?${query}`;
}

function keyOf(version: IndexedVersion, sort: SortKey): Cursor["key"] {
  return sort === "id" ? [version.id, version.versionId] : [version.ts, version.seq];
}

/**
 * Turns the rows a page query returned (one more than the page size, in query order) into the page and its
 * links: `next` after the last entry, `previous` before the first, both in the same snapshot.
 */
function paginate(
  rows: IndexedVersion[],
  size: number,
  cursor: Cursor | null,
  context: {
    url: string;
    params: readonly [string, string][];
    sort: SortKey;
    snapshot: number;
    total: number;
    filters: string;
    seal: CursorSeal;
  },
): { page: IndexedVersion[]; links: PageLinks } {
  const backwards = cursor?.direction === "previous";
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (backwards) page.reverse();
  const hasNext = backwards || more;
  const hasPrevious = cursor !== null && (!backwards || more);
  const { url, params, sort, snapshot, total, filters, seal } = context;
  const link = (direction: Cursor["direction"], row: IndexedVersion | undefined): string | null =>
    row ? pageUrl(url, params, { snapshot, direction, key: keyOf(row, sort), total, filters }, seal) : null;
  return {
    page,
    links: {
      self: pageUrl(url, params, cursor && { ...cursor, total, filters }, seal),
      next: hasNext ? link("next", page.at(-1)) : null,
      previous: hasPrevious ? link("previous", page[0]) : null,
    },
  };
}

/**
 * One page of `GET [base]/Binary?...`; `url` is `[base]/Binary`. `securityContext` restricts the matches to
 * one patient's Binaries (a patient-scoped token).
 */
export function searchPage(
  store: IndexedStore,
  params: SearchParams,
  url: string,
  securityContext: string | null = null,
): SearchPage {
  const { index } = store;
  const query = {
    ids: params.ids,
    types: params.types,
    fileNames: params.fileNames,
    from: params.lastUpdated.from,
    to: params.lastUpdated.to,
    securityContext,
  };
  const warnings: SearchWarning[] = params.ignored.map((name) => ({
    code: "not-supported",
    diagnostics: `The search parameter ${name} is not supported and was ignored`,
  }));
  if (store.catchingUp) {
    warnings.push({
      code: "incomplete",
      diagnostics:
        "The search index is catching up with the stored documents (after an unclean stop, or being rebuilt): " +
        "results may be incomplete",
    });
  }
  if (store.unindexed > 0) {
    warnings.push({
      code: "incomplete",
      diagnostics:
        `${store.unindexed} stored sidecar(s) could not be indexed (damaged or unreadable): results may be ` +
        "incomplete; `fhirbin verify` lists them",
    });
  }
  // A patient's cursors page only that patient's searches.
  const seal = cursorSeal(store.cursorKey, `search ${securityContext ?? "*"}`);
  const cursor =
    params.cursor === null ? null : seal.open(params.cursor, params.sort.key, params.fingerprint);
  const snapshot = cursor?.snapshot ?? index.snapshot();
  // The total of a snapshot never changes: counted on the first page, carried by the cursor after it.
  const total = cursor && cursor.total >= 0 ? cursor.total : index.count(query, snapshot);
  if (params.countOnly) {
    return {
      matches: [],
      total,
      links: { self: pageUrl(url, params.links, null, seal), next: null, previous: null },
      warnings,
    };
  }
  const start = cursor ? { key: cursor.key, direction: cursor.direction } : null;
  const rows = index.search(query, params.sort, snapshot, start, params.count + 1);
  const { page, links } = paginate(rows, params.count, cursor, {
    url,
    params: params.links,
    sort: params.sort.key,
    snapshot,
    total,
    filters: params.fingerprint,
    seal,
  });
  return {
    matches: page.filter((row): row is IndexedVersion & BinaryHeader => !row.deleted),
    total,
    links,
    warnings,
  };
}

/** One page of `GET [base]/Binary/_history`, newest first; `url` is `[base]/Binary/_history`. */
export function historyPage(
  store: IndexedStore,
  params: HistoryParams,
  url: string,
): { records: HistoryRecord[]; total: number; links: PageLinks } {
  const { index } = store;
  const seal = cursorSeal(store.cursorKey, "history");
  const cursor = historyCursor(params, seal);
  const snapshot = cursor?.snapshot ?? index.snapshot();
  const total = cursor && cursor.total >= 0 ? cursor.total : index.historyCount(params.since, snapshot);
  const start = cursor ? { key: cursor.key, direction: cursor.direction } : null;
  const rows = index.history(params.since, snapshot, start, params.count + 1);
  return historyResult(rows, params, url, { cursor, seal, snapshot, total });
}

/** The cursor of a history page (both histories are keyed by lastUpdated), or null on the first page. */
function historyCursor(params: HistoryParams, seal: CursorSeal): Cursor | null {
  return params.cursor === null ? null : seal.open(params.cursor, "lastUpdated", params.fingerprint);
}

/** A history page from the rows its query returned (one more than the page size, in query order). */
function historyResult(
  rows: IndexedVersion[],
  params: HistoryParams,
  url: string,
  context: { cursor: Cursor | null; seal: CursorSeal; snapshot: number; total: number },
): { records: HistoryRecord[]; total: number; links: PageLinks } {
  const { cursor, seal, snapshot, total } = context;
  const { page, links } = paginate(rows, params.count, cursor, {
    url,
    params: params.links,
    sort: "lastUpdated",
    snapshot,
    total,
    filters: params.fingerprint,
    seal,
  });
  return { records: page, total, links };
}

/**
 * One page of `GET [base]/Binary/[id]/_history`, newest first; `versions` is the whole history of the id
 * (newest first) and `url` its history URL. Versions are numbered 1..n and never change, so the snapshot is
 * the version that was current when the first page was served, and a version's number is its key.
 */
export function instanceHistoryPage(
  versions: readonly VersionRecord[],
  params: HistoryParams,
  url: string,
  cursorKey: Uint8Array,
): { records: HistoryRecord[]; total: number; links: PageLinks } {
  const { since } = params;
  // Sealed like every cursor, for this history only (the caller decided who may read it as a whole).
  const seal = cursorSeal(cursorKey, `history ${url}`);
  const cursor = historyCursor(params, seal);
  const snapshot = cursor?.snapshot ?? versions[0]?.versionId ?? 0;
  const rows = versions
    .map(
      (version): IndexedVersion => ({
        ...version,
        ts: Date.parse(version.lastUpdated),
        seq: version.versionId,
      }),
    )
    .filter((row) => row.seq <= snapshot && (since === null || row.ts >= since));
  const total = rows.length;
  // In query order, as the index would return them: newest first, or oldest first when going back.
  const from = cursor?.key[1] ?? 0;
  const ordered =
    cursor === null
      ? rows
      : cursor.direction === "next"
        ? rows.filter((row) => row.seq < from)
        : rows.filter((row) => row.seq > from).reverse();
  return historyResult(ordered.slice(0, params.count + 1), params, url, { cursor, seal, snapshot, total });
}
