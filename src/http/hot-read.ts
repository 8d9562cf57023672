/**
 * The hot path (issue 8): GET and HEAD of `Binary/:id` and `Binary/:id/_history/:vid` answered straight from
 * Bun's router when the app listens. The same read, observer, CORS headers and error renderer as the Elysia
 * routes of binary.ts, without Elysia's per-request context, hooks and copy of every Response: those took
 * about half the CPU time of a 1 KiB read (bench/optimisations.md).
 */
import type { BunRequest, Server } from "bun";
import type { Principal } from "../security/scopes.ts";
import type { BinaryInteractions } from "./binary.ts";
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
  const answer =
    (route: string) =>
    async (request: BunRequest, server: Server<unknown>): Promise<Response> => {
      const observation = observer.begin(request);
      const params: Readonly<Record<string, string | undefined>> = request.params;
      let principal: Principal | undefined;
      let response: Response;
      try {
        principal = await binary.authenticate(request);
        response = await binary.read(request, principal, params.id ?? "", params.vid ?? null);
      } catch (error) {
        response = renderError(error, request);
      }
      cors(request, response);
      observer.responded(observation, request, server, { route, params, principal }, response);
      return response;
    };
  const read = `${basePath}/Binary/:id`;
  const vread = `${read}/_history/:vid`;
  return {
    [read]: { GET: answer(read), HEAD: answer(read) },
    [vread]: { GET: answer(vread), HEAD: answer(vread) },
  };
}
