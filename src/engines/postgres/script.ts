/**
 * The script datasaver feeds psql when it restores a plain-SQL PostgreSQL backup.
 *
 * Storage is untrusted: whoever can write it can put psql meta-commands into a dump (`\! cmd` runs a shell
 * command on the restore host, `\o |cmd`, `\copy ... program`, `\i file` and friends). psql itself keeps
 * them out: the script starts with datasaver's own `\restrict KEY`, a fresh random key that never leaves
 * this process, after which psql refuses every meta-command but `\unrestrict KEY` and, with
 * ON_ERROR_STOP, stops at the first one it refuses. pg_dump's own `\restrict`/`\unrestrict` pair is taken
 * out, since psql refuses a second `\restrict` and the dump's `\unrestrict` does not carry datasaver's key.
 *
 * psql leaves one opening in restricted mode: releases before 14.24, 15.19, 16.15, 17.11 and 18.6 expand
 * backquotes (run a shell command) in `\unrestrict`'s argument before they check the key. So the script
 * psql receives holds the bytes `\unrestrict` nowhere at all, and no NUL byte either (psql ends a line's
 * text at a NUL and joins what follows to the next line, which could assemble `\unrestrict` out of bytes
 * that did not spell it). These checks read bytes, not psql's lexer state (COPY data, quotes, dollar
 * quotes, a client encoding whose characters hide backslashes), so no dump can make them disagree with
 * psql: psql cannot run `\unrestrict` if those bytes never reach it. pg_dump writes neither in a genuine
 * dump except its own trailer line, which is dropped; a dump whose data holds the text `\unrestrict` is
 * refused (custom format, the default, restores through pg_restore and has no such limit).
 *
 * Lines are only ever dropped, whole, where pg_dump writes them: the `\restrict KEY` line among the
 * header comments before the first statement (no COPY can have started there), and a line that is exactly
 * `\unrestrict` with that same key. Dropping cannot let anything through: psql stays restricted anyway.
 */
import { RestoreError } from '../../util/errors.ts';

const NEWLINE = 0x0a;
const NUL = 0x00;
const UNRESTRICT = Buffer.from('\\unrestrict');
/** pg_dump's header line: its key is letters and digits (64 of them from pg_dump itself). */
const RESTRICT_LINE = /^\\restrict ([A-Za-z0-9]{1,128})$/;
/** pg_dump's header comments are short: a prologue longer than this has ended (it is passed on as is). */
const PROLOGUE_MAX = 64 * 1024;

const FORGED_HINT =
  'the backup may have been written by someone other than datasaver: restore a backup you trust. A genuine plain dump only holds this if its data contains the text "\\unrestrict"; restore such a backup by hand with psql after reading it, and back that database up in custom format';

/** A dump refused before psql read the offending bytes; what else the restore did is the caller's to add. */
export class RefusedScriptError extends RestoreError {}

/** `\restrict KEY` for psql's first line: a random key, so nothing in a stored dump can carry it. */
export function restrictLine(key: string): Buffer {
  if (!/^[A-Za-z0-9]+$/.test(key)) throw new Error('a \\restrict key is letters and digits');
  return Buffer.from(`\\restrict ${key}\n`);
}

/**
 * Turns a plain-SQL dump into the script for psql: datasaver's `\restrict KEY` first, pg_dump's own
 * restrict lines out. Throws a RestoreError, before psql reads them, at a `\unrestrict` that is not the
 * dump's own trailer line or at a NUL byte.
 */
export async function* restrictedScript(source: AsyncIterable<Buffer>, key: string): AsyncGenerator<Buffer> {
  yield restrictLine(key);
  const filter = new PlainScriptFilter();
  for await (const chunk of source) yield* filter.push(chunk);
  yield* filter.end();
}

/**
 * The byte filter behind `restrictedScript`, pushed chunk by chunk (any split). Holds back at most one
 * short line's worth of bytes, however long the dump's lines are.
 */
export class PlainScriptFilter {
  /** Undefined once the header comments are over. */
  #head: Buffer | undefined = Buffer.alloc(0);
  /** `\unrestrict KEY` with the key of the dump's own `\restrict` line, once that line was seen. */
  #trailer: Buffer | undefined;
  /** Bytes not yet passed on: they may begin a `\unrestrict` line. */
  #tail: Buffer = Buffer.alloc(0);
  /** Whether the byte before `#tail` ended a line (the body starts at a line start). */
  #lineStart = true;

  push(chunk: Buffer): Buffer[] {
    return this.#guard(this.#prologue(chunk, false), false);
  }

  end(): Buffer[] {
    return this.#guard(this.#prologue(Buffer.alloc(0), true), true);
  }

  /** Passes header comments on and drops pg_dump's `\restrict` line among them; returns the bytes for the guard. */
  #prologue(chunk: Buffer, final: boolean): Buffer {
    if (this.#head === undefined) return chunk;
    let head = this.#head.length > 0 ? Buffer.concat([this.#head, chunk]) : chunk;
    const out: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const nl = head.indexOf(NEWLINE, pos);
      if (nl === -1) break;
      const line = head.toString('latin1', pos, nl);
      const key = this.#trailer ? undefined : RESTRICT_LINE.exec(line)?.[1];
      if (key !== undefined) {
        out.push(head.subarray(0, pos));
        this.#trailer = Buffer.from(`\\unrestrict ${key}`);
        head = head.subarray(nl + 1);
        pos = 0;
      } else if (line === '' || line.startsWith('--')) {
        pos = nl + 1;
      } else {
        this.#head = undefined; // the first statement: the body starts at this line
        out.push(head);
        return Buffer.concat(out);
      }
    }
    if (final || head.length > PROLOGUE_MAX) {
      this.#head = undefined;
      out.push(head);
    } else {
      out.push(head.subarray(0, pos));
      this.#head = Buffer.from(head.subarray(pos));
    }
    return Buffer.concat(out);
  }

  /** Refuses NUL and foreign `\unrestrict` bytes; drops the dump's own `\unrestrict KEY` line. */
  #guard(bytes: Buffer, final: boolean): Buffer[] {
    const data = this.#tail.length > 0 ? Buffer.concat([this.#tail, bytes]) : bytes;
    if (data.includes(NUL)) {
      throw new RefusedScriptError(
        'refusing to feed this plain SQL backup to psql: it holds a NUL byte, which pg_dump never writes',
        { hint: FORGED_HINT },
      );
    }
    const out: Buffer[] = [];
    // Without the whole stream, an occurrence may still be cut at the end of `data`.
    let hold = final ? data.length : Math.max(0, data.length - (UNRESTRICT.length - 1));
    let from = 0;
    for (let i = data.indexOf(UNRESTRICT); i !== -1 && i < hold; i = data.indexOf(UNRESTRICT, from)) {
      const atLineStart = i === 0 ? this.#lineStart : data[i - 1] === NEWLINE;
      const trailer = this.#trailer;
      if (!atLineStart || !trailer) throw foreignUnrestrict();
      const end = i + trailer.length;
      if (!final && end >= data.length) {
        hold = i; // wait for the rest of the line
        break;
      }
      const ownLine = data.subarray(i, end).equals(trailer) && (end === data.length || data[end] === NEWLINE);
      if (!ownLine) throw foreignUnrestrict();
      out.push(data.subarray(from, i));
      from = Math.min(end + 1, data.length);
    }
    const keep = Math.max(from, hold);
    if (keep > from) out.push(data.subarray(from, keep));
    if (keep > 0) this.#lineStart = data[keep - 1] === NEWLINE;
    this.#tail = Buffer.from(data.subarray(keep));
    return out.filter((b) => b.length > 0);
  }
}

function foreignUnrestrict(): RefusedScriptError {
  return new RefusedScriptError(
    "refusing to feed this plain SQL backup to psql: it holds a psql \\unrestrict command that is not the dump's own last line, so it could lift the restricted mode that keeps meta-commands such as \\! (shell commands) from running",
    { hint: FORGED_HINT },
  );
}

/** `source`, its screening's refusal (above) turned into the RestoreError restore reports. */
export async function* refusedAsRestoreError(
  source: AsyncIterable<Buffer>,
  database: string,
): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    if (!(err instanceof RefusedScriptError)) throw err;
    throw new RestoreError(err.message, {
      hint: `${err.hint}. Nothing was restored: ${database} was not touched`,
      cause: err,
    });
  }
}
