/**
 * The hot path (issue 8): GET and HEAD of `Binary/:id` and `Binary/:id/_history/:vid` answered straight from
 * Bun's router when the app listens. The same read, observer, CORS headers and error renderer as the Elysia
 * routes of binary.ts, without Elysia's per-request context, hooks and copy of every Response: those took
 * about half the CPU time of a 1 KiB read (bench/optimisations.md).
 */
import type { BunRequest, Server } from "bun";
import type { Principal } from "../security/scopes.ts";
import type { BinaryInteractions } from "./binary.ts";
import { requireAbsoluteUrl } from "./errors.ts";
import type { Observer } from "./logging.ts";

/** Bun `routes` entries for the reads of one FHIR base path. */
export function hotReadRoutes({
  basePath,
  binary,
  observer,
  cors,
  renderError,
}: {
  basePath: string;
  binary: BinaryInteractions;
  observer: Observer;
  /** Adds the CORS headers a request's origin gets (corsPolicy's, for a response built outside Elysia). */
  cors: (request: Request, response: Response) => void;
  /** errors.ts's renderer: an OperationOutcome for a FhirError, a generic 500 for anything else. */
  renderError: (error: unknown, request: Request) => Response;
}) {
  // Synchronous unless the token is a JWT or the version must be read from disk: a read the store's cache
  // answers makes no promise at all (issue 8).
  const answer =
    (route: string) =>
    (request: BunRequest, server: Server<unknown>): Response | Promise<Response> => {
      const observation = observer.begin(request);
      const params: Readonly<Record<string, string | undefined>> = request.params;
      const id = params.id ?? "";
      const vid = params.vid ?? null;
      let principal: Principal | undefined;
      const finish = (response: Response): Response => {
        cors(request, response);
        observer.responded(observation, request, server, { route, params, principal }, response);
        return response;
      };
      const fail = (error: unknown): Response => finish(renderError(error, request));
      try {
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
