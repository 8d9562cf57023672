#!/usr/bin/env bun
/** Entry of the executable: the only place that exits the process. */
import { runCli } from "./cli.ts";

const status = await runCli(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}).catch((error: unknown) => {
  process.stderr.write(
    `fhirbin: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  return 1;
});
process.exit(status);
