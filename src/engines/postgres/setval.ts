/**
 * The statement by which a pg_dump carries a sequence's value, in either format (a plain script's line,
 * a custom archive's `SEQUENCE SET` entry): `SELECT pg_catalog.setval('schema.name', N, true|false);`.
 * Pure. The name is a string literal holding the schema-qualified name as pg_dump quotes identifiers
 * (`'public."Mixed"'`); it is read back to `schema.name` unquoted, the form the facts name tables in.
 */
import type { DatabaseFacts } from '../engine.ts';

/** One sequence's value as the facts record it. */
export type SequenceValue = NonNullable<DatabaseFacts['sequences']>[number];

/**
 * Turns the bytes of a dump's names into text as node-postgres reads them from a database, or undefined
 * when that is not certain. See `nameDecoder`.
 */
export type NameDecoder = (bytes: Buffer) => string | undefined;

/** The first bytes of the statement, to tell it from other lines without decoding them. */
export const SETVAL_PREFIX = Buffer.from('SELECT pg_catalog.setval(');

/** Longer than any setval statement pg_dump writes (two quoted names of at most 63 characters each). */
export const SETVAL_MAX = 2048;

/** The literal as `E'...'` (backslash escapes) or `'...'` (standard strings), then the value and is_called. */
const STATEMENT =
  /^SELECT pg_catalog\.setval\((?:E'((?:[^'\\]|''|\\.)*)'|'((?:[^']|'')*)'), (-?\d{1,20}), (true|false)\);\n?$/s;
/** pg_dump leaves an identifier unquoted only when it is lower-case ASCII letters, digits and `_`. */
const IDENTIFIER = /^(?:"((?:[^"]|"")+)"|([a-z_][a-z0-9_]*))/;

/**
 * How to read names in a dump written in `encoding` (pg_dump writes in the database's encoding, named as
 * in `SET client_encoding = '...'`). UTF8 and SQL_ASCII bytes are what node-postgres decodes too (a
 * SQL_ASCII database passes its bytes unconverted); other encodings are only read where a name is ASCII:
 * datasaver does not convert them, and a name decoded differently than the server would convert it
 * would make facts that a restored copy contradicts.
 */
export function nameDecoder(encoding: string): NameDecoder {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const passThrough = encoding === 'UTF8' || encoding === 'SQL_ASCII';
  return (bytes) => {
    if (passThrough) {
      try {
        return utf8.decode(bytes);
      } catch {
        return undefined;
      }
    }
    return bytes.every((b) => b < 0x80) ? bytes.toString('latin1') : undefined;
  };
}

/** The encoding a dump names in its `SET client_encoding = 'X';` statement, or undefined. */
export function clientEncoding(statement: string): string | undefined {
  return /^SET client_encoding = '([A-Za-z0-9_]+)';\n?$/.exec(statement)?.[1];
}

/**
 * Reads one setval statement (its bytes, an optional trailing newline allowed). Returns the sequence's
 * `schema.name` and its value (null when the third argument is false: never called, `nextval` would
 * return N), or undefined when the bytes are not such a statement or a name cannot be decoded.
 */
export function parseSetval(bytes: Buffer, decode: NameDecoder): SequenceValue | undefined {
  const text = decode(bytes);
  const m = text === undefined ? undefined : STATEMENT.exec(text);
  if (!m) return undefined;
  const literal = m[1] === undefined ? m[2]!.replaceAll("''", "'") : unescapeE(m[1]);
  const name = literal === undefined ? undefined : qualifiedName(literal);
  if (name === undefined) return undefined;
  return { name, value: m[4] === 'true' ? m[3]! : null };
}

/** An `E''` literal's content. pg_dump only doubles backslashes and quotes in it: other escapes are not its own. */
function unescapeE(body: string): string | undefined {
  let bad = false;
  const text = body.replaceAll(/\\(.)|''/gs, (_all, ch: string | undefined) => {
    if (ch !== undefined && ch !== '\\' && ch !== "'") bad = true;
    return ch ?? "'";
  });
  return bad ? undefined : text;
}

/** `schema.name` from a qualified name as pg_dump quotes it (`"We.ird"."it's""q"`), or undefined. */
export function qualifiedName(text: string): string | undefined {
  const schema = IDENTIFIER.exec(text);
  if (!schema || text[schema[0].length] !== '.') return undefined;
  const rest = text.slice(schema[0].length + 1);
  const name = IDENTIFIER.exec(rest);
  if (!name || name[0].length !== rest.length) return undefined;
  return `${identifier(schema)}.${identifier(name)}`;
}

function identifier(m: RegExpExecArray): string {
  return m[1] === undefined ? m[2]! : m[1].replaceAll('""', '"');
}

/**
 * Collects the values a dump holds, one per sequence. A name seen twice makes the whole result
 * unusable (undefined): a dump has one value per sequence, so a second one means something that is not
 * pg_dump's own statement was taken for one, and neither can be trusted.
 */
export class SequenceValues {
  readonly #values = new Map<string, string | null>();
  #failed = false;

  add(value: SequenceValue | undefined): void {
    if (value === undefined || this.#values.has(value.name)) this.fail();
    else this.#values.set(value.name, value.value);
  }

  /** The dump could not be read for its values: there are none to record. */
  fail(): void {
    this.#failed = true;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** The values in name order (code units, never a server's collation), or undefined after `fail`. */
  result(): SequenceValue[] | undefined {
    if (this.#failed) return undefined;
    return sortByName([...this.#values].map(([name, value]) => ({ name, value })));
  }
}

/** Sorted by name in code-unit order. */
export function sortByName(values: SequenceValue[]): SequenceValue[] {
  return values.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
