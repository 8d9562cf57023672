/** Files embedded as text in the executable (`import x from "..." with { type: "text" }`). */
declare module "@scalar/api-reference/browser/standalone.js" {
  const text: string;
  export default text;
}

// The demo web app's files (src/web/), served by src/http/web.ts (`*.html` is typed by bun-types).
declare module "*/web/app.css" {
  const text: string;
  export default text;
}
declare module "*/web/icon.svg" {
  const text: string;
  export default text;
}
declare module "*/web/app.js" {
  const text: string;
  export default text;
}
declare module "*/web/fhir-client.js" {
  const text: string;
  export default text;
}
