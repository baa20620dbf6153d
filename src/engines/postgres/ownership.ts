/**
 * A plain-SQL dump without ownership and grants, for a restore onto a server that has none of the
 * backup's roles (a restore drill's throwaway server): what `pg_restore --no-owner --no-acl` leaves out
 * of an archive, taken out of a script. pg_dump writes each such statement on one line of its own,
 * outside COPY data: `ALTER <kind> <name> OWNER TO <role>;`, `GRANT …;`, `REVOKE …;` and
 * `ALTER DEFAULT PRIVILEGES …;`. COPY data is passed on untouched (its lines are rows, whatever they
 * say). Lines are dropped whole, so the screening of the script (script.ts) holds for what remains.
 */

const NEWLINE = 0x0a;
const OWNERSHIP_LINE = /^(?:ALTER [A-Z ]+ .* OWNER TO .*|GRANT .*|REVOKE .*|ALTER DEFAULT PRIVILEGES .*);$/;
const COPY_START = /^COPY .* FROM stdin;$/;
const COPY_END = '\\.';

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

/** The line filter behind `withoutOwnership`; holds back at most the current line. */
export class OwnershipFilter {
  #partial: Buffer = Buffer.alloc(0);
  #inCopy = false;

  push(chunk: Buffer): Buffer {
    const data = this.#partial.length > 0 ? Buffer.concat([this.#partial, chunk]) : chunk;
    const kept: Buffer[] = [];
    let start = 0;
    let keptFrom = 0;
    for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      if (this.#drops(data, start, nl)) {
        kept.push(data.subarray(keptFrom, start));
        keptFrom = nl + 1;
      }
      start = nl + 1;
    }
    kept.push(data.subarray(keptFrom, start));
    this.#partial = Buffer.from(data.subarray(start));
    return Buffer.concat(kept);
  }

  /** The last line, which has no newline: passed on as it is (pg_dump ends every line with one). */
  end(): Buffer {
    const rest = this.#partial;
    this.#partial = Buffer.alloc(0);
    return rest;
  }

  /** Whether the line `data[start, nl)` is dropped; tracks COPY data on the way. */
  #drops(data: Buffer, start: number, nl: number): boolean {
    // Only short lines can be statements worth a look: rows of COPY data are read as little as possible.
    const first = data[start];
    if (this.#inCopy) {
      if (nl - start === 2 && first === 0x5c && data[start + 1] === 0x2e) this.#inCopy = false;
      return false;
    }
    // C: COPY; A: ALTER; G: GRANT; R: REVOKE. Anything else passes without being decoded.
    if (first !== 0x43 && first !== 0x41 && first !== 0x47 && first !== 0x52) return false;
    const line = data.toString('utf8', start, nl);
    if (COPY_START.test(line)) {
      this.#inCopy = true;
      return false;
    }
    return line !== COPY_END && OWNERSHIP_LINE.test(line);
  }
}
