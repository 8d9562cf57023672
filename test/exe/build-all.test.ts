/**
 * The executables of `npm run build:all`: five files with the right header (ELF, PE or Mach-O) and machine,
 * matching dist/SHA256SUMS, and the Linux x64 one smoke-tested. Building them takes a while and downloads the
 * runtimes, so `npm test` does not: these tests run when dist/SHA256SUMS exists (after `npm run build:all`).
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, Server, tempDir } from "./spawn.ts";

const DIST = join(ROOT, "dist");
const SUMS = join(DIST, "SHA256SUMS");
const built = existsSync(SUMS);

/** The executable format and machine read from a file's header. */
export function executableKind(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) === 0x7f454c46) {
    // ELF: e_machine at offset 18, in the byte order given by EI_DATA (1 = little-endian).
    const machine = view.getUint16(18, bytes[5] === 1);
    return `elf-${{ 62: "x64", 183: "arm64" }[machine] ?? machine.toString(16)}`;
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) {
    // PE: "MZ", the PE header's offset at 0x3c, "PE\0\0", then the machine.
    const pe = view.getUint32(0x3c, true);
    if (view.getUint32(pe) !== 0x50450000) return "mz";
    const machine = view.getUint16(pe + 4, true);
    return `pe-${{ 34404: "x64", 43620: "arm64" }[machine] ?? machine.toString(16)}`;
  }
  if (view.getUint32(0, true) === 0xfeedfacf) {
    // 64-bit Mach-O, little-endian: cputype follows the magic.
    const cpu = view.getUint32(4, true);
    return `macho-${{ 16777223: "x64", 16777228: "arm64" }[cpu] ?? cpu.toString(16)}`;
  }
  return "unknown";
}

const EXPECTED: Record<string, string> = {
  "fhirbin-linux-x64": "elf-x64",
  "fhirbin-linux-arm64": "elf-arm64",
  "fhirbin-windows-x64.exe": "pe-x64",
  "fhirbin-darwin-x64": "macho-x64",
  "fhirbin-darwin-arm64": "macho-arm64",
};

describe.skipIf(!built)("npm run build:all (dist/SHA256SUMS present)", () => {
  test("five executables of the right format and machine, matching SHA256SUMS", async () => {
    const sums = readFileSync(SUMS, "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split("  "));
    expect(sums.map(([, name]) => name).sort()).toEqual(Object.keys(EXPECTED).sort());
    const kinds: Record<string, string> = {};
    for (const [digest, name = ""] of sums) {
      const bytes = await Bun.file(join(DIST, name)).bytes();
      kinds[name] = executableKind(bytes);
      expect(new Bun.CryptoHasher("sha256").update(bytes).digest("hex")).toBe(digest as string);
    }
    expect(kinds).toEqual(EXPECTED);
  });

  test("the Linux x64 executable prints its version and serves /healthz", async () => {
    const exe = join(DIST, "fhirbin-linux-x64");
    const version = Bun.spawnSync([exe, "--version"]);
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString().trim()).toMatch(/^\d+\.\d+\.\d+/);

    using dir = tempDir();
    await using server = new Server(
      Bun.spawn([exe, "--port", "0", "--data", dir.path, "--auth", "off"], {
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
        timeout: 60_000,
      }),
    );
    await server.listening();
    const res = await fetch(`${server.origin}/healthz`);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(await server.stop()).toBe(0);
  });
});

test("executableKind tells the five formats apart", () => {
  const elf = new Uint8Array(64);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
  elf[18] = 0xb7;
  expect(executableKind(elf)).toBe("elf-arm64");
  const pe = new Uint8Array(256);
  pe.set([0x4d, 0x5a]);
  pe[0x3c] = 0x80;
  pe.set([0x50, 0x45, 0, 0, 0x64, 0x86], 0x80);
  expect(executableKind(pe)).toBe("pe-x64");
  const macho = new Uint8Array(16);
  macho.set([0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0, 0, 0x01]);
  expect(executableKind(macho)).toBe("macho-arm64");
  expect(executableKind(new Uint8Array(16))).toBe("unknown");
});
