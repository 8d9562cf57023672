/**
 * A map that keeps at most `limit` entries, dropping the least recently used: the store's caches stay the
 * same size however many documents the store holds, so a server's memory is flat over months.
 * Given a `weigh` function, it also keeps the entries' total weight (bytes, say) within `budget`.
 */
export class LruCache<K, V> {
  readonly #limit: number;
  readonly #weigh: (value: V) => number;
  readonly #budget: number;
  #weight = 0;
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  readonly #entries = new Map<K, V>();

  constructor(limit: number, weigh: (value: V) => number = () => 0, budget = Number.POSITIVE_INFINITY) {
    this.#limit = limit;
    this.#weigh = weigh;
    this.#budget = budget;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The total weight of the entries. */
  get weight(): number {
    return this.#weight;
  }

  /** The value, or undefined when absent (a cached value may itself be null). */
  get(key: K): V | undefined {
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** Adds or replaces an entry; one heavier than the whole budget is not kept (and evicts nothing). */
  set(key: K, value: V): void {
    this.delete(key);
    const weight = this.#weigh(value);
    if (weight > this.#budget) return;
    this.#entries.set(key, value);
    this.#weight += weight;
    while (this.#entries.size > this.#limit || this.#weight > this.#budget) {
      this.delete(this.#entries.keys().next().value as K);
    }
  }

  delete(key: K): void {
    const value = this.#entries.get(key);
    if (value === undefined) return;
    this.#entries.delete(key);
    this.#weight -= this.#weigh(value);
  }
}
