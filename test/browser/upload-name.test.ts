/**
 * The demo app's upload sends the file's name: `FhirClient.upload` (src/web/fhir-client.js), run in headless
 * Chromium as the app runs it, names the document with `Content-Disposition: attachment; filename*=UTF-8''...`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { startServer, type TestServer } from "../harness.ts";
import { BROWSER_TEST_MS, HAS_CHROMIUM, launchChromium, noticeSkipped, offlineContext } from "./chromium.ts";

const EXTENSION = "https://fhirbin.dev/fhir/StructureDefinition/file-name";

noticeSkipped("test/browser/upload-name.test.ts");

describe.skipIf(!HAS_CHROMIUM)("the demo app's upload in headless Chromium", () => {
  let server: TestServer;
  let browser: Browser & AsyncDisposable;
  let page: Page;

  beforeAll(async () => {
    server = await startServer();
    browser = await launchChromium();
    page = await (await offlineContext(browser)).context.newPage();
    // The app's own origin, so the module loads under the app's Content-Security-Policy.
    await page.goto(`${server.origin}/`);
  });
  afterAll(async () => {
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test.each(["Referral letter.pdf", "Überweisung (Müller) 50%.pdf", "knee x-ray's.png"])(
    "an upload of %p is named by it",
    async (name) => {
      const created = (await page.evaluate(
        async ([fileName, token, module]) => {
          const { FhirClient } = (await import(module)) as {
            FhirClient: new (
              base: string,
              token: string,
            ) => { upload(file: File, onProgress: () => void): Promise<unknown> };
          };
          const file = new File(["%PDF-1.4\n"], fileName, { type: "application/pdf" });
          return new FhirClient("/fhir", token).upload(file, () => {});
        },
        [name, server.token, "/app/fhir-client.js"] as const,
      )) as { id: string; meta?: { extension?: unknown[] } };
      expect(created.meta?.extension).toEqual([{ url: EXTENSION, valueString: name }]);
      const native = await server.request(`/Binary/${created.id}`);
      expect(native.headers.get("content-disposition")).toContain(
        `filename*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`,
      );
    },
    BROWSER_TEST_MS,
  );
});
