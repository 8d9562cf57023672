/**
 * Generates the demo clinical documents in data/samples/ (`npm run samples`); `npm start` seeds the
 * server from there, using each file's base name as the Binary id.
 *
 * Everything is synthesised here rather than downloaded so the samples carry no licensing or privacy
 * baggage, and it is deterministic (fixed dates, no randomness) so re-running rewrites identical bytes.
 * The patient is fictional and uses the NHS test number 9000000009; phone numbers are from Ofcom's
 * range reserved for drama.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
// Bun has no built-in JPEG encoder, hence this small pure-JS dev dependency.
import { encode as encodeJpeg } from "jpeg-js";

const OUT_DIR = join(import.meta.dir, "samples");

const PATIENT = {
  name: "Mrs Eleanor Whitfield",
  surname: "Whitfield",
  nhsNumber: "900 000 0009",
  birthDate: "14/03/1958",
  address: "4 Orchard Close, Riverton RV3 7QP",
};
const PRACTICE = {
  name: "Riverside Medical Practice",
  address: "12 Mill Lane, Riverton RV1 2AB",
  contact: "Tel 01632 960123  |  reception@riverside-practice.example",
  gp: "Dr Sarah Okafor",
};
const HOSPITAL = "Northbridge General Hospital";

// ---------------------------------------------------------------------------------------------------
// Raster images: each picture is a pure function of (x, y), shared by the PNG and JPEG encoders.

type Rgb = readonly [number, number, number];

interface Raster {
  width: number;
  height: number;
  /** Packed 8-bit RGB, row-major. */
  pixels: Uint8Array;
}

function rasterise(width: number, height: number, paint: (x: number, y: number) => Rgb): Raster {
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set(paint(x, y), (y * width + x) * 3);
  }
  return { width, height, pixels };
}

const clamp01 = (v: number): number => Math.min(1, Math.max(0, v));

/** Linear blend from `a` (t = 0) to `b` (t = 1), rounded to whole channel values. */
function mix(a: Rgb, b: Rgb, t: number): Rgb {
  const s = clamp01(t);
  return [
    Math.round(a[0] + (b[0] - a[0]) * s),
    Math.round(a[1] + (b[1] - a[1]) * s),
    Math.round(a[2] + (b[2] - a[2]) * s),
  ];
}

// Wound photo: a pretibial laceration on skin, with a millimetre ruler for scale as in wound-care photos.
const WOUND = { width: 320, height: 240, cx: 158, cy: 100, rx: 82, ry: 40, tilt: -0.3 };
const RULER = { x: 35, y: 188, mm: 5, lengthMm: 50, height: 30 };
const SKIN: Rgb = [226, 178, 146];

function woundPixel(x: number, y: number): Rgb {
  const ruler = rulerPixel(x, y);
  if (ruler) return ruler;
  // Gentle fall-off from a light source top-left, so the skin does not look flat.
  const light = 1.06 - 0.3 * (((x - 100) / 320) ** 2 + ((y - 60) / 240) ** 2);
  const skin = mix([0, 0, 0], SKIN, light);
  const dx = x - WOUND.cx;
  const dy = y - WOUND.cy;
  const u = (dx * Math.cos(WOUND.tilt) + dy * Math.sin(WOUND.tilt)) / WOUND.rx;
  const v = (dy * Math.cos(WOUND.tilt) - dx * Math.sin(WOUND.tilt)) / WOUND.ry;
  const angle = Math.atan2(v, u);
  // Ragged margin: the radius wobbles with angle, as a real laceration edge would.
  const d = Math.hypot(u, v) / (1 + 0.07 * Math.sin(5 * angle) + 0.04 * Math.sin(11 * angle + 1));
  if (d >= 1) return mix([214, 118, 104], skin, (d - 1) / 0.4); // surrounding erythema
  // Warped sine bumps stand in for granulation tissue without needing a random generator.
  const granulation =
    0.9 + 0.1 * Math.sin(x * 0.8 + 2 * Math.sin(y * 0.3)) * Math.sin(y * 0.9 + 2 * Math.sin(x * 0.25));
  const bed = mix([118, 18, 28], [196, 62, 60], d);
  return mix([0, 0, 0], bed, granulation);
}

function rulerPixel(x: number, y: number): Rgb | undefined {
  const left = RULER.x - 4;
  const right = RULER.x + RULER.lengthMm * RULER.mm + 4;
  if (x < left || x > right || y < RULER.y || y >= RULER.y + RULER.height) return undefined;
  if (x === left || x === right || y === RULER.y || y === RULER.y + RULER.height - 1) return [90, 90, 90];
  const offset = x - RULER.x;
  const mm = offset / RULER.mm;
  const tick = mm % 10 === 0 ? 16 : mm % 5 === 0 ? 11 : 6;
  const onTick = offset >= 0 && Number.isInteger(mm) && mm <= RULER.lengthMm && y - RULER.y <= tick;
  return onTick ? [25, 25, 25] : [246, 244, 232];
}

// ECG: lead II rhythm strip at the standard 25 mm/s and 10 mm/mV, drawn at 5 px per mm.
const ECG = { width: 600, height: 200, pxPerMm: 5, baselineY: 130 };
const PX_PER_SECOND = 25 * ECG.pxPerMm;
const PX_PER_MV = 10 * ECG.pxPerMm;
// Irregularly irregular R-R intervals with no P waves: atrial fibrillation, matching the patient's history.
const R_PEAKS_S = [0.62, 1.3, 1.86, 2.63, 3.2, 4.05, 4.63];

const gaussian = (t: number, centre: number, width: number, amplitude: number): number =>
  amplitude * Math.exp(-(((t - centre) / width) ** 2));

function ecgMillivolts(t: number): number {
  const calibration = t >= 0.08 && t < 0.28 ? 1 : 0; // the 1 mV square pulse every strip starts with
  const fibrillation = 0.04 * Math.sin(2 * Math.PI * 6.3 * t) + 0.025 * Math.sin(2 * Math.PI * 9.1 * t + 1);
  const beats = R_PEAKS_S.reduce(
    (sum, r) =>
      sum +
      gaussian(t, r - 0.035, 0.01, -0.12) + // Q
      gaussian(t, r, 0.011, 1.25) + // R
      gaussian(t, r + 0.033, 0.012, -0.3) + // S
      gaussian(t, r + 0.26, 0.05, 0.28), // T
    0,
  );
  return calibration + (t >= 0.4 ? fibrillation : 0) + beats;
}

/**
 * Vertical extent of the trace around each pixel column, sampled finely so steep QRS edges stay joined;
 * the window overlaps neighbouring columns so near-vertical strokes get the same width as flat ones.
 */
function traceSpans(): Array<readonly [number, number]> {
  return Array.from({ length: ECG.width }, (_, x) => {
    const ys = Array.from({ length: 13 }, (_, k) => {
      return ECG.baselineY - ecgMillivolts((x - 0.6 + k / 10) / PX_PER_SECOND) * PX_PER_MV;
    });
    return [Math.min(...ys), Math.max(...ys)] as const;
  });
}

function ecgPainter(): (x: number, y: number) => Rgb {
  const spans = traceSpans();
  return (x, y) => {
    const major = x % (5 * ECG.pxPerMm) === 0 || y % (5 * ECG.pxPerMm) === 0;
    const minor = x % ECG.pxPerMm === 0 || y % ECG.pxPerMm === 0;
    const paper: Rgb = major ? [236, 140, 150] : minor ? [250, 204, 208] : [255, 243, 243];
    const [top, bottom] = spans[x] ?? [0, 0];
    // Distance-based coverage gives a ~2 px, lightly anti-aliased pen.
    const distance = Math.max(top - y, y - bottom, 0);
    return mix(paper, [20, 20, 20], 1.6 - distance);
  };
}

// ---------------------------------------------------------------------------------------------------
// PNG (RFC 2083): IHDR, one zlib IDAT, IEND.

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Buffer {
  const typed = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const chunk = Buffer.alloc(typed.length + 8);
  chunk.writeUInt32BE(data.length, 0);
  typed.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(typed), typed.length + 4);
  return chunk;
}

function encodePng({ width, height, pixels }: Raster): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit depth, truecolour RGB, deflate, adaptive filtering, no interlace
  const stride = width * 3;
  const filtered = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1);
    filtered[row] = 1; // "Sub" filter: store each byte minus its left neighbour, which deflates well
    for (let i = 0; i < stride; i++) {
      const left = i >= 3 ? (pixels[y * stride + i - 3] ?? 0) : 0;
      filtered[row + 1 + i] = ((pixels[y * stride + i] ?? 0) - left) & 0xff;
    }
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(filtered, { level: 9 })),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}

function encodeJpegRaster({ width, height, pixels }: Raster): Buffer {
  // jpeg-js takes RGBA input; it writes baseline JFIF and ignores alpha.
  const rgba = new Uint8Array(width * height * 4).fill(255);
  for (let i = 0; i < width * height; i++) rgba.set(pixels.subarray(i * 3, i * 3 + 3), i * 4);
  return encodeJpeg({ width, height, data: rgba }, 85).data;
}

// ---------------------------------------------------------------------------------------------------
// PDF 1.4: one A4 page set in the standard Helvetica fonts, which viewers supply, so nothing is embedded.

const PAGE = { width: 595, height: 842, margin: 64 };
type Font = "F1" | "F2"; // F1 Helvetica, F2 Helvetica-Bold

// Helvetica advance widths (1/1000 em) for WinAnsi codes 32-126, from Adobe's core-14 AFM; needed to
// wrap paragraphs and right-align text, since PDF leaves all layout to the producer.
const HELVETICA_WIDTHS = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556,
  556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278,
  500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469,
  556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
  278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

function textWidth(text: string, size: number): number {
  let units = 0;
  for (const char of text) units += HELVETICA_WIDTHS[char.charCodeAt(0) - 32] ?? 556;
  return (units * size) / 1000;
}

/** A PDF literal string; printable ASCII only, so the bytes mean the same in every simple-font encoding. */
function pdfString(text: string): string {
  if (/[^\x20-\x7e]/.test(text)) throw new Error(`non-ASCII text in PDF: ${text}`);
  return `(${text.replace(/[\\()]/g, "\\$&")})`;
}

function wrap(text: string, size: number, maxWidth: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    const candidate = line ? `${line} ${word}` : word;
    if (line && textWidth(candidate, size) > maxWidth) {
      lines.push(line);
      line = word;
    } else line = candidate;
  }
  return [...lines, line];
}

interface TextStyle {
  font?: Font;
  size?: number;
  align?: "left" | "right";
  /** Fill colour, 0-1 per channel. */
  colour?: Rgb;
}

/** Sets lines top-down on one page, tracking the baseline so the letter reads as a plain sequence. */
class PageWriter {
  readonly ops: string[] = [];
  private y = PAGE.height - PAGE.margin;

  text(text: string, { font = "F1", size = 11, align = "left", colour = [0, 0, 0] }: TextStyle = {}): void {
    // Right alignment uses the regular metrics, so it is only exact for F1 text.
    const x = align === "right" ? PAGE.width - PAGE.margin - textWidth(text, size) : PAGE.margin;
    this.y -= size * 1.35;
    this.ops.push(
      `BT ${colour.join(" ")} rg /${font} ${size} Tf ${x.toFixed(2)} ${this.y.toFixed(2)} Td ${pdfString(text)} Tj ET`,
    );
  }

  paragraph(text: string, size = 11): void {
    for (const line of wrap(text, size, PAGE.width - 2 * PAGE.margin)) this.text(line, { size });
    this.skip(size * 0.8);
  }

  skip(points: number): void {
    this.y -= points;
  }

  rule(): void {
    this.skip(8);
    this.ops.push(
      `0.09 0.27 0.45 RG 1.2 w ${PAGE.margin} ${this.y} m ${PAGE.width - PAGE.margin} ${this.y} l S`,
    );
  }

  /** A pen-like flourish in the gap left for the signature. */
  signature(): void {
    const x = PAGE.margin;
    const y = this.y - 26;
    this.ops.push(
      `0.1 0.15 0.4 RG 1.1 w 1 J ${x} ${y} m ${x + 12} ${y + 26} ${x + 24} ${y + 20} ${x + 20} ${y + 4} c ` +
        `${x + 30} ${y + 16} ${x + 46} ${y + 14} ${x + 52} ${y + 2} c ${x + 70} ${y + 18} ${x + 96} ${y + 4} ${x + 120} ${y + 10} c S`,
    );
    this.skip(38);
  }
}

function referralLetterContent(): string {
  const page = new PageWriter();
  const navy: Rgb = [0.09, 0.27, 0.45];
  const grey: Rgb = [0.35, 0.35, 0.35];
  page.text(PRACTICE.name, { font: "F2", size: 20, colour: navy });
  page.text(PRACTICE.address, { size: 9.5, colour: grey });
  page.text(PRACTICE.contact, { size: 9.5, colour: grey });
  page.rule();
  page.skip(14);
  page.text("27 February 2025", { align: "right" });
  for (const line of [
    "Dr James Harrow",
    "Consultant Cardiologist",
    `Cardiology Outpatients, ${HOSPITAL}`,
    "Hospital Road, Northbridge NB1 4HQ",
  ]) {
    page.text(line);
  }
  page.skip(18);
  page.text(`Re: ${PATIENT.name}, DOB ${PATIENT.birthDate}, NHS No. ${PATIENT.nhsNumber}`, { font: "F2" });
  page.text(PATIENT.address);
  page.skip(14);
  page.paragraph("Dear Dr Harrow,");
  page.paragraph(
    `Thank you for seeing ${PATIENT.name}, a 66-year-old retired teacher, in your arrhythmia clinic. ` +
      `She was admitted to ${HOSPITAL} on 10 February 2025 after a fall at home preceded by palpitations ` +
      "and light-headedness, and was found to be in new atrial fibrillation with a fast ventricular response.",
  );
  page.paragraph(
    "She was rate-controlled with bisoprolol 2.5 mg once daily and, with a CHA2DS2-VASc score of 3, " +
      "started on apixaban 5 mg twice daily. At review yesterday she reported occasional palpitations and " +
      "reduced exercise tolerance. Her pulse is irregularly irregular at 88 bpm, blood pressure 134/82 mmHg, " +
      "and a repeat ECG confirms persistent atrial fibrillation (copy enclosed). Renal and thyroid function " +
      "are normal.",
  );
  page.paragraph(
    "Her history includes hypertension, treated with ramipril 5 mg daily, and hypercholesterolaemia on " +
      "atorvastatin 20 mg. I would value your opinion on an echocardiogram and whether she would benefit " +
      "from a rhythm-control strategy. She is aware of the referral and can be contacted on 07700 900123.",
  );
  page.text("Yours sincerely,");
  page.signature();
  page.text(PRACTICE.gp, { font: "F2" });
  page.text(`General Practitioner, ${PRACTICE.name}`);
  return page.ops.join("\n");
}

/** Serialises numbered objects with a byte-exact xref table; the result is Latin-1 (1 char = 1 byte). */
function assemblePdf(objects: string[], rootId: number, infoId: number): Buffer {
  // The comment of high-bit bytes tells transfer tools the file is binary.
  let pdf = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
  const offsets = objects.map((body, i) => {
    const offset = pdf.length;
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return offset;
  });
  const xrefOffset = pdf.length;
  // Each xref entry must be exactly 20 bytes, hence the space before the newline.
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  pdf += offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("");
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root ${rootId} 0 R /Info ${infoId} 0 R >>\n`;
  pdf += `startxref\n${xrefOffset}\n%%EOF\n`;
  return Buffer.from(pdf, "latin1");
}

function referralLetterPdf(): Buffer {
  const content = referralLetterContent();
  const font = (name: string) =>
    `<< /Type /Font /Subtype /Type1 /BaseFont /${name} /Encoding /WinAnsiEncoding >>`;
  return assemblePdf(
    [
      "<< /Type /Catalog /Pages 2 0 R >>",
      "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE.width} ${PAGE.height}] ` +
        "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>",
      font("Helvetica"),
      font("Helvetica-Bold"),
      `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
      `<< /Title ${pdfString(`Cardiology referral - ${PATIENT.name}`)} /Author ${pdfString(PRACTICE.gp)} ` +
        "/Creator (fhirbin data/make-samples.ts) /CreationDate (D:20250227093000Z) >>",
    ],
    1,
    7,
  );
}

// ---------------------------------------------------------------------------------------------------
// Text documents.

const MEDICATIONS = [
  ["Apixaban", "5 mg", "Twice daily", "New - anticoagulation for atrial fibrillation"],
  ["Bisoprolol", "2.5 mg", "Once daily", "New - rate control"],
  ["Ramipril", "5 mg", "Once daily", "Unchanged"],
  ["Atorvastatin", "20 mg", "Once daily at night", "Unchanged"],
  ["Paracetamol", "1 g", "Up to four times daily as needed", "Short course for shin pain"],
];

function dischargeSummaryHtml(): string {
  const rows = MEDICATIONS.map((cells) => `        <tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`);
  return `<!DOCTYPE html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Discharge summary - ${PATIENT.name}</title>
  <style>
    body { font: 15px/1.5 system-ui, sans-serif; color: #1d2731; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
    header { border-bottom: 3px solid #005eb8; margin-bottom: 1.5rem; }
    h1 { color: #005eb8; margin: 0; font-size: 1.6rem; }
    h2 { font-size: 1.1rem; color: #005eb8; margin: 1.6rem 0 0.4rem; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0; }
    dt { font-weight: 600; }
    dd { margin: 0; }
    table { border-collapse: collapse; width: 100%; }
    th, td { border: 1px solid #c8d1da; padding: 0.35rem 0.6rem; text-align: left; vertical-align: top; }
    th { background: #e8f1fb; }
    footer { margin-top: 2rem; font-size: 0.85rem; color: #5a6570; }
  </style>
</head>
<body>
  <header>
    <h1>Discharge Summary</h1>
    <p>${HOSPITAL} &middot; Acute Medical Unit</p>
  </header>
  <main>
    <section>
      <h2>Patient</h2>
      <dl>
        <dt>Name</dt><dd>${PATIENT.name}</dd>
        <dt>NHS number</dt><dd>${PATIENT.nhsNumber}</dd>
        <dt>Date of birth</dt><dd>${PATIENT.birthDate}</dd>
        <dt>Address</dt><dd>${PATIENT.address}</dd>
        <dt>Registered GP</dt><dd>${PRACTICE.gp}, ${PRACTICE.name}</dd>
      </dl>
    </section>
    <section>
      <h2>Admission details</h2>
      <dl>
        <dt>Admitted</dt><dd>10/02/2025 via Emergency Department</dd>
        <dt>Discharged</dt><dd>13/02/2025 to usual residence</dd>
        <dt>Consultant</dt><dd>Dr Priya Raman, Acute Medicine</dd>
        <dt>Presenting complaint</dt><dd>Fall at home after palpitations and light-headedness; laceration to left shin.</dd>
      </dl>
    </section>
    <section>
      <h2>Diagnosis</h2>
      <ul>
        <li>New atrial fibrillation with fast ventricular response (rate 138 bpm on arrival)</li>
        <li>Pretibial laceration, left leg, 4 cm</li>
        <li>Background: hypertension, hypercholesterolaemia</li>
      </ul>
    </section>
    <section>
      <h2>Treatment</h2>
      <p>Rate controlled with oral bisoprolol; heart rate 78-92 bpm at rest by day 3. CHA<sub>2</sub>DS<sub>2</sub>-VASc
        score 3, ORBIT bleeding score 1: apixaban started after discussion with the patient. Echocardiogram
        requested as an outpatient. Troponin, thyroid function, electrolytes and CT head normal. The shin laceration
        was cleaned and closed with adhesive strips; no underlying fracture on X-ray.</p>
    </section>
    <section>
      <h2>Medications on discharge</h2>
      <table>
        <thead>
          <tr><th>Medicine</th><th>Dose</th><th>Frequency</th><th>Status</th></tr>
        </thead>
        <tbody>
${rows.join("\n")}
        </tbody>
      </table>
    </section>
    <section>
      <h2>Follow-up</h2>
      <ul>
        <li>GP review in 2 weeks: heart rate, blood pressure, renal function for apixaban dosing.</li>
        <li>Practice nurse wound review and dressing in 1 week; remove adhesive strips at 10 days.</li>
        <li>GP to refer to cardiology to consider echocardiography and rhythm control.</li>
        <li>Patient advised to seek urgent help for chest pain, collapse or any bleeding.</li>
      </ul>
    </section>
  </main>
  <footer>
    <p>Completed by Dr Tom Ashby, FY2 Acute Medicine, 13/02/2025. Sent electronically to ${PRACTICE.name}.</p>
  </footer>
</body>
</html>
`;
}

function consultationNoteText(): string {
  return `${PRACTICE.name} - Consultation note
Date:      26/02/2025 10:40
Clinician: ${PRACTICE.gp} (GP)
Patient:   ${PATIENT.name}   DOB ${PATIENT.birthDate}   NHS No. ${PATIENT.nhsNumber}
Type:      Face to face - post-discharge review

S: Discharged 13/02 from ${HOSPITAL} after a fall with new atrial fibrillation.
   Palpitations now occasional, a few minutes at a time. Breathless on hills,
   no chest pain, no further dizziness or falls. Tolerating apixaban and
   bisoprolol; no bleeding or bruising. Shin wound less sore.

O: Temp 36.8 °C. Pulse 88 bpm, irregularly irregular. BP 134/82 mmHg.
   SpO2 97% on air. Heart sounds normal, chest clear, no ankle oedema.
   Left shin: 4 cm laceration healing, adhesive strips off, mild surrounding
   erythema, no discharge (photo taken by practice nurse 19/02).
   12-lead ECG: atrial fibrillation, ventricular rate ~88 bpm, no acute ST changes.
   Bloods (20/02): eGFR 78, creatinine 71 µmol/L, TSH normal, Hb 132 g/L.

A: Persistent atrial fibrillation, rate controlled. CHA2DS2-VASc 3.
   Healing pretibial laceration.

P: Continue apixaban 5 mg BD and bisoprolol 2.5 mg OD.
   Refer to cardiology for echocardiogram and rhythm-control opinion.
   Practice nurse wound review in 1 week.
   Safety-netting: seek urgent help for chest pain, collapse or bleeding.
   Review in 4 weeks or sooner if symptoms worsen.
`;
}

// ---------------------------------------------------------------------------------------------------

function samples(): Record<string, string | Uint8Array> {
  return {
    "referral-letter.pdf": referralLetterPdf(),
    "wound-photo.png": encodePng(rasterise(WOUND.width, WOUND.height, woundPixel)),
    "ecg-trace.jpeg": encodeJpegRaster(rasterise(ECG.width, ECG.height, ecgPainter())),
    "discharge-summary.html": dischargeSummaryHtml(),
    "consultation-note.txt": consultationNoteText(),
  };
}

mkdirSync(OUT_DIR, { recursive: true });
for (const [name, content] of Object.entries(samples())) {
  writeFileSync(join(OUT_DIR, name), content);
  const bytes = typeof content === "string" ? Buffer.byteLength(content) : content.length;
  console.log(`${join("data/samples", name)}  ${bytes} bytes`);
}
