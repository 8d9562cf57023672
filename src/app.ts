/** Builds the fhirbin application; it never listens (main.ts does, tests use port 0). */
import { Elysia } from "elysia";
import type { Config } from "./config.ts";
import { binaryRoutes } from "./http/binary.ts";
import { wrappedLimit } from "./http/body.ts";
import { errorHandler } from "./http/errors.ts";
import { metadataRoutes } from "./http/metadata.ts";
import type { Store } from "./store/types.ts";

export interface AppDeps {
  config: Config;
  store: Store;
  /** Where operational log lines go (stderr in the executable). */
  log: (line: string) => void;
}

export function createApp({ config, store, log }: AppDeps) {
  return new Elysia({
    name: "fhirbin",
    serve: {
      // Never the default error page with the error text.
      development: false,
      // fhirbin enforces the size limit itself while streaming, with an OperationOutcome; Bun's own cap
      // (128 MiB by default) only has to stay out of the way.
      maxRequestBodySize: wrappedLimit(config.maxSize) * 2,
      // Long uploads and downloads of large documents must not be cut off (idleTimeout counts handler time).
      idleTimeout: 0,
    },
  })
    .use(errorHandler(config.fhirVersion, log))
    .use(metadataRoutes(config))
    .use(binaryRoutes({ config, store }));
}
