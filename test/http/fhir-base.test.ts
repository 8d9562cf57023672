/**
 * `GET [base]`, the URL `fhirbin serve` prints: a browser is sent to the demo app, a FHIR client is told
 * where the CapabilityStatement is, neither gets "No route".
 */
import { describe, expect, test } from "bun:test";
import { startServer } from "../harness.ts";

const BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

describe("the printed FHIR base opened as it is", () => {
  test.each(["", "/"])("a browser opening [base]%s is redirected (303) to the demo app", async (slash) => {
    await using server = await startServer();
    const response = await fetch(`${server.base}${slash}`, {
      headers: { accept: BROWSER_ACCEPT },
      redirect: "manual",
    });
    expect({ status: response.status, location: response.headers.get("location") }).toEqual({
      status: 303,
      location: "/",
    });
  });

  test.each(["", "/"])(
    "a FHIR client asking for [base]%s gets an OperationOutcome pointing to [base]/metadata",
    async (slash) => {
      await using server = await startServer();
      const response = await fetch(`${server.base}${slash}`, {
        headers: { accept: "application/fhir+json" },
      });
      expect(response.status).toBe(404);
      const outcome = (await response.json()) as {
        resourceType: string;
        issue: Array<{ diagnostics: string }>;
      };
      expect(outcome.resourceType).toBe("OperationOutcome");
      expect(outcome.issue[0]?.diagnostics).toContain(`${server.base}/metadata`);
      expect(outcome.issue[0]?.diagnostics).not.toContain("No route");
    },
  );
});
