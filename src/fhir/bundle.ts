/** Bundles: the history of a Binary (and, later, search results). */
import { type BinaryHeader, toBinaryResource } from "./binary.ts";
import type { Resource } from "./outcome.ts";
import type { FhirVersion } from "./version.ts";

/** A version as history lists it: content metadata, or a deletion. */
export type HistoryRecord =
  | (BinaryHeader & { deleted: false; method?: "POST" | "PUT" })
  | { id: string; versionId: number; lastUpdated: string; deleted: true };

/**
 * A `history` Bundle, newest first, deletions as entries with `request.method` DELETE and no resource
 * (R4 http.html#history). Entries carry the resource in summary form: the payload is read with vread.
 */
export function toHistoryBundle(
  records: readonly HistoryRecord[],
  base: string,
  version: FhirVersion,
  self: string,
): Resource {
  return {
    resourceType: "Bundle",
    type: "history",
    total: records.length,
    link: [{ relation: "self", url: self }],
    entry: records.map((record) => {
      const fullUrl = `${base}/Binary/${record.id}`;
      const etag = `W/"${record.versionId}"`;
      if (record.deleted) {
        return {
          fullUrl,
          request: { method: "DELETE", url: `Binary/${record.id}` },
          response: { status: "204", etag, lastModified: record.lastUpdated },
        };
      }
      const first = record.versionId === 1;
      // The interaction that made the version, so a create by PUT is a PUT; versions recorded without their
      // method were made by POST when first, by PUT after.
      const method = record.method ?? (first ? "POST" : "PUT");
      return {
        fullUrl,
        resource: toBinaryResource(record, version, null),
        request: method === "POST" ? { method, url: "Binary" } : { method, url: `Binary/${record.id}` },
        response: { status: first ? "201" : "200", etag, lastModified: record.lastUpdated },
      };
    }),
  };
}
