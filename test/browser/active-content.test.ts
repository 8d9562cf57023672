/**
 * Stored active content opened in a real browser (headless Chromium via playwright-core): an HTML page with
 * a script and an SVG with onload must not run script on fhirbin's origin. Skipped, with a notice, where
 * Debian's chromium is not installed (`.ci/run` installs it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { startServer, type TestServer } from "../harness.ts";
import { BROWSER_TEST_MS, HAS_CHROMIUM, launchChromium, noticeSkipped } from "./chromium.ts";

noticeSkipped("the active-content browser check");

/** Each document reports a run by requesting the canary path and by changing the title. */
const DOCUMENTS: [string, string, string][] = [
  [
    "html",
    "text/html",
    "<!doctype html><html><head><title>safe</title></head><body><p>hello</p>" +
      "<script>document.title='pwned';fetch('/canary/html');new Image().src='/canary/html-img';</script></body></html>",
  ],
  [
    "svg",
    "image/svg+xml",
    "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"document.title='pwned';fetch('/canary/svg')\">" +
      "<title>safe</title><script>fetch('/canary/svg-script')</script><circle r=\"5\"/></svg>",
  ],
  [
    "xhtml",
    "application/xhtml+xml",
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>safe</title></head>' +
      "<body><script>document.title='pwned';fetch('/canary/xhtml')</script></body></html>",
  ],
];

describe.skipIf(!HAS_CHROMIUM)("active content in headless Chromium", () => {
  let srv: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    srv = await startServer();
    for (const [id, type, body] of DOCUMENTS) {
      const res = await srv.request(`/Binary/${id}`, {
        method: "PUT",
        body,
        headers: { "content-type": type },
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`PUT ${id}: ${res.status}`);
    }
    browser = await launchChromium();
  }, BROWSER_TEST_MS);

  afterAll(async () => {
    await browser?.close();
    await srv?.[Symbol.asyncDispose]();
  });

  test.each(DOCUMENTS.map(([id, type]) => [id, type]))(
    "%s (%s): no script runs",
    async (id) => {
      const context = await browser.newContext({
        extraHTTPHeaders: { authorization: `Bearer ${srv.token}` },
        acceptDownloads: false,
      });
      try {
        const page = await context.newPage();
        const canaries: string[] = [];
        page.on("request", (request) => {
          if (request.url().includes("/canary/")) canaries.push(request.url());
        });
        const dialogs: string[] = [];
        page.on("dialog", (dialog) => {
          dialogs.push(dialog.message());
          void dialog.dismiss();
        });
        // An attachment aborts the navigation (a download): that is one of the two guards, not a failure.
        const response = await page.goto(`${srv.base}/Binary/${id}`, { waitUntil: "load" }).catch(() => null);
        await page.waitForLoadState("load").catch(() => {});
        const title = await page.title().catch(() => "");
        expect({ canaries, dialogs, pwned: title === "pwned" }).toEqual({
          canaries: [],
          dialogs: [],
          pwned: false,
        });
        if (response)
          expect(response.headers()["content-security-policy"]).toBe("sandbox; default-src 'none'");
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_MS,
  );

  test(
    "even rendered inline, the sandbox CSP keeps the script from running",
    async () => {
      // Serve the stored bytes with fhirbin's headers minus Content-Disposition, to test the second guard.
      const context = await browser.newContext({ acceptDownloads: false });
      try {
        const page = await context.newPage();
        const canaries: string[] = [];
        page.on("request", (request) => {
          if (request.url().includes("/canary/")) canaries.push(request.url());
        });
        await page.route(`${srv.base}/Binary/inline-html`, async (route) => {
          const res = await fetch(`${srv.base}/Binary/html`, {
            headers: { authorization: `Bearer ${srv.token}` },
          });
          const headers = Object.fromEntries(res.headers);
          delete headers["content-disposition"];
          await route.fulfill({ status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) });
        });
        await page.goto(`${srv.base}/Binary/inline-html`, { waitUntil: "load" });
        expect({ canaries, title: await page.title(), text: await page.textContent("p") }).toEqual({
          canaries: [],
          title: "safe",
          text: "hello",
        });
      } finally {
        await context.close();
      }
    },
    BROWSER_TEST_MS,
  );
});
