/**
 * The documents the benchmark reads and writes: random bytes (nothing compresses them) typed as PDF, the one
 * set of files served by nginx and the bare Bun server, uploaded to fhirbin with ids chosen here.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";

/** One benchmark document. */
export interface Fixture {
  /** The fhirbin id, also the file name stem: `bench-64k`. */
  id: string;
  /** `64 KiB`, for the report. */
  label: string;
  size: number;
  /** The file nginx and the bare Bun server serve, also the body of create cases. */
  file: string;
  /** Its name under the docs directory: `bench-64k.pdf`. */
  fileName: string;
}

export const CONTENT_TYPE = "application/pdf";

/** The three sizes of the issue: a short note, a typical letter, a scan. */
const SIZES = [
  { key: "1k", label: "1 KiB", size: 1024 },
  { key: "64k", label: "64 KiB", size: 64 * 1024 },
  { key: "1m", label: "1 MiB", size: 1024 * 1024 },
] as const;

export type SizeKey = (typeof SIZES)[number]["key"];

/** Writes one random file per size into `docs`. */
export async function writeFixtures(docs: string): Promise<Record<SizeKey, Fixture>> {
  const entries = await Promise.all(
    SIZES.map(async ({ key, label, size }) => {
      const fileName = `bench-${key}.pdf`;
      const file = join(docs, fileName);
      await Bun.write(file, randomBytes(size));
      return [key, { id: `bench-${key}`, label, size, file, fileName }] as const;
    }),
  );
  return Object.fromEntries(entries) as Record<SizeKey, Fixture>;
}

/** Stores each fixture in fhirbin through its API (PUT with the fixture's id), as a client would. */
export async function uploadFixtures(
  base: string,
  token: string,
  fixtures: Iterable<Fixture>,
): Promise<void> {
  for (const fixture of fixtures) {
    const response = await fetch(`${base}/Binary/${fixture.id}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": CONTENT_TYPE },
      body: Bun.file(fixture.file),
    });
    const text = await response.text();
    if (response.status !== 201 && response.status !== 200) {
      throw new Error(`uploading ${fixture.id} answered ${response.status}: ${text}`);
    }
  }
}

/**
 * Creates `count` tiny distinct documents, 32 at a time. A store in service has all its fan-out directories
 * (256 under blobs/, 256 under binary/); a fresh one creates them, fsyncs and all, during its first thousand
 * writes, which would charge a young store's cost to the steady-state figure.
 */
export async function primeStore(base: string, token: string, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let n = next++; n < count; n = next++) {
      const response = await fetch(`${base}/Binary`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "text/plain", prefer: "return=minimal" },
        body: `priming document ${n}`,
      });
      await response.arrayBuffer();
      if (response.status !== 201) throw new Error(`priming ${base} answered ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}
