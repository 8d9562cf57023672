/**
 * The demo web app at the server root (outside the FHIR base): static files embedded in the executable as
 * text, and `/app-config.json` telling the app where the FHIR base is. Everything is same-origin; the
 * Content-Security-Policy allows only 'self', plus blob: for the previews the app builds from fetched bytes.
 */
import { Elysia } from "elysia";
import type { Config } from "../config.ts";
import appCss from "../web/app.css" with { type: "text" };
import appJs from "../web/app.js" with { type: "text" };
import fhirClientJs from "../web/fhir-client.js" with { type: "text" };
import iconSvg from "../web/icon.svg" with { type: "text" };
import indexHtml from "../web/index.html" with { type: "text" };

/**
 * The app's policy: its own scripts, styles and API only; previews of fetched documents as blob: URLs (images,
 * PDF, audio, video) or sandboxed srcdoc frames (HTML, which inherit this policy: no script, no remote loads).
 */
export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // A previewed HTML document (a srcdoc frame, which inherits this policy) keeps its own <style>: inline
  // styles only, scripts stay 'self'.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "frame-src 'self' blob:",
  // Chromium shows a PDF in a frame with its built-in viewer, a plugin: object-src governs it.
  "object-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** One embedded file: its body and Content-Type. */
interface Asset {
  body: string;
  type: string;
}

const ASSETS: Record<string, Asset> = {
  "/app/app.css": { body: appCss, type: "text/css; charset=utf-8" },
  "/app/app.js": { body: appJs, type: "text/javascript; charset=utf-8" },
  "/app/fhir-client.js": { body: fhirClientJs, type: "text/javascript; charset=utf-8" },
  "/app/icon.svg": { body: iconSvg, type: "image/svg+xml" },
};

const COMMON_HEADERS = {
  "content-security-policy": WEB_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // The files change with the executable: revalidate rather than keep a stale app.
  "cache-control": "no-cache",
};

function serve(body: string, type: string): Response {
  return new Response(body, {
    headers: { ...COMMON_HEADERS, "content-type": type, "content-length": String(Buffer.byteLength(body)) },
  });
}

/** The demo app's routes: `/`, `/app/*` and `/app-config.json`. */
export function webRoutes(config: Config) {
  // bun-types types `*.html` imports as an HTML bundle; `type: "text"` makes it the file's text.
  const html = indexHtml as unknown as string;
  const appConfig = JSON.stringify({
    basePath: config.basePath,
    fhirVersion: config.fhirVersion.name,
    auth: config.auth,
  });
  const app = new Elysia({ name: "fhirbin-web" })
    .get("/", () => serve(html, "text/html; charset=utf-8"), { detail: { hide: true } })
    .get("/app-config.json", () => serve(appConfig, "application/json"), { detail: { hide: true } });
  for (const [path, asset] of Object.entries(ASSETS)) {
    app.get(path, () => serve(asset.body, asset.type), { detail: { hide: true } });
  }
  return app;
}
