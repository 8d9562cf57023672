/** Builds the fhirbin application; it never listens (main.ts does, tests use port 0). */
import { randomBytes } from "node:crypto";
import { Elysia } from "elysia";
import type { Config } from "./config.ts";
import { corsOnResponse, corsPolicy, smartRoutes } from "./http/auth.ts";
import { hostPolicy } from "./http/base-url.ts";
import { binaryInteractions, binaryRoutes } from "./http/binary.ts";
import { wrappedLimit } from "./http/body.ts";
import { docsRoutes } from "./http/docs.ts";
import { errorHandler, errorResponse } from "./http/errors.ts";
import { hotReadRoutes } from "./http/hot-read.ts";
import { connectionGuard, createConnectionGuard } from "./http/limits.ts";
import { createObserver, requestObserver } from "./http/logging.ts";
import { metadataRoutes } from "./http/metadata.ts";
import { countingStore, createMetrics, type Metrics, opsRoutes, type ReadinessCheck } from "./http/ops.ts";
import { purgeRoutes } from "./http/purge.ts";
import { searchRoutes } from "./http/search.ts";
import { webRoutes } from "./http/web.ts";
import { isIndexed } from "./search/indexed-store.ts";
import type { AuditSink } from "./security/audit.ts";
import type { Store } from "./store/types.ts";

export interface AppDeps {
  config: Config;
  store: Store;
  /** Where operational log lines go (stderr in the executable). */
  log: (line: string) => void;
  /** Extra `/readyz` checks by name (the store's writability is always checked); none by default. */
  ready?: Readonly<Record<string, ReadinessCheck>>;
  /** Where the audit trail of Binary requests goes (`<data>/audit` in the executable); none by default. */
  audit?: AuditSink;
  /** The counters behind `/metrics`, when the caller reads them too (the executable's idle collection). */
  metrics?: Metrics;
}

export function createApp({
  config,
  store: rawStore,
  log,
  ready,
  audit,
  metrics = createMetrics(),
}: AppDeps) {
  const store = countingStore(rawStore, metrics);
  // A store with a search index gets the search routes, and /readyz waits for the index to catch up with
  // every committed write after a crash, and to be rebuilt when found damaged.
  const indexed = isIndexed(rawStore) ? rawStore : null;
  const checks = indexed ? { searchIndex: () => indexed.searchable(), ...ready } : ready;
  const { basePath } = config;
  const cors = corsOnResponse(config.corsOrigins);
  const renderError = (error: unknown, request: Request): Response =>
    errorResponse(error, request, config.fhirVersion, log);
  const observer = createObserver({
    format: config.logFormat,
    log,
    metrics,
    basePath,
    audit,
    renderError: (error, request) => {
      const response = renderError(error, request);
      cors(request, response);
      return response;
    },
  });
  const guard = createConnectionGuard(config);
  // Without a search index (no cursors of its own) an instance history's cursors last as long as the process.
  const cursorKey = indexed?.cursorKey ?? randomBytes(32);
  const binary = binaryInteractions({ config, store, guard, cursorKey });
  return new Elysia({
    name: "fhirbin",
    serve: {
      // Never the default error page with the error text.
      development: false,
      // fhirbin enforces the size limit itself while streaming, with an OperationOutcome; Bun's own cap
      // (128 MiB by default) only has to stay out of the way.
      maxRequestBodySize: wrappedLimit(config.maxSize) * 2,
      // Long uploads and downloads of large documents must not be cut off (idleTimeout counts handler time);
      // a body that stops is dropped by limits.ts instead.
      idleTimeout: 0,
      // Elysia's Bun adapter asks for SO_REUSEPORT, with which a second server on the port starts silently
      // and the kernel spreads connections over both: a port in use must fail the start instead.
      reusePort: false,
      // Merged over the routes Elysia gives Bun's router, so these win for their methods.
      routes: hotReadRoutes({
        basePath,
        binary,
        observer,
        cors,
        guard,
        renderError,
      }),
    },
  })
    .use(requestObserver(observer))
    .use(connectionGuard(guard))
    .use(corsPolicy(config.corsOrigins))
    .use(hostPolicy())
    .use(errorHandler(config.fhirVersion, log))
    .use(opsRoutes({ store, metrics, ...(checks ? { checks } : {}) }))
    .use(docsRoutes(config))
    .use(webRoutes(config))
    .use(metadataRoutes(config))
    .use(smartRoutes(config))
    .use(
      indexed ? searchRoutes({ config, store: indexed, guard }) : new Elysia({ name: "fhirbin-no-search" }),
    )
    .use(purgeRoutes({ config, store, guard }))
    .use(binaryRoutes(basePath, binary));
}
