/** Pure parts of a PostgreSQL restore: its conninfo quoting, psql's arguments and what a failure left behind. */
import { DestinationError, RestoreError } from '../../util/errors.ts';
import type { RestoreOptions } from '../engine.ts';

/** What a failed restore left behind, for the error's hint. */
export function restoreFailureHint(database: string, options: RestoreOptions): string {
  if (options.tables?.length) {
    return `--table restores the tables alone: types, sequences and functions they use must already exist in ${database} (restore the whole backup into a new database, and copy from there)`;
  }
  const atomic = options.format === 'plain' || options.jobs <= 1;
  const state = atomic ? 'empty' : 'partially restored';
  if (options.dropExisting) {
    return `${database} was dropped and recreated before the restore failed: it is now ${state}; fix the cause and restore again`;
  }
  if (options.create)
    return `the new database ${database} was left ${state}; drop it, or fix the cause and restore again`;
  return atomic
    ? `the restore ran in a single transaction: ${database} was left as it was`
    : `a parallel restore is not atomic: ${database} may be partially restored`;
}

/** A libpq conninfo value, quoted, so database names with spaces or `=` stay one value. */
export function quoteConninfo(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * psql's arguments to run a plain-SQL dump (`file`, or `-` for stdin) into `database`: no psqlrc, in one
 * transaction, stopping at the first error.
 */
export function psqlScriptArgs(database: string, file: string): string[] {
  return [
    '-X',
    '-q',
    '--no-password',
    '-v',
    'ON_ERROR_STOP=1',
    '--single-transaction',
    '-d',
    `dbname=${quoteConninfo(database)}`,
    '-f',
    file,
  ];
}

/**
 * The extension a failed restore's stderr says the server lacks (its files are not installed there), or
 * undefined: `could not open extension control file ".../postgis.control"` (PostgreSQL 15 and older),
 * `extension "postgis" is not available` (16 and newer).
 */
function missingExtension(stderr: string): string | undefined {
  const m =
    /could not open extension control file "[^"]*\/([^/"]+)\.control"/.exec(stderr) ??
    /extension "([^"]+)" is not available/.exec(stderr);
  return m?.[1];
}

/**
 * The error of a failed pg_restore or psql (its `message`, `stderr` unredacted for matching only): a
 * DestinationError when the server at `where` lacks an extension the dump uses, else a RestoreError.
 */
export function restoreToolError(message: string, stderr: string, hint: string, where: string): RestoreError {
  const extension = missingExtension(stderr);
  if (extension === undefined) return new RestoreError(message, { hint });
  return new DestinationError(message, {
    lacks: extension,
    hint: `the backup uses the extension ${extension}, which is not installed on ${where}: install its package there (Debian: postgresql-<major>-${extension}, or postgresql-contrib for the bundled ones), then restore again; ${hint}`,
  });
}
