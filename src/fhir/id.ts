// R4 id datatype: "Any combination of upper- or lower-case ASCII letters ('A'..'Z', and 'a'..'z'), numerals
// ('0'..'9'), '-' and '.', with a length limit of 64 characters." https://hl7.org/fhir/R4/datatypes.html#id
const ID = /^[A-Za-z0-9.-]{1,64}$/;

/** True for a valid FHIR logical id; ids made only of dots are refused as they name directories. */
export function isValidId(id: string): boolean {
  return ID.test(id) && !/^\.+$/.test(id);
}

/** A version id fhirbin can have issued: 1, 2, 3... */
export function parseVersionId(vid: string): number | null {
  return /^[1-9][0-9]{0,14}$/.test(vid) ? Number(vid) : null;
}
