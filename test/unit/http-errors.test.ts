/** errors.ts's classification: only failures that are the client's become 4xx; the rest stay unexpected. */
import { describe, expect, test } from "bun:test";
import { knownError } from "../../src/http/errors.ts";

const url = "http://127.0.0.1/fhir/Binary";
const abort = (): DOMException => new DOMException("The connection was closed.", "AbortError");

describe("knownError: which failures are the client's", () => {
  test("an AbortError once the client is gone is a 400; with the client still there it stays unexpected", () => {
    const gone = new Request(url, { method: "POST", body: "x", signal: AbortSignal.abort() });
    const present = new Request(url, { method: "POST", body: "x" });
    expect({
      gone: knownError(abort(), gone)?.status,
      present: knownError(abort(), present),
      other: knownError(new Error("disk on fire"), gone),
    }).toEqual({ gone: 400, present: null, other: null });
  });
});
