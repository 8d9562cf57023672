/** The byte-bounded LRU cache of encoded FHIR-wrapped bodies. */
import { describe, expect, test } from "bun:test";
import { ByteCache } from "../../src/http/byte-cache.ts";

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

describe("ByteCache", () => {
  test("absent is null; a value set is returned as it was", () => {
    const cache = new ByteCache(100, 50);
    expect(cache.get("a")).toBeNull();
    const value = bytes(10);
    cache.set("a", value);
    expect(cache.get("a")).toBe(value);
    expect(cache.bytes).toBe(10);
  });

  test.each([
    ["over the largest entry", 100, 50, 51],
    ["over the whole budget", 40, 50, 41],
  ])("an entry %s is not kept", (_, budget, largest, size) => {
    const cache = new ByteCache(budget, largest);
    cache.set("big", bytes(size));
    expect([cache.get("big"), cache.bytes]).toEqual([null, 0]);
  });

  test("the least recently used entries go first when over budget", () => {
    const cache = new ByteCache(30, 30);
    cache.set("a", bytes(10));
    cache.set("b", bytes(10));
    cache.set("c", bytes(10));
    cache.get("a"); // now b is the least recently used
    cache.set("d", bytes(10));
    expect(["a", "b", "c", "d"].map((key) => cache.get(key) !== null)).toEqual([true, false, true, true]);
    expect(cache.bytes).toBe(30);
  });

  test("setting a key again replaces it and keeps the count exact (concurrent misses)", () => {
    const cache = new ByteCache(100, 100);
    cache.set("a", bytes(20, 1));
    cache.set("a", bytes(25, 2));
    expect(cache.bytes).toBe(25);
    expect(cache.get("a")?.[0]).toBe(2);
    for (let i = 0; i < 50; i++) cache.set("a", bytes(25));
    expect(cache.bytes).toBe(25);
  });
});
