/**
 * A FAT file system (what most USB disks carry) mounted by a test, as root: no hard links, no modes, names
 * compared without case. The kernel's vfat where it has one, else the FUSE driver fusefat (Debian's
 * package of that name), as in containers whose kernel lacks vfat. Owner-only masks, so the modes fhirbin
 * expects are already there and it never needs to change one.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { run } from "./tmpfs.ts";

/** Why a FAT file system cannot be mounted here, or null when it can. */
export function vfatProblem(): string | null {
  if (process.getuid?.() !== 0) return "not running as root";
  if (!Bun.which("mkfs.vfat")) return "mkfs.vfat is missing: apt-get install dosfstools";
  const probe = mkdtempSync(join(tmpdir(), "fhirbin-vfat-probe-"));
  try {
    using _ = mountVfat(probe);
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Mounts a new 32 MiB FAT file system on the existing directory `dir`; unmounted when disposed. */
export function mountVfat(dir: string): Disposable {
  const image = join(mkdtempSync(join(tmpdir(), "fhirbin-vfat-")), "fat.img");
  const remove = (): void => rmSync(dirname(image), { recursive: true, force: true });
  const failure =
    run("truncate", "-s", "32M", image) ??
    run("mkfs.vfat", "-F", "32", image) ??
    (run("mount", "-o", "loop,uid=0,gid=0,fmask=0177,dmask=0077", image, dir) &&
      (Bun.which("fusefat")
        ? run("fusefat", "-o", "rw+,umask=0177", image, dir)
        : "the kernel has no vfat and fusefat is missing: apt-get install fusefat"));
  if (failure) {
    remove();
    throw new Error(failure);
  }
  return {
    [Symbol.dispose]: () => {
      run("umount", "-l", dir);
      remove();
    },
  };
}
