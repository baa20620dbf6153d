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
import { StringDecoder } from 'node:string_decoder';
import pg from 'pg';
import {
  BackupError,
  ConnectionError,
  DatasaverError,
  errorMessage,
  RestoreError,
  ToolMissingError,
  UsageError,
} from '../../util/errors.ts';
import { failpoint } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import {
  describeExit,
  feedStdin,
  killIfRunning,
  runTool,
  type Spawned,
  spawnTool,
  type Tool,
} from '../../util/process.ts';
import { redact } from '../../util/secret.ts';
import { LIBPQ_ENV, type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type {
  DatabaseFacts,
  DatabaseSettings,
  DumpEntry,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreCapabilities,
  RestoreOptions,
  RestoreReport,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import {
  type DatabaseSettingsRow,
  quoteIdent,
  READ_DATABASE_SETTINGS,
  rolesNamed,
  type SettingsPlan,
  type Step,
  settingsPlan,
  toDatabaseSettings,
} from './dbsettings.ts';
import { postgresDescriptor } from './descriptor.ts';
import { cleanSafeOrder, parseRestoreList } from './list.ts';
import { RefusedScriptError, restrictedScript } from './script.ts';

export { parseRestoreList };

/** First minor release of each major whose psql has `\restrict`; every major from RESTRICT_ALWAYS has it. */
const RESTRICT_SINCE: Readonly<Record<number, number>> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };
const RESTRICT_ALWAYS = 18;
/** Plain dumps end with this comment; anything after it may only be blank, comments or \unrestrict. */
const PLAIN_COMPLETE = '-- PostgreSQL database dump complete';

type Signal = { signal?: AbortSignal | undefined };

export class PostgresEngine implements Engine {
  readonly name = 'postgres';
  readonly formats = postgresDescriptor.formatNames;
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  restoreCapabilities(format: string): RestoreCapabilities {
    return postgresDescriptor.restoreCapabilities(format, null);
  }

  extension(format: string): string {
    return postgresDescriptor.extension(format);
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
      this.#toolVersion('pg_dump'),
    ]);
    const serverVersion = server.v.split(' ')[0]!;
    const serverMajor = Math.floor(Number(server.n) / 10000);
    if (tool.major < serverMajor) {
      throw new BackupError(
        `pg_dump ${tool.version} cannot dump ${this.#where()}: the server runs PostgreSQL ${serverVersion}, and pg_dump must be the same major version or newer`,
        {
          hint: `install postgresql-client-${serverMajor} (or newer) and put it first on PATH, or set DATASAVER_TOOL_DIR to its bin directory`,
        },
      );
    }
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
      const res = await c.query<{ schema: string; name: string; rows: string }>(`
        SELECT n.nspname AS schema, c.relname AS name,
               (CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE COALESCE(s.n_live_tup, 0) END)::bigint AS rows
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
         WHERE c.relkind IN ('r', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
         ORDER BY 1, 2`);
      return res.rows;
    });
    return {
      exact: false,
      tables: rows.map((r) => ({ name: `${r.schema}.${r.name}`, rows: Number(r.rows) })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.extension(options.format);
    const args = ['--no-password', `--format=${options.format}`];
    if (options.format === 'custom') args.push('--compress=0');
    if (options.schemaOnly) args.push('--schema-only');
    return this.#streamTool(this.#tool('pg_dump'), args, this.#env(this.#database()), options.signal);
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.extension(format);
    if (format === 'plain') return inspectPlain(source);
    await this.#checkReader('pg_restore', options.dumpToolVersion);
    return this.#inspectCustom(source, options);
  }

  async restoreTargetState(targetDatabase?: string, options: Signal = {}): Promise<RestoreTargetState> {
    const database = targetDatabase ?? this.#database();
    const description = `database ${database} on ${this.#where()}`;
    const exists = await this.#withClient(
      this.#maintenanceDb(),
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
        const res = await c.query<{ n: string }>(`
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%')
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
             + (SELECT count(*) FROM pg_namespace
                 WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%')
             + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                   AND t.typrelid = 0 AND t.typcategory <> 'A')
             + (SELECT count(*) FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
             + (SELECT count(*) FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                 WHERE n.nspname <> 'pg_catalog')
             + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_foreign_server)
             + (SELECT count(*) FROM pg_event_trigger)
             + (SELECT count(*) FROM pg_largeobject_metadata) AS n`);
        return Number(res.rows[0]?.n ?? 0);
      },
      RestoreError,
    );
    return { description, exists, empty: objects === 0 };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<RestoreReport | undefined> {
    this.extension(options.format);
    const database = options.targetDatabase ?? this.#database();
    // Before anything is dropped or created: a restore tool too old for the dump would fail right after.
    await this.#checkReader(options.format === 'plain' ? 'psql' : 'pg_restore', options.dumpToolVersion);
    const plain = options.format === 'plain';
    if (plain) await this.#checkRestrictedMode();
    // Database settings go only to a database this restore creates: one restored over keeps its own.
    const settings =
      (options.create || options.dropExisting) && options.databaseSettings
        ? await this.#planSettings(database, options.databaseSettings, options)
        : undefined;
    // The whole dump is spooled to a private temp file and proven before anything is dropped, created or
    // restored: the source's size and sha256 are checked at its end (pipeline/read.ts), and a plain
    // script is screened on the way (postgres-script.ts). Streaming into the tools cannot promise that:
    // pg_restore commits once it has read the archive it needs, never waiting for the end of its input;
    // psql takes the end of its stdin, when datasaver is killed mid-restore, as the end of the script and
    // commits what it read; and --drop-existing would drop the database before a refused script showed.
    // A parallel restore needs a seekable file anyway.
    const dir = await makePrivateTempDir('restore', options.tempDir);
    try {
      const file = join(dir, 'dump');
      // A fresh key per restore, known to this process alone: see postgres-script.ts.
      const body = plain ? restrictedScript(source, randomBytes(32).toString('hex')) : source;
      try {
        await pipeline(body, createWriteStream(file, { mode: 0o600 }), { signal: options.signal });
      } catch (err) {
        if (err instanceof RefusedScriptError) {
          throw new RestoreError(err.message, {
            hint: `${err.hint}. Nothing was restored: ${database} was not touched`,
            cause: err,
          });
        }
        throw err;
      }
      await failpoint('restore.spooled');
      if (plain) await this.#restoreScript(file, database, options);
      else await this.#restoreArchive(file, database, options);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (!settings) return undefined;
    // After the restore, so settings such as search_path do not change how the dump's SQL runs.
    await this.#applySettings(settings.steps, database, options);
    return {
      applied: settings.steps.map((s) => s.describe).filter((d) => d !== ''),
      skipped: settings.skipped,
    };
  }

  /**
   * The statements that carry the backup's database settings to `database`. Roles they name that do not
   * exist here fail the restore before anything is created, unless `skipMissingRoles` leaves them out.
   */
  async #planSettings(
    database: string,
    recorded: DatabaseSettings,
    options: RestoreOptions,
  ): Promise<SettingsPlan> {
    const named = rolesNamed(recorded);
    const present = await this.#withClient(
      this.#maintenanceDb(),
      options,
      async (c) => {
        const res = await c.query<{ rolname: string }>(
          'SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)',
          [named],
        );
        return new Set(res.rows.map((r) => r.rolname));
      },
      RestoreError,
    );
    const missing = new Set(named.filter((r) => !present.has(r)));
    if (missing.size > 0 && !options.skipMissingRoles) {
      const several = missing.size > 1;
      throw new UsageError(
        `the backed-up database's owner, grants or settings name role${several ? 's' : ''} ${[...missing].join(', ')}, which ${several ? 'do' : 'does'} not exist on ${this.#where()}; nothing was restored`,
        {
          hint: `create ${several ? 'them' : 'it'} first (CREATE ROLE), or pass --skip-missing-roles to restore without what names ${several ? 'them' : 'it'} (a missing owner leaves the database owned by the user restoring)`,
        },
      );
    }
    try {
      return settingsPlan(database, recorded, missing);
    } catch (err) {
      throw new RestoreError(`the backup's database settings cannot be applied: ${errorMessage(err)}`, {
        hint: 'the manifest was altered or is damaged; nothing was restored',
      });
    }
  }

  /** Applies the settings in one transaction: all of them or none. */
  async #applySettings(steps: Step[], database: string, options: RestoreOptions): Promise<void> {
    await this.#withClient(
      this.#maintenanceDb(),
      options,
      async (c) => {
        try {
          await c.query('BEGIN');
          for (const step of steps) await c.query(step.sql, step.params);
          await c.query('COMMIT');
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw new RestoreError(
            `${database} was restored, but its database settings could not be applied: ${this.#redact(errorMessage(err))}`,
            {
              hint: `none of them were applied; fix the cause and restore again, or set them by hand (ALTER DATABASE ${database} ...)`,
            },
          );
        }
      },
      RestoreError,
    );
  }

  /** psql of a spooled, screened plain-SQL script into `database`, creating or recreating it first. */
  async #restoreScript(file: string, database: string, options: RestoreOptions): Promise<void> {
    if (options.dropExisting || options.create) await this.#recreateDatabase(database, options);
    const hint = restoreFailureHint(database, options);
    const env = this.#env(database);
    const args = [
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
    await this.#runWithInput(this.#tool('psql'), args, env, undefined, options.signal, hint);
  }

  /** pg_restore of a spooled custom-format archive into `database`, creating or recreating it first. */
  async #restoreArchive(file: string, database: string, options: RestoreOptions): Promise<void> {
    if (options.dropExisting || options.create) await this.#recreateDatabase(database, options);
    const hint = restoreFailureHint(database, options);
    const env = this.#env(database);
    const args = ['--no-password', '--exit-on-error', '-d', `dbname=${quoteConninfo(database)}`];
    if (options.overwrite)
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
    await this.#runWithInput(this.#tool('pg_restore'), [...args, file], env, undefined, options.signal, hint);
  }

  /**
   * The archive's TOC in an order `--clean` can drop (postgres-list.ts), written next to it for
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

  async #inspectCustom(source: AsyncIterable<Buffer>, options: Signal): Promise<DumpInspection> {
    // --list reads only the table of contents; --file=/dev/null walks every data block, so a truncated or
    // damaged archive fails even where its TOC is intact. Both read the same bytes in one pass.
    const env = toolEnv(process.env); // reads the archive only: no connection, no secret
    const tool = this.#tool('pg_restore');
    const list = spawnTool(tool, ['--list'], { env, stdin: 'pipe' });
    const full = spawnTool(tool, ['--file=/dev/null'], { env, stdin: 'pipe', stdout: 'ignore' });
    const out: Buffer[] = [];
    list.child.stdout?.on('data', (c: Buffer) => out.push(c));
    try {
      await feedStdin([list.child, full.child], source, options.signal);
      for (const [p, what] of [
        [list, 'pg_restore --list'],
        [full, 'pg_restore'],
      ] as const) {
        const exit = await p.exited;
        if (exit.code !== 0) {
          throw new BackupError(
            `${what} ${describeExit(exit)}: ${this.#redact(p.stderr.text()) || 'no message'}`,
          );
        }
      }
    } finally {
      killIfRunning(list.child);
      killIfRunning(full.child);
    }
    return { entries: parseRestoreList(Buffer.concat(out).toString('utf8')) };
  }

  /** Spawns a tool that writes its product to stdout, as a stream that fails if the tool fails. */
  async *#streamTool(tool: Tool, args: string[], env: ToolEnv, signal?: AbortSignal): AsyncGenerator<Buffer> {
    signal?.throwIfAborted();
    const p = spawnTool(tool, args, { env });
    const onAbort = () => killIfRunning(p.child);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const chunk of p.child.stdout!) yield chunk as Buffer;
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new BackupError(
          `${tool.command} ${describeExit(exit)}: ${this.#redact(p.stderr.text()) || 'no message'}`,
          {
            hint: 'the backup was not committed; see the message above',
          },
        );
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      killIfRunning(p.child); // the consumer stopped early or failed: do not leave the dump running
      await p.exited.catch(() => {});
    }
  }

  async #runWithInput(
    tool: Tool,
    args: string[],
    env: ToolEnv,
    source: AsyncIterable<Buffer> | undefined,
    signal: AbortSignal | undefined,
    hint: string,
  ): Promise<void> {
    const p: Spawned = spawnTool(tool, args, { env, stdin: source ? 'pipe' : 'ignore', stdout: 'ignore' });
    const onAbort = () => killIfRunning(p.child);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (source) await feedStdin([p.child], source, signal);
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new RestoreError(
          `${tool.command} ${describeExit(exit)}: ${this.#redact(p.stderr.text()) || 'no message'}`,
          { hint },
        );
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      killIfRunning(p.child);
    }
  }

  async #recreateDatabase(database: string, options: RestoreOptions): Promise<void> {
    await this.#withClient(
      this.#maintenanceDb(),
      options,
      async (c) => {
        const ident = quoteIdent(database);
        if (options.dropExisting) {
          await c.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
            [database],
          );
          await c.query(`DROP DATABASE IF EXISTS ${ident}`);
        }
        // template0: a pristine database, so nothing from template1 collides with the dump's objects.
        await c.query(`CREATE DATABASE ${ident} TEMPLATE template0`);
      },
      RestoreError,
    );
  }

  /** Fails (exit 4) when the local `pg_restore`/`psql` is older than the pg_dump that wrote a backup. */
  async #checkReader(name: string, dumpToolVersion: string | undefined): Promise<void> {
    const dumpMajor = Number(/(\d+)/.exec(dumpToolVersion ?? '')?.[1] ?? 0);
    if (!dumpMajor) return;
    const reader = await this.#toolVersion(name);
    if (reader.major < dumpMajor) {
      throw new ToolMissingError(
        `${name} ${reader.version} cannot read this backup: it was written by ${dumpToolVersion}`,
        {
          hint: `install postgresql-client-${dumpMajor} (or newer) and put it first on PATH, or set DATASAVER_TOOL_DIR to its bin directory`,
        },
      );
    }
  }

  /**
   * Plain SQL from storage only goes to a psql that has `\restrict` (see postgres-script.ts); an older one
   * would run any meta-command a forged dump holds, so the restore is refused (exit 4) before it starts.
   */
  async #checkRestrictedMode(): Promise<void> {
    const psql = await this.#toolVersion('psql');
    const minor = RESTRICT_SINCE[psql.major];
    if (psql.major >= RESTRICT_ALWAYS || (minor !== undefined && psql.minor >= minor)) return;
    const wanted = minor !== undefined ? `${psql.major}.${minor}` : undefined;
    throw new ToolMissingError(
      `psql ${psql.version} cannot restore plain SQL backups safely: it lacks \\restrict, which keeps psql meta-commands in a backup (such as \\! shell commands) from running on this host`,
      {
        hint: `install ${wanted ? `postgresql-client-${psql.major} ${wanted} or newer` : 'postgresql-client-17 (or newer)'} (psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later have it), or set DATASAVER_TOOL_DIR to its bin directory; custom-format backups restore with pg_restore and do not need it`,
      },
    );
  }

  async #toolVersion(name: string): Promise<{ version: string; major: number; minor: number }> {
    const tool = this.#tool(name);
    const res = await runTool(tool, ['--version'], toolEnv(process.env)); // no connection, no secret
    const m = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(res.stdout);
    if (res.code !== 0 || !m) {
      throw new BackupError(
        `cannot tell the version of ${tool.command}: ${res.stderr || res.stdout || describeExit(res)}`,
      );
    }
    return { version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, major: Number(m[1]), minor: Number(m[2] ?? 0) };
  }

  #tool(name: string): Tool {
    const dir = this.#target.toolDir;
    return { command: dir ? join(dir, name) : name, packageName: 'postgresql-client' };
  }

  #database(): string {
    return this.#target.connection.database ?? this.#target.connection.user ?? 'postgres';
  }

  #maintenanceDb(): string {
    return 'postgres';
  }

  #where(): string {
    const c = this.#target.connection;
    return `${c.host ?? 'localhost'}:${c.port ?? 5432}`;
  }

  #redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  /**
   * libpq environment for the tools: connection settings and the password, never on the command line.
   * The user's own libpq variables (PGHOST, PGPASSWORD, PGSSLROOTCERT...) pass where the target leaves
   * a setting open, as node-postgres reads them for the control connection too.
   */
  #env(database: string): ToolEnv {
    const c = this.#target.connection;
    return toolEnv(process.env, {
      pass: LIBPQ_ENV,
      set: {
        PGAPPNAME: 'datasaver',
        PGCONNECT_TIMEOUT: process.env.PGCONNECT_TIMEOUT ?? '10',
        PGHOST: c.host,
        PGPORT: c.port === undefined ? undefined : String(c.port),
        PGUSER: c.user,
        PGDATABASE: database,
        PGSSLMODE: c.sslmode,
        PGPASSWORD: c.password?.reveal(),
      },
    });
  }

  /**
   * Runs `fn` on a fresh connection. Connection failures are ConnectionErrors; SQL errors become
   * `FailAs` (BackupError on the backup path, RestoreError on the restore path).
   */
  async #withClient<T>(
    database: string,
    options: Signal,
    fn: (c: pg.Client) => Promise<T>,
    FailAs: typeof BackupError | typeof RestoreError = BackupError,
  ): Promise<T> {
    options.signal?.throwIfAborted();
    const client = await this.#connect(database);
    const onAbort = () => void client.end().catch(() => {});
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await fn(client);
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (err instanceof pg.DatabaseError) {
        throw new FailAs(`${this.#where()}/${database}: ${this.#redact(err.message)}`, { cause: err });
      }
      if (err instanceof DatasaverError) throw err;
      // The connection dropped mid-query (server restart, network): a connection problem, exit 3.
      throw new ConnectionError(
        `lost the connection to ${this.#where()}/${database}: ${this.#redact(errorMessage(err))}`,
        { cause: err },
      );
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      await client.end().catch(() => {});
    }
  }

  /**
   * Connects like libpq would for the configured sslmode (the dump tools use libpq itself): `prefer`, the
   * default, tries TLS and falls back to a plain connection only when the server has no TLS; `allow` tries
   * plain first and TLS if the server insists; `require` encrypts without checking the certificate;
   * `verify-ca`/`verify-full` check it against the system's CA store.
   */
  async #connect(database: string): Promise<pg.Client> {
    const c = this.#target.connection;
    const mode = c.sslmode ?? process.env.PGSSLMODE ?? 'prefer';
    const tls = { rejectUnauthorized: false };
    const attempts: (false | { rejectUnauthorized: boolean })[] =
      mode === 'disable'
        ? [false]
        : mode === 'allow'
          ? [false, tls]
          : mode === 'prefer'
            ? [tls, false]
            : mode === 'require'
              ? [tls]
              : [{ rejectUnauthorized: true }];
    for (let i = 0; ; i++) {
      const client = new pg.Client({
        host: c.host,
        port: c.port,
        user: c.user,
        database,
        password: c.password?.reveal(),
        application_name: 'datasaver',
        connectionTimeoutMillis: 10_000,
        ssl: attempts[i]!,
      });
      client.on('error', () => {}); // a dropped idle connection surfaces through the pending query instead
      try {
        await client.connect();
        return client;
      } catch (err) {
        await client.end().catch(() => {});
        const message = errorMessage(err);
        const retry =
          i + 1 < attempts.length &&
          (attempts[i] ? /does not support SSL/i.test(message) : /no encryption|SSL/i.test(message));
        if (!retry) throw this.#connectionError(err, database);
      }
    }
  }

  #connectionError(err: unknown, database: string): ConnectionError {
    const e = err as Error & { code?: string };
    const user = this.#target.connection.user ?? 'the default user';
    const where = this.#where();
    const byCode: Record<string, [string, string]> = {
      '28P01': [
        `authentication failed for user ${user} on ${where}`,
        'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
      ],
      '28000': [
        `${where} refused user ${user}: ${e.message}`,
        "check the server's pg_hba.conf and the user name",
      ],
      '3D000': [
        `database ${database} does not exist on ${where}`,
        'check DATASAVER_DB_NAME (or the database in the URL)',
      ],
      ECONNREFUSED: [
        `cannot connect to PostgreSQL at ${where}: connection refused`,
        'check that the server runs and DATASAVER_DB_HOST/PORT',
      ],
      ENOTFOUND: [`cannot resolve host ${this.#target.connection.host}`, 'check DATASAVER_DB_HOST'],
      EAI_AGAIN: [`cannot resolve host ${this.#target.connection.host}`, 'check DATASAVER_DB_HOST and DNS'],
    };
    const known = e.code ? byCode[e.code] : undefined;
    const [message, hint] = known ?? [
      `cannot connect to PostgreSQL at ${where}: ${this.#redact(e.message)}`,
      'check the connection settings and that the server is reachable',
    ];
    // Retrying cannot fix credentials, a missing database or a host name that does not exist.
    const transient = !['28P01', '28000', '3D000', 'ENOTFOUND'].includes(e.code ?? '');
    return new ConnectionError(message, { hint, cause: err, transient });
  }
}

/** What a failed restore left behind, for the error's hint. */
function restoreFailureHint(database: string, options: RestoreOptions): string {
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
function quoteConninfo(value: string): string {
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * Reads a plain-SQL dump to its end, collecting the `-- Name: x; Type: T; Schema: s` headers pg_dump
 * writes before each object, and requires pg_dump's completion marker at the end.
 */
async function inspectPlain(source: AsyncIterable<Buffer>): Promise<DumpInspection> {
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
