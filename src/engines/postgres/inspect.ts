/**
 * Reading a PostgreSQL dump without a database: a custom-format archive through pg_restore, a plain SQL
 * script in-process. Both consume their source to the end and fail with a BackupError on a broken dump.
 */
import { StringDecoder } from 'node:string_decoder';
import { BackupError } from '../../util/errors.ts';
import { describeExit, feedStdin, killIfRunning, spawnTool, type Tool } from '../../util/process.ts';
import { toolEnv } from '../../util/tool-env.ts';
import type { DumpEntry, DumpInspection } from '../engine.ts';
import { parseRestoreList } from './list.ts';

/** Plain dumps end with this comment; anything after it may only be blank, comments or \unrestrict. */
const PLAIN_COMPLETE = '-- PostgreSQL database dump complete';

/**
 * Reads a custom-format archive to its end through two pg_restore runs fed the same bytes; throws
 * BackupError with pg_restore's message (through `hide`, which redacts secrets) when either fails.
 */
export async function inspectCustom(
  tool: Tool,
  source: AsyncIterable<Buffer>,
  signal: AbortSignal | undefined,
  hide: (text: string) => string,
): Promise<DumpInspection> {
  // --list reads only the table of contents; --file=/dev/null walks every data block, so a truncated or
  // damaged archive fails even where its TOC is intact. Both read the same bytes in one pass.
  const env = toolEnv(process.env); // reads the archive only: no connection, no secret
  const list = spawnTool(tool, ['--list'], { env, stdin: 'pipe' });
  const full = spawnTool(tool, ['--file=/dev/null'], { env, stdin: 'pipe', stdout: 'ignore' });
  const out: Buffer[] = [];
  list.child.stdout?.on('data', (c: Buffer) => out.push(c));
  try {
    await feedStdin([list.child, full.child], source, signal);
    for (const [p, what] of [
      [list, 'pg_restore --list'],
      [full, 'pg_restore'],
    ] as const) {
      const exit = await p.exited;
      if (exit.code !== 0) {
        throw new BackupError(`${what} ${describeExit(exit)}: ${hide(p.stderr.text()) || 'no message'}`);
      }
    }
  } finally {
    killIfRunning(list.child);
    killIfRunning(full.child);
  }
  return { entries: parseRestoreList(Buffer.concat(out).toString('utf8')) };
}

/**
 * Reads a plain-SQL dump to its end, collecting the `-- Name: x; Type: T; Schema: s` headers pg_dump
 * writes before each object, and requires pg_dump's completion marker at the end.
 */
export async function inspectPlain(source: AsyncIterable<Buffer>): Promise<DumpInspection> {
  const entries: DumpEntry[] = [];
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let tail = '';
  const header = /^-- (?:Data for )?Name: (.*); Type: (.*); Schema: (.*); Owner: .*$/;
  for await (const chunk of source) {
    const decoded = decoder.write(chunk);
    const text = carry + decoded;
    const lastNl = text.lastIndexOf('\n');
    const complete = lastNl === -1 ? '' : text.slice(0, lastNl);
    carry = lastNl === -1 ? text : text.slice(lastNl + 1);
    // Only comment lines can be headers; jumping between "\n-- " hits avoids splitting COPY data.
    let i = complete.startsWith('-- ') ? 0 : complete.indexOf('\n-- ');
    while (i !== -1) {
      const start = complete[i] === '\n' ? i + 1 : i;
      const end = complete.indexOf('\n', start);
      const line = complete.slice(start, end === -1 ? undefined : end);
      const m = header.exec(line);
      if (m) entries.push({ type: m[2]!, schema: m[3] === '-' ? '' : m[3]!, name: m[1]! });
      i = end === -1 ? -1 : complete.indexOf('\n-- ', end);
    }
    tail = (tail + decoded).slice(-4096);
  }
  const at = tail.lastIndexOf(PLAIN_COMPLETE);
  const after = at === -1 ? '' : tail.slice(at + PLAIN_COMPLETE.length);
  const onlyTrailer = after
    .split('\n')
    .every((l) => l.trim() === '' || l.startsWith('--') || l.startsWith('\\unrestrict'));
  if (at === -1 || !onlyTrailer) {
    throw new BackupError(
      `the plain SQL dump does not end with pg_dump's completion marker ("${PLAIN_COMPLETE}"): it is truncated`,
    );
  }
  return { entries };
}
