/** The token generated on first start when none is configured, kept in the data directory. */
import { randomBytes } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { PRIVATE_FILE, storeOwner } from "./store/fs-private.ts";

/** Reads `<data>/auth-token`, or creates it (owner-only, 0600) with a random 256-bit token. */
export async function loadOrCreateToken(
  dataDir: string,
): Promise<{ token: string; path: string; created: boolean }> {
  const path = join(dataDir, "auth-token");
  try {
    return { token: (await readFile(path, "utf8")).trim(), path, created: false };
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  const token = randomBytes(32).toString("base64url");
  const handle = await open(path, "wx", PRIVATE_FILE);
  try {
    const owner = storeOwner(dataDir);
    if (owner) await handle.chown(owner.uid, owner.gid);
    await handle.writeFile(`${token}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { token, path, created: true };
}
