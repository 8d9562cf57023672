/** `Content-Disposition` (RFC 6266, RFC 8187): file names read from a write, checked, and written back. */
import { describe, expect, test } from "bun:test";
import {
  fileNameProblem,
  formatContentDisposition,
  parseContentDisposition,
} from "../../src/fhir/content-disposition.ts";
import { errorOf } from "./expect-error.ts";

/** A header value as Bun hands it over: each byte of the UTF-8 text as one character (ISO-8859-1). */
const onTheWire = (text: string): string => Buffer.from(text, "utf8").toString("latin1");

describe("parseContentDisposition", () => {
  test.each<[string, string | null]>([
    ["attachment", null],
    ["inline", null],
    ["attachment; size=12", null],
    ['attachment; filename="Referral letter.pdf"', "Referral letter.pdf"],
    ["attachment; filename=letter.pdf", "letter.pdf"],
    ["ATTACHMENT; FILENAME=letter.pdf", "letter.pdf"],
    ["inline;filename=letter.pdf;", "letter.pdf"],
    ['form-data; name="file"; filename="scan.png"', "scan.png"],
    ['attachment; filename="say \\"hi\\".txt"', 'say "hi".txt'],
    ['attachment; filename="a;b=c.txt"', "a;b=c.txt"],
    // RFC 8187 ext-values, UTF-8 and ISO-8859-1; filename* wins over filename (RFC 6266 section 4.3).
    ["attachment; filename*=UTF-8''Referral%20letter.pdf", "Referral letter.pdf"],
    ["attachment; filename*=utf-8''%C3%9Cberweisung%20M%C3%BCller.pdf", "Überweisung Müller.pdf"],
    ["attachment; filename*=UTF-8'de'%E2%82%AC%20rates.txt", "€ rates.txt"],
    ["attachment; filename*=ISO-8859-1''%A3%20rates.txt", "£ rates.txt"],
    ["attachment; filename=\"fallback.pdf\"; filename*=UTF-8''%E2%9C%93%20real.pdf", "✓ real.pdf"],
    ["attachment; filename*=UTF-8''%E2%9C%93%20real.pdf; filename=fallback.pdf", "✓ real.pdf"],
    // A plain filename in raw UTF-8 (curl with a typed name) is read as UTF-8.
    [onTheWire('attachment; filename="Überweisung.pdf"'), "Überweisung.pdf"],
    // Bytes that are not UTF-8 stay ISO-8859-1.
    ['attachment; filename="\xfcber.txt"', "über.txt"],
    // Paths are dropped, up to the last / or \.
    ['attachment; filename="C:\\\\Users\\\\me\\\\letter.pdf"', "letter.pdf"],
    ['attachment; filename="../../etc/passwd"', "passwd"],
    ["attachment; filename*=UTF-8''..%2F..%2Fsecret.txt", "secret.txt"],
    ["attachment; filename*=UTF-8''a%5Cb.txt", "b.txt"],
  ])("%p names %p", (header, fileName) => {
    expect(parseContentDisposition(header)).toBe(fileName);
  });

  test.each([
    ["", "no disposition type"],
    ["; filename=a.pdf", "no disposition type"],
    ['attachment filename="a.pdf"', "no separator"],
    ["attachment; filename", "no value"],
    ["attachment; =a.pdf", "no parameter name"],
    ['attachment; filename="unterminated', "unterminated quoted string"],
    ["attachment; filename=a b.pdf", "a space in a token"],
    ["attachment; filename=a.pdf; filename=b.pdf", "filename twice"],
    ["attachment; filename=a.pdf; FILENAME=b.pdf", "filename twice, in another case"],
    ["attachment; filename*=letter.pdf", "filename* without a charset"],
    ["attachment; filename*=UTF-8'letter.pdf", "filename* without a language part"],
    ["attachment; filename*=\"UTF-8''letter.pdf\"", "filename* quoted"],
    ["attachment; filename*=UTF-8''a%2", "a cut percent-encoding"],
    ["attachment; filename*=UTF-8''a b", "a space in an ext-value"],
    ["attachment; filename*=UTF-8''%FF%FE.txt", "invalid UTF-8"],
    ["attachment; filename*=Shift_JIS''%82%A0.txt", "an unsupported charset"],
    ['attachment; filename=""', "an empty name"],
    ["attachment; filename*=UTF-8''", "an empty name (filename*)"],
    ['attachment; filename="dir/"', "a path without a name"],
    ['attachment; filename=".."', "a dot-dot name"],
    ["attachment; filename*=UTF-8''a%0D%0AX-Injected%3A%201.pdf", "CR LF"],
    ["attachment; filename*=UTF-8''a%00.pdf", "NUL"],
    ["attachment; filename*=UTF-8''a%09b.pdf", "a tab"],
    ["attachment; filename*=UTF-8''a%7Fb.pdf", "DEL"],
    ["attachment; filename*=UTF-8''a%C2%85b.pdf", "a C1 control (NEL)"],
    ["attachment; filename*=UTF-8''invoice%E2%80%AEfdp.exe", "a right-to-left override"],
    ["attachment; filename*=UTF-8''%0A/safe.pdf", "a control character in the dropped path"],
    [`attachment; filename="${"a".repeat(252)}.pdf"`, "256 bytes"],
    [`attachment; filename*=UTF-8''${"%C3%A9".repeat(126)}.pdf`, "256 bytes of UTF-8"],
  ])("%p is a 400 (%s)", (header) => {
    expect(errorOf(() => parseContentDisposition(header))).toEqual({ status: 400, code: "value" });
  });

  test("255 bytes of UTF-8 are kept", () => {
    const name = `${"é".repeat(125)}.pdf`;
    expect(Buffer.byteLength(name)).toBe(254);
    expect(parseContentDisposition(`attachment; filename*=UTF-8''${encodeURIComponent(`${name}x`)}`)).toBe(
      `${name}x`,
    );
  });
});

describe("fileNameProblem", () => {
  test.each<[string, string | null]>([
    ["Referral letter.pdf", null],
    ["knee x-ray.png", null],
    ["", "is empty"],
    ["a/b", "has a path"],
    ["a\\b", "has a path"],
    ["..", "is not a file name"],
    ["a\r\nb", "has control characters"],
    ["\ud800.txt", "is not valid Unicode"],
  ])("%p: %p", (name, problem) => {
    expect(fileNameProblem(name)).toBe(problem);
  });
});

describe("formatContentDisposition", () => {
  test.each<[string, string]>([
    ["Referral letter.pdf", `inline; filename="Referral letter.pdf"; filename*=UTF-8''Referral%20letter.pdf`],
    [
      "Überweisung Müller.pdf",
      `inline; filename="Uberweisung Muller.pdf"; filename*=UTF-8''%C3%9Cberweisung%20M%C3%BCller.pdf`,
    ],
    ["€ rates.txt", `inline; filename="_ rates.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt`],
    // Quotes, backslashes and % are replaced in the fallback, and encoded in filename*.
    [
      `say "hi" 100%\\.txt`,
      `inline; filename="say _hi_ 100__.txt"; filename*=UTF-8''say%20%22hi%22%20100%25%5C.txt`,
    ],
    [
      "it's (a) *draft*.txt",
      `inline; filename="it's (a) *draft*.txt"; filename*=UTF-8''it%27s%20%28a%29%20%2Adraft%2A.txt`,
    ],
    // A hand-edited sidecar's CR LF can still not break the header line.
    [
      "a\r\nSet-Cookie: x=1",
      `inline; filename="a__Set-Cookie: x=1"; filename*=UTF-8''a%0D%0ASet-Cookie%3A%20x%3D1`,
    ],
  ])("%p", (name, header) => {
    expect(formatContentDisposition("inline", name)).toBe(header);
  });

  test.each([
    "Referral letter.pdf",
    "Überweisung Müller.pdf",
    "€ rates.txt",
    `say "hi" 100%\\x.txt`,
    "it's (a).txt",
  ])("%p reads back as itself", (name) => {
    const expected = name.replace(/.*\\/, "");
    expect(parseContentDisposition(formatContentDisposition("attachment", name))).toBe(expected);
  });
});
