/**
 * Converts a data directory of the earlier layout, one directory per id (`binary/<fan>/<enc-id>/<n>.json`),
 * to sidecars side by side in the fan-out directory (`binary/<fan>/<enc-id>.<n>.json`). Run once, when the
 * store is opened under its lock, before anything is read or written.
 *
 * Crash-safe by its order: every sidecar is linked under its new name and the fan-out directory fsynced
 * before any old name is removed, and the conversion is marked done (`binary/.flat`) only at the end. A
 * conversion cut short is simply run again: a new name already in place with the same content counts as
 * converted. Nothing is ever overwritten, and whatever is not a sidecar stays where it is for `verify`.
 */
import { chown, readdir, readFile, rmdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exists, fsyncDir, linkNoClobber } from "./fs-durable.ts";
import { decodeId, isFanName, type Layout, sidecarFileName } from "./fs-layout.ts";
import { type Owner, PRIVATE_FILE } from "./fs-private.ts";

const OLD_SIDECAR = /^([1-9][0-9]*)\.json$/;

/**
 * Converts the sidecars of `paths` if they are in the earlier layout; `log` hears how many ids moved. The
 * marker it leaves is given to `owner` when not null (fs-private.ts).
 */
export async function convertLayout(
  paths: Layout,
  log: (line: string) => void,
  owner: Owner | null,
): Promise<void> {
  if (await exists(paths.flat)) return;
  let converted = 0;
  const left: string[] = [];
  for (const fan of (await readdir(paths.binary)).filter(isFanName)) {
    const fanDir = join(paths.binary, fan);
    const idDirs = (await readdir(fanDir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && decodeId(entry.name) !== null)
      .map((entry) => entry.name);
    if (idDirs.length === 0) continue;
    // Old names that may go once the new ones are durable, and the id directories that are then empty.
    const linked: string[] = [];
    const emptied: string[] = [];
    for (const encoded of idDirs) {
      const dir = join(fanDir, encoded);
      const linkedBefore = linked.length;
      let keep = false;
      for (const name of await readdir(dir)) {
        const versionId = OLD_SIDECAR.exec(name)?.[1];
        const from = join(dir, name);
        const to = versionId === undefined ? null : join(fanDir, sidecarFileName(encoded, Number(versionId)));
        if (to && ((await linkNoClobber(from, to)) || (await sameContent(from, to)))) {
          linked.push(from);
        } else {
          keep = true;
          left.push(from);
        }
      }
      if (!keep) emptied.push(dir);
      if (linked.length > linkedBefore) converted++;
    }
    await fsyncDir(fanDir);
    for (const path of linked) await unlink(path);
    for (const dir of emptied) await rmdir(dir);
    await fsyncDir(fanDir);
  }
  await writeFile(paths.flat, "", { flag: "wx", mode: PRIVATE_FILE, flush: true });
  if (owner) await chown(paths.flat, owner.uid, owner.gid);
  await fsyncDir(paths.binary);
  if (converted > 0) {
    log(`converted the sidecars of ${converted} ids to this version's layout (binary/<fan>/<id>.<n>.json)`);
  }
  if (left.length > 0) {
    log(`left ${left.length} files of the earlier layout in place (run fhirbin verify): ${left.join(", ")}`);
  }
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([readFile(a), readFile(b)]);
  return x.equals(y);
}
