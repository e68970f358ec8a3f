/**
 * A strict JSON parser for file headers. `JSON.parse` silently keeps the last
 * of two equal keys and turns a key `__proto__` into a prototype change; a
 * header that names one tensor twice must be rejected instead. This parser
 * follows RFC 8259 exactly, returns objects as `Map`s in document order,
 * rejects duplicate keys at any depth, keeps whether each number was written
 * as an integer, and bounds nesting depth so hostile input cannot overflow
 * the stack.
 */

/** A JSON number, with its source text's form. */
export interface JsonNumber {
  readonly kind: 'number';
  /** The value as a double (integers beyond 2^53 lose precision: check `Number.isSafeInteger`). */
  readonly value: number;
  /** True when written without fraction or exponent (`12`, `-3`, not `1.0` or `1e2`). */
  readonly integer: boolean;
}

/** A parsed JSON value: objects are `Map`s in document order, numbers {@link JsonNumber}s. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>;

/** Thrown for malformed JSON; `position` is the offset (UTF-16 code units) of the fault. */
export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** Thrown when one object names a key twice; `depth` is 1 for the outermost object. */
export class JsonDuplicateKeyError extends JsonSyntaxError {
  constructor(
    readonly key: string,
    readonly depth: number,
    position: number,
  ) {
    super(`duplicate key ${JSON.stringify(key)} at position ${position}`, position);
    this.name = 'JsonDuplicateKeyError';
  }
}

/** Options of {@link parseStrictJson}. */
export interface StrictJsonOptions {
  /** Deepest nesting of arrays and objects accepted (default 64). */
  maxDepth?: number;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const WS = /[ \t\n\r]*/y;

/**
 * Parses `text` as one JSON value (surrounding whitespace allowed). Throws a
 * {@link JsonSyntaxError} for any deviation from RFC 8259, a
 * {@link JsonDuplicateKeyError} for a key repeated within one object, and for nesting deeper than `maxDepth`.
 */
export function parseStrictJson(text: string, opts: StrictJsonOptions = {}): JsonValue {
  const maxDepth = opts.maxDepth ?? 64;
  let pos = 0;

  const fail = (what: string, at = pos): never => {
    const found = at < text.length ? `'${text[at]}'` : 'end of input';
    throw new JsonSyntaxError(`${what} at position ${at} (found ${found})`, at);
  };
  const skipWs = (): void => {
    WS.lastIndex = pos;
    WS.exec(text);
    pos = WS.lastIndex;
  };
  const expect = (ch: string): void => {
    if (text[pos] !== ch) fail(`expected '${ch}'`);
    pos++;
  };

  const parseString = (): string => {
    const start = pos;
    expect('"');
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x22) {
        pos++;
        // JSON.parse decodes the escapes of a string already known to be well formed.
        return JSON.parse(text.slice(start, pos)) as string;
      }
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        const e = text[pos + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) fail('bad \\u escape in string', pos);
          pos += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          pos += 2;
        } else {
          fail('bad escape in string', pos);
        }
      } else {
        pos++;
      }
    }
    return fail('unterminated string', start);
  };

  const parseValue = (depth: number): JsonValue => {
    skipWs();
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      return c === '{' ? parseObject(depth + 1) : parseArray(depth + 1);
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) return (pos += 4), true;
    if (text.startsWith('false', pos)) return (pos += 5), false;
    if (text.startsWith('null', pos)) return (pos += 4), null;
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (m === null) return fail('expected a value');
    pos = NUMBER.lastIndex;
    return { kind: 'number', value: Number(m[0]), integer: m[1] === undefined && m[2] === undefined };
  };

  const parseArray = (depth: number): JsonValue[] => {
    expect('[');
    const out: JsonValue[] = [];
    skipWs();
    if (text[pos] === ']') return pos++, out;
    for (;;) {
      out.push(parseValue(depth));
      skipWs();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      expect(']');
      return out;
    }
  };

  const parseObject = (depth: number): Map<string, JsonValue> => {
    expect('{');
    const out = new Map<string, JsonValue>();
    skipWs();
    if (text[pos] === '}') return pos++, out;
    for (;;) {
      skipWs();
      const keyAt = pos;
      const key = parseString();
      if (out.has(key)) throw new JsonDuplicateKeyError(key, depth, keyAt);
      skipWs();
      expect(':');
      out.set(key, parseValue(depth));
      skipWs();
      if (text[pos] === ',') {
        pos++;
        continue;
      }
      expect('}');
      return out;
    }
  };

  const value = parseValue(0);
  skipWs();
  if (pos !== text.length) fail('unexpected text after the JSON value');
  return value;
}
