/**
 * The other platforms' executables, run on this x86-64 Linux machine by their emulators: the Windows build
 * under Wine 10 in the Debian trixie root that `.ci/setup-wine` makes, and the linux-arm64 build under
 * qemu-user (`.ci/setup-arm64`). Each platform says how to run fhirbin and where its data directories are,
 * as that platform names them and as this machine sees them.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../exe/spawn.ts";

/** A data directory: the path given to fhirbin, and the same directory seen from this machine. */
export interface PlatformDir extends Disposable {
  /** As fhirbin on the platform is given it (`C:\...` on Windows). */
  arg: string;
  /** As the test reads it here. */
  host: string;
}

export interface Platform {
  name: string;
  /** What runs fhirbin there; its arguments follow. */
  command: readonly string[];
  /** A new, empty data directory whose path has spaces in it. */
  dataDir(label: string): PlatformDir;
  /** Why the platform cannot be run here (with the command that sets it up), or null when it can. */
  missing: string | null;
  /** The longest a start may take: emulation is slow to start a 100 MB executable. */
  startMs: number;
  /** What stops fhirbin gracefully there: Wine turns SIGINT into the Ctrl+C console event. */
  stopSignal: "SIGINT" | "SIGTERM";
  /** The separator of paths as fhirbin there writes them. */
  sep: "\\" | "/";
  /**
   * What /proc/<pid>/comm says of the spawned process once it runs fhirbin: Wine execs the Windows program
   * in the process that `chroot` and `env` exec'd, so its memory is fhirbin's (wineserver apart).
   */
  processName: string;
}

const DIST = join(ROOT, "dist");
let serial = 0;
/** Names unique to this test process, so runs never share a directory. */
const unique = (label: string): string => `${label}-${process.pid}-${++serial}`;

/**
 * The Windows executable under Wine, in the trixie root (FHIRBIN_WINE_ROOT overrides where it is), whose
 * path on this machine is `root`.
 */
export function windowsPlatform(): Platform & { root: string } {
  const root = process.env.FHIRBIN_WINE_ROOT ?? "/var/cache/fhirbin/wine-trixie";
  const exe = join(DIST, "fhirbin-windows-x64.exe");
  const prefix = "/opt/wp";
  const missing =
    unbuilt(exe) ??
    (!existsSync(join(root, ".fhirbin-stamp"))
      ? `no Wine root at ${root}: run \`bash .ci/setup-wine\` as root`
      : !isProcMounted(root)
        ? `${root}/proc is not mounted: run \`bash .ci/setup-wine\` as root`
        : null);
  // The root cannot see this repository: the executable is copied in, when it changed.
  const inside = "/opt/fhirbin/fhirbin.exe";
  if (missing === null) copyIfChanged(exe, join(root, inside));
  const driveC = join(root, prefix, "drive_c");
  return {
    name: "windows-x64 under Wine",
    root,
    command: [
      "chroot",
      root,
      "env",
      "WINEDEBUG=-all",
      `WINEPREFIX=${prefix}`,
      "HOME=/root",
      "XDG_RUNTIME_DIR=/run/user/0",
      "wine",
      inside,
    ],
    dataDir(label) {
      const name = unique(label);
      const host = join(driveC, "fhirbin tests", name, "data dir");
      mkdirSync(join(driveC, "fhirbin tests", name), { recursive: true });
      return {
        arg: `C:\\fhirbin tests\\${name}\\data dir`,
        host,
        [Symbol.dispose]: () => rmSync(join(driveC, "fhirbin tests", name), { recursive: true, force: true }),
      };
    },
    missing,
    startMs: 30_000,
    stopSignal: "SIGINT",
    sep: "\\",
    processName: "fhirbin.exe",
  };
}

/** The linux-arm64 executable under qemu-user. */
export function arm64Platform(): Platform {
  const exe = join(DIST, "fhirbin-linux-arm64");
  const qemu = Bun.which("qemu-aarch64");
  const missing =
    unbuilt(exe) ??
    (!qemu || !existsSync("/lib/ld-linux-aarch64.so.1")
      ? "qemu-aarch64 or the arm64 C runtime is missing: run `bash .ci/setup-arm64` as root"
      : null);
  return {
    name: "linux-arm64 under qemu-user",
    command: [qemu ?? "qemu-aarch64", exe],
    dataDir(label) {
      const parent = join(tmpdir(), `fhirbin arm64 ${unique(label)}`);
      mkdirSync(parent);
      return {
        arg: join(parent, "data dir"),
        host: join(parent, "data dir"),
        [Symbol.dispose]: () => rmSync(parent, { recursive: true, force: true }),
      };
    },
    missing,
    startMs: 30_000,
    stopSignal: "SIGTERM",
    sep: "/",
    processName: "qemu-aarch64",
  };
}

/** Why a cross-compiled executable cannot be tested as it is: missing, or older than the source. */
function unbuilt(exe: string): string | null {
  if (!existsSync(exe)) return `${exe} is missing: run \`npm run build:all\``;
  const newest = Math.max(
    ...readdirSync(join(ROOT, "src"), { recursive: true, encoding: "utf8" }).map(
      (file) => statSync(join(ROOT, "src", file)).mtimeMs,
    ),
  );
  return statSync(exe).mtimeMs < newest ? `${exe} is older than src/: run \`npm run build:all\`` : null;
}

function isProcMounted(root: string): boolean {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[1] === join(root, "proc"));
}

function copyIfChanged(from: string, to: string): void {
  const source = statSync(from);
  const target = existsSync(to) ? statSync(to) : null;
  if (target && target.size === source.size && target.mtimeMs >= source.mtimeMs) return;
  mkdirSync(join(to, ".."), { recursive: true });
  copyFileSync(from, to);
}
