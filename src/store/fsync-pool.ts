/**
 * fsync on threads of fhirbin's own. Bun runs asynchronous file calls on a pool of as many threads as there
 * are CPUs (two on a small server) and offers no way to grow it from inside the process (only
 * UV_THREADPOOL_SIZE, read at start-up). A create waits for five fsyncs (storage.md), each holding a pool
 * thread until the disk has the data, so under concurrent uploads the fsyncs queued behind each other and
 * every other file call queued behind them. Measured with 32 concurrent 64 KiB creates: 870 creates/s with
 * Bun's two threads, 1,362 with eight (bench/optimisations.md).
 *
 * A few workers, each blocking in fsyncSync on a descriptor the main thread opened (descriptors belong to
 * the process), take the fsyncs; the pool stays free for the rest. Started on the first fsync; they never
 * keep the process alive.
 */
const WORKERS = 4;

// A worker's whole program: fsync the descriptor it is sent, answer with the error code if any.
const SOURCE = `
const { fsyncSync } = require("node:fs");
self.onmessage = ({ data }) => {
  let code = null;
  try {
    fsyncSync(data.fd);
  } catch (error) {
    code = (error && error.code) || "EIO";
  }
  postMessage({ id: data.id, code });
};
`;

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  waiting: Map<number, Waiter>;
}

let threads: Thread[] | null = null;
let nextId = 0;

function start(): Thread[] {
  const url = URL.createObjectURL(new Blob([SOURCE], { type: "application/javascript" }));
  return Array.from({ length: WORKERS }, () => spawn(url));
}

function spawn(url: string): Thread {
  const thread: Thread = { worker: new Worker(url), waiting: new Map() };
  thread.worker.unref();
  thread.worker.onmessage = ({ data }: MessageEvent<{ id: number; code: string | null }>) => {
    const waiter = thread.waiting.get(data.id);
    thread.waiting.delete(data.id);
    if (data.code === null) waiter?.resolve();
    else waiter?.reject(Object.assign(new Error(`fsync failed: ${data.code}`), { code: data.code }));
  };
  // A worker that dies fails what it was doing (never "done"), and is replaced for the next fsync.
  thread.worker.onerror = () => {
    const lost = [...thread.waiting.values()];
    thread.waiting.clear();
    const index = threads?.indexOf(thread) ?? -1;
    if (threads && index >= 0) threads[index] = spawn(url);
    for (const waiter of lost) waiter.reject(Object.assign(new Error("fsync failed: EIO"), { code: "EIO" }));
  };
  return thread;
}

/** fsync(2) of an open descriptor on a worker thread; rejects with the error's `code` (EIO, ENOSPC...). */
export function fsyncFd(fd: number): Promise<void> {
  threads ??= start();
  // The least busy worker: one stuck on a slow disk does not hold up the others' queues.
  let thread = threads[0] as Thread;
  for (const candidate of threads) if (candidate.waiting.size < thread.waiting.size) thread = candidate;
  const id = nextId++;
  return new Promise<void>((resolve, reject) => {
    thread.waiting.set(id, { resolve, reject });
    thread.worker.postMessage({ id, fd });
  });
}
