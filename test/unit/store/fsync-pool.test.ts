/** The fsync pool: fsync(2) on worker threads, with the error's code when it fails. */
import { expect, test } from "bun:test";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fsyncFd } from "../../../src/store/fsync-pool.ts";
import { tempDir } from "../../harness.ts";

test("fsyncs descriptors the main thread opened, many at once", async () => {
  using dir = tempDir();
  const fds = Array.from({ length: 16 }, (_, index) => {
    const fd = openSync(join(dir.path, `f${index}`), "w");
    writeSync(fd, `content ${index}`);
    return fd;
  });
  try {
    await Promise.all(fds.map((fd) => fsyncFd(fd)));
  } finally {
    for (const fd of fds) closeSync(fd);
  }
});

test("a failed fsync rejects with the system's error code", async () => {
  // No process has a million descriptors open: the call fails as on a closed one.
  await expect(fsyncFd(1_000_000)).rejects.toMatchObject({ code: "EBADF" });
});
