/**
 * `npm run build:all`: cross-compiles fhirbin for every supported platform with `bun build --compile`, using
 * the Bun runtimes npm ships as `@oven/bun-<platform>` packages, and writes `dist/fhirbin-<os>-<arch>[.exe]`
 * plus `dist/SHA256SUMS`.
 *
 * The runtimes come from the npm registry through `npm pack` (npm's own cache, authentication and proxy
 * settings apply), at the version of the `bun` dev dependency, and each tarball is checked against the
 * integrity recorded for it in package-lock.json. They are not dev dependencies because npm refuses to install
 * a package whose `os`/`cpu` do not match the machine, which would break `npm ci` on a fresh clone.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/** One cross-compilation target: Bun's `--target`, the npm package of its runtime and the output name. */
export interface BuildTarget {
  target: string;
  runtimePackage: string;
  runtimeBinary: string;
  output: string;
}

/** The five platforms fhirbin ships for: Linux x64 and arm64, Windows x64, macOS x64 and arm64. */
export const BUILD_TARGETS: readonly BuildTarget[] = [
  {
    target: "bun-linux-x64",
    runtimePackage: "@oven/bun-linux-x64",
    runtimeBinary: "bin/bun",
    output: "fhirbin-linux-x64",
  },
  {
    target: "bun-linux-arm64",
    runtimePackage: "@oven/bun-linux-aarch64",
    runtimeBinary: "bin/bun",
    output: "fhirbin-linux-arm64",
  },
  {
    target: "bun-windows-x64",
    runtimePackage: "@oven/bun-windows-x64",
    runtimeBinary: "bin/bun.exe",
    output: "fhirbin-windows-x64.exe",
  },
  {
    target: "bun-darwin-x64",
    runtimePackage: "@oven/bun-darwin-x64",
    runtimeBinary: "bin/bun",
    output: "fhirbin-darwin-x64",
  },
  {
    target: "bun-darwin-arm64",
    runtimePackage: "@oven/bun-darwin-aarch64",
    runtimeBinary: "bin/bun",
    output: "fhirbin-darwin-arm64",
  },
];

const ROOT = resolve(import.meta.dir, "../..");
const DIST = join(ROOT, "dist");
/** Unpacked runtimes, kept between builds (node_modules is never committed and `npm ci` starts afresh). */
const CACHE = join(ROOT, "node_modules", ".cache", "fhirbin-runtimes");

function run(cmd: string, args: readonly string[], cwd = ROOT): string {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed with status ${result.status}`);
  return result.stdout;
}

/** The integrity package-lock.json records for a package (as an optional dependency of `bun`). */
function lockedIntegrity(name: string, version: string): string {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; integrity?: string }>;
  };
  const entry = lock.packages[`node_modules/${name}`];
  if (entry?.version !== version || !entry.integrity) {
    throw new Error(`package-lock.json has no integrity for ${name}@${version}`);
  }
  return entry.integrity;
}

/** Downloads and unpacks one runtime package (once); returns the path of its bun binary. */
function runtimeBinary(target: BuildTarget, version: string): string {
  const dir = join(CACHE, `${target.runtimePackage.replace("/", "+")}@${version}`);
  const binary = join(dir, "package", target.runtimeBinary);
  if (existsSync(binary)) return binary;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const spec = `${target.runtimePackage}@${version}`;
  process.stderr.write(`fetching ${spec} from the npm registry\n`);
  const [packed] = JSON.parse(
    run("npm", ["pack", spec, "--pack-destination", dir, "--json", "--silent"]),
  ) as Array<{ filename: string }>;
  if (!packed) throw new Error(`npm pack ${spec} produced nothing`);
  const tarball = join(dir, packed.filename);
  const expected = lockedIntegrity(target.runtimePackage, version);
  const actual = `sha512-${createHash("sha512").update(readFileSync(tarball)).digest("base64")}`;
  if (actual !== expected) throw new Error(`${spec}: integrity ${actual} does not match package-lock.json`);
  run("tar", ["-xzf", tarball, "-C", dir]);
  rmSync(tarball);
  if (!existsSync(binary)) throw new Error(`${spec} has no ${target.runtimeBinary}`);
  return binary;
}

/** Builds every target into dist/ and writes dist/SHA256SUMS; returns the file names built. */
export function buildAll(targets: readonly BuildTarget[] = BUILD_TARGETS): string[] {
  const bunPackage = JSON.parse(readFileSync(join(ROOT, "node_modules", "bun", "package.json"), "utf8")) as {
    version: string;
  };
  mkdirSync(DIST, { recursive: true });
  const sums: string[] = [];
  for (const target of targets) {
    const executable = runtimeBinary(target, bunPackage.version);
    const outfile = join(DIST, target.output);
    process.stderr.write(`building ${target.output}\n`);
    run(process.execPath, [
      "build",
      "--compile",
      "--minify",
      `--target=${target.target}`,
      `--compile-executable-path=${executable}`,
      "src/main.ts",
      "--outfile",
      outfile,
    ]);
    const digest = createHash("sha256").update(readFileSync(outfile)).digest("hex");
    // The format `sha256sum -c` reads: digest, two spaces (text mode), file name.
    sums.push(`${digest}  ${target.output}`);
  }
  writeFileSync(join(DIST, "SHA256SUMS"), `${sums.join("\n")}\n`);
  return targets.map((target) => target.output);
}

if (import.meta.main) {
  const built = buildAll();
  process.stdout.write(`${built.map((name) => `dist/${name}`).join("\n")}\ndist/SHA256SUMS\n`);
}
