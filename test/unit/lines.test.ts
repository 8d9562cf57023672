import { describe, expect, test } from "bun:test";
import { isoTime, linesPerTurn } from "../../src/lines.ts";

describe("isoTime", () => {
  test.each([
    ["2026-11-22T00:00:00.000Z"],
    ["2026-11-22T00:00:00.000Z"],
    ["2026-11-22T00:00:00.001Z"],
    ["1999-12-31T23:59:59.999Z"],
    ["2026-11-22T00:00:00.001Z"],
  ])("%s is its own ISO text, whichever time came before", (text) => {
    expect(isoTime(new Date(text))).toBe(text);
  });
});

describe("linesPerTurn", () => {
  test("lines of one turn are written together, each ending in a newline, at the end of the turn", async () => {
    const writes: string[] = [];
    const batch = linesPerTurn((text) => writes.push(text));
    batch.add("one");
    batch.add("two");
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(["one\ntwo\n"]);
    batch.add("three");
    batch.flush();
    expect(writes).toEqual(["one\ntwo\n", "three\n"]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(2);
  });
});
