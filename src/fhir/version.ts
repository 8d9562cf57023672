/** The FHIR releases fhirbin speaks; they differ for Binary in MIME types and element names. */
export type FhirVersionName = "DSTU2" | "STU3" | "R4";

export interface FhirVersion {
  name: FhirVersionName;
  /** The full version published in CapabilityStatement.fhirVersion. */
  release: string;
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
    json: "application/json+fhir",
    xml: "application/xml+fhir",
    payload: "content",
    hasSecurityContext: false,
    capabilityType: "Conformance",
  },
  STU3: {
    name: "STU3",
    release: "3.0.2",
    json: "application/fhir+json",
    xml: "application/fhir+xml",
    payload: "content",
    hasSecurityContext: true,
    capabilityType: "CapabilityStatement",
  },
  R4: {
    name: "R4",
    release: "4.0.1",
    json: "application/fhir+json",
    xml: "application/fhir+xml",
    payload: "data",
    hasSecurityContext: true,
    capabilityType: "CapabilityStatement",
  },
};

/**
 * Maps the R4 `fhirVersion` MIME parameter ("4.0", "3.0.2", ...) to a release, or null when unsupported.
 * R4B and R5 name Binary's elements as R4 does, so they are served with R4 naming.
 */
export function parseFhirVersionParameter(value: string): FhirVersion | null {
  const match = /^(\d+)\.(\d+)(?:\.\d+)?$/.exec(value.trim());
  if (!match) return null;
  const key = `${match[1]}.${match[2]}`;
  if (key === "1.0") return FHIR_VERSIONS.DSTU2;
  if (key === "3.0") return FHIR_VERSIONS.STU3;
  if (key === "4.0" || key === "4.3" || key === "5.0") return FHIR_VERSIONS.R4;
  return null;
}
