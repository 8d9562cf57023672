// @ts-check
/**
 * The fhirbin demo app: sign in with a token, list (search, newest first, filter by type), upload by drag
 * and drop with progress, preview, the FHIR JSON and XML, version history with vread, delete. Plain DOM:
 * every text from the server goes through textContent, never innerHTML.
 */
import { FhirClient, FhirRequestError } from "./fhir-client.js";

const TOKEN_KEY = "fhirbin.token";
/** The extension (in `meta.extension`) that carries a document's original file name. */
const FILE_NAME_URL = "https://fhirbin.dev/fhir/StructureDefinition/file-name";
/** How long typing in the name search waits before it asks the server. */
const SEARCH_DELAY_MS = 250;
/** Larger documents are not previewed (they can be downloaded). */
const PREVIEW_LIMIT = 32 * 1024 * 1024;
/** Larger documents show their FHIR resource in the summary form (no base64 payload). */
const FULL_RESOURCE_LIMIT = 256 * 1024;
const PAGE_SIZE = 20;
/** Upload rows kept on screen. */
const MAX_UPLOAD_ROWS = 4;
/** How long a finished upload stays listed. */
const DONE_UPLOAD_MS = 15_000;

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Creates an element: `h("p", { class: "x" }, "text", child)`.
 * @param {string} tag @param {Record<string, string | boolean | ((event: Event) => void)>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} children
 */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else if (value !== false) element.setAttribute(name, value);
  }
  for (const child of children)
    if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

/** @param {number} bytes */
function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return "";
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
/** @param {string | undefined} instant */
const formatDate = (instant) => (instant ? dateFormat.format(new Date(instant)) : "");

/**
 * A subtype as a badge label when it is a short word ("png", "x-zip" as "ZIP", "svg+xml" as "SVG"), else
 * null: a badge shows a whole word or nothing, never a cut one ("OCTET-ST").
 * @param {string} subtype
 */
function shortLabel(subtype) {
  const word = subtype.replace(/^x-/, "").split("+")[0] ?? "";
  return /^[a-z0-9]{1,5}$/.test(word) ? word.toUpperCase() : null;
}

/**
 * How a MIME type is shown: a short badge label, a colour family and a noun for documents without a file
 * name ("PDF document", "PNG image", "File").
 * @param {string} type
 */
function typeInfo(type) {
  const essence = (type || "").split(";")[0]?.trim().toLowerCase() ?? "";
  const [major = "", subtype = ""] = essence.split("/");
  const short = shortLabel(subtype);
  if (essence === "application/pdf") return { label: "PDF", family: "pdf", noun: "PDF document" };
  if (major === "image")
    return { label: short ?? "IMAGE", family: "image", noun: short ? `${short} image` : "Image" };
  if (essence === "text/html" || essence === "application/xhtml+xml")
    return { label: "HTML", family: "html", noun: "HTML document" };
  if (essence === "text/markdown") return { label: "MD", family: "text", noun: "Markdown document" };
  if (major === "text" && subtype !== "plain" && short)
    return { label: short, family: "text", noun: `${short} document` };
  if (major === "text") return { label: "TEXT", family: "text", noun: "Text document" };
  if (essence.endsWith("json")) return { label: "JSON", family: "text", noun: "JSON document" };
  if (essence.endsWith("xml")) return { label: "XML", family: "text", noun: "XML document" };
  if (major === "audio") return { label: short ?? "AUDIO", family: "other", noun: "Audio recording" };
  if (major === "video") return { label: short ?? "VIDEO", family: "other", noun: "Video" };
  return { label: short ?? "FILE", family: "other", noun: short ? `${short} file` : "File" };
}

/**
 * The original file name a Binary carries in `meta.extension`, or null.
 * @param {{ meta?: { extension?: { url?: string, valueString?: unknown }[] } } | null | undefined} resource
 */
function fileName(resource) {
  const value = resource?.meta?.extension?.find((extension) => extension?.url === FILE_NAME_URL)?.valueString;
  return typeof value === "string" && value.trim() !== "" ? value : null;
}

/** How a type is previewed. @param {string} type @returns {"image" | "pdf" | "text" | "html" | "audio" | "video" | null} */
function previewKind(type) {
  const essence = (type || "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (essence === "application/pdf") return "pdf";
  if (essence === "text/html" || essence === "application/xhtml+xml") return "html";
  if (essence.startsWith("image/")) return "image";
  if (essence.startsWith("audio/")) return "audio";
  if (essence.startsWith("video/")) return "video";
  if (essence.startsWith("text/") || /(json|xml|csv|yaml)$/.test(essence)) return "text";
  return null;
}

/** @type {{ client: FhirClient | null, base: string, next: string | null, selected: string | null, selections: number, listings: number, objectUrls: string[] }} */
const state = {
  client: null,
  base: "/fhir",
  next: null,
  selected: null,
  selections: 0,
  listings: 0,
  objectUrls: [],
};

/** @param {string} message @param {"info" | "error"} [kind] */
function toast(message, kind = "info") {
  const element = $("toast");
  element.textContent = message;
  element.dataset.kind = kind;
  element.classList.add("visible");
  clearTimeout(Number(element.dataset.timer));
  element.dataset.timer = String(setTimeout(() => element.classList.remove("visible"), 4000));
}

/** Says in words what went wrong ("Failed to fetch" tells a person nothing). @param {unknown} error */
function describe(error) {
  if (!(error instanceof FhirRequestError)) return error instanceof Error ? error.message : String(error);
  const { status, message } = error;
  if (status === 0) return "fhirbin is not reachable: is it running?";
  if (status === 401) {
    signOut("The token was refused: sign in again.");
    return "Signed out: the token was refused.";
  }
  if (status === 403) return `This token is not allowed to do that (403): ${message}`;
  if (status >= 500) return `fhirbin could not answer (${status}): ${message}`;
  return `${message} (${status})`;
}

// ---- Sign in -------------------------------------------------------------------------------------------

function showSignIn(message = "") {
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
  /** @type {HTMLInputElement} */ ($("token")).focus();
}

/** @param {boolean} signedIn whether there is a token to sign out of */
function showWorkspace(signedIn) {
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = !signedIn;
}

/** @param {string} [message] */
function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.client = null;
  releasePreviews();
  showSignIn(message);
}

/** @param {SubmitEvent} event */
async function onSignIn(event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("token"));
  const token = input.value.trim();
  const error = $("sign-in-error");
  if (!token) {
    error.textContent = "Enter a token.";
    return;
  }
  const client = new FhirClient(state.base, token);
  const button = /** @type {HTMLButtonElement} */ (
    /** @type {HTMLFormElement} */ (event.target).querySelector("button")
  );
  button.disabled = true;
  try {
    await client.verify();
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = "";
    state.client = client;
    showWorkspace(true);
    await loadList();
  } catch (failure) {
    error.textContent =
      failure instanceof FhirRequestError && failure.status === 401
        ? "That token was refused."
        : describe(failure);
  } finally {
    button.disabled = false;
  }
}

// ---- List ----------------------------------------------------------------------------------------------

/** @param {boolean} [append] */
async function loadList(append = false) {
  const client = state.client;
  if (!client) return;
  const list = $("document-list");
  const types = /** @type {HTMLSelectElement} */ ($("type-filter")).value;
  const name = /** @type {HTMLInputElement} */ ($("name-filter")).value.trim();
  // Only the latest listing is shown: a slower answer to an earlier search must not replace it.
  const ticket = ++state.listings;
  list.setAttribute("aria-busy", "true");
  try {
    const bundle = await client.search(
      append && state.next ? { next: state.next } : { types, name, count: PAGE_SIZE },
    );
    if (ticket !== state.listings) return;
    $("list-error").hidden = true;
    if (!append) list.replaceChildren();
    for (const entry of bundle.entry ?? []) {
      if (entry.resource?.resourceType === "Binary") list.append(listItem(entry.resource));
    }
    state.next =
      (bundle.link ?? []).find((/** @type {{relation: string}} */ link) => link.relation === "next")?.url ??
      null;
    $("load-more").hidden = !state.next;
    const shown = list.children.length;
    $("list-empty").hidden = shown > 0;
    $("list-empty").textContent =
      types || name ? "No documents match." : "No documents yet. Upload one above.";
    $("total").textContent =
      typeof bundle.total === "number"
        ? `${bundle.total} ${bundle.total === 1 ? "document" : "documents"}`
        : "";
    markSelected();
  } catch (error) {
    if (ticket !== state.listings) return;
    // A listing that failed says why and offers a retry; it never claims that the store is empty.
    if (!append) {
      list.replaceChildren();
      state.next = null;
      $("load-more").hidden = true;
      $("total").textContent = "";
    }
    $("list-empty").hidden = true;
    $("list-error-text").textContent = `Could not list the documents: ${describe(error)}`;
    $("list-error").hidden = false;
  } finally {
    if (ticket === state.listings) list.removeAttribute("aria-busy");
  }
}

/**
 * What a document is called: its file name, else its type and date ("PDF document, 4 Dec 2026, 14:03"),
 * never a bare id.
 * @param {string | null} name @param {string} type @param {string | undefined} instant
 */
function documentTitle(name, type, instant) {
  return name ?? `${typeInfo(type).noun}, ${formatDate(instant)}`;
}

/** @param {{ id: string, contentType?: string, meta?: { lastUpdated?: string, versionId?: string, extension?: { url?: string, valueString?: unknown }[] } }} resource */
function listItem(resource) {
  const type = typeInfo(resource.contentType ?? "");
  const name = fileName(resource);
  const when = resource.meta?.lastUpdated;
  const button = h(
    "button",
    { type: "button", class: "document", "data-id": resource.id, onclick: () => select(resource.id) },
    h("span", { class: `badge badge-${type.family}`, "aria-hidden": "true" }, type.label),
    h(
      "span",
      { class: "document-text" },
      h("span", { class: "document-name" }, documentTitle(name, resource.contentType ?? "", when)),
      h(
        "span",
        { class: "document-meta" },
        name ? `${type.noun} · ${formatDate(when)} · ` : "",
        h("span", { class: "document-id" }, resource.id),
      ),
    ),
  );
  return h("li", {}, button);
}

function markSelected() {
  for (const button of $("document-list").querySelectorAll("button.document")) {
    const current = button.getAttribute("data-id") === state.selected;
    button.classList.toggle("selected", current);
    if (current) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

// ---- Upload --------------------------------------------------------------------------------------------

/** @param {FileList | File[]} files */
async function uploadFiles(files) {
  const client = state.client;
  if (!client) return;
  let last = null;
  for (const file of Array.from(files)) {
    const progress = /** @type {HTMLProgressElement} */ (h("progress", { max: "100", value: "0" }));
    const status = h("span", { class: "upload-status" }, "0%");
    const row = h(
      "li",
      { class: "upload" },
      h("span", { class: "upload-name" }, file.name),
      h("span", { class: "upload-size muted" }, formatSize(file.size)),
      progress,
      status,
    );
    progress.setAttribute("aria-label", `Upload of ${file.name}`);
    $("uploads").prepend(row);
    // Only the latest few uploads stay listed, so the document list stays in view.
    for (const old of Array.from($("uploads").children).slice(MAX_UPLOAD_ROWS)) old.remove();
    try {
      const created = await client.upload(file, (loaded, total) => {
        const percent = total ? Math.round((loaded / total) * 100) : 100;
        progress.value = percent;
        status.textContent = `${percent}%`;
      });
      row.classList.add("done");
      row.dataset.id = created.id;
      status.textContent = "Uploaded";
      setTimeout(() => row.remove(), DONE_UPLOAD_MS);
      last = created.id;
    } catch (error) {
      row.classList.add("failed");
      status.textContent = describe(error);
    }
  }
  await loadList();
  if (last) {
    toast(files.length === 1 ? `Uploaded Binary/${last}` : `Uploaded ${files.length} documents`);
    await select(last);
  }
}

function setUpDropzone() {
  const zone = $("dropzone");
  const input = /** @type {HTMLInputElement} */ ($("file-input"));
  input.addEventListener("change", () => {
    if (input.files?.length) uploadFiles(Array.from(input.files)).finally(() => (input.value = ""));
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "dragend"])
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = /** @type {DragEvent} */ (event).dataTransfer?.files;
    if (files?.length) uploadFiles(Array.from(files));
  });
  // A file dropped outside the zone must not replace the app with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

// ---- Detail --------------------------------------------------------------------------------------------

function releasePreviews() {
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls = [];
}

/** @param {Blob} blob */
function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  state.objectUrls.push(url);
  return url;
}

/**
 * Shows one Binary (its current version, or `version`).
 * @param {string} id @param {string | null} [version] @param {string} [tab]
 */
async function select(id, version = null, tab = "preview") {
  const client = state.client;
  if (!client) return;
  state.selected = id;
  const ticket = ++state.selections;
  markSelected();
  releasePreviews();
  const detail = $("detail");
  detail.setAttribute("aria-busy", "true");
  try {
    // The headers give the exact size; the summary resource gives the file name (no payload either way).
    const [headers, resource] = await Promise.all([client.head(id, version), client.summary(id, version)]);
    const type = headers.get("content-type") ?? "application/octet-stream";
    const size = Number(headers.get("content-length"));
    const etag = headers.get("etag") ?? "";
    const versionId = /W\/"([^"]+)"/.exec(etag)?.[1] ?? version ?? "";
    const updated = resource?.meta?.lastUpdated ?? headers.get("last-modified") ?? undefined;
    const info = { id, version, versionId, type, size, headers, name: fileName(resource), updated };
    // Another document chosen meanwhile wins.
    if (ticket !== state.selections) return;
    detail.replaceChildren(detailView(info, tab));
    // Focus moves to the document's heading. In one column (a phone) the detail is below the whole list:
    // it is scrolled to, as it is on a wide screen when the list was scrolled past it. The back button is
    // shown only in that layout.
    /** @type {HTMLElement | null} */ (detail.querySelector("h2"))?.focus({ preventScroll: true });
    const back = detail.querySelector(".back-to-list");
    const oneColumn = back !== null && getComputedStyle(back).display !== "none";
    if (oneColumn || detail.getBoundingClientRect().top < 0) detail.scrollIntoView({ block: "start" });
  } catch (error) {
    detail.replaceChildren(
      h(
        "div",
        { class: "placeholder" },
        h("h2", { tabindex: "-1" }, `Binary/${id}`),
        h("p", { class: "form-error" }, describe(error)),
      ),
    );
  } finally {
    detail.removeAttribute("aria-busy");
  }
}

/** Back from a document to its entry in the list (phones, where the list is above the detail). */
function backToList() {
  const item = /** @type {HTMLElement | null} */ (
    $("document-list").querySelector("button.document.selected")
  );
  const target = item ?? /** @type {HTMLElement} */ ($("name-filter"));
  target.scrollIntoView({ block: "center" });
  target.focus({ preventScroll: true });
}

/**
 * @typedef {{ id: string, version: string | null, versionId: string, type: string, size: number, headers: Headers, name: string | null, updated: string | undefined }} Info
 * @param {Info} info @param {string} initialTab
 */
function detailView(info, initialTab) {
  const badge = typeInfo(info.type);
  const lastModified = info.headers.get("last-modified");
  const context = info.headers.get("x-security-context");
  /** @param {string} term @param {string} value */
  const fact = (term, value) => h("div", { class: "fact" }, h("dt", {}, term), h("dd", {}, value));
  const facts = h(
    "dl",
    { class: "facts" },
    fact("Type", info.type),
    fact("Size", formatSize(info.size)),
    fact("Version", info.version ? `${info.versionId} (older)` : `${info.versionId} (current)`),
    fact("Updated", lastModified ? formatDate(lastModified) : ""),
    context ? fact("Security context", context) : null,
  );
  const download = h(
    "button",
    { type: "button", class: "ghost", onclick: () => downloadDocument(info) },
    "Download",
  );
  const back = h(
    "button",
    { type: "button", class: "ghost small back-to-list", onclick: backToList },
    h("span", { "aria-hidden": "true" }, "← "),
    "Back to the list",
  );
  const remove = info.version
    ? h(
        "button",
        { type: "button", class: "ghost", onclick: () => select(info.id) },
        "Back to current version",
      )
    : h(
        "button",
        { type: "button", class: "danger-outline", onclick: () => confirmDelete(info.id) },
        "Delete…",
      );
  const header = h(
    "div",
    { class: "detail-head" },
    h(
      "div",
      { class: "detail-title" },
      h("span", { class: `badge badge-${badge.family}`, "aria-hidden": "true" }, badge.label),
      h(
        "div",
        { class: "detail-names" },
        h("h2", { tabindex: "-1" }, documentTitle(info.name, info.type, info.updated)),
        h(
          "p",
          { class: "detail-id" },
          info.version ? `Binary/${info.id} · version ${info.versionId}` : `Binary/${info.id}`,
        ),
      ),
    ),
    h("div", { class: "detail-actions" }, download, remove),
  );

  const tabs = [
    ["preview", "Preview"],
    ["json", "FHIR JSON"],
    ["xml", "FHIR XML"],
    ["history", "History"],
  ];
  const panel = h("div", { class: "tab-panel", role: "tabpanel", id: "tab-panel", tabindex: "0" });
  const tabList = h("div", { class: "tabs", role: "tablist", "aria-label": "Views of the document" });
  /** @param {string} name */
  const show = (name) => {
    for (const button of tabList.querySelectorAll("button")) {
      const active = button.getAttribute("data-tab") === name;
      button.setAttribute("aria-selected", String(active));
      button.tabIndex = active ? 0 : -1;
      if (active) panel.setAttribute("aria-labelledby", button.id);
    }
    renderTab(name, info, panel);
  };
  for (const [name, label] of tabs) {
    tabList.append(
      h(
        "button",
        {
          type: "button",
          role: "tab",
          id: `tab-${name}`,
          "data-tab": name,
          "aria-controls": "tab-panel",
          onclick: () => show(name),
        },
        label,
      ),
    );
  }
  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  tabList.addEventListener("keydown", (event) => {
    const keys = /** @type {KeyboardEvent} */ (event).key;
    if (keys !== "ArrowRight" && keys !== "ArrowLeft") return;
    const buttons = Array.from(tabList.querySelectorAll("button"));
    const index = buttons.findIndex((button) => button.getAttribute("aria-selected") === "true");
    const next = buttons[(index + (keys === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length];
    if (next) {
      next.focus();
      show(next.getAttribute("data-tab") ?? "preview");
    }
  });
  show(initialTab);
  return h("article", { class: "detail-body" }, back, header, facts, tabList, panel);
}

/** @param {string} name @param {Info} info @param {HTMLElement} panel */
async function renderTab(name, info, panel) {
  const client = state.client;
  if (!client) return;
  // A slower answer for a tab left since must not replace the newer one.
  const ticket = String((Number(panel.dataset.ticket) || 0) + 1);
  panel.dataset.ticket = ticket;
  /** @param {Node[]} nodes */
  const put = (...nodes) => {
    if (panel.dataset.ticket === ticket) panel.replaceChildren(...nodes);
  };
  panel.replaceChildren(h("p", { class: "muted loading" }, "Loading…"));
  try {
    if (name === "preview") put(await preview(info));
    else if (name === "json" || name === "xml") {
      const summary = info.size > FULL_RESOURCE_LIMIT;
      const text = await client.resourceText(info.id, info.version, name, summary);
      const code = h(
        "pre",
        { class: `code code-${name}`, "aria-label": name === "json" ? "FHIR JSON" : "FHIR XML" },
        text,
      );
      const status = h("span", { class: "muted small", role: "status" });
      const copy = h(
        "button",
        { type: "button", class: "ghost small", onclick: () => copyCode(code, status) },
        "Copy",
      );
      const note = `The payload is left out (_summary=true): the document is ${formatSize(info.size)}.`;
      put(
        h("div", { class: "code-tools" }, copy, status),
        ...(summary ? [h("p", { class: "muted small" }, note)] : []),
        code,
      );
    } else if (name === "history") put(await historyView(info));
  } catch (error) {
    put(h("p", { class: "form-error" }, describe(error)));
  }
}

/** @param {HTMLElement} code @param {HTMLElement} status */
async function copyCode(code, status) {
  try {
    await navigator.clipboard.writeText(code.textContent ?? "");
    status.textContent = "Copied.";
  } catch {
    // No clipboard outside a secure context, or the permission was refused: select it for the keyboard.
    getSelection()?.selectAllChildren(code);
    status.textContent = "Copying is not allowed here: the text is selected, press Ctrl+C (⌘C on a Mac).";
  }
}

/**
 * The note shown instead of a preview the browser cannot render (a broken-image icon says nothing).
 * @param {Info} info @param {string} why
 */
function cannotShow(info, why) {
  const what = previewKind(info.type) === "image" ? "This image" : "This document";
  return h(
    "p",
    { class: "muted cannot-show" },
    `${what} cannot be shown: ${why} (${formatSize(info.size)}, ${info.type}).`,
  );
}

/** @param {Info} info */
async function preview(info) {
  const kind = previewKind(info.type);
  if (!kind) return h("p", { class: "muted" }, `No preview for ${info.type}: download it instead.`);
  if (info.size === 0) return cannotShow(info, "it is empty");
  if (info.size > PREVIEW_LIMIT)
    return h(
      "p",
      { class: "muted" },
      `Too large to preview (${formatSize(info.size)}): download it instead.`,
    );
  const client = /** @type {FhirClient} */ (state.client);
  const blob = await client.native(info.id, info.version);
  const label = `Preview of Binary/${info.id}`;
  switch (kind) {
    case "image": {
      const box = h("div", { class: "preview preview-image" });
      const image = h("img", {
        src: objectUrl(blob),
        alt: label,
        onerror: () => {
          box.className = "preview";
          box.replaceChildren(cannotShow(info, "the browser cannot decode it"));
        },
      });
      box.append(image);
      return box;
    }
    case "pdf":
      return h("iframe", {
        class: "preview preview-frame",
        src: objectUrl(new Blob([blob], { type: "application/pdf" })),
        title: label,
      });
    case "html":
      // No allow-scripts and no allow-same-origin: the document can neither run script nor reach the app.
      return h(
        "div",
        { class: "preview" },
        h(
          "p",
          { class: "muted small" },
          "Shown in a sandboxed frame: scripts, forms and links inside it are disabled.",
        ),
        h("iframe", { class: "preview preview-frame", sandbox: "", srcdoc: await blob.text(), title: label }),
      );
    case "audio":
      return h("audio", { class: "preview", controls: true, src: objectUrl(blob) });
    case "video":
      return h("video", { class: "preview preview-video", controls: true, src: objectUrl(blob) });
    default:
      return h("pre", { class: "code preview-text", "aria-label": label }, await blob.text());
  }
}

/** @param {Info} info */
async function historyView(info) {
  const client = /** @type {FhirClient} */ (state.client);
  const bundle = await client.history(info.id);
  const rows = (bundle.entry ?? []).map((/** @type {any} */ entry) => {
    const deleted = entry.request?.method === "DELETE" || !entry.resource;
    const versionId =
      entry.resource?.meta?.versionId ??
      /_history\/([^/]+)$/.exec(entry.request?.url ?? entry.fullUrl ?? "")?.[1] ??
      "";
    const when = entry.resource?.meta?.lastUpdated ?? entry.response?.lastModified;
    const current = versionId === info.versionId;
    return h(
      "tr",
      { class: current ? "current" : "" },
      h("td", {}, versionId),
      h("td", {}, formatDate(when)),
      h("td", { class: "col-type" }, deleted ? "" : (entry.resource?.contentType ?? "")),
      h(
        "td",
        {},
        deleted
          ? h("span", { class: "badge badge-deleted" }, "Deleted")
          : current
            ? h("span", { class: "muted small" }, "Shown")
            : h(
                "button",
                {
                  type: "button",
                  class: "ghost small",
                  onclick: () => select(info.id, versionId),
                  "aria-label": `View version ${versionId}`,
                },
                "View",
              ),
      ),
    );
  });
  const table = h(
    "table",
    { class: "history" },
    h("caption", { class: "visually-hidden" }, `Versions of Binary/${info.id}, newest first`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Version"),
        h("th", { scope: "col" }, "Updated"),
        h("th", { scope: "col", class: "col-type" }, "Type"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Action")),
      ),
    ),
    h("tbody", {}, ...rows),
  );
  // A narrow card scrolls the table inside itself rather than letting it run past the card's edge.
  return h("div", { class: "table-wrap" }, table);
}

/** @param {Info} info */
async function downloadDocument(info) {
  try {
    const blob = await /** @type {FhirClient} */ (state.client).native(info.id, info.version);
    const link = h("a", { href: objectUrl(blob), download: info.name ?? info.id });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    toast(describe(error), "error");
  }
}

/** @param {string} id */
function confirmDelete(id) {
  const dialog = /** @type {HTMLDialogElement} */ ($("confirm-delete"));
  $("confirm-text").textContent = `Binary/${id} will be deleted.`;
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "delete") return;
      try {
        await /** @type {FhirClient} */ (state.client).remove(id);
        toast(`Deleted Binary/${id}`);
        state.selected = null;
        releasePreviews();
        $("detail").replaceChildren(
          h("div", { class: "placeholder" }, h("p", {}, `Binary/${id} was deleted.`)),
        );
        await loadList();
      } catch (error) {
        toast(`Could not delete: ${describe(error)}`, "error");
      }
    },
    { once: true },
  );
  dialog.showModal();
}

// ---- Start ---------------------------------------------------------------------------------------------

async function start() {
  let auth = true;
  try {
    const config = await (await fetch("/app-config.json")).json();
    if (typeof config.basePath === "string") state.base = config.basePath;
    auth = config.auth !== false;
  } catch {
    // Keep the default base, and ask for a token.
  }
  $("sign-in-form").addEventListener("submit", (event) => onSignIn(/** @type {SubmitEvent} */ (event)));
  $("sign-out").addEventListener("click", () => signOut());
  $("type-filter").addEventListener("change", () => loadList());
  /** @type {number | undefined} */
  let typing;
  $("name-filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => loadList(), SEARCH_DELAY_MS);
  });
  $("refresh").addEventListener("click", () => loadList());
  $("retry").addEventListener("click", () => loadList());
  $("load-more").addEventListener("click", () => loadList(true));
  setUpDropzone();
  // A server started with --auth off needs no token: there is nothing to sign in to.
  const token = auth ? sessionStorage.getItem(TOKEN_KEY) : null;
  if (!auth || token) {
    state.client = new FhirClient(state.base, token);
    showWorkspace(auth);
    await loadList();
  } else {
    showSignIn();
  }
}

start();
