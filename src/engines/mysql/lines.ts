/** A streaming line editor for SQL scripts that may hold lines of megabytes (INSERTs). */

const LINE_HEAD = 1024;

/**
 * What `eachLine` does with a line: insert text before it (a string), or replace it with `replace` (only
 * a line shorter than 1 KiB, whose whole text the callback saw; `replace` gets no newline added).
 */
export type LineEdit = string | { replace: string } | undefined;

/**
 * Passes `source` through, calling `onLine` with the start (up to 1 KiB, decoded, without its newline) of
 * every line, and applying the edit it returns. Lines are only looked at, never held whole: INSERT lines
 * are long.
 */
export async function* eachLine(
  source: AsyncIterable<Buffer>,
  onLine: (head: string) => LineEdit,
): AsyncGenerator<Buffer> {
  let pending: Buffer | undefined; // the start of a line too short yet to look at
  let midLine = false; // the next byte continues a line already looked at
  for await (const chunk of source) {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let start = 0; // first byte not passed on yet
    let p = 0;
    if (midLine) {
      const nl = buf.indexOf(10);
      if (nl === -1) {
        yield buf;
        continue;
      }
      p = nl + 1;
      midLine = false;
    }
    while (p < buf.length) {
      const nl = buf.indexOf(10, p);
      const end = nl === -1 ? buf.length : nl;
      if (nl === -1 && end - p < LINE_HEAD) {
        pending = buf.subarray(p);
        break;
      }
      const edit = onLine(buf.toString('utf8', p, Math.min(end, p + LINE_HEAD)));
      if (edit !== undefined) {
        if (p > start) yield buf.subarray(start, p);
        if (typeof edit === 'string') {
          yield Buffer.from(edit);
          start = p;
        } else if (nl !== -1 && end - p < LINE_HEAD) {
          yield Buffer.from(`${edit.replace}\n`);
          start = nl + 1;
        } else {
          start = p; // too long to have been seen whole: kept as it is
        }
      }
      if (nl === -1) {
        midLine = true;
        p = buf.length;
        break;
      }
      p = nl + 1;
    }
    const until = pending ? buf.length - pending.length : buf.length;
    if (until > start) yield buf.subarray(start, until);
  }
  if (pending && pending.length > 0) {
    const edit = onLine(pending.toString('utf8'));
    if (typeof edit === 'object') {
      yield Buffer.from(edit.replace);
      return;
    }
    if (edit !== undefined) yield Buffer.from(edit);
    yield pending;
  }
}

/** Yields `head`, then the rest of `it`. */
export async function* replay(head: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}
