/**
 * Sequence values read from a pg_dump as it streams: the setval statement, a plain script's lines and a
 * custom archive's TOC (built here byte by byte in the layout pg_dump writes, for each archive version
 * read; test/integration/facts.test.ts reads real pg_dump output).
 */
import { describe, expect, it } from 'vitest';
import { ArchiveSequenceReader } from '../../src/engines/postgres/archive-sequences.ts';
import { dumpedSequences, type SequenceReader } from '../../src/engines/postgres/facts.ts';
import { PlainSequenceReader } from '../../src/engines/postgres/plain-sequences.ts';
import { nameDecoder, parseSetval, qualifiedName } from '../../src/engines/postgres/setval.ts';

const utf8 = nameDecoder('UTF8');
const setval = (text: string, decode = utf8) => parseSetval(Buffer.from(text), decode);

/** Feeds `bytes` to `reader` in chunks of `size` and returns what it read. */
function readAll(reader: SequenceReader, bytes: Buffer, size: number) {
  for (let i = 0; i < bytes.length; i += size) reader.push(bytes.subarray(i, i + size));
  return reader.values();
}

describe('setval statements', () => {
  it('read the name as schema.name unquoted, and the value when called', () => {
    expect(setval("SELECT pg_catalog.setval('public.a', 3, true);")).toEqual({
      name: 'public.a',
      value: '3',
    });
    expect(setval('SELECT pg_catalog.setval(\'public."Mixed"\', -7, true);\n')).toEqual({
      name: 'public.Mixed',
      value: '-7',
    });
    expect(setval(`SELECT pg_catalog.setval('"We.ird"."it''s""q"', 9223372036854775807, true);`)).toEqual({
      name: 'We.ird.it\'s"q',
      value: '9223372036854775807',
    });
    expect(setval(`SELECT pg_catalog.setval(E'"back\\\\slash".s', 1, true);`)).toEqual({
      name: 'back\\slash.s',
      value: '1',
    });
    expect(setval(`SELECT pg_catalog.setval('"back\\slash".s', 1, true);`)).toEqual({
      name: 'back\\slash.s',
      value: '1',
    });
  });

  it('record no value for a sequence never called (nextval would return N)', () => {
    expect(setval("SELECT pg_catalog.setval('public.never', 1, false);")).toEqual({
      name: 'public.never',
      value: null,
    });
  });

  it('refuse what pg_dump does not write', () => {
    for (const bad of [
      "SELECT pg_catalog.setval('a', 3, true);", // not schema-qualified
      "SELECT pg_catalog.setval('public.Mixed', 3, true);", // upper case unquoted
      "SELECT pg_catalog.setval('public.a.b', 3, true);",
      "SELECT pg_catalog.setval('public.a', 3.5, true);",
      "SELECT pg_catalog.setval('public.a', 3, true); SELECT 1;",
      "SELECT pg_catalog.setval(E'public.\\x61', 3, true);", // an escape pg_dump never writes
      "SELECT pg_catalog.setval('public.a', 3);",
    ]) {
      expect(setval(bad), bad).toBeUndefined();
    }
  });

  it('read non-ASCII names only where the dump’s encoding is what node-postgres decodes', () => {
    const text = 'SELECT pg_catalog.setval(\'public."séq"\', 2, true);';
    expect(setval(text)).toEqual({ name: 'public.séq', value: '2' });
    expect(setval(text, nameDecoder('SQL_ASCII'))).toEqual({ name: 'public.séq', value: '2' });
    expect(setval(text, nameDecoder('LATIN1'))).toBeUndefined();
    expect(setval("SELECT pg_catalog.setval('public.a', 2, true);", nameDecoder('LATIN1'))).toEqual({
      name: 'public.a',
      value: '2',
    });
    expect(parseSetval(Buffer.from([0xff]), utf8)).toBeUndefined();
  });

  it('qualified names keep dots inside quotes', () => {
    expect(qualifiedName('"a.b"."c.d"')).toBe('a.b.c.d');
    expect(qualifiedName('"a"b.c')).toBeUndefined();
  });

  it('keep the values of the sequences the snapshot lists', () => {
    const read = [
      { name: 'ext.config_seq', value: '5' },
      { name: 'public.a', value: '3' },
    ];
    expect(dumpedSequences(read, ['public.a', 'public.b'])).toEqual([{ name: 'public.a', value: '3' }]);
    expect(dumpedSequences(undefined, ['public.a'])).toBeUndefined();
  });
});

const header = (name: string, type: string, schema = 'public') =>
  `--\n-- Name: ${name}; Type: ${type}; Schema: ${schema}; Owner: postgres\n--\n\n`;
const dataHeader = (name: string) =>
  `--\n-- Data for Name: ${name}; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n`;

/** A plain script in pg_dump's shape, with text that looks like setval lines where none are. */
const SCRIPT = [
  "--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\n",
  header('f()', 'FUNCTION'),
  "CREATE FUNCTION public.f() RETURNS void LANGUAGE sql AS $$\nSELECT pg_catalog.setval('public.a', 99, true);\n$$;\n\n",
  header('a', 'SEQUENCE'),
  'CREATE SEQUENCE public.a\n    START WITH 1;\n\n',
  dataHeader('t'),
  'COPY public.t (v) FROM stdin;\n',
  "SELECT pg_catalog.setval('public.a', 98, true);\n",
  '-- Name: a; Type: SEQUENCE SET; Schema: public; Owner: postgres\n',
  "SELECT pg_catalog.setval('public.a', 97, true);\n",
  '\\\\.\n',
  'COPY public.t (v) FROM stdin;\n',
  `${'x'.repeat(10_000)}\n`,
  '\\.\n\n\n',
  dataHeader('empty'),
  'COPY public.empty (v) FROM stdin;\n\\.\n\n\n',
  header('a', 'SEQUENCE SET'),
  "SELECT pg_catalog.setval('public.a', 3, true);\n\n\n",
  header('Mixed', 'SEQUENCE SET'),
  'SELECT pg_catalog.setval(\'public."Mixed"\', 1, false);\n\n\n',
  header('v', 'COMMENT'),
  `COMMENT ON VIEW public.v IS '${'long '.repeat(2000)}\nSELECT pg_catalog.setval(''public.a'', 96, true);\n';\n\n`,
  '--\n-- PostgreSQL database dump complete\n--\n\n',
].join('');

const EXPECTED = [
  { name: 'public.Mixed', value: null },
  { name: 'public.a', value: '3' },
];

describe('a plain script’s sequence values', () => {
  it('are the setval lines under SEQUENCE SET headers, whatever the chunks', () => {
    const bytes = Buffer.from(SCRIPT);
    for (const size of [1, 2, 3, 4, 5, 7, 64, 4097, bytes.length]) {
      expect(readAll(new PlainSequenceReader(), bytes, size), `chunks of ${size}`).toEqual(EXPECTED);
    }
  });

  it('are none when something else forges a value (a sequence named twice)', () => {
    const forged = SCRIPT.replace(
      '$$;\n',
      `$$;\n${header('a', 'SEQUENCE SET')}SELECT pg_catalog.setval('public.a', 99, true);\n`,
    );
    expect(readAll(new PlainSequenceReader(), Buffer.from(forged), 100)).toBeUndefined();
  });

  it('are none when a SEQUENCE SET line does not read, or the script ends inside COPY data', () => {
    const bad = SCRIPT.replace("'public.a', 3, true", "'public.a', x, true");
    expect(readAll(new PlainSequenceReader(), Buffer.from(bad), 100)).toBeUndefined();
    const cut = SCRIPT.slice(0, SCRIPT.indexOf('\\\\.'));
    expect(readAll(new PlainSequenceReader(), Buffer.from(cut), 100)).toBeUndefined();
  });

  it('follow the script’s client encoding', () => {
    const latin = SCRIPT.replace("'UTF8'", "'LATIN1'").replace('"Mixed"', '"Mîxed"');
    expect(readAll(new PlainSequenceReader(), Buffer.from(latin, 'latin1'), 100)).toBeUndefined();
    const ascii = SCRIPT.replace("'UTF8'", "'LATIN1'");
    expect(readAll(new PlainSequenceReader(), Buffer.from(ascii), 100)).toEqual(EXPECTED);
    // Only the prologue sets it: the same line among the objects is something else's text.
    const later = SCRIPT.replace('$$;\n', "$$;\nSET client_encoding = 'LATIN1';\n").replace(
      '"Mixed"',
      '"Mîxed"',
    );
    expect(readAll(new PlainSequenceReader(), Buffer.from(later), 100)).toEqual([
      { name: 'public.Mîxed', value: null },
      { name: 'public.a', value: '3' },
    ]);
  });
});

/** Writes a custom archive's header and TOC as pg_dump does, for archive version 1.`minor`. */
class ArchiveWriter {
  readonly parts: Buffer[] = [];
  readonly minor: number;
  readonly intSize: number;
  constructor(minor: number, intSize = 4) {
    this.minor = minor;
    this.intSize = intSize;
    this.parts.push(Buffer.from('PGDMP'), Buffer.from([1, minor, 0, intSize, 8, 1]));
    if (minor >= 15) this.parts.push(Buffer.from([0]));
    else this.int(0);
    for (const n of [1, 2, 3, 4, 5, 124, 0]) this.int(n);
    for (const s of ['db', '15.18', '15.18']) this.str(s);
  }

  int(n: number): this {
    const bytes = Buffer.alloc(1 + this.intSize);
    bytes[0] = n < 0 ? 1 : 0;
    let v = Math.abs(n);
    for (let i = 1; i <= this.intSize; i++) {
      bytes[i] = v & 0xff;
      v = Math.floor(v / 256);
    }
    this.parts.push(bytes);
    return this;
  }

  str(s: string | null | Buffer): this {
    if (s === null) return this.int(-1);
    const bytes = Buffer.isBuffer(s) ? s : Buffer.from(s);
    this.int(bytes.length);
    this.parts.push(bytes);
    return this;
  }

  entry(
    id: number,
    e: { tag: string | Buffer; desc: string; defn: string | Buffer; namespace?: string | null },
  ): this {
    this.int(id)
      .int(0)
      .str('1259')
      .str(String(1000 + id))
      .str(e.tag)
      .str(e.desc)
      .int(2);
    this.str(e.defn)
      .str('')
      .str('')
      .str(e.namespace ?? null)
      .str('')
      .str(null);
    if (this.minor >= 16) this.int(83);
    this.str('postgres').str('false').str('1').str('2').str(null);
    this.parts.push(Buffer.from([3, 0, 0, 0, 0, 0, 0, 0, 0]));
    return this;
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** An archive with the entries of SCRIPT: encoding, a long function, two sequences; then data. */
function archive(minor: number, intSize = 4, extra?: (w: ArchiveWriter) => void): Buffer {
  const w = new ArchiveWriter(minor, intSize);
  const entries = [
    { tag: 'ENCODING', desc: 'ENCODING', defn: "SET client_encoding = 'UTF8';\n", namespace: null },
    {
      tag: 'f()',
      desc: 'FUNCTION',
      defn: `CREATE FUNCTION f() ${'x'.repeat(100_000)};`,
      namespace: 'public',
    },
    {
      tag: 'a',
      desc: 'SEQUENCE SET',
      defn: "SELECT pg_catalog.setval('public.a', 3, true);\n",
      namespace: 'public',
    },
    {
      tag: 'Mixed',
      desc: 'SEQUENCE SET',
      defn: 'SELECT pg_catalog.setval(\'public."Mixed"\', 1, false);\n',
      namespace: 'public',
    },
  ];
  w.int(entries.length + (extra ? 1 : 0));
  for (const [i, e] of entries.entries()) w.entry(i + 1, e);
  extra?.(w);
  return Buffer.concat([w.bytes(), Buffer.from('data blocks follow, never read')]);
}

describe('a custom archive’s sequence values', () => {
  it('are the SEQUENCE SET entries of its TOC, for archive versions 1.14 to 1.16, whatever the chunks', () => {
    for (const minor of [14, 15, 16]) {
      const bytes = archive(minor);
      for (const size of [1, 3, 5, 1000, bytes.length]) {
        expect(readAll(new ArchiveSequenceReader(), bytes, size), `1.${minor} by ${size}`).toEqual(EXPECTED);
      }
    }
    expect(readAll(new ArchiveSequenceReader(), archive(16, 8), 7)).toEqual(EXPECTED);
  });

  it('are none for an archive version it does not know', () => {
    expect(readAll(new ArchiveSequenceReader(), archive(13), 100)).toBeUndefined();
    const future = archive(16);
    future[6] = 17;
    expect(readAll(new ArchiveSequenceReader(), future, 100)).toBeUndefined();
  });

  it('follow the archive’s encoding: a non-ASCII name is read from UTF8 only', () => {
    const withName = (encoding: string, name: string) => {
      const w = new ArchiveWriter(16).int(2);
      w.entry(1, { tag: 'ENCODING', desc: 'ENCODING', defn: `SET client_encoding = '${encoding}';\n` });
      const bytes = (text: string) => Buffer.from(text, encoding === 'UTF8' ? 'utf8' : 'latin1');
      w.entry(2, {
        tag: bytes(name),
        desc: 'SEQUENCE SET',
        defn: bytes(`SELECT pg_catalog.setval('public."${name}"', 5, true);`),
        namespace: 'public',
      });
      return readAll(new ArchiveSequenceReader(), w.bytes(), 10);
    };
    expect(withName('UTF8', 'séq')).toEqual([{ name: 'public.séq', value: '5' }]);
    expect(withName('LATIN1', 'Seq')).toEqual([{ name: 'public.Seq', value: '5' }]);
    expect(withName('LATIN1', 'séq')).toBeUndefined();
  });

  it('are none for a TOC that does not read as pg_dump writes it', () => {
    const noMagic = archive(15);
    noMagic[0] = 0x58;
    const cut = archive(15).subarray(0, 300);
    const badSign = archive(15);
    badSign[12] = 7; // after the compression byte, the first integer's sign byte
    const mismatch = archive(15, 4, (w) =>
      w.entry(9, {
        tag: 'b',
        desc: 'SEQUENCE SET',
        defn: "SELECT pg_catalog.setval('public.c', 1, true);",
        namespace: 'public',
      }),
    );
    const twice = archive(15, 4, (w) =>
      w.entry(9, {
        tag: 'a',
        desc: 'SEQUENCE SET',
        defn: "SELECT pg_catalog.setval('public.a', 4, true);",
        namespace: 'public',
      }),
    );
    const unreadable = archive(15, 4, (w) =>
      w.entry(9, { tag: 'b', desc: 'SEQUENCE SET', defn: 'SELECT 1;', namespace: 'public' }),
    );
    const badEncoding = archive(15);
    badEncoding.write("'U-F8'", badEncoding.indexOf("'UTF8'"), 'latin1');
    for (const [what, bytes] of Object.entries({
      noMagic,
      cut,
      badSign,
      mismatch,
      twice,
      unreadable,
      badEncoding,
    })) {
      expect(readAll(new ArchiveSequenceReader(), bytes, 64), what).toBeUndefined();
    }
  });
});
