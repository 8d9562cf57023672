/**
 * Issue 7: the demo web app at `/`, driven in headless Chromium with every non-loopback request blocked.
 * The tests run in order on one page, as a person would: sign in, upload, list, preview, FHIR JSON and XML,
 * history and vread, filter, delete with confirmation; screenshots go to /tmp/fhirbin-shots.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { WEB_CSP } from "../../src/http/web.ts";
import { startServer, type TestServer } from "../harness.ts";
import {
  BROWSER_TEST_MS,
  eventually,
  HAS_CHROMIUM,
  launchChromium,
  noticeSkipped,
  offlineContext,
  shotPath,
} from "./chromium.ts";

const SAMPLES = resolve(import.meta.dir, "../../data/samples");

noticeSkipped("test/browser/web-app.test.ts");

describe.skipIf(!HAS_CHROMIUM)("demo web app in headless Chromium, offline", () => {
  let server: TestServer;
  let browser: Browser & AsyncDisposable;
  let offline: { context: BrowserContext; blocked: string[] } & AsyncDisposable;
  let page: Page;
  const problems: string[] = [];
  /** Ids the UI gave the uploaded files, by file name. */
  const uploaded = new Map<string, string>();

  beforeAll(async () => {
    server = await startServer();
    browser = await launchChromium();
    offline = await offlineContext(browser);
    page = await offline.context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // CSP violations and failed loads are reported as console errors.
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
  });
  afterAll(async () => {
    await offline?.[Symbol.asyncDispose]();
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  /** The id shown under the detail heading: "Binary/<id>". */
  const shownId = async (): Promise<string> => {
    const heading = await page.locator("#detail .detail-id").first().textContent();
    return /^Binary\/([^\s·]+)/.exec(heading ?? "")?.[1] ?? "";
  };

  test(
    "serves the app with its security headers and the FHIR base in /app-config.json",
    async () => {
      const answer = await fetch(`${server.origin}/`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(answer.headers.get("content-security-policy")).toBe(WEB_CSP);
      expect(WEB_CSP).toContain("script-src 'self'");
      expect(WEB_CSP).not.toMatch(/script-src[^;]*unsafe/);
      expect(WEB_CSP).toContain("default-src 'none'");
      const html = await answer.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/https?:\/\//);
      for (const [path, type] of <[string, string][]>[
        ["/app/app.js", "text/javascript; charset=utf-8"],
        ["/app/fhir-client.js", "text/javascript; charset=utf-8"],
        ["/app/app.css", "text/css; charset=utf-8"],
        ["/app/icon.svg", "image/svg+xml"],
      ]) {
        const asset = await fetch(server.origin + path);
        expect({ path, status: asset.status, type: asset.headers.get("content-type") }).toEqual({
          path,
          status: 200,
          type,
        });
      }
      const config = (await (await fetch(`${server.origin}/app-config.json`)).json()) as { basePath: string };
      expect(config.basePath).toBe("/fhir");
    },
    BROWSER_TEST_MS,
  );

  test(
    "refuses a wrong token, then signs in with the right one",
    async () => {
      await page.goto(`${server.origin}/`);
      await page.getByLabel("Bearer token").waitFor();
      await page.screenshot({ path: shotPath("app-sign-in-desktop") });
      await page.getByLabel("Bearer token").fill("not-the-token-0000000000");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("That token was refused.").waitFor();
      await page.getByLabel("Bearer token").fill(server.token);
      await page.keyboard.press("Enter");
      await page.getByRole("heading", { name: "Documents" }).waitFor();
      await page.getByText("No documents yet").waitFor();
      // The token is kept for this tab only.
      expect(await page.evaluate(() => sessionStorage.getItem("fhirbin.token"))).toBe(server.token);
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
    },
    BROWSER_TEST_MS,
  );

  test(
    "uploads files through the file chooser with a progress bar, and lists them newest first",
    async () => {
      const files = [
        "referral-letter.pdf",
        "wound-photo.png",
        "consultation-note.txt",
        "discharge-summary.html",
      ];
      for (const name of files) {
        const chooser = page.waitForEvent("filechooser");
        await page.getByText("choose files").click();
        await (await chooser).setFiles(join(SAMPLES, name));
        const row = page.locator(".upload", { hasText: name });
        await row.locator(".upload-status", { hasText: "Uploaded" }).waitFor();
        expect(await row.locator("progress").getAttribute("max")).toBe("100");
        expect(
          await row.locator("progress").evaluate((bar) => (bar as unknown as { value: number }).value),
        ).toBe(100);
        const id = (await row.getAttribute("data-id")) ?? "?";
        uploaded.set(name, id);
        // The new document is selected and shown.
        expect(await eventually(shownId, (value) => value === id)).toBe(id);
      }
      const items = page.locator("#document-list button.document .document-id");
      expect(
        await eventually(
          () => items.count(),
          (value) => value === files.length,
        ),
      ).toBe(files.length);
      // Newest first: the last upload is at the top.
      expect(await items.allTextContents()).toEqual(files.map((name) => uploaded.get(name) ?? "?").reverse());
      expect(
        await eventually(
          () => page.locator("#total").textContent(),
          (value) => value === "4 documents",
        ),
      ).toBe("4 documents");
    },
    BROWSER_TEST_MS,
  );

  test(
    "uploads by drag and drop",
    async () => {
      // A DataTransfer built in the page, as a real drop carries.
      const transfer = await page.evaluateHandle(`(() => {
        const data = new DataTransfer();
        data.items.add(new File(["dropped text\\n"], "dropped.txt", { type: "text/plain" }));
        return data;
      })()`);
      await page.dispatchEvent("#dropzone", "dragenter", { dataTransfer: transfer });
      expect(await page.locator("#dropzone").getAttribute("class")).toContain("dragging");
      await page.dispatchEvent("#dropzone", "drop", { dataTransfer: transfer });
      const row = page.locator(".upload", { hasText: "dropped.txt" });
      await row.getByText("Uploaded").waitFor();
      await page.locator(".preview-text", { hasText: "dropped text" }).waitFor();
      uploaded.set("dropped.txt", (await row.getAttribute("data-id")) ?? "?");
      expect(
        await eventually(
          () => page.locator("#document-list button.document").count(),
          (value) => value === 5,
        ),
      ).toBe(5);
    },
    BROWSER_TEST_MS,
  );

  test(
    "previews PDF, images and text inline, and HTML in a sandboxed frame without scripts",
    async () => {
      const open = async (name: string) => {
        await page.locator("#document-list button.document", { hasText: uploaded.get(name) ?? "?" }).click();
        expect(await eventually(shownId, (value) => value === (uploaded.get(name) ?? "?"))).toBe(
          uploaded.get(name) ?? "?",
        );
      };
      await open("wound-photo.png");
      const image = page.locator(".preview-image img");
      await image.waitFor();
      expect(
        await eventually(
          () => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth),
          (value) => value > 0,
        ),
      ).toBeGreaterThan(0);
      await page.screenshot({ path: shotPath("app-image-desktop") });

      await open("consultation-note.txt");
      await page.locator(".preview-text").waitFor();
      expect((await page.locator(".preview-text").textContent())?.length).toBeGreaterThan(100);

      await open("referral-letter.pdf");
      const pdf = page.locator("iframe.preview-frame");
      await pdf.waitFor();
      expect(await pdf.getAttribute("src")).toStartWith("blob:");
      // Chromium's own PDF viewer (an extension page inside the frame) takes the document.
      const viewer = await eventually(
        async () => page.frames().some((frame) => frame.url().startsWith("chrome-extension://")),
        (found) => found,
      );
      expect(viewer).toBe(true);
      // The viewer paints asynchronously, with nothing to wait on from outside: only for the screenshot.
      await Bun.sleep(1500);
      await page.screenshot({ path: shotPath("app-pdf-desktop") });

      await open("discharge-summary.html");
      const frame = page.locator("iframe.preview-frame");
      await frame.waitFor();
      // sandbox="" : no allow-scripts, no allow-same-origin.
      expect(await frame.getAttribute("sandbox")).toBe("");
      const inner = page.frameLocator("iframe.preview-frame");
      expect(
        await eventually(
          async () => (await inner.locator("body").textContent())?.length ?? 0,
          (value) => value > 50,
        ),
      ).toBeGreaterThan(50);
      await page.screenshot({ path: shotPath("app-html-desktop") });
    },
    BROWSER_TEST_MS,
  );

  test(
    "shows the FHIR JSON and XML",
    async () => {
      const id = uploaded.get("consultation-note.txt") ?? "?";
      await page.locator("#document-list button.document", { hasText: id }).click();
      expect(await eventually(shownId, (value) => value === id)).toBe(id);
      await page.getByRole("tab", { name: "FHIR JSON" }).click();
      const json = page.locator("pre.code-json");
      await json.waitFor();
      // The Copy button and the code block: the whole resource, nothing else in the panel.
      expect(await page.locator("#tab-panel > *").count()).toBe(2);
      const resource = JSON.parse((await json.textContent()) ?? "");
      expect(resource.resourceType).toBe("Binary");
      expect(resource.id).toBe(id);
      expect(resource.contentType).toStartWith("text/plain");
      expect(typeof resource.content).toBe("string");
      await page.screenshot({ path: shotPath("app-json-desktop") });
      // Keyboard: the arrow key moves to the next tab.
      await page.getByRole("tab", { name: "FHIR JSON" }).focus();
      await page.keyboard.press("ArrowRight");
      expect(await page.getByRole("tab", { name: "FHIR XML" }).getAttribute("aria-selected")).toBe("true");
      const xml = page.locator("pre.code-xml");
      await xml.waitFor();
      expect(await xml.textContent()).toContain(`<id value="${id}"/>`);
    },
    BROWSER_TEST_MS,
  );

  test(
    "lists the version history and reads an older version (vread)",
    async () => {
      const id = uploaded.get("consultation-note.txt") ?? "?";
      const update = await server.request(`/Binary/${id}`, {
        method: "PUT",
        headers: { "content-type": "text/plain" },
        body: "Second version of the note.\n",
      });
      expect(update.status).toBe(200);
      // Reload the document so the current version is the new one.
      await page.locator("#document-list button.document", { hasText: id }).click();
      await page.locator(".preview-text", { hasText: "Second version of the note." }).waitFor();
      await page.getByRole("tab", { name: "History" }).click();
      const rows = page.locator("table.history tbody tr");
      expect(
        await eventually(
          () => rows.count(),
          (value) => value === 2,
        ),
      ).toBe(2);
      expect(await rows.first().locator("td").first().textContent()).toBe("2");
      await page.screenshot({ path: shotPath("app-history-desktop") });
      await page.getByRole("button", { name: "View version 1" }).click();
      await page.locator(".detail-id", { hasText: `Binary/${id} · version 1` }).waitFor();
      await page.locator(".preview-text").waitFor();
      expect(await page.locator(".preview-text").textContent()).not.toContain("Second version");
      await page.getByRole("button", { name: "Back to current version" }).click();
      await page.locator(".detail-id", { hasText: new RegExp(`^Binary/${id}$`) }).waitFor();
    },
    BROWSER_TEST_MS,
  );

  test(
    "filters the list by content type",
    async () => {
      await page.getByLabel("Type").selectOption({ label: "PDF" });
      expect(
        await eventually(
          () => page.locator("#document-list button.document").count(),
          (value) => value === 1,
        ),
      ).toBe(1);
      expect(await page.locator("#document-list .document-id").textContent()).toBe(
        uploaded.get("referral-letter.pdf") ?? "?",
      );
      await page.getByLabel("Type").selectOption({ label: "Text" });
      expect(
        await eventually(
          () => page.locator("#document-list button.document").count(),
          (value) => value === 2,
        ),
      ).toBe(2);
      await page.getByLabel("Type").selectOption({ label: "All types" });
      expect(
        await eventually(
          () => page.locator("#document-list button.document").count(),
          (value) => value === 5,
        ),
      ).toBe(5);
    },
    BROWSER_TEST_MS,
  );

  test(
    "deletes only after confirmation",
    async () => {
      const id = uploaded.get("dropped.txt") ?? "?";
      await page.locator("#document-list button.document", { hasText: id }).click();
      expect(await eventually(shownId, (value) => value === id)).toBe(id);
      await page.getByRole("button", { name: "Delete…" }).click();
      const dialog = page.getByRole("dialog", { name: "Delete this document?" });
      await dialog.waitFor();
      await page.screenshot({ path: shotPath("app-delete-confirm-desktop") });
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "hidden" });
      expect((await server.request(`/Binary/${id}`)).status).toBe(200);

      await page.getByRole("button", { name: "Delete…" }).click();
      await dialog.getByRole("button", { name: "Delete" }).click();
      await page.getByText(`Binary/${id} was deleted.`).waitFor();
      expect(
        await eventually(
          () => page.locator("#document-list button.document").count(),
          (value) => value === 4,
        ),
      ).toBe(4);
      expect((await server.request(`/Binary/${id}`)).status).toBe(410);
    },
    BROWSER_TEST_MS,
  );

  test(
    "works at a phone's width, and nothing left loopback or broke the CSP",
    async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: shotPath("app-list-mobile") });
      await page.locator("#document-list button.document").first().click();
      await page.locator("#detail h2").first().waitFor();
      // Selecting a document brings its view into sight (the heading takes focus).
      await page.locator(".preview-text, .preview-frame, .preview-image").first().waitFor();
      await page.screenshot({ path: shotPath("app-detail-mobile") });
      await page.screenshot({ path: shotPath("app-full-mobile"), fullPage: true });
      // The layout is one column: the detail is below the list, not beside it.
      const sidebar = await page.locator(".sidebar").boundingBox();
      const detail = await page.locator("#detail").boundingBox();
      expect(detail?.y ?? 0).toBeGreaterThan((sidebar?.y ?? 0) + (sidebar?.height ?? 0) - 1);
      expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
      await page.setViewportSize({ width: 1280, height: 800 });

      expect(offline.blocked).toEqual([]);
      // The one expected console error: the wrong token's 401 in the sign-in test.
      expect(problems.filter((line) => !line.includes("401"))).toEqual([]);
    },
    BROWSER_TEST_MS,
  );
});
