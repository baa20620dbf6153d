/**
 * A plain-SQL dump without ownership and grants, for a restore onto a server that has none of the
 * backup's roles (a restore drill's throwaway server): what `pg_restore --no-owner --no-acl` leaves out
 * of an archive, taken out of a script. pg_dump writes each such statement on one line of its own,
 * outside COPY data: `ALTER <kind> <name> OWNER TO <role>;`, `GRANT …;`, `REVOKE …;` and
 * `ALTER DEFAULT PRIVILEGES …;`. COPY data is passed on untouched (its lines are rows, whatever they
 * say). Lines are dropped whole, so the screening of the script (script.ts) holds for what remains.
 *
 * Memory stays bounded whatever the dump holds: only lines that may be such a statement or a COPY
 * header (starting with A, C, G or R outside COPY data) are held, up to MAX_HELD bytes; every other byte
 * passes at once. A line of a function body or a multi-line literal that looks like one of these
 * statements is taken for one: at worst a drill then reports a difference or a failed restore of a good
 * backup, never the reverse.
 */

const NEWLINE = 0x0a;
const OWNERSHIP_LINE = /^(?:ALTER [A-Z ]+ .* OWNER TO .*|GRANT .*|REVOKE .*|ALTER DEFAULT PRIVILEGES .*);$/;
const COPY_START = /^COPY .* FROM stdin;$/;
/** First bytes of the lines worth holding: A(LTER), C(OPY), G(RANT), R(EVOKE). */
const CANDIDATE_FIRST = new Set([0x41, 0x43, 0x47, 0x52]);
/** A candidate line longer than this is none of these statements: it passes as it is. */
const MAX_HELD = 1024 * 1024;
/** COPY data ends at a line that is exactly this. */
const COPY_END = Buffer.from('\\.');

/** Drops ownership and privilege statements from a plain-SQL dump, chunk by chunk (any split). */
export async function* withoutOwnership(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const filter = new OwnershipFilter();
  for await (const chunk of source) {
    const out = filter.push(chunk);
    if (out.length > 0) yield out;
  }
  const rest = filter.end();
  if (rest.length > 0) yield rest;
}

/** How the current line is handled. */
type Mode = 'start' | 'pass' | 'held' | 'copy';

/** The line filter behind `withoutOwnership`. */
export class OwnershipFilter {
  #mode: Mode = 'start';
  #inCopy = false;
  /** The held candidate line, in pieces. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** In COPY data: the current line's first bytes (up to 3), to spot the `\.` that ends it. */
  #copyHead = Buffer.alloc(0);

  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#mode === 'start') this.#mode = this.#startLine(chunk[pos]!);
      const nl = chunk.indexOf(NEWLINE, pos);
      const end = nl === -1 ? chunk.length : nl + 1;
      const piece = chunk.subarray(pos, end);
      if (this.#mode === 'held') this.#hold(piece, nl !== -1, out);
      else {
        if (this.#mode === 'copy') this.#watchCopyEnd(piece, nl !== -1);
        out.push(piece);
        if (nl !== -1) this.#mode = 'start';
      }
      pos = end;
    }
    return Buffer.concat(out);
  }

  /** A last line without a newline passes as it is (pg_dump ends every line with one). */
  end(): Buffer {
    const rest = Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    this.#mode = 'start';
    return rest;
  }

  #startLine(first: number): Mode {
    if (this.#inCopy) {
      this.#copyHead = Buffer.alloc(0);
      return 'copy';
    }
    return CANDIDATE_FIRST.has(first) ? 'held' : 'pass';
  }

  /** Holds a piece of a candidate line; at its newline, decides; past MAX_HELD, gives up holding. */
  #hold(piece: Buffer, complete: boolean, out: Buffer[]): void {
    this.#held.push(piece);
    this.#heldBytes += piece.length;
    if (!complete) {
      if (this.#heldBytes > MAX_HELD) {
        out.push(...this.#held);
        this.#held = [];
        this.#heldBytes = 0;
        this.#mode = 'pass';
      }
      return;
    }
    const line = Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    this.#mode = 'start';
    const text = line.toString('utf8', 0, line.length - 1);
    if (COPY_START.test(text)) this.#inCopy = true;
    else if (OWNERSHIP_LINE.test(text)) return;
    out.push(line);
  }

  /** Tracks a COPY data line's first bytes; a line that is exactly `\.` ends the data. */
  #watchCopyEnd(piece: Buffer, complete: boolean): void {
    if (this.#copyHead.length <= COPY_END.length) {
      const room = COPY_END.length + 1 - this.#copyHead.length;
      this.#copyHead = Buffer.concat([this.#copyHead, piece.subarray(0, room)]);
    }
    if (!complete) return;
    const head = this.#copyHead;
    if (head.length === COPY_END.length + 1 && head.subarray(0, 2).equals(COPY_END) && head[2] === NEWLINE) {
      this.#inCopy = false;
    }
  }
}
