/**
 * Headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core, with every request
 * that leaves the loopback interface blocked (and recorded), so a page that needs the network fails.
 */
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

/** Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing). */
export const CHROMIUM = process.env.FHIRBIN_CHROMIUM ?? "/usr/bin/chromium";

/** Whether the browser tests can run; when not, they are skipped with a notice on the console. */
export const HAS_CHROMIUM = existsSync(CHROMIUM);

/** Browser tests wait for real rendering: one bound for a whole test instead of bun's 5 s default. */
export const BROWSER_TEST_MS = 60_000;

/** Where screenshots go, for a person to look at. */
export const SHOTS_DIR = "/tmp/fhirbin-shots";

/** Prints why the browser tests of a file are skipped. */
export function noticeSkipped(what: string): void {
  if (!HAS_CHROMIUM) {
    console.warn(
      `NOTICE: ${what} skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set FHIRBIN_CHROMIUM)`,
    );
  }
}

/** Launches headless Chromium with no background traffic of its own. */
export async function launchChromium(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** A browser context whose requests to anything but loopback are aborted; `blocked` lists them. */
export async function offlineContext(
  browser: Browser,
  viewport: { width: number; height: number } = { width: 1280, height: 800 },
): Promise<{ context: BrowserContext; blocked: string[] } & AsyncDisposable> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const blocked: string[] = [];
  await context.route("**", (route) => {
    const url = new URL(route.request().url());
    // The browser's own resources (chrome://, the PDF viewer's chrome-extension://, blob:, data:) never
    // leave the machine; any http(s), ws(s) or ftp request must stay on loopback.
    const network = /^(https?|wss?|ftp):$/.test(url.protocol);
    if (!network || LOOPBACK.has(url.hostname)) return route.continue();
    blocked.push(url.href);
    return route.abort("blockedbyclient");
  });
  return { context, blocked, [Symbol.asyncDispose]: () => context.close() };
}

/** The path of a screenshot named `name` (the directory is created). */
export function shotPath(name: string): string {
  mkdirSync(SHOTS_DIR, { recursive: true });
  return `${SHOTS_DIR}/${name}.png`;
}

/**
 * Reads a value until `ok` holds (bun has no `expect.poll`) or `timeoutMs` passes; returns the last value
 * read, for the test's own `expect` to judge.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await Bun.sleep(50);
  }
}
