/**
 * What keeps one client from holding the server's sockets and files: a bound on the requests served at once,
 * a progress timeout on request bodies, and a closed connection after any answer given before the body was
 * read. Bun.serve has no hook on connections themselves, so requests in flight (`server.pendingRequests`)
 * are what is counted.
 */
import type { Server } from "bun";
import { Elysia } from "elysia";
import { FhirError } from "../fhir/errors.ts";

/** The connection guard of one app: admission, guarded request bodies and the Connection header. */
export type ConnectionGuard = ReturnType<typeof createConnectionGuard>;

/** Methods whose successful answers come after their handler has read the whole body. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** True when the request announces a body (RFC 9112 section 6.3: Transfer-Encoding or Content-Length). */
function declaresBody(request: Request): boolean {
  const length = request.headers.get("content-length");
  return (length !== null && length.trim() !== "0") || request.headers.has("transfer-encoding");
}

/** Builds the guard for `maxInFlight` requests at once and bodies that may pause up to `bodyTimeoutMs`. */
export function createConnectionGuard({
  maxInFlight,
  bodyTimeoutMs,
}: {
  maxInFlight: number;
  bodyTimeoutMs: number;
}) {
  const busy = new FhirError(503, "transient", "The server is busy; try again shortly", {
    "retry-after": "1",
    connection: "close",
  });
  const stalled = new FhirError(
    408,
    "transient",
    `No part of the request body arrived for ${bodyTimeoutMs / 1000} s; nothing was stored`,
  );
  // Nobody receives this answer; the request log and the metrics show it.
  const gone = new FhirError(
    400,
    "transient",
    "The connection closed before the request could be answered; nothing was stored",
  );

  /**
   * True when the answer must close the connection. RFC 9112 section 9.3: "A server MUST read the entire
   * request message body or close the connection after sending its response; otherwise, the remaining data
   * on a persistent connection would be misinterpreted as the next request." An error may come before the
   * body was read (401, 403, 413, 415...), and the body of a method that takes none is never read.
   */
  const mustClose = (request: Request, status: number): boolean =>
    declaresBody(request) && (status >= 400 || !BODY_METHODS.has(request.method));

  return {
    /** Throws 503 (with Retry-After, and the connection closed) once more than maxInFlight are in flight. */
    admit(server: Server<unknown> | null | undefined): void {
      // pendingRequests counts this request too.
      if (server && server.pendingRequests > maxInFlight) throw busy;
    },

    /**
     * The request body, failing with 408 when the client sends nothing for bodyTimeoutMs while it is being
     * read (Bun's idleTimeout cannot tell: it also counts the time the handler spends, so it is off), and
     * failing at its end when the client is already gone, so that nothing is stored for a write nobody can
     * be told about. uWebSockets, under Bun.serve, closes a connection on which a request arrives while the
     * previous one is unanswered ("denying async pipelining": a request pipelined after a POST's body in
     * the same packet); Bun reports that as the request's abort one turn of the event loop later.
     */
    body(request: Request): ReadableStream<Uint8Array> | null {
      const source = request.body;
      if (!source) return null;
      const reader = source.getReader();
      let expired = false;
      return new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            const timer = setTimeout(() => {
              expired = true;
              controller.error(stalled);
              reader.cancel(stalled).catch(() => {});
            }, bodyTimeoutMs);
            let next: Awaited<ReturnType<typeof reader.read>>;
            try {
              next = await reader.read();
            } finally {
              clearTimeout(timer);
            }
            if (expired) return;
            if (!next.done) {
              controller.enqueue(next.value);
              return;
            }
            await new Promise((resolve) => setImmediate(resolve));
            if (request.signal.aborted) throw gone;
            controller.close();
          },
          cancel: (reason) => reader.cancel(reason),
        },
        { highWaterMark: 0 },
      );
    },

    mustClose,

    /** Adds `Connection: close` to a response when mustClose; Bun then closes the socket once it is sent. */
    settle(request: Request, response: Response): void {
      if (mustClose(request, response.status)) response.headers.set("connection", "close");
    },
  };
}

/** The Elysia plugin applying the guard to every route: admission first, the Connection header last. */
export function connectionGuard(guard: ConnectionGuard) {
  return new Elysia({ name: "fhirbin-connection-guard" })
    .onRequest(({ server }) => guard.admit(server))
    .onAfterHandle({ as: "global" }, ({ request, responseValue, set }) => {
      if (responseValue instanceof Response) guard.settle(request, responseValue);
      // A plain value (the API docs) becomes a Response afterwards, with set.headers.
      else if (guard.mustClose(request, typeof set.status === "number" ? set.status : 200))
        set.headers.connection = "close";
    })
    .onError({ as: "global" }, ({ request, set }) => {
      // Returns nothing: errors.ts renders the error, with set.headers.
      if (guard.mustClose(request, 400)) set.headers.connection = "close";
    });
}
