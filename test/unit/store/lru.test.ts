/** LruCache: the bounded caches of the filesystem store. */
import { expect, test } from "bun:test";
import { LruCache } from "../../../src/store/lru.ts";

// Each case: operations on a cache of 3 entries, then the keys expected to remain, least recently used first.
test.each([
  ["fills up to the limit", ["set a", "set b", "set c"], ["a", "b", "c"]],
  ["drops the least recently set", ["set a", "set b", "set c", "set d"], ["b", "c", "d"]],
  ["a read makes an entry recent", ["set a", "set b", "set c", "get a", "set d"], ["c", "a", "d"]],
  ["a write makes an entry recent", ["set a", "set b", "set c", "set a", "set d"], ["c", "a", "d"]],
  ["a miss changes nothing", ["set a", "set b", "get x", "set c", "set d"], ["b", "c", "d"]],
  ["delete frees a place", ["set a", "set b", "set c", "delete b", "set d"], ["a", "c", "d"]],
])("%s", (_, operations, remaining) => {
  const cache = new LruCache<string, string | null>(3);
  for (const operation of operations) {
    const [verb, key = ""] = operation.split(" ");
    if (verb === "set") cache.set(key, key === "a" ? null : key.toUpperCase());
    else if (verb === "get") cache.get(key);
    else cache.delete(key);
  }
  expect(cache.size).toBe(remaining.length);
  for (const key of remaining) expect(cache.get(key)).toBe(key === "a" ? null : key.toUpperCase());
  for (const key of ["a", "b", "c", "d", "x"].filter((key) => !remaining.includes(key)))
    expect(cache.get(key)).toBeUndefined();
});

test("the order of eviction follows use, not insertion", () => {
  const cache = new LruCache<number, number>(2);
  cache.set(1, 1);
  cache.set(2, 2);
  cache.get(1);
  cache.set(3, 3);
  expect([cache.get(1), cache.get(2), cache.get(3)]).toEqual([1, undefined, 3]);
});

// Each case: the weights set in turn into a cache of 10 entries and a budget of 10, then the keys expected
// to remain (each key is its weight's index).
test.each([
  ["within the budget, everything stays", [3, 3, 3], [0, 1, 2]],
  ["over the budget, the oldest go first", [4, 4, 4], [1, 2]],
  ["one entry over the budget on its own is not kept", [2, 11], [0]],
  ["exactly the budget stays", [5, 5], [0, 1]],
])("weights: %s", (_, weights, remaining) => {
  const cache = new LruCache<number, number>(10, (weight) => weight, 10);
  weights.forEach((weight, key) => {
    cache.set(key, weight);
  });
  expect(weights.map((_, key) => cache.get(key) !== undefined)).toEqual(
    weights.map((_, key) => remaining.includes(key)),
  );
  expect(cache.weight).toBe(remaining.reduce((sum, key) => sum + (weights[key] ?? 0), 0));
});

test("replacing or deleting an entry gives its weight back", () => {
  const cache = new LruCache<string, number>(10, (weight) => weight, 10);
  cache.set("a", 6);
  cache.set("a", 6);
  cache.set("b", 4);
  expect([cache.size, cache.weight]).toEqual([2, 10]);
  cache.delete("a");
  cache.delete("a");
  expect([cache.size, cache.weight]).toEqual([1, 4]);
});
