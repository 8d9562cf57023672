/** The file names `export --all` gives ids: one file per id where names fold case or name devices. */
import { expect, test } from "bun:test";
import { exportStem } from "../../src/tools/export.ts";

test("ids that differ only in case, and device names, get export file names apart under case folding", () => {
  const ids = [
    "abc",
    "Abc",
    "ABC",
    "con",
    "CON",
    "Con.txt",
    "nul",
    "COM1",
    "lpt9.pdf",
    "aux",
    "a.",
    "a",
    "note-1",
  ];
  const stems = ids.map(exportStem);
  expect(Object.fromEntries(ids.map((id, n) => [id, stems[n]]))).toEqual({
    abc: "abc",
    Abc: "_+abc",
    ABC: "_+a+b+c",
    con: "_con",
    CON: "_+c+o+n",
    "Con.txt": "_+con.txt",
    nul: "_nul",
    COM1: "_+c+o+m1",
    "lpt9.pdf": "_lpt9.pdf",
    aux: "_aux",
    "a.": "a.",
    a: "a",
    "note-1": "note-1",
  });
  expect(new Set(stems.map((stem) => stem.toLowerCase())).size).toBe(ids.length);
  // No `~`, with which a name could be another file's 8.3 short name on NTFS.
  expect(stems.filter((stem) => stem.includes("~"))).toEqual([]);
  // Names such as `console` or `nullable` are no devices.
  expect(["console", "nullable", "com10", "auxiliary"].map(exportStem)).toEqual([
    "console",
    "nullable",
    "com10",
    "auxiliary",
  ]);
});
