/**
 * The demo web app as a newcomer tried it, at a small phone's 320 px, a phone's 390 px and a desktop's
 * 1280 px: the layout stays inside the screen, opening a document shows it, failures are said in words,
 * `--auth off` needs no sign-in, the FHIR views wrap and copy, a broken image says so, and documents are
 * called by their file name (or their type and date), never by a bare id. Headless Chromium, offline.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Browser, Page } from "playwright-core";
import type { AuditSink } from "../../src/security/audit.ts";
import { startServer, type TestServer, tempDir } from "../harness.ts";
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
const WIDTHS = [320, 390, 1280] as const;

noticeSkipped("test/browser/web-app-mobile.test.ts");

/** Creates a Binary from raw bytes; gives its id. */
async function create(server: TestServer, type: string, body: string | Uint8Array): Promise<string> {
  const answer = await server.request("/Binary", {
    method: "POST",
    headers: { "content-type": type, accept: "application/fhir+json" },
    body,
  });
  const created = (await answer.json()) as { id?: string };
  if (answer.status !== 201 || !created.id) throw new Error(`create ${type}: ${answer.status}`);
  return created.id;
}

/** Opens the app and signs in with the server's token; the list is shown once this resolves. */
async function signIn(page: Page, server: TestServer, token = server.token): Promise<void> {
  await page.goto(`${server.origin}/`);
  await page.getByLabel("Bearer token").fill(token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Documents" }).waitFor();
}

/** How far the page scrolls sideways past the screen (0: not at all). */
const sideways = (page: Page): Promise<number> =>
  page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");

/** Whether an element is wholly inside the screen's width. */
async function insideWidth(page: Page, selector: string): Promise<boolean> {
  const box = await page.locator(selector).first().boundingBox();
  const width = page.viewportSize()?.width ?? 0;
  return box !== null && box.x >= 0 && box.x + box.width <= width + 0.5;
}

describe.skipIf(!HAS_CHROMIUM)("the demo web app at 320, 390 and 1280 px", () => {
  let browser: Browser & AsyncDisposable;
  let server: TestServer;
  let note = "";

  beforeAll(async () => {
    browser = await launchChromium();
    server = await startServer();
    await create(server, "application/pdf", readFileSync(join(SAMPLES, "referral-letter.pdf")));
    await create(server, "image/png", readFileSync(join(SAMPLES, "wound-photo.png")));
    await create(server, "application/octet-stream", new Uint8Array([0, 1, 2, 3, 4, 5]));
    note = await create(server, "text/plain; charset=utf-8", "First version of the note.\n");
    const update = await server.request(`/Binary/${note}`, {
      method: "PUT",
      headers: { "content-type": "text/plain; charset=utf-8" },
      body: "Second version of the note.\n",
    });
    expect(update.status).toBe(200);
  }, BROWSER_TEST_MS);
  afterAll(async () => {
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  for (const width of WIDTHS) {
    const phone = width < 860;
    test(
      `${width} px: nothing scrolls sideways, every tab is on screen, the history fits its card and an opened document is brought into view${phone ? " with a way back to the list" : ""}`,
      async () => {
        await using offline = await offlineContext(browser, { width, height: phone ? 740 : 800 });
        const page = await offline.context.newPage();
        await signIn(page, server);
        const items = page.locator("#document-list button.document");
        expect(
          await eventually(
            () => items.count(),
            (count) => count === 4,
          ),
        ).toBe(4);
        await page.screenshot({ path: shotPath(`trial-${width}-list`) });
        expect(await sideways(page)).toBeLessThanOrEqual(0);
        expect(await insideWidth(page, ".topnav a[href='/docs']")).toBe(true);

        await items.filter({ hasText: note }).click();
        await page.locator(".preview-text", { hasText: "Second version" }).waitFor();
        // The heading has the focus, and on a phone the detail was scrolled to: it starts near the top.
        expect(await page.evaluate<boolean>("document.activeElement?.matches('#detail h2') ?? false")).toBe(
          true,
        );
        const top = await eventually(
          () => page.evaluate<number>("document.getElementById('detail').getBoundingClientRect().top"),
          (value) => value >= -1 && value < 200,
        );
        expect(top).toBeGreaterThanOrEqual(-1);
        expect(top).toBeLessThan(200);
        await page.screenshot({ path: shotPath(`trial-${width}-detail`) });
        expect(await sideways(page)).toBeLessThanOrEqual(0);
        for (const tab of ["Preview", "FHIR JSON", "FHIR XML", "History"])
          expect({ tab, inside: await insideWidth(page, `#detail [role=tab]:text-is("${tab}")`) }).toEqual({
            tab,
            inside: true,
          });

        await page.getByRole("tab", { name: "History" }).click();
        await page.locator("table.history tbody tr").nth(1).waitFor();
        await page.screenshot({ path: shotPath(`trial-${width}-history`) });
        const fit = await page.evaluate<{ table: number; card: number; inner: number }>(`(() => {
          const table = document.querySelector("table.history").getBoundingClientRect();
          const card = document.getElementById("detail");
          const padding = parseFloat(getComputedStyle(card).paddingRight);
          return { table: table.right, card: card.getBoundingClientRect().right - padding, inner: innerWidth };
        })()`);
        expect(fit.table).toBeLessThanOrEqual(fit.card + 0.5);
        expect(fit.card).toBeLessThanOrEqual(fit.inner);
        expect(await sideways(page)).toBeLessThanOrEqual(0);

        const back = page.getByRole("button", { name: "Back to the list" });
        if (phone) {
          await back.click();
          // The document's entry in the list has the focus again, in sight.
          expect(
            await page.evaluate<string | null>("document.activeElement?.getAttribute('data-id') ?? null"),
          ).toBe(note);
          const entry = await items.filter({ hasText: note }).boundingBox();
          expect(entry !== null && entry.y >= 0 && entry.y + entry.height <= 740).toBe(true);
        } else {
          expect(await back.isVisible()).toBe(false);
        }
      },
      BROWSER_TEST_MS,
    );

    test(
      `${width} px: a badge shows a whole short label inside its column, never a word cut short`,
      async () => {
        await using offline = await offlineContext(browser, { width, height: 800 });
        const page = await offline.context.newPage();
        await signIn(page, server);
        const badges = page.locator("#document-list .badge");
        expect(
          await eventually(
            () => badges.count(),
            (count) => count === 4,
          ),
        ).toBe(4);
        const shown = await badges.evaluateAll((elements) =>
          elements.map((element) => {
            const badge = element as unknown as {
              textContent: string;
              scrollWidth: number;
              clientWidth: number;
              getBoundingClientRect(): { right: number };
              nextElementSibling: { getBoundingClientRect(): { left: number } };
            };
            return {
              label: badge.textContent,
              clipped: badge.scrollWidth > badge.clientWidth,
              overlaps:
                badge.getBoundingClientRect().right > badge.nextElementSibling.getBoundingClientRect().left,
            };
          }),
        );
        expect(shown).toEqual(
          ["TEXT", "FILE", "PNG", "PDF"].map((label) => ({ label, clipped: false, overlaps: false })),
        );
      },
      BROWSER_TEST_MS,
    );

    test(
      `${width} px: the FHIR JSON and XML wrap their base64 inside the screen`,
      async () => {
        await using offline = await offlineContext(browser, { width, height: 800 });
        const page = await offline.context.newPage();
        await signIn(page, server);
        await page.locator("#document-list button.document", { hasText: "PNG image" }).click();
        await page.locator(".preview-image img").waitFor();
        for (const [tab, selector] of [
          ["FHIR JSON", "pre.code-json"],
          ["FHIR XML", "pre.code-xml"],
        ] as const) {
          await page.getByRole("tab", { name: tab }).click();
          await page.locator(selector).waitFor();
          // The code block neither scrolls inside itself nor runs past the screen.
          const code = await page.locator(selector).evaluate((element) => {
            const pre = element as unknown as { scrollWidth: number; clientWidth: number };
            return pre.scrollWidth - pre.clientWidth;
          });
          expect({ tab, overflow: code }).toEqual({ tab, overflow: 0 });
          expect(await insideWidth(page, selector)).toBe(true);
          expect(await sideways(page)).toBeLessThanOrEqual(0);
          await page.screenshot({ path: shotPath(`trial-${width}-${tab === "FHIR JSON" ? "json" : "xml"}`) });
        }
      },
      BROWSER_TEST_MS,
    );
  }
});

describe.skipIf(!HAS_CHROMIUM)("what the demo web app calls a document", () => {
  let browser: Browser & AsyncDisposable;
  let server: TestServer;
  beforeAll(async () => {
    browser = await launchChromium();
    server = await startServer();
  }, BROWSER_TEST_MS);
  afterAll(async () => {
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test(
    "a document without a file name is shown by its type and date, never by a bare id",
    async () => {
      const pdf = await create(server, "application/pdf", readFileSync(join(SAMPLES, "referral-letter.pdf")));
      const bin = await create(server, "application/octet-stream", new Uint8Array([9, 8, 7]));
      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();
      await signIn(page, server);
      for (const [id, noun, badge] of [
        [pdf, "PDF document", "PDF"],
        [bin, "File", "FILE"],
      ] as const) {
        const item = page.locator("#document-list button.document", { hasText: id });
        const title = (await item.locator(".document-name").textContent()) ?? "";
        expect(title).toMatch(new RegExp(`^${noun}, .*\\d{4}`));
        expect(title).not.toContain(id);
        expect(await item.locator(".badge").textContent()).toBe(badge);
        await item.click();
        await page.locator(".detail-id", { hasText: `Binary/${id}` }).waitFor();
        expect(await page.locator("#detail h2").textContent()).toMatch(new RegExp(`^${noun}, .*\\d{4}`));
      }
      await page.screenshot({ path: shotPath("trial-unnamed-desktop") });
    },
    BROWSER_TEST_MS,
  );

  test(
    "a document's file name is shown in the list and its details, and the search box filters by it",
    async () => {
      // Named documents, uploaded as a browser or `fhirbin import` does: raw bytes with their file name in
      // Content-Disposition (RFC 6266, filename* per RFC 8187).
      const named = async (name: string, type: string, bytes: Uint8Array): Promise<string> => {
        const answer = await server.request("/Binary", {
          method: "POST",
          headers: {
            "content-type": type,
            // RFC 8187's attr-char has no ( ) ' * : those are percent-encoded too.
            "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(name).replace(
              /[()'*]/g,
              (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
            )}`,
            accept: "application/fhir+json",
          },
          body: bytes,
        });
        expect(answer.status).toBe(201);
        const created = (await answer.json()) as { id: string };
        return created.id;
      };
      const letter = await named(
        "Referral letter (Dr Okafor).pdf",
        "application/pdf",
        readFileSync(join(SAMPLES, "referral-letter.pdf")),
      );
      await named("wound photo 2026-12-04.png", "image/png", readFileSync(join(SAMPLES, "wound-photo.png")));

      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();
      const searches: string[] = [];
      page.on("request", (request) => {
        const url = new URL(request.url());
        if (url.pathname === "/fhir/Binary" && url.searchParams.has("filename"))
          searches.push(url.searchParams.get("filename") ?? "");
      });
      await signIn(page, server);
      const letterItem = page.locator("#document-list button.document", { hasText: letter });
      await letterItem.waitFor();
      const search = page.getByRole("searchbox", { name: "Name" });
      expect(await letterItem.locator(".document-name").textContent()).toBe(
        "Referral letter (Dr Okafor).pdf",
      );
      await letterItem.click();
      await page.getByRole("heading", { name: "Referral letter (Dr Okafor).pdf" }).waitFor();
      const items = page.locator("#document-list button.document");
      const all = await items.count();
      await search.fill("OKAFOR");
      expect(
        await eventually(
          () => items.count(),
          (count) => count === 1,
        ),
      ).toBe(1);
      expect(searches.at(-1)).toBe("OKAFOR");
      expect(await items.locator(".document-name").textContent()).toBe("Referral letter (Dr Okafor).pdf");
      await page.screenshot({ path: shotPath("trial-named-desktop") });
      await search.fill("");
      expect(
        await eventually(
          () => items.count(),
          (count) => count === all,
        ),
      ).toBe(all);
    },
    BROWSER_TEST_MS,
  );
});

describe.skipIf(!HAS_CHROMIUM)("the demo web app when something goes wrong", () => {
  let browser: Browser & AsyncDisposable;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  test(
    "with fhirbin stopped the list says it is not reachable, never that the store is empty, and Try again lists once it is back",
    async () => {
      const first = await startServer();
      const port = new URL(first.origin).port;
      await using offline = await offlineContext(browser, { width: 390, height: 844 });
      const page = await offline.context.newPage();
      await signIn(page, first);
      await page.getByText("No documents yet").waitFor();
      await first[Symbol.asyncDispose]();

      await page.getByRole("button", { name: "Refresh the list" }).click();
      const error = page.getByRole("alert").filter({ hasText: "Could not list the documents" });
      await error.getByText("fhirbin is not reachable: is it running?").waitFor();
      expect(await page.getByText("No documents yet").isVisible()).toBe(false);
      expect(await page.getByText("Failed to fetch").count()).toBe(0);
      await page.screenshot({ path: shotPath("trial-unreachable-mobile") });

      // fhirbin again, on the same port, now with one document.
      await using again = await startServer({ args: ["--port", port] });
      const id = await create(again, "text/plain", "Back again.\n");
      await page.getByRole("button", { name: "Try again" }).click();
      await page.locator("#document-list button.document", { hasText: id }).waitFor();
      expect(await error.isVisible()).toBe(false);
    },
    BROWSER_TEST_MS,
  );

  test(
    "a refused token signs out and says so, and a token that may not search is told it is not allowed (403)",
    async () => {
      using dir = tempDir();
      const tokens = join(dir.path, "tokens");
      writeFileSync(tokens, "reader-token-0123456789abcdef system/Binary.r label=reader\n");
      await using server = await startServer({ args: ["--token-file", tokens] });
      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();

      await signIn(page, server, "reader-token-0123456789abcdef");
      const forbidden = (await (
        await server.request("/Binary", {
          headers: { authorization: "Bearer reader-token-0123456789abcdef" },
        })
      ).json()) as { issue: { diagnostics: string }[] };
      const diagnostics = forbidden.issue[0]?.diagnostics ?? "?";
      await page
        .getByRole("alert")
        .getByText(`Could not list the documents: This token is not allowed to do that (403): ${diagnostics}`)
        .waitFor();
      expect(await page.getByText("No documents yet").isVisible()).toBe(false);

      // A token that stops being accepted: the next listing signs out and says why.
      await page.evaluate("sessionStorage.setItem('fhirbin.token', 'revoked-token-0123456789abcdef')");
      await page.reload();
      await page.getByText("The token was refused: sign in again.").waitFor();
      expect(await page.getByLabel("Bearer token").isVisible()).toBe(true);
    },
    BROWSER_TEST_MS,
  );

  test(
    "a 5xx shows the OperationOutcome's diagnostics",
    async () => {
      let failing = false;
      const audit: AuditSink = {
        record: () => (failing ? Promise.reject(new Error("no space left on device")) : Promise.resolve()),
        flush: () => Promise.resolve(),
      };
      await using server = await startServer({ audit });
      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();
      await signIn(page, server);
      await page.getByText("No documents yet").waitFor();
      failing = true;
      const refused = await server.request("/Binary");
      expect(refused.status).toBe(503);
      const diagnostics = ((await refused.json()) as { issue: { diagnostics: string }[] }).issue[0]
        ?.diagnostics;
      await page.getByRole("button", { name: "Refresh the list" }).click();
      await page
        .getByRole("alert")
        .getByText(`Could not list the documents: fhirbin could not answer (503): ${diagnostics}`)
        .waitFor();
      expect(await page.getByText("No documents yet").isVisible()).toBe(false);
    },
    BROWSER_TEST_MS,
  );
});

describe.skipIf(!HAS_CHROMIUM)("the demo web app's views of a document", () => {
  let browser: Browser & AsyncDisposable;
  let server: TestServer;
  beforeAll(async () => {
    browser = await launchChromium();
    server = await startServer();
  }, BROWSER_TEST_MS);
  afterAll(async () => {
    await browser?.close();
    await server?.[Symbol.asyncDispose]();
  });

  test(
    "with --auth off the app skips sign-in",
    async () => {
      await using open = await startServer({ args: ["--auth", "off"] });
      const id = await create(open, "text/plain", "No token needed.\n");
      await using offline = await offlineContext(browser, { width: 390, height: 844 });
      const page = await offline.context.newPage();
      await page.goto(`${open.origin}/`);
      await page.locator("#document-list button.document", { hasText: id }).waitFor();
      expect(await page.getByLabel("Bearer token").isVisible()).toBe(false);
      expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);
      await page.screenshot({ path: shotPath("trial-auth-off-mobile") });
    },
    BROWSER_TEST_MS,
  );

  test(
    "an empty or undecodable image says it cannot be shown, with its size and type",
    async () => {
      const empty = await create(server, "image/png", new Uint8Array(0));
      const broken = await create(server, "image/png", "this is not a PNG");
      await using offline = await offlineContext(browser, { width: 390, height: 844 });
      const page = await offline.context.newPage();
      await signIn(page, server);
      await page.locator("#document-list button.document", { hasText: empty }).click();
      await page.getByText("This image cannot be shown: it is empty (0 bytes, image/png).").waitFor();
      await page.locator("#document-list button.document", { hasText: broken }).click();
      await page
        .getByText("This image cannot be shown: the browser cannot decode it (17 bytes, image/png).")
        .waitFor();
      expect(await page.locator("#detail img").count()).toBe(0);
      await page.screenshot({ path: shotPath("trial-broken-image-mobile") });
    },
    BROWSER_TEST_MS,
  );

  test(
    "Copy puts the FHIR JSON on the clipboard",
    async () => {
      const id = await create(server, "text/plain", "Copy me.\n");
      await using offline = await offlineContext(browser);
      await offline.context.grantPermissions(["clipboard-read", "clipboard-write"], {
        origin: server.origin,
      });
      const page = await offline.context.newPage();
      await signIn(page, server);
      await page.locator("#document-list button.document", { hasText: id }).click();
      await page.getByRole("tab", { name: "FHIR JSON" }).click();
      const json = (await page.locator("pre.code-json").textContent()) ?? "";
      await page.getByRole("button", { name: "Copy" }).click();
      await page.getByRole("status").getByText("Copied.").waitFor();
      expect(await page.evaluate<string>("navigator.clipboard.readText()")).toBe(json);
      expect(JSON.parse(json).id).toBe(id);
    },
    BROWSER_TEST_MS,
  );

  test(
    "Copy, when the clipboard is refused, selects the FHIR XML and says how to copy it by hand",
    async () => {
      const id = await create(server, "text/plain", "Copy me by hand.\n");
      await using offline = await offlineContext(browser);
      const page = await offline.context.newPage();
      await signIn(page, server);
      // The browser's own permission setting, as a person who blocked clipboard access has it.
      const cdp = await browser.newBrowserCDPSession();
      const { targetInfos } = (await cdp.send("Target.getTargets")) as {
        targetInfos: { url: string; browserContextId?: string }[];
      };
      const browserContextId = targetInfos.find((target) =>
        target.url.startsWith(server.origin),
      )?.browserContextId;
      await cdp.send("Browser.setPermission", {
        permission: { name: "clipboard-write" },
        setting: "denied",
        origin: server.origin,
        ...(browserContextId ? { browserContextId } : {}),
      });
      await page.locator("#document-list button.document", { hasText: id }).click();
      await page.getByRole("tab", { name: "FHIR XML" }).click();
      const xml = (await page.locator("pre.code-xml").textContent()) ?? "";
      await page.getByRole("button", { name: "Copy" }).click();
      await page
        .getByRole("status")
        .getByText("Copying is not allowed here: the text is selected, press Ctrl+C (⌘C on a Mac).")
        .waitFor();
      // The selection is the whole code block (the browser leaves out its final newline).
      expect(await page.evaluate<string>("String(getSelection())")).toBe(xml.trimEnd());
    },
    BROWSER_TEST_MS,
  );
});
