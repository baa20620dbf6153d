/**
 * RDB streams: the backup stream (`redis-cli --rdb -` takes the server's snapshot over the replication
 * protocol, and its stdout is the RDB, checked against the length redis-cli reports), and RDB streams
 * read through the RdbChecker, whole or as they pass.
 */
import type { BackupError } from '../../util/errors.ts';
import { describeExit, spawnTool, type Tool } from '../../util/process.ts';
import type { ToolEnv } from '../../util/tool-env.ts';
import { killOnAbort } from '../tool-run.ts';
import { RdbChecker } from './rdb.ts';
import { RdbError, type RdbSummary } from './rdb-format.ts';

/** redis-cli writes the 40-byte EOF mark of a diskless transfer to stdout after the RDB (7.0 and older). */
const EOF_MARK = 40;

/**
 * `redis-cli <args> --rdb -` as a stream that fails, before it ends, with `failure(message, stderr)` if
 * redis-cli fails or its output is not the length it reports; with the signal's reason on abort.
 * Destroying the stream kills redis-cli.
 */
export async function* streamRdb(
  tool: Tool,
  args: string[],
  env: ToolEnv,
  signal: AbortSignal | undefined,
  failure: (message: string, stderr: string) => BackupError,
): AsyncGenerator<Buffer> {
  signal?.throwIfAborted();
  const p = spawnTool(tool, [...args, '--rdb', '-'], { env });
  const release = killOnAbort(p, signal);
  const fail = (message: string) => failure(message, p.stderr.text());
  // The last EOF_MARK bytes are held back until redis-cli says how long the RDB was: a diskless
  // transfer ends with the server's 40-byte EOF mark, which redis-cli writes to stdout too.
  let held: Buffer = Buffer.alloc(0);
  let sent = 0;
  try {
    for await (const chunk of p.child.stdout! as AsyncIterable<Buffer>) {
      let out: Buffer | undefined;
      if (chunk.length >= EOF_MARK) {
        if (held.length) yield held;
        sent += held.length;
        out = chunk.subarray(0, chunk.length - EOF_MARK);
        held = chunk.subarray(chunk.length - EOF_MARK);
      } else {
        const all = Buffer.concat([held, chunk]);
        out = all.subarray(0, Math.max(0, all.length - EOF_MARK));
        held = all.subarray(out.length);
      }
      if (out.length) {
        sent += out.length;
        yield out;
      }
    }
    const exit = await p.exited;
    signal?.throwIfAborted();
    if (exit.code !== 0) throw fail(`redis-cli --rdb ${describeExit(exit)}`);
    const length = rdbLength(p.stderr.text());
    if (length === undefined) throw fail('redis-cli --rdb did not say how long the RDB was');
    const rest = length - sent;
    const trailer = held.subarray(Math.max(0, rest));
    if (
      rest < 0 ||
      rest > held.length ||
      !(trailer.length === 0 || /^[0-9a-f]{40}$/.test(trailer.toString('latin1')))
    ) {
      throw fail(`redis-cli --rdb wrote ${sent + held.length} bytes for an RDB of ${length} bytes`);
    }
    if (rest > 0) yield held.subarray(0, rest);
  } finally {
    await release();
  }
}

/** The RDB length redis-cli reports on stderr, in either transfer mode. */
export function rdbLength(stderr: string): number | undefined {
  const m =
    /Transfer finished with success after (\d+) bytes/.exec(stderr) ?? /writing (\d+) bytes to/.exec(stderr);
  return m ? Number(m[1]) : undefined;
}

/** Reads an RDB stream to its end and checks it (see RdbChecker). Throws RdbError. */
export async function checkRdb(source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<RdbSummary> {
  const checker = new RdbChecker();
  for await (const chunk of source) {
    signal?.throwIfAborted();
    checker.push(chunk);
  }
  return checker.finish();
}

/**
 * `rdb` passed on unchanged while an RdbChecker reads it, holding no more of it than the record being
 * read. Once `rdb` has ended, the RDB is checked: `onChecked` gets its summary, or, when the RDB is
 * damaged, the stream fails (before it ends) with `damaged(error)`. An error of `rdb` passes as it is,
 * and `onChecked` is not called. Ending the stream early ends `rdb`.
 */
export async function* checkAsItPasses(
  rdb: AsyncIterable<Buffer>,
  onChecked: (summary: RdbSummary) => void,
  damaged: (error: RdbError) => Error,
): AsyncGenerator<Buffer> {
  const checker = new RdbChecker();
  for await (const chunk of rdb) {
    checker.push(chunk);
    yield chunk;
  }
  let summary: RdbSummary;
  try {
    summary = checker.finish();
  } catch (err) {
    throw err instanceof RdbError ? damaged(err) : err;
  }
  onChecked(summary);
}
