/**
 * FHIR XML (fhir-binary-rules.md sections 1 and 5): values in `value` attributes, children in insertion
 * order, every resource in the FHIR namespace, and a parser that refuses DTDs.
 */
import { describe, expect, test } from "bun:test";
import type { Resource } from "../../src/fhir/outcome.ts";
import { escapeAttribute, FHIR_NS, parseXml, toXml } from "../../src/fhir/xml.ts";
import { errorOf } from "./expect-error.ts";

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

test.each([
  ["plain", "plain"],
  ["a & b", "a &amp; b"],
  ["<script>", "&lt;script&gt;"],
  ['say "hi"', "say &quot;hi&quot;"],
  ["it's", "it's"],
  ["line\nbreak", "line&#10;break"],
  ["cr\r\ntab\t", "cr&#13;&#10;tab&#9;"],
  ["&amp;", "&amp;amp;"],
  ["résumé ✓", "résumé ✓"],
])("escapeAttribute %p", (value, escaped) => {
  expect(escapeAttribute(value)).toBe(escaped);
});

describe("toXml", () => {
  const tricky = "a & b < c > d \"e\"\nf\r\tg 'h'";

  test("escapes attribute values and keeps insertion order", () => {
    const outcome: Resource = {
      resourceType: "OperationOutcome",
      issue: [{ severity: "error", code: "invalid", diagnostics: tricky }],
    };
    expect(toXml(outcome)).toBe(
      `${DECLARATION}<OperationOutcome xmlns="${FHIR_NS}"><issue><severity value="error"/><code value="invalid"/>` +
        `<diagnostics value="a &amp; b &lt; c &gt; d &quot;e&quot;&#10;f&#13;&#9;g 'h'"/></issue></OperationOutcome>`,
    );
  });

  test("escaped values survive a round trip through the parser", () => {
    const xml = toXml({ resourceType: "Basic", text: tricky, id: "<&>" });
    expect(parseXml(xml)).toEqual({
      name: "Basic",
      node: { "@xmlns": FHIR_NS, text: { "@value": tricky }, id: { "@value": "<&>" } },
    });
  });

  test("arrays repeat the element; numbers and booleans become values; null and undefined are left out", () => {
    const resource: Resource = {
      resourceType: "CapabilityStatement",
      format: ["json", "xml"],
      total: 0,
      readHistory: false,
      gone: null,
      missing: undefined,
      empty: [],
    };
    expect(toXml(resource)).toBe(
      `${DECLARATION}<CapabilityStatement xmlns="${FHIR_NS}"><format value="json"/><format value="xml"/>` +
        `<total value="0"/><readHistory value="false"/></CapabilityStatement>`,
    );
  });

  const bundle: Resource = {
    resourceType: "Bundle",
    type: "history",
    entry: [
      {
        fullUrl: "http://x/fhir/Binary/a",
        resource: { resourceType: "Binary", id: "a", meta: { versionId: "2" } },
        request: { method: "PUT", url: "Binary/a" },
      },
      { request: { method: "DELETE", url: "Binary/b" } },
    ],
  };

  test("a resource nested in a Bundle entry is wrapped in its own type element in the FHIR namespace", () => {
    expect(toXml(bundle)).toBe(
      `${DECLARATION}<Bundle xmlns="${FHIR_NS}"><type value="history"/>` +
        `<entry><fullUrl value="http://x/fhir/Binary/a"/><resource><Binary xmlns="${FHIR_NS}"><id value="a"/>` +
        `<meta><versionId value="2"/></meta></Binary></resource><request><method value="PUT"/>` +
        `<url value="Binary/a"/></request></entry>` +
        `<entry><request><method value="DELETE"/><url value="Binary/b"/></request></entry></Bundle>`,
    );
  });

  test("pretty printing indents by two spaces, one element a line", () => {
    expect(toXml(bundle, true)).toBe(
      [
        DECLARATION,
        `<Bundle xmlns="${FHIR_NS}">`,
        '  <type value="history"/>',
        "  <entry>",
        '    <fullUrl value="http://x/fhir/Binary/a"/>',
        "    <resource>",
        `      <Binary xmlns="${FHIR_NS}">`,
        '        <id value="a"/>',
        "        <meta>",
        '          <versionId value="2"/>',
        "        </meta>",
        "      </Binary>",
        "    </resource>",
        "    <request>",
        '      <method value="PUT"/>',
        '      <url value="Binary/a"/>',
        "    </request>",
        "  </entry>",
        "  <entry>",
        "    <request>",
        '      <method value="DELETE"/>',
        '      <url value="Binary/b"/>',
        "    </request>",
        "  </entry>",
        "</Bundle>",
        "",
      ].join("\n"),
    );
    // Pretty and compact forms are the same document.
    expect(parseXml(toXml(bundle, true))).toEqual(parseXml(toXml(bundle)));
  });
});

describe("parseXml", () => {
  test.each([
    [`<a xmlns="${FHIR_NS}"/>`, { name: "a", node: { "@xmlns": FHIR_NS } }],
    [
      `${DECLARATION}\n<!-- note -->\n<a><b value="1"/><b value="2"/><c>text</c></a>\n`,
      { name: "a", node: { b: [{ "@value": "1" }, { "@value": "2" }], c: "text" } },
    ],
    ['<a v="&lt;&amp;&#65;&#x42;"/>', { name: "a", node: { "@v": "<&AB" } }],
  ])("%p", (text, expected) => {
    expect(parseXml(text)).toEqual(expected);
  });

  test.each([
    ["DOCTYPE", "<!DOCTYPE a><a/>", 400, "security"],
    ["doctype in lower case", "<!doctype a><a/>", 400, "security"],
    ["internal subset", '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', 400, "security"],
    ["external entity", '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>', 400, "security"],
    ["billion laughs", '<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY l2 "&l;&l;">]><a>&l2;</a>', 400, "security"],
    ["empty", "", 400, "structure"],
    ["text only", "hello", 400, "structure"],
    ["JSON", '{"resourceType":"Binary"}', 400, "structure"],
    ["unclosed element", "<a><b></a>", 400, "structure"],
    ["two roots", "<a/><b/>", 400, "structure"],
    ["unquoted attribute", "<a v=1/>", 400, "structure"],
    ["bare ampersand", '<a v="&"/>', 400, "structure"],
  ])("%s is %p %p", (_name, text, status, code) => {
    expect(errorOf(() => parseXml(text))).toEqual({ status, code });
  });
});
