/** quietAfterWork: when the executable collects garbage (once a quiet period starts). */
import { expect, test } from "bun:test";
import { quietAfterWork } from "../../src/gc.ts";

// Request counts seen at successive ticks (starting from 0), and the ticks that collect.
test.each([
  ["an idle server never collects", [0, 0, 0, 0], [false, false, false, false]],
  ["the first quiet tick after work collects", [3, 3], [false, true]],
  ["busy ticks do not collect", [1, 2, 5, 9], [false, false, false, false]],
  ["one collection per quiet period", [2, 2, 2, 2], [false, true, false, false]],
  ["each quiet period collects once", [1, 1, 1, 4, 4, 4], [false, true, false, false, true, false]],
])("%s", (_, counts, expected) => {
  const quiet = quietAfterWork(0);
  expect(counts.map((count) => quiet(count))).toEqual(expected);
});
