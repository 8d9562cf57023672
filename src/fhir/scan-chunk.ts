/** The chunk loop the streaming Binary scanners (JSON and XML) share. */

/** What a scanner knows of its document: not yet, a Binary resource, or something for the whole-body path. */
export type ScanState = "undecided" | "binary" | "other";

/** The parts of a scanner the loop drives. */
export interface ScanSteps {
  state(): ScanState;
  /** True while inside the payload, which is scanned in runs rather than byte by byte. */
  inPayload(): boolean;
  /** Scans payload bytes from `at`, pushing decoded pieces to `out`; returns where the payload run ended. */
  scanPayload(chunk: Uint8Array, at: number, out: Uint8Array[]): number;
  /** Consumes one byte outside the payload. */
  step(byte: number): void;
}

/**
 * Feeds one chunk to a scanner and returns the decoded payload pieces. Once the scanner hands the body over to
 * the whole-body path (state "other", also when it failed before deciding), it returns nothing: that path
 * reads the body again and reports any problem itself.
 */
export function scanChunk(chunk: Uint8Array, steps: ScanSteps): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (steps.state() === "other") return out;
  try {
    let i = 0;
    while (i < chunk.length) {
      if (steps.inPayload()) {
        i = steps.scanPayload(chunk, i, out);
        continue;
      }
      steps.step(chunk[i] as number);
      i++;
      if (steps.state() === "other") return [];
    }
  } catch (error) {
    if (steps.state() === "other") return [];
    throw error;
  }
  return out.filter((bytes) => bytes.length > 0);
}
