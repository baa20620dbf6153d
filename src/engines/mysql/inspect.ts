/** Reading a mysqldump/mariadb-dump script without a server: its table of contents and its completeness. */
import { BackupError } from '../../util/errors.ts';
import type { DumpEntry, DumpInspection } from '../engine.ts';
import { eachLine } from './lines.ts';

/** Every mysqldump/mariadb-dump script ends with this comment (`-- Dump completed on <date>`). */
const DUMP_COMPLETE = '-- Dump completed';
const DUMP_COMPLETE_LINE = /^-- Dump completed(?: on \d{4}-\d{2}-\d{2} [ \d]\d:\d{2}:\d{2})?\s*$/;

const BACKTICK_NAME = /^`((?:[^`]|``)+)`/;
const BARE_NAME = /^([^\s`(.;]+)/;

/** Reads `name`, `` `quoted name` `` or `schema.name` at the start of `text`. */
export function readName(text: string): { schema?: string; name: string } | undefined {
  const one = (s: string): [string, number] | undefined => {
    const q = BACKTICK_NAME.exec(s);
    if (q) return [q[1]!.replaceAll('``', '`'), q[0].length];
    const b = BARE_NAME.exec(s);
    return b ? [b[1]!, b[0].length] : undefined;
  };
  const first = one(text);
  if (!first) return undefined;
  if (text[first[1]] === '.') {
    const second = one(text.slice(first[1] + 1));
    if (second) return { schema: first[0], name: second[0] };
  }
  return { name: first[0] };
}

const QUOTED = "(?:`(?:[^`]|``)*`|'(?:[^'\\\\]|\\\\.)*'|[^\\s@`']+)";
const DEFINER = `DEFINER=${QUOTED}(?:@${QUOTED})?\\s+`;
const COMMENT_NAME =
  /^-- (Table structure for table|Dumping data for table|Final view structure for view) (.*)$/;
const CURRENT_DATABASE = /^-- Current Database: (.*)$/;
const HOST_DATABASE = /^-- Host: .*\bDatabase: (.*)$/;
/** A trigger or event (or an older tool's routine), its keywords in versioned comments: `CREATE`, then `TRIGGER name`. */
export const VERSIONED_CREATE = /^\/\*!\d+ CREATE\*\/.*?\/\*!\d+ (TRIGGER|EVENT|PROCEDURE|FUNCTION)\s+(.*)$/;
/** A routine: `CREATE DEFINER=... PROCEDURE name ...` (or FUNCTION, PACKAGE). */
export const ROUTINE = new RegExp(
  `^CREATE\\s+(?:${DEFINER})?(?:AGGREGATE\\s+)?(PROCEDURE|FUNCTION|PACKAGE\\s+BODY|PACKAGE)\\s+(.*)$`,
);
const COMMENT_TYPES: Record<string, string> = {
  'Table structure for table': 'TABLE',
  'Dumping data for table': 'TABLE DATA',
  'Final view structure for view': 'VIEW',
};

/**
 * Reads a mysqldump/mariadb-dump script to its end and lists what it creates: databases, tables, table
 * data, views, triggers, routines and events. Fails when it does not start like a dump (wrong format) or
 * does not end with the tool's `-- Dump completed` line (truncated).
 */
export async function inspectMysqlDump(source: AsyncIterable<Buffer>): Promise<DumpInspection> {
  const entries: DumpEntry[] = [];
  const databases = new Set<string>();
  let lines = 0;
  let header = false;
  let hostDatabase = '';
  let current: string | undefined;
  let tail = Buffer.alloc(0);
  const onLine = (head: string): undefined => {
    lines++;
    if (lines <= 5 && /^-- (?:MySQL|MariaDB) dump /.test(head)) header = true;
    if (lines <= 10) {
      const h = HOST_DATABASE.exec(head);
      if (h) hostDatabase = h[1]!.trim();
    }
    if (!head.startsWith('-- ') && !head.startsWith('/*!') && !head.startsWith('CREATE')) return;
    const schema = current ?? hostDatabase;
    let m = CURRENT_DATABASE.exec(head);
    if (m) {
      current = readName(m[1]!)?.name ?? m[1]!;
      if (!databases.has(current)) {
        databases.add(current);
        entries.push({ type: 'DATABASE', schema: '', name: current });
      }
      return;
    }
    m = COMMENT_NAME.exec(head);
    if (m) {
      const name = readName(m[2]!);
      if (name) entries.push({ type: COMMENT_TYPES[m[1]!]!, schema, name: name.name });
      return;
    }
    m = VERSIONED_CREATE.exec(head) ?? ROUTINE.exec(head);
    if (m) {
      const name = readName(m[2]!);
      if (name) {
        entries.push({ type: m[1]!.replace(/\s+/g, ' '), schema: name.schema ?? schema, name: name.name });
      }
    }
  };
  async function* keepTail(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      tail = Buffer.concat([tail, chunk.subarray(-4096)]).subarray(-4096);
      yield chunk;
    }
  }
  for await (const _ of eachLine(keepTail(), onLine)) {
    // only looked at
  }
  if (!header) {
    throw new BackupError(
      'the SQL file does not start like a mysqldump/mariadb-dump script ("-- MySQL dump" or "-- MariaDB dump"): it is not a MySQL backup',
    );
  }
  // The whole line, ended: `-- Dump completed`, or `-- Dump completed on 2026-01-31 23:59:59` (hour %2d).
  const last = /(?:^|\n)([^\n]*)\n\s*$/.exec(tail.toString('utf8'))?.[1];
  if (!last || !DUMP_COMPLETE_LINE.test(last)) {
    throw new BackupError(
      `the SQL dump does not end with the dump tool's "${DUMP_COMPLETE}" line: it is truncated`,
    );
  }
  return { entries };
}
