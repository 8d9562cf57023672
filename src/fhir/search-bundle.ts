/** The `searchset` Bundle of a Binary search and the `history` Bundle of the type-level history. */
import { type BinaryHeader, toBinaryResource } from "./binary.ts";
import { type HistoryRecord, toHistoryBundle } from "./bundle.ts";
import type { Resource } from "./outcome.ts";
import type { FhirVersion } from "./version.ts";

/** The paging links of a Bundle (R4 http.html#paging). */
export interface PageLinks {
  self: string;
  next: string | null;
  previous: string | null;
}

/**
 * A warning of a search's outcome entry: `not-supported` for what was ignored, `incomplete` when the index
 * may lack matches (issue-type: "the content returned may not be complete").
 */
export interface SearchWarning {
  code: "not-supported" | "incomplete";
  diagnostics: string;
}

/** One page of a search: the matches, the total, the links, and the issues to report as an outcome entry. */
export interface SearchPage {
  matches: readonly BinaryHeader[];
  /** The total number of matches, or null when not counted. */
  total: number | null;
  links: PageLinks;
  /** Warnings for an OperationOutcome entry (search.mode `outcome`), e.g. ignored parameters. */
  warnings: readonly SearchWarning[];
}

function toLinks(links: PageLinks): { relation: string; url: string }[] {
  const out = [{ relation: "self", url: links.self }];
  if (links.next) out.push({ relation: "next", url: links.next });
  if (links.previous) out.push({ relation: "previous", url: links.previous });
  return out;
}

/**
 * Keeps only the requested elements of a Binary in summary form, plus the mandatory `id` and `meta`
 * (R4 search.html#elements: "the server SHOULD return only the elements listed, plus mandatory elements";
 * the meta keeps the SUBSETTED tag).
 */
export function selectElements(resource: Resource, elements: readonly string[] | null): Resource {
  if (elements === null) return resource;
  const out: Resource = { resourceType: resource.resourceType };
  for (const [name, value] of Object.entries(resource)) {
    if (name === "id" || name === "meta" || elements.includes(name)) out[name] = value;
  }
  return out;
}

/**
 * A `searchset` Bundle: entries with `fullUrl`, the Binary in summary form (never the payload: "Entries are
 * always FHIR Binary resources, never native"; the content is read with a read) and `search.mode` match,
 * then the warnings as an OperationOutcome entry with `search.mode` outcome.
 */
export function toSearchBundle(
  page: SearchPage,
  base: string,
  version: FhirVersion,
  elements: readonly string[] | null,
): Resource {
  const entry: Record<string, unknown>[] = page.matches.map((header) => ({
    fullUrl: `${base}/Binary/${header.id}`,
    resource: selectElements(toBinaryResource(header, version, null), elements),
    search: { mode: "match" },
  }));
  if (page.warnings.length > 0) {
    entry.push({
      fullUrl: `urn:uuid:${crypto.randomUUID()}`,
      resource: {
        resourceType: "OperationOutcome",
        issue: page.warnings.map(({ code, diagnostics }) => ({ severity: "warning", code, diagnostics })),
      },
      search: { mode: "outcome" },
    });
  }
  const bundle: Resource = { resourceType: "Bundle", type: "searchset" };
  if (page.total !== null) bundle.total = page.total;
  bundle.link = toLinks(page.links);
  if (entry.length > 0) bundle.entry = entry;
  return bundle;
}

/**
 * A page of a `history` Bundle (`GET [base]/Binary/_history` and `GET [base]/Binary/[id]/_history`): the
 * entries, newest first, with the total and the paging links.
 */
export function toTypeHistoryBundle(
  records: readonly HistoryRecord[],
  base: string,
  version: FhirVersion,
  total: number,
  links: PageLinks,
): Resource {
  const bundle = toHistoryBundle(records, base, version, links.self);
  const out: Resource = { resourceType: "Bundle", type: "history", total, link: toLinks(links) };
  if (records.length > 0) out.entry = bundle.entry;
  return out;
}
