/**
 * How a whole-server target (a PostgreSQL target naming no database, or `*`) is backed up as a set: the
 * databases it leaves out (DATASAVER_DB_EXCLUDE) and how many it dumps at once (DATASAVER_DUMP_JOBS).
 */
import { namesWholeServer } from '../engines/descriptor.ts';
import type { ConnectionConfig } from '../engines/engine.ts';
import type { TargetConnection } from './connection.ts';
import { FIELDS } from './fields.ts';
import type { Problems, RawTarget } from './raw.ts';
import { check, intIn } from './values.ts';

/** Databases dumped at once: each is its own pg_dump and pipeline, so the memory bound grows with it. */
export const MAX_DUMP_JOBS = 16;

export interface ServerSetSettings {
  /** The target backs up every database of its server as one set. */
  wholeServer: boolean;
  excludeDatabases: string[];
  dumpJobs: number;
}

/**
 * The set settings of a target. An exclude list on a target that is not a whole server is a problem
 * (it would silently do nothing); so is a name in it that could not be a database name.
 */
export function buildServerSet(
  raw: RawTarget,
  target: Pick<TargetConnection, 'descriptor' | 'connection'>,
  problems: Problems,
): ServerSetSettings {
  const wholeServer = isWholeServerTarget(target);
  const dumpJobs =
    check(raw.dumpJobs, intIn(1, MAX_DUMP_JOBS, `an integer 1-${MAX_DUMP_JOBS}`), problems) ?? 1;
  const source = raw.excludeDatabases;
  if (!source) return { wholeServer, excludeDatabases: [], dumpJobs };
  const names = databaseNames(source.value);
  if (!wholeServer) {
    problems.add(
      source.origin,
      target.descriptor.database === 'name-or-server'
        ? `only a whole-server ${target.descriptor.label} target (no database named, or ${FIELDS.database.env}=*) leaves databases out; this one names database ${target.connection.database}: remove this setting`
        : `${target.descriptor.label} backups are not sets of databases, so none can be left out: remove this setting`,
    );
  } else if (names.length === 0) {
    problems.add(source.origin, 'names no database; give names separated by commas or spaces, or remove it');
  }
  return { wholeServer, excludeDatabases: names, dumpJobs };
}

/** Whether the target backs up its whole server as a set (see descriptor `name-or-server`). */
export function isWholeServerTarget(target: {
  descriptor: { database: TargetConnection['descriptor']['database'] };
  connection: Pick<ConnectionConfig, 'database'>;
}): boolean {
  return namesWholeServer(target.descriptor.database, target.connection.database);
}

/** `a, b c` or a YAML list: the names, without duplicates, in the order given. */
function databaseNames(value: unknown): string[] {
  const items = Array.isArray(value) ? value.map(String) : String(value).split(/[\s,]+/);
  return [...new Set(items.map((n) => n.trim()).filter((n) => n !== ''))];
}
