/** The content type of a file to import: from its first bytes, then its extension, else octet-stream. */

/** Types by extension (lower case, with the dot). */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  ".pdf": "application/pdf",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".bmp": "image/bmp",
  ".webp": "image/webp",
  ".svg": "image/svg+xml",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".xml": "application/xml",
  ".json": "application/json",
  ".rtf": "application/rtf",
  ".doc": "application/msword",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".xls": "application/vnd.ms-excel",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".odt": "application/vnd.oasis.opendocument.text",
  ".zip": "application/zip",
  ".dcm": "application/dicom",
  ".eml": "message/rfc822",
  ".mp3": "audio/mpeg",
  ".wav": "audio/wav",
  ".mp4": "video/mp4",
};

/** The extension written for a content type on export (the reverse of BY_EXTENSION, first one wins). */
export function extensionOf(contentType: string): string {
  const bare = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  for (const [extension, type] of Object.entries(BY_EXTENSION)) {
    if ((type.split(";")[0] ?? "") === bare) return extension;
  }
  return ".bin";
}

function startsWith(bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean {
  return prefix.every((byte, index) => bytes[offset + index] === byte);
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** Recognisable signatures; ZIP is left out on purpose (DOCX, XLSX and ODT are ZIPs: the extension says which). */
const SIGNATURES: ReadonlyArray<{ type: string; bytes: readonly number[]; offset?: number }> = [
  { type: "application/pdf", bytes: ascii("%PDF-") },
  { type: "image/png", bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: "image/jpeg", bytes: [0xff, 0xd8, 0xff] },
  { type: "image/gif", bytes: ascii("GIF8") },
  { type: "image/tiff", bytes: [0x49, 0x49, 0x2a, 0x00] },
  { type: "image/tiff", bytes: [0x4d, 0x4d, 0x00, 0x2a] },
  { type: "image/bmp", bytes: ascii("BM") },
  { type: "application/rtf", bytes: ascii("{\\rtf") },
  { type: "application/dicom", bytes: ascii("DICM"), offset: 128 },
  { type: "audio/mpeg", bytes: ascii("ID3") },
  { type: "video/mp4", bytes: ascii("ftyp"), offset: 4 },
];

/** Detects the type of `head` (the first bytes of the file), falling back to the extension of `name`. */
export function detectContentType(head: Uint8Array, name: string): string {
  for (const signature of SIGNATURES) {
    if (startsWith(head, signature.bytes, signature.offset)) return signature.type;
  }
  if (startsWith(head, ascii("RIFF")) && startsWith(head, ascii("WEBP"), 8)) return "image/webp";
  if (startsWith(head, ascii("RIFF")) && startsWith(head, ascii("WAVE"), 8)) return "audio/wav";
  const dot = name.lastIndexOf(".");
  const byName = dot > 0 ? BY_EXTENSION[name.slice(dot).toLowerCase()] : undefined;
  if (byName) return byName;
  // Markup is recognised after the extension: an .svg or .xhtml file starts with `<?xml` too.
  const text = new TextDecoder().decode(head.subarray(0, 64)).trimStart().toLowerCase();
  if (text.startsWith("<!doctype html") || text.startsWith("<html")) return "text/html; charset=utf-8";
  if (text.startsWith("<?xml")) return "application/xml";
  return "application/octet-stream";
}
