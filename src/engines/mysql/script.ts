/**
 * What a mysqldump/mariadb-dump script holds (one database without its name, or databases it creates and
 * selects itself), the line edits a restore makes to it, and what a failed restore of it leaves.
 */
import { StringDecoder } from 'node:string_decoder';
import type { RestoreOptions } from '../engine.ts';
import type { LineEdit } from './lines.ts';
import { SYSTEM_SCHEMAS } from './sql.ts';

/**
 * The line datasaver puts before a one-database dump: the database's default character set and collation,
 * applied to whichever database the script is restored into (the client's default database).
 */
export const DEFAULTS_LINE = 'ALTER DATABASE';

/** What a dump script holds: one database without its name, or databases it creates and selects itself. */
export type DumpKind = 'database' | 'databases';

const MULTI_DATABASE_LINE = /^(?:-- Current Database: |CREATE DATABASE |USE )/;
const SINGLE_DATABASE_LINE =
  /^(?:-- (?:Table structure|Temporary table structure|Temporary view structure|Dumping|Final view structure|Dump completed)|(?:DROP|CREATE|INSERT|LOCK|ALTER|DELIMITER)\b|\/\*!\d+ (?:CREATE|DROP)\b)/;

/** Which kind of script a line shows, if it shows one. */
export function dumpKindOfLine(line: string): DumpKind | undefined {
  if (MULTI_DATABASE_LINE.test(line)) return 'databases';
  if (SINGLE_DATABASE_LINE.test(line)) return 'database';
  return undefined;
}

/**
 * Reads the start of a dump until it shows whether it selects its own databases (`--databases`,
 * `--all-databases`: `CREATE DATABASE`/`USE` come before anything else) or not. Returns what it read.
 */
export async function peekDumpKind(it: AsyncIterator<Buffer>): Promise<{ head: Buffer[]; kind: DumpKind }> {
  const head: Buffer[] = [];
  const decoder = new StringDecoder('utf8');
  let size = 0;
  let text = '';
  let scanned = 0;
  for (;;) {
    const r = await it.next();
    const done = r.done === true || size > 1024 * 1024;
    if (!r.done) {
      head.push(r.value);
      size += r.value.length;
      text += decoder.write(r.value);
    }
    while (true) {
      const nl = text.indexOf('\n', scanned);
      if (nl === -1 && !done) break;
      const line = text.slice(scanned, nl === -1 ? undefined : nl);
      const kind = dumpKindOfLine(line);
      if (kind) return { head, kind };
      if (nl === -1) break;
      scanned = nl + 1;
    }
    if (done) return { head, kind: 'database' };
  }
}

const CREATE_DATABASE_LINE = /^CREATE DATABASE \/\*!32312 IF NOT EXISTS\*\/ (`(?:[^`]|``)+`)/;

/** For --drop-existing with a multi-database script: drop each (non-system) database just before it is created. */
export function dropBeforeCreateDatabase(head: string): string | undefined {
  const m = CREATE_DATABASE_LINE.exec(head);
  if (!m) return undefined;
  const name = m[1]!.slice(1, -1).replaceAll('``', '`');
  if (SYSTEM_SCHEMAS.includes(name.toLowerCase())) return undefined;
  return `DROP DATABASE IF EXISTS ${m[1]};\n`;
}

const NAMED_ALTER_DATABASE = /^ALTER DATABASE `(?:[^`]|``)+`( CHARACTER SET \w+ COLLATE \w+ ?;)\s*$/;

/**
 * In a one-database script, mysqldump names the source database in the `ALTER DATABASE` lines it puts
 * around routines whose collation differs from the database's. Without the name, they apply to the
 * database the script is restored into, as intended; with it, they would change the source database
 * (same server) or fail (another server).
 */
export function unnameAlterDatabase(head: string): LineEdit {
  const m = NAMED_ALTER_DATABASE.exec(head);
  return m ? { replace: `ALTER DATABASE${m[1]}` } : undefined;
}

/** What a failed single-database restore left behind, for the error's hint. */
export function restoreFailureHint(database: string, options: RestoreOptions): string {
  const why = 'MySQL commits every CREATE at once, so a restore cannot be one transaction';
  if (options.dropExisting) {
    return `${database} was dropped and recreated before the restore failed: it is now partially restored (${why}); fix the cause and restore again with --drop-existing`;
  }
  if (options.create) {
    return `the new database ${database} was left partially restored (${why}); drop it, or fix the cause and restore again with --drop-existing`;
  }
  if (options.overwrite) {
    return `${database} is partially restored: the objects the backup reached before the failure were replaced, the rest are as they were (${why}); fix the cause and restore again, with --drop-existing to start clean`;
  }
  return `${database} is partially restored (${why}); fix the cause and restore again with --drop-existing`;
}
