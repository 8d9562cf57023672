/**
 * Issue 7: `/docs` renders every operation in headless Chromium with all non-loopback requests blocked,
 * so the UI's assets really are inside fhirbin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { startServer, type TestServer } from "../harness.ts";
import {
  BROWSER_TEST_MS,
  HAS_CHROMIUM,
  launchChromium,
  noticeSkipped,
  offlineContext,
  shotPath,
} from "./chromium.ts";

noticeSkipped("test/browser/docs.test.ts");

describe.skipIf(!HAS_CHROMIUM)("/docs in headless Chromium, offline", () => {
  let server: TestServer;
  let browser: Browser & AsyncDisposable;
  beforeAll(async () => {
    server = await startServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test(
    "renders the operations with no request leaving loopback",
    async () => {
      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      const answer = await page.goto(`${server.origin}/docs`);
      expect(answer?.status()).toBe(200);
      // Operations of every kind are listed by their summaries.
      for (const summary of [
        "Read a Binary: native bytes by default, FHIR JSON or XML when asked for",
        "Create a Binary with a server-assigned id",
        "Update a Binary, or create it with this id",
        "Delete a Binary (a tombstone version; old versions stay readable)",
        "Vread: one version of a Binary",
        "Search Binaries: a searchset Bundle, paged",
        "History of one Binary: a history Bundle, newest first",
        "The CapabilityStatement (no token needed)",
        "Liveness: 200 while the process serves requests",
      ]) {
        await page
          .getByText(summary, { exact: true })
          .first()
          .waitFor({ state: "attached", timeout: 20_000 });
      }
      await page
        .getByRole("heading", { name: "fhirbin FHIR Binary API" })
        .first()
        .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: shotPath("docs-desktop") });
      await page.setViewportSize({ width: 390, height: 844 });
      await page
        .getByRole("heading", { name: "fhirbin FHIR Binary API" })
        .first()
        .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: shotPath("docs-mobile") });
      expect(offline.blocked).toEqual([]);
      expect(errors).toEqual([]);
    },
    BROWSER_TEST_MS,
  );

  test(
    "the docs link back to the documents app, and the app's API docs link opens them",
    async () => {
      await using offline = await offlineContext(browser, { width: 390, height: 844 });
      const page = await offline.context.newPage();
      await page.goto(`${server.origin}/`);
      await page.getByRole("link", { name: "API docs" }).click();
      await page.waitForURL(`${server.origin}/docs`);
      const back = page.getByRole("link", { name: "← Back to the fhirbin documents app" }).first();
      await back.waitFor({ timeout: 20_000 });
      await page.screenshot({ path: shotPath("docs-back-link-mobile") });
      await back.click();
      await page.waitForURL(`${server.origin}/`);
      await page.getByLabel("Bearer token").waitFor();
      expect(offline.blocked).toEqual([]);
    },
    BROWSER_TEST_MS,
  );
});
