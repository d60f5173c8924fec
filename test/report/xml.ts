// A small strict XML 1.0 well-formedness checker and tree builder for tests:
// one root, matched tags, quoted attributes without '<', no duplicate
// attributes, only the five predefined entities and character references, no
// bare '&' or '<' in text. It throws with the offset of the first error.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Decoded text directly inside this element. */
  text: string;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9._:]*/y;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

export function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`XML not well-formed at offset ${i}: ${what} near ${JSON.stringify(src.slice(Math.max(0, i - 20), i + 20))}`);
  };
  const decode = (raw: string, inAttr: boolean): string => {
    if (inAttr && raw.includes("<")) fail("'<' in attribute value");
    return raw.replace(/&([^;]*);|&/g, (m, ent: string | undefined) => {
      if (ent === undefined) fail("bare '&'");
      if (ent!.startsWith("#x")) {
        const cp = parseInt(ent!.slice(2), 16);
        if (!/^[0-9a-fA-F]+$/.test(ent!.slice(2)) || !validChar(cp)) fail(`bad character reference ${m}`);
        return String.fromCodePoint(cp);
      }
      if (ent!.startsWith("#")) {
        const cp = parseInt(ent!.slice(1), 10);
        if (!/^[0-9]+$/.test(ent!.slice(1)) || !validChar(cp)) fail(`bad character reference ${m}`);
        return String.fromCodePoint(cp);
      }
      const v = ENTITIES[ent!];
      if (v === undefined) fail(`unknown entity ${m}`);
      return v!;
    });
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(src);
    if (!m) fail("expected a name");
    i += m![0].length;
    return m![0];
  };
  const ws = () => {
    while (i < src.length && /[ \t\r\n]/.test(src[i]!)) i++;
  };
  const skipMisc = () => {
    for (;;) {
      ws();
      if (src.startsWith("<!--", i)) {
        const end = src.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (src.startsWith("<?", i)) {
        const end = src.indexOf("?>", i + 2);
        if (end < 0) fail("unterminated processing instruction");
        i = end + 2;
      } else return;
    }
  };
  for (const ch of src) {
    if (!validChar(ch.codePointAt(0)!)) fail(`character U+${ch.codePointAt(0)!.toString(16)} not allowed in XML`);
  }
  if (src.startsWith("<?xml")) {
    const end = src.indexOf("?>");
    if (end < 0) fail("unterminated XML declaration");
    i = end + 2;
  }
  skipMisc();
  const element = (): XmlElement => {
    if (src[i] !== "<") fail("expected '<'");
    i++;
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: "" };
    for (;;) {
      const before = i;
      ws();
      if (src.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (src[i] === ">") {
        i++;
        break;
      }
      if (i === before) fail("expected whitespace before attribute");
      const an = name();
      ws();
      if (src[i] !== "=") fail("expected '='");
      i++;
      ws();
      const q = src[i];
      if (q !== '"' && q !== "'") fail("attribute value not quoted");
      const end = src.indexOf(q!, i + 1);
      if (end < 0) fail("unterminated attribute value");
      if (an in el.attrs) fail(`duplicate attribute ${an}`);
      el.attrs[an] = decode(src.slice(i + 1, end), true);
      i = end + 1;
    }
    for (;;) {
      const lt = src.indexOf("<", i);
      if (lt < 0) fail(`unclosed element <${el.name}>`);
      const raw = src.slice(i, lt);
      if (raw.includes("]]>")) fail("']]>' in text");
      el.text += decode(raw, false);
      i = lt;
      if (src.startsWith("</", i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        ws();
        if (src[i] !== ">") fail("expected '>'");
        i++;
        return el;
      }
      if (src.startsWith("<!--", i)) {
        const end = src.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (src.startsWith("<![CDATA[", i)) {
        const end = src.indexOf("]]>", i);
        if (end < 0) fail("unterminated CDATA");
        el.text += src.slice(i + 9, end);
        i = end + 3;
      } else {
        el.children.push(element());
      }
    }
  };
  const root = element();
  skipMisc();
  if (i !== src.length) fail("content after the root element");
  return root;
}

function validChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.name === name) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}
