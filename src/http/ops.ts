/**
 * Operations at the server root, outside the FHIR base and without a token: `/healthz` (alive), `/readyz`
 * (store writable plus any extra checks) and `/metrics` (Prometheus text format, version 0.0.4).
 */
import { Elysia } from "elysia";
import type { DeletedVersion, Store, StoredVersion, WriteResult } from "../store/types.ts";

/** A named readiness check: ready when it returns true (a throw counts as not ready). */
export type ReadinessCheck = () => boolean | Promise<boolean>;

/** Upper bounds of the latency histogram buckets, in seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Latency {
  buckets: Float64Array;
  count: number;
  sum: number;
}

/** The counters behind `/metrics`; updated by the request hooks and the counting store, cheap to update. */
export interface Metrics {
  /** Requests answered since start (every interaction). */
  requests(): number;
  /** Records one finished request. */
  observe(interaction: string, status: number, seconds: number, bytesIn: number, bytesOut: number): void;
  /** Records a committed content version of `size` bytes; `created` when it made a new document. */
  written(size: number, created: boolean): void;
  /** Records a deletion. */
  deleted(): void;
  /** The Prometheus text exposition of every metric. */
  render(): string;
}

/** Creates an empty set of metrics. */
export function createMetrics(): Metrics {
  // Nested maps keyed by interaction then status: recording a request allocates nothing once both are known.
  const requests = new Map<string, Map<number, number>>();
  const latency = new Map<string, Latency>();
  let answered = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  let created = 0;
  let deleted = 0;
  let versions = 0;
  let storedBytes = 0;

  const latencyOf = (interaction: string): Latency => {
    let entry = latency.get(interaction);
    if (!entry) {
      entry = { buckets: new Float64Array(LATENCY_BUCKETS.length), count: 0, sum: 0 };
      latency.set(interaction, entry);
    }
    return entry;
  };

  return {
    requests: () => answered,
    observe(interaction, status, seconds, inBytes, outBytes) {
      answered++;
      let byStatus = requests.get(interaction);
      if (!byStatus) {
        byStatus = new Map();
        requests.set(interaction, byStatus);
      }
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      const entry = latencyOf(interaction);
      entry.count++;
      entry.sum += seconds;
      // Only the first bucket that holds the value is counted; render() accumulates them.
      for (let index = 0; index < LATENCY_BUCKETS.length; index++) {
        if (seconds <= (LATENCY_BUCKETS[index] as number)) {
          entry.buckets[index] = (entry.buckets[index] ?? 0) + 1;
          break;
        }
      }
      bytesIn += inBytes;
      bytesOut += outBytes;
    },
    written(size, isNew) {
      versions++;
      storedBytes += size;
      if (isNew) created++;
    },
    deleted() {
      deleted++;
    },
    render() {
      const lines: string[] = [];
      const metric = (name: string, type: string, help: string): void => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      };
      metric("fhirbin_http_requests_total", "counter", "HTTP requests answered, by interaction and status.");
      for (const [interaction, byStatus] of [...requests].sort(byKey)) {
        for (const [status, count] of [...byStatus].sort(byKey)) {
          lines.push(`fhirbin_http_requests_total{interaction="${interaction}",status="${status}"} ${count}`);
        }
      }
      metric(
        "fhirbin_http_request_duration_seconds",
        "histogram",
        "Time from receiving a request to handing its response to the server, by interaction.",
      );
      for (const [interaction, entry] of [...latency].sort(byKey)) {
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((bound, index) => {
          cumulative += entry.buckets[index] ?? 0;
          lines.push(
            `fhirbin_http_request_duration_seconds_bucket{interaction="${interaction}",le="${bound}"} ${cumulative}`,
          );
        });
        lines.push(
          `fhirbin_http_request_duration_seconds_bucket{interaction="${interaction}",le="+Inf"} ${entry.count}`,
          `fhirbin_http_request_duration_seconds_sum{interaction="${interaction}"} ${entry.sum}`,
          `fhirbin_http_request_duration_seconds_count{interaction="${interaction}"} ${entry.count}`,
        );
      }
      metric("fhirbin_http_request_bytes_total", "counter", "Request body bytes received (Content-Length).");
      lines.push(`fhirbin_http_request_bytes_total ${bytesIn}`);
      metric("fhirbin_http_response_bytes_total", "counter", "Response body bytes sent (Content-Length).");
      lines.push(`fhirbin_http_response_bytes_total ${bytesOut}`);
      metric("fhirbin_store_documents_created_total", "counter", "Documents created since the start.");
      lines.push(`fhirbin_store_documents_created_total ${created}`);
      metric("fhirbin_store_documents_deleted_total", "counter", "Documents deleted since the start.");
      lines.push(`fhirbin_store_documents_deleted_total ${deleted}`);
      metric(
        "fhirbin_store_versions_written_total",
        "counter",
        "Content versions committed since the start.",
      );
      lines.push(`fhirbin_store_versions_written_total ${versions}`);
      metric(
        "fhirbin_store_content_bytes_written_total",
        "counter",
        "Content bytes of the versions committed since the start.",
      );
      lines.push(`fhirbin_store_content_bytes_written_total ${storedBytes}`);
      return `${lines.join("\n")}\n`;
    },
  };
}

function byKey<K extends string | number>(a: [K, unknown], b: [K, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/**
 * Wraps a store so that every committed write and deletion updates `metrics`; every other member passes
 * straight through. Plain delegation rather than a Proxy: a read goes through here twice.
 */
export function countingStore(store: Store, metrics: Metrics): Store {
  return {
    current: (id) => store.current(id),
    peek: (id) => store.peek(id),
    version: (id, versionId) => store.version(id, versionId),
    history: (id) => store.history(id),
    purge: (id, mode, options) => store.purge(id, mode, options),
    content: (version) => store.content(version),
    writable: () => store.writable(),
    close: () => store.close(),
    async create(request): Promise<StoredVersion> {
      const version = await store.create(request);
      metrics.written(version.size, true);
      return version;
    },
    async update(id, request): Promise<WriteResult> {
      const result = await store.update(id, request);
      metrics.written(result.version.size, result.created);
      return result;
    },
    async delete(id, preconditions): Promise<DeletedVersion | null> {
      const tombstone = await store.delete(id, preconditions);
      if (tombstone) metrics.deleted();
      return tombstone;
    },
  };
}

/** A small uncached response with an exact Content-Length (so the request log and metrics count it). */
function textResponse(body: string, contentType: string, status = 200): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": contentType,
      "content-length": String(Buffer.byteLength(body)),
      "cache-control": "no-store",
    },
  });
}

/** Runs every check; a check that throws or takes longer than it should is simply not ready. */
async function readiness(checks: Readonly<Record<string, ReadinessCheck>>): Promise<Record<string, boolean>> {
  const names = Object.keys(checks);
  const results = await Promise.all(
    names.map(async (name) => {
      try {
        return (await checks[name]?.()) === true;
      } catch {
        return false;
      }
    }),
  );
  return Object.fromEntries(names.map((name, index) => [name, results[index] === true]));
}

/** The operations routes at the server root. */
export function opsRoutes({
  store,
  metrics,
  checks = {},
}: {
  store: Store;
  metrics: Metrics;
  /** Extra readiness checks by name (e.g. the search index being caught up); none by default. */
  checks?: Readonly<Record<string, ReadinessCheck>>;
}) {
  const all: Record<string, ReadinessCheck> = { store: () => store.writable(), ...checks };
  const healthz = () => textResponse('{"status":"ok"}\n', "application/json");
  const readyz = async () => {
    const results = await readiness(all);
    const ready = Object.values(results).every(Boolean);
    const body = { status: ready ? "ready" : "not ready", checks: results };
    return textResponse(`${JSON.stringify(body)}\n`, "application/json", ready ? 200 : 503);
  };
  const exposition = () => textResponse(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  // OpenAPI descriptions for /docs; no token is needed for any of these.
  const live = {
    detail: { tags: ["Operations"], summary: "Liveness: 200 while the process serves requests" },
  };
  const ready = {
    detail: {
      tags: ["Operations"],
      summary: "Readiness: 200 when the store is writable and every other check passes, else 503",
    },
  };
  const scrape = { detail: { tags: ["Operations"], summary: "Prometheus metrics (text format 0.0.4)" } };
  return new Elysia({ name: "fhirbin-ops" })
    .get("/healthz", healthz, live)
    .head("/healthz", healthz, live)
    .get("/readyz", readyz, ready)
    .head("/readyz", readyz, ready)
    .get("/metrics", exposition, scrape);
}
