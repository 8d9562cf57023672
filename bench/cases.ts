/** What is measured (the cases, each a load per server) and how fhirbin is judged (the ratios and targets). */
import { CONTENT_TYPE, type Fixture, primeStore, type SizeKey } from "./fixtures.ts";
import type { Server } from "./process.ts";
import type { Load } from "./wrk.ts";

/** The servers: fhirbin and its three peers. */
export type Peer = "fhirbin" | "baseline" | "bare-bun" | "nginx" | "durable-limit";

/** How each server is named in the report. */
export const PEER_NAMES: Record<Peer, string> = {
  fhirbin: "fhirbin",
  baseline: "fhirbin baseline",
  "bare-bun": "bare Bun.serve",
  nginx: "nginx",
  "durable-limit": "durability limit",
};

/** One case: the same operation against each server that can do it. */
export interface Case {
  id: string;
  title: string;
  /**
   * Writes run against fresh servers every time: each starts from an empty store (then primed), and the
   * disk used is released after each run.
   */
  fresh: boolean;
  loads: Partial<Record<Peer, Load>>;
  /** Brings a fresh server to the state of one in service before it is measured. */
  prime?: Partial<Record<Peer, (server: Server) => Promise<void>>>;
}

/** Tiny documents stored in a fresh fhirbin before its writes are measured (see primeStore). */
const PRIMING_DOCUMENTS = 2048;

/** A ratio of fhirbin to a peer (or to another of its own cases), with the target when it has one. */
export interface Ratio {
  label: string;
  of: { case: string; peer: Peer };
  to: { case: string; peer: Peer };
  /** The least acceptable ratio, or null when it is only reported. */
  target: number | null;
}

const READ_SIZES: readonly SizeKey[] = ["1k", "64k", "1m"];
const CREATE_SIZES: readonly SizeKey[] = ["64k", "1m"];

/** The cases of issue 8, for the fixtures already stored in fhirbin and served by the peers. */
export function benchCases(input: {
  fixtures: Record<SizeKey, Fixture>;
  token: string;
  /** ETags of the 1 KiB document as fhirbin and nginx give them, for the conditional read. */
  etags: { fhirbin: string; nginx: string };
}): Case[] {
  const { fixtures, token, etags } = input;
  const auth = { authorization: `Bearer ${token}` };
  // What curl, fetch and browsers send (with more types); wrk sends no Accept unless told.
  const accept = { accept: "*/*" };
  const reads = READ_SIZES.map((key): Case => {
    const { id, label, size, fileName } = fixtures[key];
    const file: Load = { path: `/${fileName}`, headers: accept, status: 200, length: size };
    return {
      id: `read-${key}`,
      title: `native read ${label}`,
      fresh: false,
      loads: {
        fhirbin: { path: `/Binary/${id}`, headers: { ...auth, ...accept }, status: 200, length: size },
        "bare-bun": file,
        nginx: file,
      },
    };
  });
  const small = fixtures["1k"];
  const large = fixtures["1m"];
  const creates = CREATE_SIZES.map((key): Case => {
    const { label, file } = fixtures[key];
    const body = { bodyFile: file, status: 201 };
    return {
      id: `create-${key}`,
      title: `durable create ${label}`,
      fresh: true,
      prime: { fhirbin: (server) => primeStore(server.url, token, PRIMING_DOCUMENTS) },
      loads: {
        fhirbin: { path: "/Binary", headers: { ...auth, "content-type": CONTENT_TYPE }, ...body },
        "durable-limit": { path: "/", headers: { "content-type": CONTENT_TYPE }, ...body },
      },
    };
  });
  return [
    ...reads,
    {
      id: "fhir-json-1m",
      title: `FHIR JSON read ${large.label}`,
      fresh: false,
      loads: { fhirbin: { path: `/Binary/${large.id}?_format=json`, headers: auth, status: 200 } },
    },
    {
      id: "not-modified",
      title: `conditional read answered 304 (${small.label})`,
      fresh: false,
      loads: {
        fhirbin: {
          path: `/Binary/${small.id}`,
          headers: { ...auth, ...accept, "if-none-match": etags.fhirbin },
          status: 304,
        },
        nginx: {
          path: `/${small.fileName}`,
          headers: { ...accept, "if-none-match": etags.nginx },
          status: 304,
        },
      },
    },
    ...creates,
  ];
}

/** A change may cost at most this much of any case against the build it replaces. */
export const BASELINE_TARGET = 0.95;

/**
 * The same cases with a baseline fhirbin (another build) measured right after this one under the same load,
 * so that a change is judged against the code it replaces in the same hour on the same machine.
 */
export function withBaseline(cases: readonly Case[]): Case[] {
  return cases.map((c) => {
    const { fhirbin, ...peers } = c.loads;
    if (!fhirbin) return c;
    const prime = c.prime?.fhirbin;
    return {
      ...c,
      loads: { fhirbin, baseline: fhirbin, ...peers },
      ...(prime ? { prime: { ...c.prime, baseline: prime } } : {}),
    };
  });
}

/** The ratios of the acceptance criteria, plus the informative ones without a target. */
export function benchRatios(cases: readonly Case[]): Ratio[] {
  const title = (id: string): string => cases.find((c) => c.id === id)?.title ?? id;
  const fhirbinTo = (id: string, peer: Peer, target: number | null, to = id): Ratio => ({
    label: `${title(id)}: fhirbin / ${peer === "fhirbin" ? title(to) : PEER_NAMES[peer]}`,
    of: { case: id, peer: "fhirbin" },
    to: { case: to, peer },
    target,
  });
  const nginxTargets: Record<SizeKey, number | null> = { "1k": 0.5, "64k": null, "1m": 0.9 };
  return [
    ...READ_SIZES.map((key) => fhirbinTo(`read-${key}`, "bare-bun", 0.85)),
    ...READ_SIZES.map((key) => fhirbinTo(`read-${key}`, "nginx", nginxTargets[key])),
    fhirbinTo("fhir-json-1m", "fhirbin", 0.3, "read-1m"),
    fhirbinTo("not-modified", "nginx", null),
    ...CREATE_SIZES.map((key) => fhirbinTo(`create-${key}`, "durable-limit", 0.7)),
    ...cases.filter((c) => c.loads.baseline).map((c) => fhirbinTo(c.id, "baseline", BASELINE_TARGET)),
  ];
}
