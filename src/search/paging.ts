/**
 * Pages of a search and of the type-level history over the index: keyset (cursor) paging within a
 * snapshot, so that `next` and `previous` neither skip nor repeat entries while documents are added
 * (R4 http.html#paging leaves the paging scheme to the server).
 */
import type { BinaryHeader } from "../fhir/binary.ts";
import type { HistoryRecord } from "../fhir/bundle.ts";
import type { PageLinks, SearchPage } from "../fhir/search-bundle.ts";
import {
  type Cursor,
  encodeCursor,
  type HistoryParams,
  type SearchParams,
  type SortKey,
} from "../fhir/search-params.ts";
import type { VersionRecord } from "../store/types.ts";
import type { IndexedStore } from "./indexed-store.ts";
import type { IndexedVersion } from "./search-index.ts";

/** The URL of a page: `url` with the given parameters and, past the first page, the cursor. */
function pageUrl(url: string, params: readonly [string, string][], cursor: Cursor | null): string {
  const all: [string, string][] = cursor ? [...params, ["_cursor", encodeCursor(cursor)]] : [...params];
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
  },
): { page: IndexedVersion[]; links: PageLinks } {
  const backwards = cursor?.direction === "previous";
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (backwards) page.reverse();
  const hasNext = backwards || more;
  const hasPrevious = cursor !== null && (!backwards || more);
  const { url, params, sort, snapshot, total, filters } = context;
  const link = (direction: Cursor["direction"], row: IndexedVersion | undefined): string | null =>
    row ? pageUrl(url, params, { snapshot, direction, key: keyOf(row, sort), total, filters }) : null;
  return {
    page,
    links: {
      self: pageUrl(url, params, cursor && { ...cursor, total, filters }),
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
    from: params.lastUpdated.from,
    to: params.lastUpdated.to,
    securityContext,
  };
  const warnings = params.ignored.map(
    (name) => `The search parameter ${name} is not supported and was ignored`,
  );
  if (store.catchingUp) {
    warnings.push(
      "The search index is catching up with writes made before an unclean stop: results may be incomplete",
    );
  }
  const { cursor } = params;
  const snapshot = cursor?.snapshot ?? index.snapshot();
  // The total of a snapshot never changes: counted on the first page, carried by the cursor after it.
  const total = cursor && cursor.total >= 0 ? cursor.total : index.count(query, snapshot);
  if (params.countOnly) {
    return {
      matches: [],
      total,
      links: { self: pageUrl(url, params.links, null), next: null, previous: null },
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
  const { cursor } = params;
  const snapshot = cursor?.snapshot ?? index.snapshot();
  const total = cursor && cursor.total >= 0 ? cursor.total : index.historyCount(params.since, snapshot);
  const start = cursor ? { key: cursor.key, direction: cursor.direction } : null;
  const rows = index.history(params.since, snapshot, start, params.count + 1);
  const { page, links } = paginate(rows, params.count, cursor, {
    url,
    params: params.links,
    sort: "lastUpdated",
    snapshot,
    total,
    filters: params.fingerprint,
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
): { records: HistoryRecord[]; total: number; links: PageLinks } {
  const { cursor, since } = params;
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
  const { page, links } = paginate(ordered.slice(0, params.count + 1), params.count, cursor, {
    url,
    params: params.links,
    sort: "lastUpdated",
    snapshot,
    total,
    filters: params.fingerprint,
  });
  return { records: page, total, links };
}
