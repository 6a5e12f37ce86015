/**
 * A small, strict parser for one XML-RPC `<value>` (XML-RPC spec, xmlrpc.com/spec.md). XAPI stores
 * task results with its XML-RPC printer, so `task.result` is such a string even over JSON-RPC
 * (xapi.md §4). Pure: text in, value out; anything malformed is an XAPI_XMLRPC_INVALID error.
 * No attributes, comments, CDATA or DTDs are accepted: XAPI never emits them.
 */
import { XapiError } from './errors.ts';

export type XmlRpcValue =
  | string
  | number
  | boolean
  | null
  | readonly XmlRpcValue[]
  | { readonly [key: string]: XmlRpcValue };

/** Nesting limit: XAPI results are at most a few levels deep. */
const MAX_DEPTH = 64;

const ENTITIES: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
};

function fail(message: string, position: number): never {
  throw new XapiError('XAPI_XMLRPC_INVALID', `invalid XML-RPC value: ${message}`, {
    details: { position },
  });
}

interface Tag {
  readonly name: string;
  readonly closing: boolean;
  readonly selfClosing: boolean;
}

class Parser {
  readonly #text: string;
  #position = 0;

  constructor(text: string) {
    this.#text = text;
  }

  get position(): number {
    return this.#position;
  }

  atEnd(): boolean {
    return this.#position >= this.#text.length;
  }

  skipWhitespace(): void {
    while (this.#position < this.#text.length && /\s/.test(this.#text[this.#position] ?? '')) {
      this.#position += 1;
    }
  }

  peekIsTag(): boolean {
    return this.#text[this.#position] === '<';
  }

  readTag(): Tag {
    const start = this.#position;
    if (this.#text[start] !== '<') fail('expected a tag', start);
    let index = start + 1;
    let closing = false;
    if (this.#text[index] === '/') {
      closing = true;
      index += 1;
    }
    const nameStart = index;
    while (index < this.#text.length && /[A-Za-z0-9._:-]/.test(this.#text[index] ?? '')) index += 1;
    const name = this.#text.slice(nameStart, index);
    if (name === '') fail('empty tag name', start);
    while (index < this.#text.length && /\s/.test(this.#text[index] ?? '')) index += 1;
    let selfClosing = false;
    if (this.#text[index] === '/' && !closing) {
      selfClosing = true;
      index += 1;
    }
    if (this.#text[index] !== '>') fail(`unterminated or unsupported tag <${name}`, start);
    this.#position = index + 1;
    return { name, closing, selfClosing };
  }

  expectOpen(name: string): Tag {
    this.skipWhitespace();
    const at = this.#position;
    const tag = this.readTag();
    if (tag.closing || tag.name !== name) fail(`expected <${name}>`, at);
    return tag;
  }

  expectClose(name: string): void {
    this.skipWhitespace();
    const at = this.#position;
    const tag = this.readTag();
    if (!tag.closing || tag.name !== name) fail(`expected </${name}>`, at);
  }

  /** Raw text up to the next '<', entities decoded. */
  readText(): string {
    const start = this.#position;
    const end = this.#text.indexOf('<', start);
    if (end < 0) fail('text runs to the end of input', start);
    this.#position = end;
    return decodeEntities(this.#text.slice(start, end), start);
  }

  /** Looks ahead (without consuming) at whether a closing tag comes next after whitespace. */
  nextIsClosing(): boolean {
    let index = this.#position;
    while (index < this.#text.length && /\s/.test(this.#text[index] ?? '')) index += 1;
    return this.#text[index] === '<' && this.#text[index + 1] === '/';
  }

  value(depth: number): XmlRpcValue {
    if (depth > MAX_DEPTH) fail('nesting too deep', this.#position);
    const open = this.expectOpen('value');
    if (open.selfClosing) return '';
    const textStart = this.#position;
    const text = this.readText();
    if (this.nextIsClosing() || text.trim() !== '') {
      // <value>text</value>: an untyped value is a string.
      this.#position = textStart;
      const raw = this.readText();
      this.expectClose('value');
      return raw;
    }
    const result = this.typed(depth);
    this.expectClose('value');
    return result;
  }

  typed(depth: number): XmlRpcValue {
    this.skipWhitespace();
    const at = this.#position;
    const tag = this.readTag();
    if (tag.closing) fail('unexpected closing tag', at);
    if (tag.name === 'nil') {
      if (!tag.selfClosing) this.expectClose('nil');
      return null;
    }
    if (tag.name === 'array') return tag.selfClosing ? [] : this.array(depth);
    if (tag.name === 'struct') return tag.selfClosing ? {} : this.struct(depth);
    const text = tag.selfClosing ? '' : this.readText();
    if (!tag.selfClosing) this.expectClose(tag.name);
    return scalar(tag.name, text, at);
  }

  array(depth: number): XmlRpcValue[] {
    const data = this.expectOpen('data');
    const items: XmlRpcValue[] = [];
    if (!data.selfClosing) {
      while (!this.nextIsClosing()) items.push(this.value(depth + 1));
      this.expectClose('data');
    }
    this.expectClose('array');
    return items;
  }

  struct(depth: number): Record<string, XmlRpcValue> {
    const result = Object.create(null) as Record<string, XmlRpcValue>;
    while (!this.nextIsClosing()) {
      this.expectOpen('member');
      const name = this.expectOpen('name');
      const key = name.selfClosing ? '' : this.readText();
      if (!name.selfClosing) this.expectClose('name');
      result[key] = this.value(depth + 1);
      this.expectClose('member');
    }
    this.expectClose('struct');
    return result;
  }
}

function scalar(type: string, text: string, at: number): XmlRpcValue {
  switch (type) {
    case 'string':
    case 'dateTime.iso8601':
    case 'base64':
      return text;
    case 'int':
    case 'i4':
    case 'i8': {
      const trimmed = text.trim();
      if (!/^[+-]?\d{1,20}$/.test(trimmed)) fail(`<${type}> is not an integer`, at);
      const value = Number(trimmed);
      if (!Number.isSafeInteger(value)) fail(`<${type}> is out of the safe integer range`, at);
      return value;
    }
    case 'boolean': {
      const trimmed = text.trim();
      if (trimmed !== '0' && trimmed !== '1') fail('<boolean> is neither 0 nor 1', at);
      return trimmed === '1';
    }
    case 'double': {
      const trimmed = text.trim();
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed))
        fail('<double> is not a number', at);
      return Number(trimmed);
    }
    default:
      return fail(`unknown type <${type}>`, at);
  }
}

function decodeEntities(text: string, start: number): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;]{0,10});?/g, (match, body: string) => {
    if (!match.endsWith(';')) fail('unterminated entity', start);
    const named = ENTITIES[body];
    if (named !== undefined) return named;
    const numeric = /^#(x[0-9a-fA-F]{1,6}|[0-9]{1,7})$/.exec(body);
    if (numeric?.[1] !== undefined) {
      const digits = numeric[1];
      const code = digits.startsWith('x') ? parseInt(digits.slice(1), 16) : parseInt(digits, 10);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        fail('bad character reference', start);
      return String.fromCodePoint(code);
    }
    return fail(`unknown entity &${body};`, start);
  });
}

/**
 * Parses a task result: an XML-RPC `<value>` string, or "" for a void result (xapi.md §4).
 * Throws XAPI_XMLRPC_INVALID on anything else.
 */
export function parseXmlRpcValue(text: string): XmlRpcValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  if (parser.atEnd()) return null;
  const value = parser.value(0);
  parser.skipWhitespace();
  if (!parser.atEnd()) fail('trailing data after the value', parser.position);
  return value;
}
