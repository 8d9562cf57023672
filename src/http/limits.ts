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

/** Bun.serve's longest idle timeout. */
const MAX_IDLE_S = 255;

/** Answers whose bytes are written at once, the whole of them: those of no body or of at most 1 MiB. */
const AT_ONCE_BYTES = 1024 * 1024;

function sentAtOnce(request: Request, response: Response): boolean {
  if (request.method === "HEAD" || response.status === 204 || response.status === 304) return true;
  const length = response.headers.get("content-length");
  return length !== null && Number(length) <= AT_ONCE_BYTES;
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

  // Bun.serve's idleTimeout is off (it would also count the time a handler spends, and cut a long download):
  // a connection is timed per request instead. Bun (uWebSockets) drops one that never completes a request
  // head after about 10 s by itself.
  const idleSeconds = Math.min(MAX_IDLE_S, Math.ceil(bodyTimeoutMs / 1000));

  const idle = (request: Request, server: Server<unknown> | null | undefined): void => {
    server?.timeout(request, idleSeconds);
  };

  return {
    /** Throws 503 (with Retry-After, and the connection closed) once more than maxInFlight are in flight. */
    admit(server: Server<unknown> | null | undefined, request: Request): void {
      // pendingRequests counts this request too.
      if (!server) return;
      if (server.pendingRequests > maxInFlight) throw busy;
      // No idle timer while a request is served; settle sets one again once it is answered.
      server.timeout(request, 0);
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

    /**
     * Adds `Connection: close` to a response when mustClose; Bun then closes the socket once it is sent.
     * Otherwise a small answer goes out at once, and the connection is then idle: it is closed once it has
     * stayed so for the body timeout, so that connections left open after a request do not pile up. A large
     * or streamed answer leaves the timer off (Bun's timer does not count the bytes it sends).
     */
    settle(request: Request, response: Response, server: Server<unknown> | null | undefined): void {
      if (mustClose(request, response.status)) response.headers.set("connection", "close");
      else if (sentAtOnce(request, response)) idle(request, server);
    },

    /** Times the connection as idle from now: its answer (an error's OperationOutcome) is sent at once. */
    idle,
  };
}

/** The Elysia plugin applying the guard to every route: admission first, the Connection header last. */
export function connectionGuard(guard: ConnectionGuard) {
  return new Elysia({ name: "fhirbin-connection-guard" })
    .onRequest(({ server, request }) => guard.admit(server, request))
    .onAfterHandle({ as: "global" }, ({ request, server, responseValue, set }) => {
      if (responseValue instanceof Response) guard.settle(request, responseValue, server);
      // A plain value (the API docs) becomes a Response afterwards, with set.headers.
      else if (guard.mustClose(request, typeof set.status === "number" ? set.status : 200))
        set.headers.connection = "close";
    })
    .onError({ as: "global" }, ({ request, server, set }) => {
      // Returns nothing: errors.ts renders the error, with set.headers.
      if (guard.mustClose(request, 400)) set.headers.connection = "close";
      else guard.idle(request, server);
    });
}
