/**
 * Lines written together once per turn of the event loop: the request log and the audit trail each cost
 * one write(2) per turn instead of one per request (bench/optimisations.md). A line waits at most
 * until the current turn ends; `flush` writes at once (before a day file changes, or the process exits).
 */
export interface LineBatch {
  /** Queues one line (without its newline). */
  add(line: string): void;
  /** Writes the queued lines now. */
  flush(): void;
}

export function linesPerTurn(write: (text: string) => void): LineBatch {
  let pending = "";
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === "") return;
    const text = pending;
    pending = "";
    write(text);
  };
  return {
    add(line) {
      pending += `${line}\n`;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

let lastTime = { ms: Number.NaN, iso: "" };

/**
 * `time.toISOString()`, the text of the latest millisecond kept: the request log and the audit trail stamp
 * every request, and a busy server answers many in one millisecond.
 */
export function isoTime(time: Date): string {
  const ms = time.getTime();
  if (ms !== lastTime.ms) lastTime = { ms, iso: time.toISOString() };
  return lastTime.iso;
}
