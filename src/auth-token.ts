/** The token generated on first start when none is configured, kept in the data directory. */
import { randomBytes } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PRIVATE_FILE, storeOwner } from "./store/fs-private.ts";

/** Reads a secret kept in a file, or creates the file (owner-only, 0600) with a random 256-bit secret. */
export async function loadOrCreateSecret(path: string): Promise<{ secret: string; created: boolean }> {
  try {
    return { secret: (await readFile(path, "utf8")).trim(), created: false };
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
  const secret = randomBytes(32).toString("base64url");
  const handle = await open(path, "wx", PRIVATE_FILE);
  try {
    // A secret written into another user's data directory (by root) is that user's (fs-private.ts).
    const owner = storeOwner(dirname(path));
    if (owner) await handle.chown(owner.uid, owner.gid);
    await handle.writeFile(`${secret}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { secret, created: true };
}

/** Reads `<data>/auth-token`, or creates it (owner-only, 0600) with a random 256-bit token. */
export async function loadOrCreateToken(
  dataDir: string,
): Promise<{ token: string; path: string; created: boolean }> {
  const path = join(dataDir, "auth-token");
  const { secret, created } = await loadOrCreateSecret(path);
  return { token: secret, path, created };
}
