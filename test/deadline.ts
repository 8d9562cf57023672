/** Resolves with `promise`, or rejects naming `what` once `ms` have passed (tests and benchmarks alike). */
export async function withDeadline<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: Timer | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
