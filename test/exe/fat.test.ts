/**
 * A data directory on FAT or exFAT (a USB disk, say) has no hard links, which every commit of the store
 * rests on: it is refused at start, before anything is written, rather than answering every write 503.
 * Skipped, with a notice, where a FAT file system cannot be loop-mounted (not root, no dosfstools).
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { mountVfat, vfatProblem } from "../vfat.ts";
import { runFhirbin, tempDir } from "./spawn.ts";

const problem = vfatProblem();
if (problem) console.warn(`NOTICE: the FAT file system test is SKIPPED: ${problem}`);

describe.skipIf(problem !== null)("a FAT file system", () => {
  test("a data directory on a file system without hard links is refused at start, saying why", async () => {
    using mount = tempDir("fhirbin-fat-");
    using _ = mountVfat(mount.path);
    const data = join(mount.path, "data");
    const result = await runFhirbin(["serve", "--port", "0", "--data", data, "--auth", "off"]);
    expect({ exitCode: result.exitCode, stdout: result.stdout }).toEqual({ exitCode: 1, stdout: "" });
    expect(result.stderr).toContain(
      `the data directory ${data} is on a file system without hard links (EPERM), such as FAT or exFAT`,
    );
    // Nothing of a document, and no probe left behind.
    expect(readdirSync(join(data, "tmp"))).toEqual([]);
  });
});
