/**
 * A PostgreSQL server as a backup set (Engine.serverSet): which databases a set holds, an engine per
 * database, and the server's globals (roles, memberships, tablespaces) through pg_dumpall.
 */
import { BackupError, UsageError } from '../../util/errors.ts';
import { describeExit } from '../../util/process.ts';
import { redact } from '../../util/secret.ts';
import { namesWholeServer, WHOLE_SERVER } from '../descriptor.ts';
import type {
  DumpInspection,
  Engine,
  EngineTarget,
  GlobalsReport,
  InspectOptions,
  ServerMembers,
  ServerSet,
} from '../engine.ts';
import { streamTool } from '../tool-run.ts';
import { postgresWhere, withMaintenanceClient } from './client.ts';
import { postgresDescriptor } from './descriptor.ts';
import { GLOBALS_MAX_BYTES, inspectGlobals, restoreGlobals } from './globals-restore.ts';
import { libpqEnv, MAINTENANCE_DATABASE } from './libpq-env.ts';
import { dumpToolTooOld, postgresTool, postgresToolVersion } from './tools.ts';

type Signal = { signal?: AbortSignal | undefined };

/**
 * Every database that takes connections and is not a template, in byte order of its name, with whether
 * the user may connect to it, and whether it is invalid (`datconnlimit` -2: a DROP DATABASE that was
 * interrupted; no one can connect to it until it is dropped).
 */
const DATABASES_SQL = `
  SELECT d.datname AS name, pg_catalog.has_database_privilege(d.oid, 'CONNECT') AS readable,
         d.datconnlimit = -2 AS invalid
    FROM pg_catalog.pg_database d
   WHERE d.datallowconn AND NOT d.datistemplate
   ORDER BY d.datname COLLATE "C"`;

/** Whether the user can read role passwords (pg_authid): a superuser, or one granted SELECT on it. */
const ROLE_PASSWORDS_SQL = `
  SELECT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false)
         OR pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS passwords`;

export class PostgresServerSet implements ServerSet {
  readonly wholeServer: boolean;
  readonly globalsFormat = 'globals';
  readonly globalsExtension = postgresDescriptor.extension('plain');
  readonly #target: EngineTarget;
  readonly #engineFor: (target: EngineTarget) => Engine;

  /** `engineFor` makes the engine of one database (PostgresEngine: passed in, its module imports this one). */
  constructor(target: EngineTarget, engineFor: (target: EngineTarget) => Engine) {
    this.#target = target;
    this.#engineFor = engineFor;
    this.wholeServer = namesWholeServer(postgresDescriptor.database, target.connection.database);
  }

  async members(exclude: readonly string[], options: Signal = {}): Promise<ServerMembers> {
    const [rows, rolePasswords] = await withMaintenanceClient(
      this.#target.connection,
      options.signal,
      async (c) =>
        [
          (await c.query<{ name: string; readable: boolean; invalid: boolean }>(DATABASES_SQL)).rows,
          (await c.query<{ passwords: boolean }>(ROLE_PASSWORDS_SQL)).rows[0]!.passwords,
        ] as const,
      BackupError,
    );
    const excluded = new Set(exclude);
    const members: ServerMembers = { databases: [], excluded: [], unreadable: [], rolePasswords };
    for (const row of rows) {
      if (excluded.has(row.name)) members.excluded.push(row.name);
      else if (namesWholeServer(postgresDescriptor.database, row.name)) {
        // A target naming it would mean the whole server: no engine can be bound to it by name.
        members.unreadable.push({
          database: row.name,
          reason: `its name ${WHOLE_SERVER} stands for the whole server`,
        });
      } else if (row.invalid) {
        members.unreadable.push({
          database: row.name,
          reason: 'invalid: a DROP DATABASE of it was interrupted; drop it again',
        });
      } else if (!row.readable)
        members.unreadable.push({ database: row.name, reason: 'no CONNECT privilege' });
      else members.databases.push(row.name);
    }
    return members;
  }

  async databaseExists(name: string, options: Signal = {}): Promise<boolean> {
    const found = await withMaintenanceClient(
      this.#target.connection,
      options.signal,
      (c) => c.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [name]),
      BackupError,
    );
    return (found.rowCount ?? 0) > 0;
  }

  /** Throws UsageError for a name that stands for the whole server (`*`), which members never lists. */
  database(name: string): Engine {
    if (namesWholeServer(postgresDescriptor.database, name)) {
      throw new UsageError(`'${name}' names no single database of ${postgresWhere(this.#target.connection)}`);
    }
    const t = this.#target;
    return this.#engineFor({ ...t, connection: { ...t.connection, database: name } });
  }

  async *dumpGlobals(options: {
    rolePasswords: boolean;
    signal?: AbortSignal | undefined;
  }): AsyncIterable<Buffer> {
    const tool = postgresTool(this.#target.toolDir, 'pg_dumpall');
    const where = postgresWhere(this.#target.connection);
    const [server, version] = await Promise.all([this.#serverVersion(options), postgresToolVersion(tool)]);
    const tooOld = dumpToolTooOld(version, server, where, 'pg_dumpall');
    if (tooOld) throw tooOld;
    // UTF8 whatever the server's encoding: a restore reads the script as UTF-8 text.
    const args = ['--globals-only', '--no-password', '--encoding=UTF8'];
    if (!options.rolePasswords) args.push('--no-role-passwords');
    const env = libpqEnv(this.#target.connection, MAINTENANCE_DATABASE);
    let bytes = 0;
    for await (const chunk of streamTool(tool, args, env, options.signal, (exit, stderr) => {
      const message = redact(stderr, [this.#target.connection.password]) || 'no message';
      return new BackupError(`${tool.command} ${describeExit(exit)}: ${message}`, {
        hint: 'the backup was not committed; see the message above',
      });
    })) {
      bytes += chunk.length;
      // A restore refuses a larger script: a set holding one could never be restored.
      if (bytes > GLOBALS_MAX_BYTES) {
        throw new BackupError(
          `the globals of ${where} are larger than the ${GLOBALS_MAX_BYTES / 1024 / 1024} MiB a restore reads`,
          { hint: 'the backup was not committed; back up its databases as targets of their own' },
        );
      }
      yield chunk;
    }
  }

  inspectGlobals(source: AsyncIterable<Buffer>, options: InspectOptions = {}): Promise<DumpInspection> {
    return inspectGlobals(source, options.signal);
  }

  restoreGlobals(source: AsyncIterable<Buffer>, options: Signal = {}): Promise<GlobalsReport> {
    return restoreGlobals(this.#target.connection, source, options.signal);
  }

  async #serverVersion(options: Signal): Promise<{ version: string; major: number }> {
    return withMaintenanceClient(
      this.#target.connection,
      options.signal,
      async (c) => {
        const res = await c.query<{ v: string; n: string }>(
          "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
        );
        const row = res.rows[0]!;
        return { version: row.v.split(' ')[0]!, major: Math.floor(Number(row.n) / 10000) };
      },
      BackupError,
    );
  }
}
