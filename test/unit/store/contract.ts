/**
 * The store contract: every driver passes this suite (unstorage's testDriver() pattern). Driver-only
 * behaviour (on-disk layout, crash safety, the lock) is tested on top, in the driver's own file.
 */
import { describe, expect, test } from "bun:test";
import { FhirError } from "../../../src/fhir/errors.ts";
import type { Store, WriteRequest } from "../../../src/store/types.ts";

/** Opens a fresh, empty store; the suite closes it. */
export type OpenStore = () => Promise<Store>;

const MAX = 1024 * 1024;
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const write = (
  body: Uint8Array | ReadableStream<Uint8Array>,
  extra: Partial<WriteRequest> = {},
): WriteRequest => ({
  contentType: "text/plain",
  securityContext: null,
  body,
  maxSize: MAX,
  ...extra,
});

/** A stream that yields its chunks, then fails as a dropped client connection would. */
/** A one-chunk body that tells whether it has been read to the end. */
function trackedBody(text: string): { body: ReadableStream<Uint8Array>; consumed: () => boolean } {
  let consumed = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(bytes(text));
      controller.close();
      consumed = true;
    },
  });
  return { body, consumed: () => consumed };
}

export function failingStream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.error(new Error("client disconnected"));
    },
  });
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { status?: number }).status ?? 500;
  }
}

export function testStoreContract(name: string, open: OpenStore): void {
  describe(`store contract: ${name}`, () => {
    const withStore = (fn: (store: Store) => Promise<void>) => async () => {
      const store = await open();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    };

    test(
      "absent is null",
      withStore(async (store) => {
        expect(await store.current("nope")).toBeNull();
        expect(await store.version("nope", 1)).toBeNull();
        expect(await store.history("nope")).toEqual([]);
        expect(await store.delete("nope")).toBeNull();
      }),
    );

    test(
      "a write's file name is kept with its version; a write without one has none",
      withStore(async (store) => {
        const named = await store.update("named", write(bytes("one"), { fileName: "Referral letter.pdf" }));
        expect(named.version.fileName).toBe("Referral letter.pdf");
        await store.update("named", write(bytes("two")));
        const [second, first] = await store.history("named");
        expect(first && !first.deleted && first.fileName).toBe("Referral letter.pdf");
        expect(second && !second.deleted && "fileName" in second).toBe(false);
        const read = await store.version("named", 1);
        expect(read && !read.deleted ? read.fileName : null).toBe("Referral letter.pdf");
      }),
    );

    test(
      "peek gives what current gives, or undefined when that needs a lookup",
      withStore(async (store) => {
        const agrees = async (id: string) => {
          const peeked = store.peek(id);
          if (peeked !== undefined) expect(peeked).toEqual(await store.current(id));
        };
        await agrees("nope");
        expect(await store.current("nope")).toBeNull();
        await agrees("nope");
        const first = await store.update("p", write(bytes("one")));
        await agrees("p");
        const second = await store.update("p", write(bytes("two")));
        expect(second.version.versionId).toBe(first.version.versionId + 1);
        await agrees("p");
        const tombstone = await store.delete("p");
        expect(tombstone?.deleted).toBe(true);
        await agrees("p");
        // Once current has answered, the drivers in this repository know it without I/O.
        expect(store.peek("p")).toEqual(tombstone);
      }),
    );

    test(
      "create assigns a random id and version 1; content round-trips byte for byte",
      withStore(async (store) => {
        const all = new Uint8Array(256).map((_, i) => i);
        const a = await store.create(
          write(all, { contentType: "application/octet-stream", securityContext: "Patient/1" }),
        );
        const b = await store.create(write(bytes("x")));
        expect(a.id).not.toBe(b.id);
        expect(a).toEqual({
          id: a.id,
          versionId: 1,
          lastUpdated: expect.any(String),
          deleted: false,
          contentType: "application/octet-stream",
          securityContext: "Patient/1",
          size: 256,
          sha256: new Bun.CryptoHasher("sha256").update(all).digest("hex"),
          method: "POST",
        });
        expect(await store.current(a.id)).toEqual(a);
        expect(new Uint8Array(await store.content(a).arrayBuffer())).toEqual(all);
      }),
    );

    test(
      "update creates, then adds contiguous versions; history is newest first; old versions stay readable",
      withStore(async (store) => {
        const first = await store.update("doc", write(bytes("one")));
        const second = await store.update("doc", write(bytes("two")));
        expect([first.created, first.version.versionId, second.created, second.version.versionId]).toEqual([
          true,
          1,
          false,
          2,
        ]);
        // A create by PUT is recorded as a PUT, so its history entry says so.
        expect([first.version.method, second.version.method]).toEqual(["PUT", "PUT"]);
        expect((await store.history("doc")).map((v) => v.versionId)).toEqual([2, 1]);
        const v1 = await store.version("doc", 1);
        expect(v1?.deleted).toBe(false);
        if (v1 && !v1.deleted) expect(await store.content(v1).text()).toBe("one");
        expect(Date.parse(second.version.lastUpdated)).toBeGreaterThan(Date.parse(first.version.lastUpdated));
      }),
    );

    test(
      "ids are case-sensitive",
      withStore(async (store) => {
        await store.update("Abc", write(bytes("upper")));
        await store.update("abc", write(bytes("lower")));
        const upper = await store.current("Abc");
        const lower = await store.current("abc");
        expect([upper?.versionId, lower?.versionId]).toEqual([1, 1]);
        if (upper && !upper.deleted && lower && !lower.deleted) {
          expect([await store.content(upper).text(), await store.content(lower).text()]).toEqual([
            "upper",
            "lower",
          ]);
        }
      }),
    );

    test(
      "delete adds a tombstone; deleting again is a no-op; a later update brings the id back",
      withStore(async (store) => {
        await store.update("d", write(bytes("a")));
        const tombstone = await store.delete("d");
        expect(tombstone).toEqual({
          id: "d",
          versionId: 2,
          lastUpdated: expect.any(String),
          deleted: true,
          securityContext: null,
        });
        expect(await store.delete("d")).toBeNull();
        expect(await store.current("d")).toEqual(tombstone);
        const back = await store.update("d", write(bytes("b")));
        expect([back.created, back.version.versionId]).toEqual([true, 3]);
        expect((await store.history("d")).map((v) => [v.versionId, v.deleted])).toEqual([
          [3, false],
          [2, true],
          [1, false],
        ]);
      }),
    );

    test(
      "metadataAfterBody: called once the body is consumed, its metadata wins; a throw stores nothing",
      withStore(async (store) => {
        const { body, consumed } = trackedBody("late");
        const settled = await store.update(
          "late",
          write(body, {
            metadataAfterBody: async () => {
              expect(consumed()).toBe(true);
              return { contentType: "application/pdf", securityContext: "Patient/2" };
            },
          }),
        );
        expect([settled.version.contentType, settled.version.securityContext]).toEqual([
          "application/pdf",
          "Patient/2",
        ]);
        const refused = store.update(
          "late",
          write(bytes("other"), {
            metadataAfterBody: () => {
              throw new FhirError(400, "value", "refused after the body");
            },
          }),
        );
        expect(await statusOf(refused)).toBe(400);
        expect((await store.history("late")).map((v) => v.versionId)).toEqual([1]);
      }),
    );

    test(
      "beforeCommit: awaited once the body is consumed and before the version exists; a throw stores nothing",
      withStore(async (store) => {
        const { body, consumed } = trackedBody("hooked");
        const seen: unknown[] = [];
        await store.update(
          "hooked",
          write(body, {
            beforeCommit: async () => {
              seen.push(consumed(), await store.current("hooked"));
            },
          }),
        );
        expect(seen).toEqual([true, null]);
        const refused = store.update(
          "hooked",
          write(bytes("other"), {
            beforeCommit: async () => {
              throw new FhirError(507, "no-store", "refused before the commit");
            },
          }),
        );
        expect(await statusOf(refused)).toBe(507);
        expect((await store.history("hooked")).map((v) => v.versionId)).toEqual([1]);
      }),
    );

    test(
      "preconditions: If-Match and If-None-Match: * give 412 and change nothing",
      withStore(async (store) => {
        await store.update("p", write(bytes("a")));
        expect(await statusOf(store.update("p", write(bytes("b"), { ifMatch: 2 })))).toBe(412);
        expect(await statusOf(store.update("p", write(bytes("b"), { ifNoneMatch: true })))).toBe(412);
        expect(await statusOf(store.update("new", write(bytes("b"), { ifMatch: 1 })))).toBe(412);
        expect(await statusOf(store.delete("p", { ifMatch: 7 }))).toBe(412);
        expect((await store.current("p"))?.versionId).toBe(1);
        expect(await store.current("new")).toBeNull();
        expect((await store.update("p", write(bytes("b"), { ifMatch: 1 }))).version.versionId).toBe(2);
        expect((await store.update("p", write(bytes("c"), { ifMatch: "*" }))).version.versionId).toBe(3);
      }),
    );

    test(
      "the size limit is enforced while streaming: 413 and nothing stored",
      withStore(async (store) => {
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(new Uint8Array(64 * 1024));
          },
        });
        expect(await statusOf(store.update("big", write(body, { maxSize: 256 * 1024 })))).toBe(413);
        expect(await store.current("big")).toBeNull();
        const exact = await store.update("edge", write(new Uint8Array(10), { maxSize: 10 }));
        expect(exact.version.size).toBe(10);
      }),
    );

    test(
      "a body that fails midway stores nothing",
      withStore(async (store) => {
        expect(await statusOf(store.update("cut", write(failingStream([bytes("partial")]))))).toBe(500);
        expect(await store.current("cut")).toBeNull();
      }),
    );

    test(
      "zero-length content is valid",
      withStore(async (store) => {
        const { version } = await store.update("empty", write(new Uint8Array(0)));
        expect(version.size).toBe(0);
        expect((await store.content(version).arrayBuffer()).byteLength).toBe(0);
      }),
    );

    test(
      "50 concurrent updates of one id give versions 1..50, none lost",
      withStore(async (store) => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.update("hot", write(bytes(`v${i}`)))),
        );
        expect(results.map((r) => r.version.versionId).sort((a, b) => a - b)).toEqual(
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
        const history = await store.history("hot");
        expect(history.map((v) => v.versionId)).toEqual(Array.from({ length: 50 }, (_, i) => 50 - i));
        const texts = await Promise.all(history.map((v) => (v.deleted ? "" : store.content(v).text())));
        expect(new Set(texts).size).toBe(50);
      }),
    );

    test(
      "50 concurrent updates with the same If-Match: exactly one succeeds, 49 get 412",
      withStore(async (store) => {
        await store.update("race", write(bytes("base")));
        const statuses = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            statusOf(store.update("race", write(bytes(`w${i}`), { ifMatch: 1 }))),
          ),
        );
        expect(statuses.filter((s) => s === 200).length).toBe(1);
        expect(statuses.filter((s) => s === 412).length).toBe(49);
        expect((await store.current("race"))?.versionId).toBe(2);
      }),
    );

    test(
      "concurrent create-with-id (If-None-Match: *): exactly one wins",
      withStore(async (store) => {
        const statuses = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            statusOf(store.update("once", write(bytes(`c${i}`), { ifNoneMatch: true }))),
          ),
        );
        expect(statuses.filter((s) => s === 200).length).toBe(1);
        expect(statuses.filter((s) => s === 412).length).toBe(19);
      }),
    );

    test(
      "identical content is stored once and shared",
      withStore(async (store) => {
        const a = await store.create(write(bytes("same")));
        const b = await store.create(write(bytes("same")));
        expect(a.sha256).toBe(b.sha256);
        expect(await store.content(b).text()).toBe("same");
      }),
    );

    test(
      "a purge of previous versions keeps only the current one, and the id goes on from it",
      withStore(async (store) => {
        for (const text of ["v1", "v2", "v3"]) await store.update("p", write(bytes(text)));
        const seen: number[][] = [];
        const options = { beforePurge: async (versions: readonly number[]) => void seen.push([...versions]) };
        expect(await store.purge("p", "previous-versions", options)).toEqual({ versions: [1, 2], blobs: 2 });
        expect(seen).toEqual([[1, 2]]);
        expect(await store.version("p", 1)).toBeNull();
        expect(await store.version("p", 2)).toBeNull();
        expect((await store.history("p")).map((v) => v.versionId)).toEqual([3]);
        expect((await store.current("p"))?.versionId).toBe(3);
        expect((await store.update("p", write(bytes("v4")))).version.versionId).toBe(4);
        expect((await store.history("p")).map((v) => v.versionId)).toEqual([4, 3]);
        expect(await store.purge("p", "previous-versions")).toEqual({ versions: [3], blobs: 1 });
        expect(await store.purge("p", "previous-versions")).toEqual({ versions: [], blobs: 0 });
      }),
    );

    test(
      "a purge of a deleted id removes every version, and the id starts again at 1",
      withStore(async (store) => {
        await store.update("d", write(bytes("d1")));
        await store.delete("d");
        expect(await store.purge("d", "deleted")).toEqual({ versions: [1, 2], blobs: 1 });
        expect(await store.current("d")).toBeNull();
        expect(await store.history("d")).toEqual([]);
        const again = await store.update("d", write(bytes("d again")));
        expect({ versionId: again.version.versionId, created: again.created }).toEqual({
          versionId: 1,
          created: true,
        });
      }),
    );

    test(
      "a purge keeps content another id or a kept version references, and refuses a live id's deletion",
      withStore(async (store) => {
        const shared = await store.update("s1", write(bytes("shared")));
        await store.update("s1", write(bytes("s1 current")));
        await store.update("s2", write(bytes("shared")));
        expect(await store.purge("s1", "previous-versions")).toEqual({ versions: [1], blobs: 0 });
        expect(await store.content(shared.version).text()).toBe("shared");
        expect(await statusOf(store.purge("s2", "deleted"))).toBe(409);
        expect((await store.history("s2")).length).toBe(1);
        expect(await store.purge("never", "deleted")).toBeNull();
        await store.update("s1", write(bytes("s1 later")));
        const refused = store.purge("s1", "previous-versions", {
          beforePurge: async () => {
            throw new FhirError(503, "transient", "no index");
          },
        });
        expect(await statusOf(refused)).toBe(503);
        expect((await store.history("s1")).map((v) => v.versionId)).toEqual([3, 2]);
      }),
    );
  });
}
