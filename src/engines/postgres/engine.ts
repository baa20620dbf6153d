/**
 * PostgreSQL engine: pg_dump (custom format uncompressed, so datasaver's own streaming compressor does the
 * work, or plain SQL) for backups; pg_restore / psql for restores; node-postgres for the small control
 * queries (ping, versions, facts, create/drop database).
 *
 * Connection settings reach the tools as libpq environment variables (PGHOST, PGPASSWORD...), never argv.
 */

import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { BackupError, DestinationError, RestoreError, UsageError } from '../../util/errors.ts';
import { failpoint, failpointAfterFirst } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import { describeExit, runTool, type Tool } from '../../util/process.ts';
import { redact } from '../../util/secret.ts';
import { type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type {
  DatabaseFacts,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreOptions,
  RestoreReport,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { runToEnd, streamTool, type ToolFailure } from '../tool-run.ts';
import { dropDatabase, postgresWhere, withMaintenanceClient, withPostgresClient } from './client.ts';
import {
  type DatabaseSettingsRow,
  quoteIdent,
  READ_DATABASE_SETTINGS,
  toDatabaseSettings,
} from './dbsettings.ts';
import { postgresDescriptor } from './descriptor.ts';
import { countInTransaction, dumpInSnapshot, sequenceReader } from './facts.ts';
import { inspectCustom, inspectPlain } from './inspect.ts';
import { libpqEnv, MAINTENANCE_DATABASE } from './libpq-env.ts';
import { cleanSafeOrder, parseRestoreList } from './list.ts';
import { withoutOwnership } from './ownership.ts';
import { TABLE_ROWS_SQL, USER_OBJECTS_SQL } from './queries.ts';
import { psqlScriptArgs, quoteConninfo, restoreFailureHint, restoreToolError } from './restore-hint.ts';
import { refusedAsRestoreError, restrictedScript } from './script.ts';
import { PostgresServerSet } from './server-set.ts';
import { applySettings, planSettings } from './settings-restore.ts';
import {
  dumpToolTooOld,
  lacksRestrict,
  postgresTool,
  postgresToolVersion,
  readerTooOld,
  recordsDumpMajor,
} from './tools.ts';

export { parseRestoreList };

type Signal = { signal?: AbortSignal | undefined };

export class PostgresEngine implements Engine {
  readonly descriptor = postgresDescriptor;
  /** Every PostgreSQL target can restore and verify a stored set; `wholeServer` says whether it makes them. */
  readonly serverSet: PostgresServerSet;
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
    this.serverSet = new PostgresServerSet(target, (t) => new PostgresEngine(t));
  }

  async preflight(options: Signal = {}): Promise<ServerInfo> {
    const [server, tool] = await Promise.all([
      this.#withClient(this.#database(), options, async (c) => {
        const res = await c.query<{ v: string; n: string }>(
          "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
        );
        const settings = await c.query<DatabaseSettingsRow>(READ_DATABASE_SETTINGS);
        return { ...res.rows[0]!, databaseSettings: toDatabaseSettings(settings.rows[0]!) };
      }),
      postgresToolVersion(this.#tool('pg_dump')),
    ]);
    const serverVersion = server.v.split(' ')[0]!;
    const serverMajor = Math.floor(Number(server.n) / 10000);
    const tooOld = dumpToolTooOld(tool, { version: serverVersion, major: serverMajor }, this.#where());
    if (tooOld) throw tooOld;
    return {
      serverVersion,
      toolVersion: `pg_dump ${tool.version}`,
      databaseSettings: server.databaseSettings,
    };
  }

  async facts(options: Signal = {}): Promise<DatabaseFacts> {
    // Planner estimates, not count(*): cheap on any database size. reltuples is what the last ANALYZE or
    // VACUUM saw; n_live_tup only for tables never analysed (reltuples -1). n_live_tup is not preferred:
    // a session that inserts and analyses before its statistics are flushed has the inserts counted
    // twice (ANALYZE sets n_live_tup, then the flush adds the session's inserts on top).
    const rows = await this.#withClient(this.#database(), options, async (c) => {
      const res = await c.query<{ schema: string; name: string; rows: string }>(TABLE_ROWS_SQL);
      return res.rows;
    });
    return {
      exact: false,
      tables: rows.map((r) => ({ name: `${r.schema}.${r.name}`, rows: Number(r.rows) })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.descriptor.extension(options.format);
    const args = ['--no-password', `--format=${options.format}`];
    if (options.format === 'custom') args.push('--compress=0');
    if (options.schemaOnly) args.push('--schema-only');
    const tool = this.#tool('pg_dump');
    const failed = this.#toolFailed(tool, BackupError, 'the backup was not committed; see the message above');
    const run = (extra: string[]) =>
      streamTool(tool, [...args, ...extra], this.#env(this.#database()), options.signal, failed);
    // A schema-only dump holds no rows: the live estimates stay, marked as such.
    if (!options.onFacts || options.schemaOnly) return run([]);
    return dumpInSnapshot(
      run,
      options.onFacts,
      (fn) => this.#withClient(this.#database(), options, fn),
      sequenceReader(options.format),
    );
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.descriptor.extension(format);
    if (format === 'plain') return inspectPlain(source);
    await this.#checkReader('pg_restore', options.dumpToolVersion);
    return inspectCustom(this.#tool('pg_restore'), source, options.signal, (t) => this.#redact(t));
  }

  async restoredFacts(targetDatabase?: string, options: Signal = {}): Promise<DatabaseFacts> {
    return this.#withClient(targetDatabase ?? this.#database(), options, countInTransaction, RestoreError);
  }

  async listDatabases(prefix: string, options: Signal = {}): Promise<string[]> {
    return this.#withMaintenance(
      options,
      async (c) => {
        const res = await c.query<{ datname: string }>(
          'SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname',
          [prefix],
        );
        return res.rows.map((r) => r.datname);
      },
      RestoreError,
    );
  }

  async dropDatabase(name: string, options: Signal = {}): Promise<void> {
    await this.#withMaintenance(options, (c) => dropDatabase(c, name), RestoreError, name);
  }

  async restoreTargetState(targetDatabase?: string, options: Signal = {}): Promise<RestoreTargetState> {
    const database = targetDatabase ?? this.#database();
    const description = `database ${database} on ${this.#where()}`;
    const exists = await this.#withMaintenance(
      options,
      async (c) => {
        const res = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
        return (res.rowCount ?? 0) > 0;
      },
      RestoreError,
    );
    if (!exists) return { description, exists, empty: true };
    const objects = await this.#withClient(
      database,
      options,
      async (c) => {
        const res = await c.query<{ n: string }>(USER_OBJECTS_SQL);
        return Number(res.rows[0]?.n ?? 0);
      },
      RestoreError,
    );
    return { description, exists, empty: objects === 0 };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<RestoreReport | undefined> {
    this.descriptor.extension(options.format);
    const database = options.targetDatabase ?? this.#database();
    // Before anything is dropped or created: a restore tool too old for the dump would fail right after.
    await this.#checkReader(options.format === 'plain' ? 'psql' : 'pg_restore', options.dumpToolVersion);
    const plain = options.format === 'plain';
    if (plain) await this.#checkRestrictedMode();
    // Database settings go only to a database this restore creates: one restored over keeps its own,
    // unless the caller asks (a set restored onto a fresh server's own empty databases).
    const settings =
      (options.create || options.dropExisting || options.settingsToExisting) && options.databaseSettings
        ? await planSettings(this.#target.connection, database, options.databaseSettings, options)
        : undefined;
    // The whole dump is spooled to a private temp file and proven before anything is dropped, created or
    // restored: the source's size and sha256 are checked at its end (pipeline/read.ts), and a plain
    // script is screened on the way (script.ts). Streaming into the tools cannot promise that:
    // pg_restore commits once it has read the archive it needs, never waiting for the end of its input;
    // psql takes the end of its stdin, when datasaver is killed mid-restore, as the end of the script and
    // commits what it read; and --drop-existing would drop the database before a refused script showed.
    // A parallel restore needs a seekable file anyway. A disposable copy (a drill's) needs none of it.
    // A fresh key per restore, known to this process alone: see script.ts.
    const screened = plain ? restrictedScript(source, randomBytes(32).toString('hex')) : source;
    const body = refusedAsRestoreError(
      plain && options.skipOwnership ? withoutOwnership(screened) : screened,
      database,
    );
    if (options.disposable && options.create && options.jobs <= 1) {
      await this.#restoreInput(plain, failpointAfterFirst('restore.streaming', body), database, options);
    } else {
      const dir = await makePrivateTempDir('restore', options.tempDir);
      try {
        const file = join(dir, 'dump');
        await pipeline(body, createWriteStream(file, { mode: 0o600 }), { signal: options.signal });
        await failpoint('restore.spooled');
        await this.#restoreInput(plain, file, database, options);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    if (!settings) return undefined;
    // After the restore, so settings such as search_path do not change how the dump's SQL runs.
    await applySettings(this.#target.connection, settings.steps, database, options);
    return {
      applied: settings.steps.map((s) => s.describe).filter((d) => d !== ''),
      skipped: settings.skipped,
    };
  }

  /**
   * psql or pg_restore of a spooled file, or of a disposable restore's stream, into `database`. The
   * dump's own errors can say anything: an extension it says is missing is believed once the server
   * agrees, else the failure is the dump's.
   */
  async #restoreInput(plain: boolean, input: string | AsyncIterable<Buffer>, db: string, o: RestoreOptions) {
    try {
      await (plain ? this.#restoreScript(input, db, o) : this.#restoreArchive(input, db, o));
    } catch (err) {
      const lacks = err instanceof DestinationError ? err.lacks : undefined;
      if (lacks === undefined) throw err;
      const has = (c: pg.Client) => c.query('SELECT 1 FROM pg_available_extensions WHERE name = $1', [lacks]);
      if (((await this.#withMaintenance(o, has, RestoreError)).rowCount ?? 0) === 0) throw err;
      throw new RestoreError((err as Error).message, { hint: restoreFailureHint(db, o), cause: err });
    }
  }

  /** psql of a screened plain-SQL script (a file, or a stream) into `database`, creating it first. */
  async #restoreScript(
    input: string | AsyncIterable<Buffer>,
    database: string,
    options: RestoreOptions,
  ): Promise<void> {
    if (options.dropExisting || options.create) await this.#recreateDatabase(database, options);
    const hint = restoreFailureHint(database, options);
    const env = this.#env(database);
    const file = typeof input === 'string' ? input : undefined;
    const psql = this.#tool('psql');
    const fail = this.#toolFailed(psql, RestoreError, hint);
    const args = psqlScriptArgs(database, file ?? '-');
    await runToEnd(psql, args, env, options.signal, fail, typeof input === 'string' ? undefined : input);
  }

  /**
   * pg_restore of a custom-format archive (a spooled file, or a disposable restore's stream on stdin)
   * into `database`, creating or recreating it first.
   */
  async #restoreArchive(
    input: string | AsyncIterable<Buffer>,
    database: string,
    options: RestoreOptions,
  ): Promise<void> {
    const file = typeof input === 'string' ? input : undefined;
    if (options.dropExisting || options.create) await this.#recreateDatabase(database, options);
    const hint = restoreFailureHint(database, options);
    const env = this.#env(database);
    const args = ['--no-password', '--exit-on-error', '-d', `dbname=${quoteConninfo(database)}`];
    if (options.skipOwnership) args.push('--no-owner', '--no-acl');
    if (options.overwrite && file !== undefined)
      args.push('--clean', '--if-exists', `--use-list=${await this.#cleanSafeList(file, hint)}`);
    const tables = options.tables ?? [];
    if (tables.length > 0) {
      // pg_restore matches -t by name; -n keeps it to the one schema they are in, which it does not
      // create: a new database gets it here (owned by the user restoring).
      const schema = tables[0]!.schema;
      await this.#withClient(
        database,
        options,
        async (c) => {
          for (const t of tables) {
            const qualified = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
            const found = await c.query('SELECT to_regclass($1) AS r', [qualified]);
            if (found.rows[0]?.r !== null) {
              throw new UsageError(`table ${t.schema}.${t.name} already exists in ${database}`, {
                hint: '--table only restores tables a database lacks: restore into a new database (--target-db NAME) and copy the rows you need from there',
              });
            }
          }
          await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        },
        RestoreError,
      );
      args.push(`--schema=${schema}`, ...tables.map((t) => `--table=${t.name}`));
    }
    args.push(options.jobs > 1 ? `--jobs=${options.jobs}` : '--single-transaction');
    const pgRestore = this.#tool('pg_restore');
    await runToEnd(
      pgRestore,
      file === undefined ? args : [...args, file],
      env,
      options.signal,
      this.#toolFailed(pgRestore, RestoreError, hint),
      typeof input === 'string' ? undefined : input,
    );
  }

  /**
   * The archive's TOC in an order `--clean` can drop (list.ts), written next to it for
   * `--use-list`. The list reorders, never selects: pg_restore still restores every entry.
   */
  async #cleanSafeList(file: string, hint: string): Promise<string> {
    const tool = this.#tool('pg_restore');
    const toc = await runTool(tool, ['--list', file], toolEnv(process.env)); // reads the file only
    if (toc.code !== 0) {
      throw new RestoreError(
        `${tool.command} --list ${describeExit(toc)}: ${this.#redact(toc.stderr) || 'no message'}`,
        {
          hint,
        },
      );
    }
    const list = join(dirname(file), 'list');
    await writeFile(list, cleanSafeOrder(toc.stdout), { mode: 0o600 });
    return list;
  }

  /** What a tool's non-zero exit means: `FailAs` with its redacted stderr and `hint`. */
  #toolFailed(tool: Tool, FailAs: typeof BackupError | typeof RestoreError, hint: string): ToolFailure {
    return (exit, stderr) => {
      const message = `${tool.command} ${describeExit(exit)}: ${this.#redact(stderr) || 'no message'}`;
      if (FailAs === RestoreError) return restoreToolError(message, stderr, hint, this.#where());
      return new FailAs(message, { hint });
    };
  }

  async #recreateDatabase(database: string, options: RestoreOptions): Promise<void> {
    await this.#withMaintenance(
      options,
      async (c) => {
        if (options.dropExisting) await dropDatabase(c, database);
        // template0: a pristine database, so nothing from template1 collides with the dump's objects.
        await c.query(`CREATE DATABASE ${quoteIdent(database)} TEMPLATE template0`);
      },
      DestinationError,
      database,
    );
  }

  /** Fails (exit 4) when the local `pg_restore`/`psql` is older than the pg_dump that wrote a backup. */
  async #checkReader(name: string, dumpToolVersion: string | undefined): Promise<void> {
    if (!recordsDumpMajor(dumpToolVersion)) return;
    const tooOld = readerTooOld(name, await postgresToolVersion(this.#tool(name)), dumpToolVersion);
    if (tooOld) throw tooOld;
  }

  /**
   * Plain SQL from storage only goes to a psql that has `\restrict` (see script.ts); an older one would
   * run any meta-command a forged dump holds, so the restore is refused (exit 4) before it starts.
   */
  async #checkRestrictedMode(): Promise<void> {
    const refused = lacksRestrict(await postgresToolVersion(this.#tool('psql')));
    if (refused) throw refused;
  }

  #tool(name: string): Tool {
    return postgresTool(this.#target.toolDir, name);
  }

  /** The target's database; a whole-server target's is the maintenance database (never `*`). */
  #database(): string {
    return this.serverSet.wholeServer ? MAINTENANCE_DATABASE : this.#target.connection.database!;
  }

  #where(): string {
    return postgresWhere(this.#target.connection);
  }

  /**
   * Control queries about the server (withMaintenanceClient); to drop or recreate `dropping` when it is
   * the maintenance database itself (a whole server's `postgres`, restored with --drop-existing),
   * template1, since no session may be in a database dropped.
   */
  #withMaintenance<T>(
    options: Signal,
    fn: (c: pg.Client) => Promise<T>,
    FailAs: typeof BackupError | typeof RestoreError = BackupError,
    dropping?: string,
  ): Promise<T> {
    if (dropping === MAINTENANCE_DATABASE) return this.#withClient('template1', options, fn, FailAs);
    return withMaintenanceClient(this.#target.connection, options.signal, fn, FailAs);
  }

  /** See withPostgresClient: SQL errors become `FailAs`, failing to connect a ConnectionError. */
  #withClient<T>(
    database: string,
    options: Signal,
    fn: (c: pg.Client) => Promise<T>,
    FailAs: typeof BackupError | typeof RestoreError = BackupError,
  ): Promise<T> {
    return withPostgresClient(this.#target.connection, database, options.signal, fn, FailAs);
  }

  #redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  #env(database: string): ToolEnv {
    return libpqEnv(this.#target.connection, database);
  }
}
