/**
 * Search and type-level history parameters (fhir-binary-rules.md section 6, R4 search.html): pure parsing of
 * the query into what the index needs, the parameters repeated in paging links, and the paging cursor.
 */
import { FhirError } from "./errors.ts";
import { isValidId } from "./id.ts";
import { parseMediaType } from "./mime.ts";

/** `_count` when none is given, and the most one page may hold. */
export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

/** The code system of MIME types (BCP 13), as DSTU2 and STU3 bind `Binary.contenttype`. */
export const MIME_SYSTEM = "urn:ietf:bcp:13";

/** A content type as the index compares it: the essence, and the whole type with normalised parameters. */
export interface NormalisedType {
  essence: string;
  normalised: string;
}

/**
 * One alternative of a `contenttype` search: all types with this essence (`exact` null: the query had no
 * parameters), or exactly one normalised type.
 */
export interface TypeMatch {
  essence: string;
  exact: string | null;
}

/**
 * One alternative of a `filename` search: a file name containing `text` once both are folded
 * (foldFileName), or with `exact` one equal to `text` as it is.
 */
export interface FileNameMatch {
  text: string;
  exact: boolean;
}

/** `_lastUpdated` as one half-open range of epoch milliseconds, `[from, to)`; null is unbounded. */
export interface TimeRange {
  from: number | null;
  to: number | null;
}

export type SortKey = "lastUpdated" | "id";

export interface SearchSort {
  key: SortKey;
  descending: boolean;
}

/**
 * Where a page starts: the snapshot (the index sequence number the first page saw, so documents added
 * later never shift the pages), the sort key of the last (next) or first (previous) entry of the page
 * before, the total counted on the first page, and a fingerprint of the filters it belongs to.
 */
export interface Cursor {
  snapshot: number;
  direction: "next" | "previous";
  key: [number, number] | [string, number];
  total: number;
  filters: string;
}

/** A parsed `GET [base]/Binary?...` or `POST [base]/Binary/_search`. */
export interface SearchParams {
  /** `_id`: the ids a match must have (null: any). */
  ids: string[] | null;
  /** `contenttype`: the alternatives a match must satisfy (null: any; empty: nothing matches). */
  types: TypeMatch[] | null;
  /** `filename`, once per parameter given: the alternatives of each, one of which a match satisfies. */
  fileNames: FileNameMatch[][];
  lastUpdated: TimeRange;
  sort: SearchSort;
  count: number;
  /** `_summary=count` or `_count=0`: only the total. */
  countOnly: boolean;
  /** `_elements`: the elements entries keep besides id and meta (null: all of the summary form). */
  elements: string[] | null;
  pretty: boolean;
  /** `_cursor` as given: sealed, so opened by the paging (search/paging.ts), which holds the key. */
  cursor: string | null;
  /** Names of the parameters ignored because fhirbin does not know them (lenient handling). */
  ignored: string[];
  /** The parameters to repeat in the self, next and previous links (without `_cursor`). */
  links: [string, string][];
  /** Identifies the filters and the sort: a cursor only applies to the search it came from. */
  fingerprint: string;
}

/** A parsed `GET [base]/Binary/_history`. */
export interface HistoryParams {
  /** `_since`: only versions at or after this instant (epoch ms), or null. */
  since: number | null;
  count: number;
  pretty: boolean;
  /** `_cursor` as given (see SearchParams). */
  cursor: string | null;
  ignored: string[];
  links: [string, string][];
  fingerprint: string;
}

/** Parameters that shape the response rather than select entries; repeated in links as given. */
const FORMAT_PARAMS = new Set(["_format", "_pretty"]);
const SEARCH_PARAMS = new Set([
  "contenttype",
  "filename",
  "_id",
  "_lastUpdated",
  "_count",
  "_sort",
  "_summary",
  "_elements",
  "_cursor",
  ...FORMAT_PARAMS,
]);
const HISTORY_PARAMS = new Set(["_since", "_count", "_cursor", ...FORMAT_PARAMS]);

/**
 * `Prefer: handling=strict` (R4 search.html#errors): "the server SHALL return an error for any unknown or
 * unsupported parameter" instead of ignoring it.
 */
export function isStrictHandling(prefer: string | null): boolean {
  return prefer !== null && /(?:^|[,;\s])handling\s*=\s*"?strict"?\s*(?:$|[,;])/i.test(prefer);
}

function invalid(diagnostics: string): FhirError {
  return new FhirError(400, "value", diagnostics);
}

function unsupported(diagnostics: string): FhirError {
  return new FhirError(400, "not-supported", diagnostics);
}

/**
 * Splits the parameters into known ones (by name, modifiers refused) and the names of unknown ones; empty
 * values are dropped ("a parameter with no value is ignored"). Under strict handling an unknown parameter
 * is a 400.
 */
function sortOut(
  entries: Iterable<[string, string]>,
  known: ReadonlySet<string>,
  strict: boolean,
  modifiers: Readonly<Record<string, readonly string[]>> = {},
): { params: [name: string, modifier: string | null, value: string][]; ignored: string[] } {
  const params: [string, string | null, string][] = [];
  const ignored: string[] = [];
  for (const [raw, value] of entries) {
    const at = raw.indexOf(":");
    const name = at < 0 ? raw : raw.slice(0, at);
    const modifier = at < 0 ? null : raw.slice(at + 1);
    if (!known.has(name)) {
      if (strict)
        throw unsupported(`Unknown search parameter ${JSON.stringify(raw)} (Prefer: handling=strict)`);
      if (!ignored.includes(raw)) ignored.push(raw);
      continue;
    }
    // R4 search.html#modifiers: a server "SHALL reject any search request that contains a search
    // parameter with an unsupported modifier".
    if (modifier !== null && !(modifiers[name] ?? []).includes(modifier)) {
      throw unsupported(`The modifier :${modifier} is not supported on ${name}`);
    }
    if (value.trim() === "") continue;
    params.push([name, modifier, value]);
  }
  return { params, ignored };
}

/** Parses `_count`: 0 means "only the total"; larger than MAX_COUNT is served as MAX_COUNT. */
function parseCount(value: string): number {
  if (!/^\d{1,9}$/.test(value.trim())) throw invalid(`_count must be a non-negative integer, not ${value}`);
  return Math.min(Number(value.trim()), MAX_COUNT);
}

/** Normalises a content type for comparison: lower-case essence, parameters sorted, names lower-case. */
export function normaliseContentType(value: string): NormalisedType {
  const media = parseMediaType(value);
  if (!media) {
    // Only a hand-edited sidecar can hold an invalid type: compare it as lower-case text.
    const text = value.trim().toLowerCase();
    return { essence: text.split(";")[0]?.trim() ?? text, normalised: text };
  }
  const params = [...media.params]
    .map(([name, v]) => `;${name}=${name === "charset" ? v.toLowerCase() : v}`)
    .sort();
  return { essence: media.essence, normalised: media.essence + params.join("") };
}

/**
 * Parses one `contenttype` value: a comma list of MIME types, each optionally `system|code` with the
 * system empty or BCP 13. A type with parameters matches exactly; one without matches that essence with
 * any parameters ("also match ignoring parameters when the query has none").
 */
function parseTypeList(value: string): TypeMatch[] {
  const matches: TypeMatch[] = [];
  for (const item of value.split(",")) {
    let code = item;
    const bar = item.indexOf("|");
    if (bar >= 0) {
      const system = item.slice(0, bar).trim();
      code = item.slice(bar + 1);
      // Another code system's codes are never MIME types: nothing matches them.
      if (system !== "" && system !== MIME_SYSTEM) continue;
    }
    // A `+` sent unescaped in a query string arrives as a space: `application/fhir json`.
    const [type = "", ...rest] = code.split(";");
    const text = [type.trim().replace(/ /g, "+"), ...rest].join(";");
    const media = parseMediaType(text);
    if (!media)
      throw invalid(`contenttype ${JSON.stringify(code)} is not a MIME type such as application/pdf`);
    matches.push({
      essence: media.essence,
      exact: media.params.size > 0 ? normaliseContentType(text).normalised : null,
    });
  }
  return matches;
}

/** Intersects two alternatives lists (repeated parameters are ANDed, R4 search.html#combining). */
function intersectTypes(a: TypeMatch[], b: TypeMatch[]): TypeMatch[] {
  const out: TypeMatch[] = [];
  for (const x of a) {
    for (const y of b) {
      if (x.essence !== y.essence) continue;
      const both = x.exact === null ? y : y.exact === null || y.exact === x.exact ? x : null;
      if (both && !out.some((m) => m.essence === both.essence && m.exact === both.exact)) out.push(both);
    }
  }
  return out;
}

/** Drops alternatives that another one already covers, so the remaining ones never overlap. */
function distinctTypes(matches: TypeMatch[]): TypeMatch[] {
  const out: TypeMatch[] = [];
  for (const m of matches) {
    const covered = matches.some((o) => o.essence === m.essence && o.exact === null && m.exact !== null);
    if (!covered && !out.some((o) => o.essence === m.essence && o.exact === m.exact)) out.push(m);
  }
  return out;
}

/**
 * A file name as `filename` compares it without `:exact`: case and accents folded away (R4
 * search.html#string: "the search is case- and accent-insensitive"), so `LETTER` finds `Brief-Lettre.pdf`
 * and `resume` finds `Résumé.pdf`.
 */
export function foldFileName(name: string): string {
  return name.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

/**
 * Parses one `filename` value: alternatives separated by commas, a `\,` being a comma of the name (R4
 * search.html#escaping); matched as contained text, or with `:exact` as the whole name.
 */
function parseFileNameList(value: string, exact: boolean): FileNameMatch[] {
  return value
    .split(/(?<!\\),/)
    .map((item) => item.replace(/\\([\\,$|])/g, "$1"))
    .filter((item) => item !== "")
    .map((item) => ({ text: exact ? item : foldFileName(item), exact }));
}

const PARTIAL_DATE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+\- ]\d{2}:\d{2})?)?)?)?$/;

/**
 * The range of instants a date, dateTime or instant means (R4 search.html#date: "the range of the search
 * value"): `2024` is the whole year, `2024-03` the month, `2024-03-05` the day, `...T10:00` the minute,
 * `...:30` the second, `.5` the tenth of a second. Dates without a time zone are taken as UTC. Returns
 * `[from, to)` in epoch milliseconds. `sent` is what the client sent (the date with its prefix), quoted in
 * errors.
 */
export function parseDateRange(value: string, sent = value): { from: number; to: number } {
  const match = PARTIAL_DATE.exec(value.trim());
  if (!match)
    throw invalid(`${JSON.stringify(sent)} is not a date such as 2024, 2024-03-05 or 2024-03-05T10:00:00Z`);
  const [, y, mo, d, h, mi, s, fraction, zone] = match;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw invalid(`${JSON.stringify(sent)} is not a valid date`);
  }
  let offset = 0;
  if (zone && zone !== "Z") {
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(4, 6));
    if (zh > 14 || zm > 59) throw invalid(`${JSON.stringify(sent)} has an invalid time zone`);
    // A `+` sent unescaped arrives as a space.
    offset = (zone[0] === "-" ? -1 : 1) * (zh * 60 + zm) * 60_000;
  }
  const from = Date.UTC(year, month - 1, day, hour, minute, second) - offset;
  const ms = fraction === undefined ? 0 : Number(`0.${fraction}`) * 1000;
  let to: number;
  if (mo === undefined) to = Date.UTC(year + 1, 0, 1);
  else if (d === undefined) to = Date.UTC(year, month, 1);
  else if (h === undefined) to = Date.UTC(year, month - 1, day + 1);
  else if (s === undefined) to = from + 60_000;
  else if (fraction === undefined) to = from + 1000;
  else to = from + ms + 1000 / 10 ** fraction.length;
  return { from: from + ms, to };
}

/**
 * One `_lastUpdated` value as a range of epoch ms (R4 search.html#prefix; the target is an instant, so
 * "overlaps" and "contains" coincide): eq `[lo, hi)`, gt `[hi, ...)`, ge `[lo, ...)`, lt `(..., lo)`,
 * le `(..., hi)`.
 */
export function parseLastUpdated(value: string): TimeRange {
  if (value.includes(",")) throw unsupported("_lastUpdated takes one value; repeat the parameter to combine");
  // A prefix is two letters before the year's digits: `garbage` is a bad date, not the prefix `ga`.
  const prefixed = /^([a-z]{2})(\d.*)$/.exec(value.trim());
  const prefix = prefixed?.[1] ?? "eq";
  const { from, to } = parseDateRange(prefixed?.[2] ?? value, value);
  switch (prefix) {
    case "eq":
      return { from, to };
    case "gt":
      return { from: to, to: null };
    case "ge":
      return { from, to: null };
    case "lt":
      return { from: null, to: from };
    case "le":
      return { from: null, to };
    default:
      throw unsupported(`The prefix ${prefix} is not supported on _lastUpdated (eq, gt, ge, lt, le)`);
  }
}

function intersectRanges(a: TimeRange, b: TimeRange): TimeRange {
  const max = (x: number | null, y: number | null): number | null =>
    x === null ? y : y === null ? x : Math.max(x, y);
  const min = (x: number | null, y: number | null): number | null =>
    x === null ? y : y === null ? x : Math.min(x, y);
  return { from: max(a.from, b.from), to: min(a.to, b.to) };
}

const SORTS: Readonly<Record<string, SearchSort>> = {
  _lastUpdated: { key: "lastUpdated", descending: false },
  "-_lastUpdated": { key: "lastUpdated", descending: true },
  _id: { key: "id", descending: false },
  "-_id": { key: "id", descending: true },
};

/** The order when `_sort` is absent: newest first, what a listing of documents wants. */
export const DEFAULT_SORT: SearchSort = { key: "lastUpdated", descending: true };

/** Parses `_sort` (STU3+ `-` prefix) or DSTU2's `_sort:asc` / `_sort:desc`. */
function parseSort(value: string, modifier: string | null): SearchSort {
  const keys = value.split(",").map((key) => key.trim());
  if (keys.length > 1) throw unsupported("_sort takes one key: _lastUpdated, -_lastUpdated, _id or -_id");
  const key = keys[0] ?? "";
  const sort = SORTS[key];
  if (!sort || (modifier !== null && key.startsWith("-"))) {
    throw unsupported(`_sort=${value} is not supported: use _lastUpdated, -_lastUpdated, _id or -_id`);
  }
  return modifier === "desc" ? { ...sort, descending: true } : sort;
}

// 32-bit FNV-1a: only tells whether a cursor was made for the same filters, not a secret.
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(36);
}

/** Parses the parameters of a Binary search; throws 400 for invalid values (and unknown ones when strict). */
export function parseSearchParams(
  entries: Iterable<[string, string]>,
  options: { strict: boolean },
): SearchParams {
  const { params, ignored } = sortOut(entries, SEARCH_PARAMS, options.strict, {
    _sort: ["asc", "desc"],
    filename: ["exact", "contains"],
  });
  let ids: string[] | null = null;
  let types: TypeMatch[] | null = null;
  const fileNames: FileNameMatch[][] = [];
  let lastUpdated: TimeRange = { from: null, to: null };
  let sort = DEFAULT_SORT;
  let count = DEFAULT_COUNT;
  let countOnly = false;
  let elements: string[] | null = null;
  let pretty = false;
  let cursorText: string | null = null;
  const links: [string, string][] = [];
  const filters: string[] = [];
  for (const [name, modifier, value] of params) {
    switch (name) {
      case "_id": {
        const list = value.split(",").map((id) => id.trim());
        for (const id of list)
          if (!isValidId(id)) throw invalid(`_id ${JSON.stringify(id)} is not a valid id`);
        ids = ids === null ? [...new Set(list)] : ids.filter((id) => list.includes(id));
        break;
      }
      case "contenttype": {
        const list = parseTypeList(value);
        types = types === null ? list : intersectTypes(types, list);
        break;
      }
      case "filename": {
        const list = parseFileNameList(value, modifier === "exact");
        if (list.length > 0) fileNames.push(list);
        break;
      }
      case "_lastUpdated":
        lastUpdated = intersectRanges(lastUpdated, parseLastUpdated(value));
        break;
      case "_sort":
        sort = parseSort(value, modifier);
        break;
      case "_count":
        count = parseCount(value);
        break;
      case "_summary":
        // R4 search.html#summary defines true, text, data, count and false; entries are always in summary
        // form (never the payload), which every value but count leaves as it is.
        if (value === "count") countOnly = true;
        else if (!["true", "false", "text", "data"].includes(value)) {
          throw unsupported(
            `_summary=${value} does not apply to a search (true, text, data, false or count)`,
          );
        }
        break;
      case "_elements":
        elements = value
          .split(",")
          .map((element) => element.trim().replace(/^Binary\./, ""))
          .filter((element) => element !== "");
        break;
      case "_pretty":
        pretty = value === "true";
        break;
      case "_cursor":
        cursorText = value;
        continue;
    }
    const raw = modifier === null ? name : `${name}:${modifier}`;
    if (name !== "_count") links.push([raw, value]);
    if (["_id", "contenttype", "filename", "_lastUpdated", "_sort"].includes(name))
      filters.push(`${raw}=${value}`);
  }
  if (count === 0) countOnly = true;
  links.push(["_count", String(count)]);
  const fingerprint = fnv1a(filters.join("&"));
  return {
    ids,
    types: types === null ? null : distinctTypes(types),
    fileNames,
    lastUpdated,
    sort,
    count,
    countOnly,
    elements,
    pretty,
    cursor: cursorText,
    ignored,
    links,
    fingerprint,
  };
}

/** Parses the parameters of `GET [base]/Binary/_history` (R4 http.html#history): `_since`, `_count`. */
export function parseHistoryParams(
  entries: Iterable<[string, string]>,
  options: { strict: boolean },
): HistoryParams {
  const { params, ignored } = sortOut(entries, HISTORY_PARAMS, options.strict);
  let since: number | null = null;
  let count = DEFAULT_COUNT;
  let pretty = false;
  let cursorText: string | null = null;
  const links: [string, string][] = [];
  for (const [name, , value] of params) {
    if (name === "_since") since = parseDateRange(value).from;
    else if (name === "_count") count = Math.max(parseCount(value), 1);
    else if (name === "_pretty") pretty = value === "true";
    else if (name === "_cursor") {
      cursorText = value;
      continue;
    }
    if (name !== "_count") links.push([name, value]);
  }
  links.push(["_count", String(count)]);
  const fingerprint = fnv1a(`_since=${since ?? ""}`);
  return {
    since,
    count,
    pretty,
    cursor: cursorText,
    ignored,
    links,
    fingerprint,
  };
}

/** The 400 of a `_cursor` this server did not make (or not for this search, or altered). */
export function invalidCursor(): FhirError {
  return invalid("_cursor is not a cursor this server made; start again from the first page");
}

/** Encodes a cursor as base64url JSON, easy to debug; search/paging.ts seals it before any client sees it. */
export function encodeCursor(cursor: Cursor): string {
  const { snapshot, direction, key, total, filters } = cursor;
  return Buffer.from(
    JSON.stringify([snapshot, direction === "next" ? "n" : "p", key, total, filters]),
  ).toString("base64url");
}

/**
 * Decodes a `_cursor`; 400 when it is malformed or was made for another sort. A cursor made for other
 * filters still pages (the client changed the query), but its total is recounted: `total` -1 says so.
 */
export function decodeCursor(text: string, sortKey: SortKey, fingerprint: string): Cursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    value = null;
  }
  if (!Array.isArray(value) || value.length !== 5) throw invalidCursor();
  const [snapshot, direction, key, total, filters] = value as unknown[];
  const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!isCount(snapshot) || (direction !== "n" && direction !== "p") || !Array.isArray(key))
    throw invalidCursor();
  if (!Number.isInteger(total) || typeof filters !== "string" || key.length !== 2) throw invalidCursor();
  const [first, second] = key as unknown[];
  if (!isCount(second)) throw invalidCursor();
  const keyOk = sortKey === "id" ? typeof first === "string" && first.length <= 64 : Number.isFinite(first);
  if (!keyOk) throw invalidCursor();
  return {
    snapshot,
    direction: direction === "n" ? "next" : "previous",
    key: [first as number | string, second] as Cursor["key"],
    total: filters === fingerprint ? (total as number) : -1,
    filters,
  };
}
