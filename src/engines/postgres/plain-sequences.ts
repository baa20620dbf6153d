/**
 * Sequence values read from a plain-SQL pg_dump as it streams past. pg_dump writes each object under a
 * header comment (`-- Name: s; Type: SEQUENCE SET; Schema: public; Owner: o`), and a sequence's value as
 * the one line of its `SEQUENCE SET` entry, `SELECT pg_catalog.setval('public.s', N, true);`.
 *
 * Only a setval line right under a `SEQUENCE SET` header counts, and COPY data (under a `TABLE DATA`
 * header, from `COPY ... FROM stdin;` to the line `\.`) is never read as lines: a row, a function body or
 * a comment may hold text that looks like either. What such text could still forge is a header and a
 * setval line together, outside COPY data: it then names a sequence a second time (pg_dump writes every
 * sequence's value once, after all table data), and a name seen twice makes the values unusable
 * (setval.ts), never a wrong one recorded.
 *
 * Memory is bounded: of a line outside COPY data only its first 4 KiB are held; COPY data is skipped
 * with a native byte search for its end, so the rows cost no per-line work.
 */
import {
  clientEncoding,
  type NameDecoder,
  nameDecoder,
  parseSetval,
  SETVAL_MAX,
  SETVAL_PREFIX,
  type SequenceValue,
  SequenceValues,
} from './setval.ts';

const NEWLINE = 0x0a;
/** How much of a line outside COPY data is looked at: headers and setval lines are far shorter. */
const HEAD = 4096;
/** A COPY block ends with a line that is exactly `\.` (data escapes a backslash as `\\`). */
const COPY_END = Buffer.from('\n\\.\n');
const COPY_LINE = /^COPY .* FROM stdin;$/s;
/** The entry type of a header; a name holding `; Type: ` makes two matches, and the header unknown. */
const HEADER_TYPE = /; Type: ([A-Z][A-Z ]*); Schema: /g;
const HEADER_START = [Buffer.from('-- Name: '), Buffer.from('-- Data for Name: ')];

export class PlainSequenceReader {
  readonly #values = new SequenceValues();
  /** Names are decoded as the dump's `SET client_encoding` says; UTF8 until it says otherwise. */
  #decode: NameDecoder = nameDecoder('UTF8');
  /** Before the first header: where pg_dump sets the client encoding, and nowhere else. */
  #prologue = true;
  /** The type of the entry whose header came last (`SEQUENCE SET`, `TABLE DATA`...), if known. */
  #entry: string | undefined;
  #inCopy = false;
  /** In COPY data: its last bytes (at most 3), with a newline standing for the line start it began at. */
  #copyTail: Buffer = Buffer.alloc(0);
  /** Outside COPY data: the head of a line not yet ended. */
  #line: Buffer[] = [];
  #lineLength = 0;
  /** The line not yet ended is longer than its held head. */
  #truncated = false;

  /** Reads the next bytes of the dump. Never throws: a dump it cannot read yields no values. */
  push(chunk: Buffer): void {
    if (this.#values.failed) return;
    try {
      let p = 0;
      while (p < chunk.length) p = this.#inCopy ? this.#skipCopy(chunk, p) : this.#readLine(chunk, p);
    } catch {
      this.#values.fail();
    }
  }

  /** After the last chunk: the values the dump holds, or undefined when it could not be read for them. */
  values(): SequenceValue[] | undefined {
    // A dump pg_dump finished never ends inside COPY data.
    if (this.#inCopy) this.#values.fail();
    if (this.#lineLength > 0) this.#onLine(Buffer.concat(this.#line), !this.#truncated);
    return this.#values.result();
  }

  /** Looks for the end of COPY data from `p`; returns where reading goes on. */
  #skipCopy(chunk: Buffer, p: number): number {
    // The end marker may straddle chunks: look at the held tail with the chunk's first bytes first.
    const seam = Buffer.concat([this.#copyTail, chunk.subarray(p, p + COPY_END.length - 1)]);
    let end = seam.indexOf(COPY_END);
    if (end !== -1) {
      end = p + end + COPY_END.length - this.#copyTail.length;
    } else {
      const found = chunk.indexOf(COPY_END, p);
      end = found === -1 ? -1 : found + COPY_END.length;
    }
    if (end === -1) {
      const held = Buffer.concat([this.#copyTail, chunk.subarray(Math.max(p, chunk.length - 3))]);
      this.#copyTail = Buffer.from(held.subarray(Math.max(0, held.length - 3)));
      return chunk.length;
    }
    this.#inCopy = false;
    this.#copyTail = Buffer.alloc(0);
    return end;
  }

  /** Reads the line that goes on at `p`; returns where reading goes on. */
  #readLine(chunk: Buffer, p: number): number {
    const nl = chunk.indexOf(NEWLINE, p);
    const end = nl === -1 ? chunk.length : nl;
    const room = HEAD - this.#lineLength;
    if (end - p > room) this.#truncated = true;
    if (room > 0) {
      const part = chunk.subarray(p, Math.min(end, p + room));
      this.#line.push(Buffer.from(part));
      this.#lineLength += part.length;
    }
    if (nl === -1) return chunk.length;
    const head = this.#line.length === 1 ? this.#line[0]! : Buffer.concat(this.#line);
    const whole = !this.#truncated;
    this.#line = [];
    this.#lineLength = 0;
    this.#truncated = false;
    this.#onLine(head, whole);
    return nl + 1;
  }

  /** One line outside COPY data (`whole` false: only its head). */
  #onLine(line: Buffer, whole: boolean): void {
    if (HEADER_START.some((h) => startsWith(line, h))) {
      this.#prologue = false;
      const types = whole ? [...line.toString('latin1').matchAll(HEADER_TYPE)] : [];
      this.#entry = types.length === 1 ? types[0]![1] : undefined;
      return;
    }
    if (this.#entry === 'SEQUENCE SET' && startsWith(line, SETVAL_PREFIX)) {
      this.#entry = undefined; // one value per entry
      this.#values.add(whole && line.length <= SETVAL_MAX ? parseSetval(line, this.#decode) : undefined);
      return;
    }
    if (this.#entry === 'TABLE DATA' && whole && startsWith(line, COPY_START)) {
      if (COPY_LINE.test(line.toString('latin1'))) {
        this.#inCopy = true;
        this.#copyTail = Buffer.from('\n'); // the data starts at a line start
      }
      return;
    }
    if (this.#prologue && startsWith(line, ENCODING_START)) {
      const encoding = clientEncoding(line.toString('latin1'));
      if (encoding) this.#decode = nameDecoder(encoding);
      else this.#values.fail(); // names in an encoding not known cannot be read
    }
  }
}

const COPY_START = Buffer.from('COPY ');
const ENCODING_START = Buffer.from('SET client_encoding = ');

function startsWith(line: Buffer, prefix: Buffer): boolean {
  return line.length >= prefix.length && line.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}
