/**
 * The hot path: GET and HEAD of `Binary/:id` and `Binary/:id/_history/:vid` answered straight from
 * Bun's router when the app listens. The same read, observer, CORS headers and error renderer as the Elysia
 * routes of binary.ts, without Elysia's per-request context, hooks and copy of every Response: those took
 * about half the CPU time of a 1 KiB read (bench/optimisations.md).
 */
import type { BunRequest, Server } from "bun";
import type { Principal } from "../security/scopes.ts";
import { requireAbsoluteUrl } from "./base-url.ts";
import type { BinaryInteractions } from "./binary.ts";
import type { ConnectionGuard } from "./limits.ts";
import type { Observer } from "./logging.ts";

/** Bun `routes` entries for the reads of one FHIR base path. */
export function hotReadRoutes({
  basePath,
  binary,
  observer,
  cors,
  guard,
  renderError,
}: {
  basePath: string;
  binary: BinaryInteractions;
  observer: Observer;
  /** Adds the CORS headers a request's origin gets (corsPolicy's, for a response built outside Elysia). */
  cors: (request: Request, response: Response) => void;
  /** Admission and the Connection header, as the Elysia routes get them from limits.ts's plugin. */
  guard: ConnectionGuard;
  /** errors.ts's renderer: an OperationOutcome for a FhirError, a generic 500 for anything else. */
  renderError: (error: unknown, request: Request) => Response;
}) {
  // No promise on the way unless the token is a JWT or the version must be read from disk; the answer
  // goes once its audit event is appended: in the same call, or for a small answer with its turn's batch.
  const answer =
    (route: string) =>
    (request: BunRequest, server: Server<unknown>): Response | Promise<Response> => {
      const observation = observer.begin(request);
      const params: Readonly<Record<string, string | undefined>> = request.params;
      const id = params.id ?? "";
      const vid = params.vid ?? null;
      let principal: Principal | undefined;
      // Answered once its audit event is appended (logging.ts), or the 503 that replaces it.
      const finish = (response: Response): Response | Promise<Response> => {
        cors(request, response);
        guard.settle(request, response, server);
        return observer.responded(observation, request, server, { route, params, principal }, response);
      };
      const fail = (error: unknown): Response | Promise<Response> => finish(renderError(error, request));
      try {
        guard.admit(server, request);
        requireAbsoluteUrl(request);
        const authenticated = binary.authenticate(request);
        if (authenticated instanceof Promise) {
          return authenticated
            .then((caller) => {
              principal = caller;
              return binary.read(request, caller, id, vid);
            })
            .then(finish, fail);
        }
        principal = authenticated;
        const response = binary.read(request, principal, id, vid);
        return response instanceof Promise ? response.then(finish, fail) : finish(response);
      } catch (error) {
        return fail(error);
      }
    };
  const read = `${basePath}/Binary/:id`;
  const vread = `${read}/_history/:vid`;
  return {
    [read]: { GET: answer(read), HEAD: answer(read) },
    [vread]: { GET: answer(vread), HEAD: answer(vread) },
  };
}
