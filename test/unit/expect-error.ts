import { expect } from "bun:test";
import { FhirError } from "../../src/fhir/errors.ts";

/** The status and issue code of the FhirError `f` throws; fails the test when it throws anything else. */
export function errorOf(f: () => unknown): { status: number; code: string } {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(FhirError);
    const { status, code } = error as FhirError;
    return { status, code };
  }
  throw new Error("expected a FhirError");
}
