/**
 * A least-recently-used cache of byte strings bounded by their total size. It keeps the encoded bodies of
 * recent FHIR-wrapped reads: versions never change, so neither does their encoding (issue 8).
 */
export class ByteCache {
  readonly #entries = new Map<string, Uint8Array>();
  #bytes = 0;

  /** `budget`: most bytes held; an entry larger than `largest` is never kept. */
  constructor(
    readonly budget: number,
    readonly largest: number,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  get(key: string): Uint8Array | null {
    const value = this.#entries.get(key);
    if (value === undefined) return null;
    // Map keeps insertion order: re-inserting makes this entry the most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  set(key: string, value: Uint8Array): void {
    if (value.byteLength > this.largest || value.byteLength > this.budget) return;
    // Two concurrent misses of one key both set it: the replaced entry's size must leave the count.
    const replaced = this.#entries.get(key);
    if (replaced !== undefined) {
      this.#entries.delete(key);
      this.#bytes -= replaced.byteLength;
    }
    this.#entries.set(key, value);
    this.#bytes += value.byteLength;
    for (const [oldest, entry] of this.#entries) {
      if (this.#bytes <= this.budget) break;
      this.#entries.delete(oldest);
      this.#bytes -= entry.byteLength;
    }
  }
}
