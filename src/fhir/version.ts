/**
 * The FHIR releases fhirbin speaks by their names; they differ for Binary in MIME types and element names.
 * R4B and R5 name everything as R4 does, and are R4 here but for their release.
 */
export type FhirVersionName = "DSTU2" | "STU3" | "R4";

export interface FhirVersion {
  name: FhirVersionName;
  /** The full version published in CapabilityStatement.fhirVersion. */
  release: string;
  /**
   * The `fhirVersion` MIME parameter FHIR responses carry, or null. Only R4B and R5 need it: their MIME
   * types and names are R4's, so nothing else tells a client the release it asked for was served.
   */
  mimeParameter: string | null;
  json: string;
  xml: string;
  /** Binary payload element: `content` until STU3, `data` from R4. */
  payload: "content" | "data";
  hasSecurityContext: boolean;
  capabilityType: "Conformance" | "CapabilityStatement";
}

export const FHIR_VERSIONS: Readonly<Record<FhirVersionName, FhirVersion>> = {
  DSTU2: {
    name: "DSTU2",
    release: "1.0.2",
    mimeParameter: null,
    json: "application/json+fhir",
    xml: "application/xml+fhir",
    payload: "content",
    hasSecurityContext: false,
    capabilityType: "Conformance",
  },
  STU3: {
    name: "STU3",
    release: "3.0.2",
    mimeParameter: null,
    json: "application/fhir+json",
    xml: "application/fhir+xml",
    payload: "content",
    hasSecurityContext: true,
    capabilityType: "CapabilityStatement",
  },
  R4: {
    name: "R4",
    release: "4.0.1",
    mimeParameter: null,
    json: "application/fhir+json",
    xml: "application/fhir+xml",
    payload: "data",
    hasSecurityContext: true,
    capabilityType: "CapabilityStatement",
  },
};

/** R4B and R5: Binary has R4's elements in both, so they are served with R4 naming, as their release. */
export const R4B: FhirVersion = { ...FHIR_VERSIONS.R4, release: "4.3.0", mimeParameter: "4.3" };
export const R5: FhirVersion = { ...FHIR_VERSIONS.R4, release: "5.0.0", mimeParameter: "5.0" };

/** Maps the R4 `fhirVersion` MIME parameter ("4.0", "3.0.2", ...) to a release, or null when unsupported. */
export function parseFhirVersionParameter(value: string): FhirVersion | null {
  const match = /^(\d+)\.(\d+)(?:\.\d+)?$/.exec(value.trim());
  if (!match) return null;
  const key = `${match[1]}.${match[2]}`;
  if (key === "1.0") return FHIR_VERSIONS.DSTU2;
  if (key === "3.0") return FHIR_VERSIONS.STU3;
  if (key === "4.0") return FHIR_VERSIONS.R4;
  if (key === "4.3") return R4B;
  if (key === "5.0") return R5;
  return null;
}
