// @ts-check
/**
 * A small FHIR Binary client for the demo app: fetch with the bearer token, XMLHttpRequest for uploads
 * (the one browser API that reports upload progress), errors carrying the OperationOutcome's text.
 */

/** An HTTP failure, with the status (0: no answer at all) and the server's diagnostics. */
export class FhirRequestError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The diagnostics of an OperationOutcome body, or the status text. @param {Response} response */
async function failure(response) {
  let text = response.statusText || "no details given";
  try {
    const outcome = await response.json();
    const issue = outcome?.issue?.[0];
    if (issue?.diagnostics) text = issue.diagnostics;
  } catch {
    // Not an OperationOutcome: keep the status line.
  }
  return new FhirRequestError(response.status, text);
}

/** What fetch and XMLHttpRequest leave us when no answer came ("Failed to fetch" says nothing). */
const UNREACHABLE = "No answer from the server";

/** The search parameter of the original file name (contains, case-insensitive). */
const FILE_NAME_PARAMETER = "filename";

/** A client bound to a FHIR base path (from /app-config.json) and a token (null: the server needs none). */
export class FhirClient {
  /** @param {string} base the FHIR base path, e.g. "/fhir" @param {string | null} token */
  constructor(base, token) {
    this.base = base;
    this.token = token;
  }

  /** @param {string} path relative to the base, or an absolute URL (paging links) */
  url(path) {
    return /^https?:/.test(path) ? path : `${this.base}${path}`;
  }

  /**
   * fetch with the token; throws FhirRequestError unless the status is 2xx.
   * @param {string} path @param {RequestInit} [init]
   */
  async request(path, init = {}) {
    const headers = new Headers(init.headers);
    if (this.token !== null) headers.set("authorization", `Bearer ${this.token}`);
    /** @type {Response} */
    let response;
    try {
      response = await fetch(this.url(path), { ...init, headers, cache: "no-store" });
    } catch {
      throw new FhirRequestError(0, UNREACHABLE);
    }
    if (!response.ok) throw await failure(response);
    return response;
  }

  /** @param {string} path */
  async json(path) {
    const response = await this.request(path, { headers: { accept: "application/fhir+json" } });
    return response.json();
  }

  /**
   * A searchset page, newest first, optionally of some types and of file names containing `name`.
   * @param {{ types?: string, name?: string, count?: number, next?: string }} options
   */
  search({ types = "", name = "", count = 20, next } = {}) {
    if (next) return this.json(next);
    const query = new URLSearchParams({ _sort: "-_lastUpdated", _count: String(count) });
    if (types) query.set("contenttype", types);
    if (name) query.set(FILE_NAME_PARAMETER, name);
    return this.json(`/Binary?${query}`);
  }

  /** Whether the token is accepted (a count-only search; a token without the search scope is still valid). */
  async verify() {
    try {
      await this.request("/Binary?_summary=count", { headers: { accept: "application/fhir+json" } });
      return true;
    } catch (error) {
      if (error instanceof FhirRequestError && error.status === 403) return true;
      throw error;
    }
  }

  /** The path of a Binary, or of one of its versions. @param {string} id @param {string | null} [version] */
  path(id, version = null) {
    const enc = encodeURIComponent(id);
    return version ? `/Binary/${enc}/_history/${encodeURIComponent(version)}` : `/Binary/${enc}`;
  }

  /** The native bytes. @param {string} id @param {string | null} [version] */
  async native(id, version = null) {
    const response = await this.request(this.path(id, version));
    return response.blob();
  }

  /** Headers of a native read (size, type, security context). @param {string} id @param {string | null} [version] */
  async head(id, version = null) {
    const response = await this.request(this.path(id, version), { method: "HEAD" });
    return response.headers;
  }

  /** The resource without its payload (`_summary=true`): meta, contentType. @param {string} id @param {string | null} [version] */
  summary(id, version = null) {
    return this.json(`${this.path(id, version)}?_summary=true`);
  }

  /**
   * The FHIR resource as text, JSON or XML, pretty; `summary` leaves the payload out.
   * @param {string} id @param {string | null} version @param {"json" | "xml"} format @param {boolean} summary
   */
  async resourceText(id, version, format, summary) {
    const query = new URLSearchParams({ _format: format, _pretty: "true" });
    if (summary) query.set("_summary", "true");
    const response = await this.request(`${this.path(id, version)}?${query}`);
    return response.text();
  }

  /** The history Bundle of one Binary: its first 1000 versions (the largest page), newest first. @param {string} id */
  history(id) {
    return this.json(`${this.path(id)}/_history?_count=1000`);
  }

  /** @param {string} id */
  async remove(id) {
    await this.request(this.path(id), { method: "DELETE" });
  }

  /**
   * Uploads one file as a new Binary; resolves to the created resource (summary form).
   * @param {File} file @param {(loaded: number, total: number) => void} onProgress
   * @returns {Promise<{ id: string, meta?: { versionId?: string } }>}
   */
  upload(file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", this.url("/Binary"));
      if (this.token !== null) xhr.setRequestHeader("authorization", `Bearer ${this.token}`);
      xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
      // The name goes as RFC 8187 UTF-8 (header values are ASCII): what is outside attr-char is %-encoded.
      const name = encodeURIComponent(file.name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      xhr.setRequestHeader("content-disposition", `attachment; filename*=UTF-8''${name}`);
      xhr.setRequestHeader("accept", "application/fhir+json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded, event.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // An empty or non-JSON body: handled below.
        }
        if (xhr.status === 201 && body?.id) {
          onProgress(file.size, file.size);
          resolve(body);
        } else {
          const text = body?.issue?.[0]?.diagnostics ?? `${xhr.status} ${xhr.statusText}`;
          reject(new FhirRequestError(xhr.status, text));
        }
      });
      xhr.addEventListener("error", () =>
        reject(new FhirRequestError(0, UNREACHABLE)),
      );
      xhr.addEventListener("abort", () => reject(new FhirRequestError(0, "The upload was cancelled")));
      xhr.send(file);
    });
  }
}
