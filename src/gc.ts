/**
 * When fhirbin asks the garbage collector to run. JavaScriptCore frees large buffers late: left to itself, a
 * server streaming a large document or just done with a burst keeps tens of MiB of garbage.
 */

/** Bytes of a streamed body (an upload, a FHIR-wrapped read) between two collections. */
const COLLECT_EVERY = 16 * 1024 * 1024;

/**
 * A full collection each time a stream's running total passes a multiple of 16 MiB: its chunks are garbage
 * at once, but without a nudge a fast stream's RSS climbs by tens of MiB before the next collection
 * (bench/memory.ts).
 */
export function collectWhileStreaming(total: number, chunk: number): void {
  if (total % COLLECT_EVERY < chunk) Bun.gc(true);
}

/**
 * A full garbage collection once the server goes quiet. Large documents leave buffers and strings that are
 * freed only when the collector next runs; under load it runs often, but after a burst an idle server kept
 * tens of MiB it no longer needed. Measured over 12,000 mixed documents with reads, sampled 2.5 s after each
 * burst of 1,000: resident memory 87-111 MiB, varying with the collector's timing, without; 83-88 MiB with.
 */
export function collectWhenIdle(requests: () => number): Disposable {
  const quiet = quietAfterWork(requests());
  const timer = setInterval(() => {
    if (quiet(requests())) Bun.gc(true);
  }, 1000);
  // Never what keeps the process alive.
  timer.unref();
  return { [Symbol.dispose]: () => clearInterval(timer) };
}

/**
 * Fed the request count at each tick; true at the first tick without new requests after ticks with some,
 * so a quiet period costs one collection and an idle server none.
 */
export function quietAfterWork(initial: number): (count: number) => boolean {
  let last = initial;
  let worked = false;
  return (count) => {
    if (count !== last) {
      last = count;
      worked = true;
      return false;
    }
    const quiet = worked;
    worked = false;
    return quiet;
  };
}
