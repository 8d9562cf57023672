/**
 * A strict base64 decoder fed piece by piece, for payloads too large to hold as one string. It accepts
 * exactly what `Uint8Array.fromBase64(whole, { lastChunkHandling: "strict" })` accepts: the base64
 * alphabet, ASCII whitespace anywhere, padding only at the very end, zero padding bits.
 */
import { FhirError } from "./errors.ts";

/** The whitespace `Uint8Array.fromBase64` skips (tab, LF, FF, CR, space). */
const WHITESPACE = /[\t\n\f\r ]+/g;

/** The 400 for a payload that a strict decoder refuses. */
export function badBase64(): FhirError {
  return new FhirError(400, "value", "Binary payload is not valid base64");
}

/** A streaming base64 decoder: `push` text as it arrives, `end` once; each returns the bytes it decoded. */
export interface Base64Decoder {
  push(text: string): Uint8Array;
  end(): Uint8Array;
}

/** Creates a decoder. Complete 4-character groups are decoded as soon as they arrive; the rest is carried. */
export function createBase64Decoder(): Base64Decoder {
  let carry = "";
  // Once a group with padding was decoded, only whitespace may follow.
  let padded = false;
  const decode = (text: string): Uint8Array => {
    try {
      return Uint8Array.fromBase64(text, { lastChunkHandling: "strict" });
    } catch {
      throw badBase64();
    }
  };
  return {
    push(text) {
      const chars = carry + text.replace(WHITESPACE, "");
      if (chars.length === 0) return new Uint8Array(0);
      if (padded) throw badBase64();
      const whole = chars.length - (chars.length % 4);
      carry = chars.slice(whole);
      if (whole === 0) return new Uint8Array(0);
      const groups = chars.slice(0, whole);
      padded = groups.endsWith("=");
      return decode(groups);
    },
    end() {
      if (carry.length > 0) {
        if (padded) throw badBase64();
        // A 2- or 3-character tail without padding is refused by the strict decoder, as in the whole string.
        return decode(carry);
      }
      return new Uint8Array(0);
    },
  };
}
