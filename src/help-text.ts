/** The layout of every `--help`: options and their explanations, no line longer than a classic terminal. */

/** The width of every help line: 80 columns, the width of a terminal nobody has resized. */
export const HELP_WIDTH = 80;

/** Where the explanation of an option begins. */
const TEXT_COLUMN = 24;

/** `text` cut at spaces into lines of at most `width` characters (a longer word keeps its own line). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** `text` wrapped to the help width, every line after the first indented by `indent` spaces. */
export function hanging(first: string, text: string, indent: number): string[] {
  const [head = "", ...rest] = wrapWords(text, HELP_WIDTH - indent);
  const pad = " ".repeat(indent);
  const lines = first.length < indent ? [`${first.padEnd(indent)}${head}`] : [first, `${pad}${head}`];
  return [...lines, ...rest.map((line) => `${pad}${line}`)];
}

/**
 * A help section: a heading wrapped to the width, then one option a row, `--flag VALUE` with its explanation
 * beside it (below it when the flag is too long).
 */
export function helpSection(heading: string, options: ReadonlyArray<readonly [string, string]>): string {
  return [
    ...wrapWords(heading, HELP_WIDTH),
    ...options.flatMap(([flag, text]) => hanging(`  ${flag}`, text, TEXT_COLUMN)),
  ].join("\n");
}
