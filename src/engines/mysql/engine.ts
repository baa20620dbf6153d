/**
 * MySQL/MariaDB engine: mariadb-dump (or mysqldump) writes a SQL script for backups; the mariadb (or mysql)
 * client replays it for restores and runs the few control queries (versions, facts, create/drop database)
 * in batch mode. No driver: the client tools speak every authentication plugin the server may ask for.
 *
 * One configured database is dumped without `--databases`, so the script holds no database name and can be
 * restored under another one (except in the `ALTER DATABASE` lines mysqldump puts around routines whose
 * collation differs from the database's: the restore drops the name from those); a list uses `--databases`, no database `--all-databases`, and those scripts
 * create and select their databases themselves. Before a one-database script datasaver puts one line,
 * `ALTER DATABASE CHARACTER SET ... COLLATE ...`, so the database it is restored into gets the source's
 * defaults (they decide the character set of routine parameters and of tables created later).
 *
 * Restores replay the script through the client, which stops at the first failing statement. MySQL commits
 * every DDL statement at once, so a failed restore leaves the destination partially restored (the error's
 * hint says so); the scripts drop each table before creating it, so restoring over existing objects works.
 *
 * The password reaches the tools through a `--defaults-extra-file` (mode 0600 in a private temp dir,
 * removed when the tool has exited), never through argv or the environment.
 */

import { constants } from 'node:fs';
import { access, rm, writeFile } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { BackupError, ConnectionError, RestoreError, UsageError } from '../../util/errors.ts';
import { failpoint } from '../../util/failpoint.ts';
import { makePrivateTempDir } from '../../util/private-temp.ts';
import {
  describeExit,
  type Exit,
  feedStdin,
  killIfRunning,
  runTool,
  type Spawned,
  spawnTool,
  type Tool,
  toolMissing,
} from '../../util/process.ts';
import { redact, type Secret } from '../../util/secret.ts';
import { MYSQL_ENV, type ToolEnv, toolEnv } from '../../util/tool-env.ts';
import type {
  ConnectionConfig,
  DatabaseFacts,
  DumpEntry,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreCapabilities,
  RestoreOptions,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { mysqlDescriptor } from './descriptor.ts';

const PACKAGE = 'mariadb-client';
const DUMP_TOOLS = ['mariadb-dump', 'mysqldump'];
const CLIENT_TOOLS = ['mariadb', 'mysql'];
/** Schemas of the server itself: never counted as user data, never dropped by a restore. */
const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
/**
 * The line datasaver puts before a one-database dump: the database's default character set and collation,
 * applied to whichever database the script is restored into (the client's default database).
 */
const DEFAULTS_LINE = 'ALTER DATABASE';
/** Every mysqldump/mariadb-dump script ends with this comment (`-- Dump completed on <date>`). */
const DUMP_COMPLETE = '-- Dump completed';
const DUMP_COMPLETE_LINE = /^-- Dump completed(?: on \d{4}-\d{2}-\d{2} [ \d]\d:\d{2}:\d{2})?\s*$/;
/** InnoDB tables up to this many estimated rows get a count(*) for the manifest's facts. */
const COUNT_MAX_ROWS = 100_000;
const COUNT_MAX_TABLES = 1_000;
/** Engines whose information_schema row count is a count, not an estimate. */
const EXACT_ROW_ENGINES = ['MyISAM', 'Aria', 'MEMORY'];

type Signal = { signal?: AbortSignal | undefined };
type FailAs = typeof BackupError | typeof RestoreError;

/** MariaDB's tools and Oracle MySQL's differ in a few options (TLS, GTIDs, column statistics). */
export type Flavour = 'mariadb' | 'mysql';

export interface ToolInfo {
  flavour: Flavour;
  /** For the manifest: `mariadb-dump 10.19 (MariaDB 10.11.19)`, `mysqldump 8.0.36 (MySQL)`. */
  version: string;
  /** Major version of the product the tool comes with (10 for MariaDB 10.11, 8 for MySQL 8.0). */
  major: number;
}

interface ResolvedTool extends Tool, ToolInfo {}

/** What a dump script holds: one database without its name, or databases it creates and selects itself. */
export type DumpKind = 'database' | 'databases';

export class MysqlEngine implements Engine {
  readonly name = 'mysql';
  readonly formats = mysqlDescriptor.formatNames;
  readonly #target: EngineTarget;
  #dumpTool: Promise<ResolvedTool> | undefined;
  #clientTool: Promise<ResolvedTool> | undefined;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  extension(format: string): string {
    return mysqlDescriptor.extension(format);
  }

  restoreCapabilities(format: string, database: string | null): RestoreCapabilities {
    return mysqlDescriptor.restoreCapabilities(format, database);
  }

  async preflight(options: Signal = {}): Promise<ServerInfo> {
    const { dump, client } = await this.#backupTools();
    const version = await this.#query(client, 'SELECT VERSION()', { ...options, failAs: BackupError });
    const serverVersion = version[0]?.[0];
    if (!serverVersion) throw new BackupError(`${this.#where()} did not report its version`);
    const databases = this.#databases();
    if (databases) {
      const rows = await this.#query(
        client,
        `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${databases.map(literal).join(', ')})`,
        { ...options, failAs: BackupError },
      );
      // information_schema compares without regard to case; the dump tool does not.
      const found = new Set(rows.map((r) => r[0]));
      const missing = databases.filter((d) => !found.has(d));
      if (missing.length > 0) {
        throw new ConnectionError(
          `${missing.length > 1 ? 'databases' : 'database'} ${missing.join(', ')} ${missing.length > 1 ? 'do' : 'does'} not exist on ${this.#where()} (or user ${this.#user()} cannot see ${missing.length > 1 ? 'them' : 'it'})`,
          {
            hint: "check DATASAVER_DB_NAME (or the database in the URL) and the user's grants; leave it unset to back up every database",
            transient: false,
          },
        );
      }
    }
    if (this.#target.connection.tls && client.flavour === 'mariadb') {
      // MariaDB's --ssl falls back to a plain connection when the server has no TLS: check it took.
      const ssl = await this.#query(client, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", {
        ...options,
        failAs: BackupError,
      });
      if (!ssl[0]?.[1]) {
        throw new ConnectionError(
          `${this.#where()} did not encrypt the connection although TLS is required`,
          {
            hint: 'enable TLS on the server (ssl_cert/ssl_key), or unset DATASAVER_DB_TLS',
            transient: false,
          },
        );
      }
    }
    return { serverVersion, toolVersion: dump.version };
  }

  async facts(options: Signal = {}): Promise<DatabaseFacts> {
    const { client } = await this.#backupTools();
    const databases = this.#databases();
    const filter = databases
      ? `TABLE_SCHEMA IN (${databases.map(literal).join(', ')})`
      : `TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(literal).join(', ')})`;
    const rows = await this.#query(
      client,
      `SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE, ''), IFNULL(TABLE_ROWS, 0) FROM information_schema.TABLES
        WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND ${filter} ORDER BY TABLE_SCHEMA, TABLE_NAME`,
      { ...options, failAs: BackupError },
    );
    const tables = rows
      .filter((r) => !databases || databases.includes(r[0]!))
      .map((r) => ({ schema: r[0]!, table: r[1]!, engine: r[2]!, rows: Number(r[3]), exact: false }));
    for (const t of tables) t.exact = EXACT_ROW_ENGINES.includes(t.engine);
    // InnoDB only estimates its row count; counting small tables is cheap and brings them closer.
    const toCount = tables
      .filter((t) => !t.exact && t.engine === 'InnoDB' && t.rows <= COUNT_MAX_ROWS)
      .slice(0, COUNT_MAX_TABLES);
    for (let i = 0; i < toCount.length; i += 50) {
      const batch = toCount.slice(i, i + 50);
      const sql = batch
        .map((t, j) => `SELECT ${j}, COUNT(*) FROM ${ident(t.schema)}.${ident(t.table)}`)
        .join(' UNION ALL ');
      try {
        for (const [j, n] of await this.#query(client, sql, { ...options, failAs: BackupError })) {
          const t = batch[Number(j)];
          if (t) Object.assign(t, { rows: Number(n), exact: true });
        }
      } catch (err) {
        if (options.signal?.aborted || err instanceof ConnectionError) throw err;
        // A table dropped or locked meanwhile: its estimate will do.
      }
    }
    // Counted before the dump's snapshot (--single-transaction) while writers go on: never the
    // backup's exact counts.
    return {
      exact: false,
      tables: tables.map((t) => ({ name: `${t.schema}.${t.table}`, rows: t.rows })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.extension(options.format);
    return this.#streamDump(options);
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    _options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.extension(format);
    // A SQL script needs no tool to read: any client can replay what any dump tool wrote.
    return inspectMysqlDump(source);
  }

  async restoreTargetState(targetDatabase?: string, options: Signal = {}): Promise<RestoreTargetState> {
    const client = await this.#client();
    const where = this.#where();
    const databases = targetDatabase === undefined ? this.#databases() : [targetDatabase];
    if (!databases) {
      // Every database: the server is the destination; it exists, and is empty when no user schema holds anything.
      const rows = await this.#query(
        client,
        objectCountSql(`NOT IN (${SYSTEM_SCHEMAS.map(literal).join(', ')})`),
        {
          ...options,
          failAs: RestoreError,
        },
      );
      return {
        description: `all databases on ${where}`,
        exists: true,
        empty: Number(rows[0]?.[0] ?? 0) === 0,
      };
    }
    const list = databases.map(literal).join(', ');
    const rows = await this.#query(
      client,
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${list})`,
      { ...options, failAs: RestoreError },
    );
    const existing = databases.filter((d) => rows.some((r) => r[0] === d));
    const description = `${databases.length > 1 ? 'databases' : 'database'} ${databases.join(', ')} on ${where}`;
    if (existing.length === 0) return { description, exists: false, empty: true };
    const count = await this.#query(client, objectCountSql(`IN (${existing.map(literal).join(', ')})`), {
      ...options,
      failAs: RestoreError,
    });
    return { description, exists: true, empty: Number(count[0]?.[0] ?? 0) === 0 };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<void> {
    this.extension(options.format);
    // Before anything is created or dropped: the client must be there.
    const client = await this.#client();
    const it = source[Symbol.asyncIterator]();
    try {
      const { head, kind } = await peekDumpKind(it);
      const input = replay(head, it);
      if (kind === 'databases') {
        this.#checkMultiDatabaseRestore(options);
        const hint = options.dropExisting
          ? 'the databases in the backup were dropped and recreated as the restore reached them: they are now partially restored; fix the cause and restore again with --drop-existing'
          : 'the databases in the backup may be partially restored (MySQL commits every CREATE at once, a restore cannot be one transaction); fix the cause and restore again, with --drop-existing to start clean';
        // The script creates its databases (IF NOT EXISTS); dropping them first is done in stream, as it names them.
        const script = options.dropExisting ? eachLine(input, dropBeforeCreateDatabase) : input;
        await this.#replay(client, script, undefined, options, hint);
        return;
      }
      const database = options.targetDatabase ?? this.#singleDatabase();
      if (database === undefined) {
        throw new UsageError(
          `this backup holds one database, and target ${this.#target.name} names ${this.#databases() ? 'several' : 'none'}`,
          { hint: 'name the database to restore into with --target-db NAME' },
        );
      }
      if (options.dropExisting) await this.#dropDatabase(client, database, options);
      if (options.dropExisting || options.create) {
        await this.#query(client, `CREATE DATABASE ${ident(database)}`, { ...options, failAs: RestoreError });
      }
      await this.#replay(
        client,
        eachLine(input, unnameAlterDatabase),
        database,
        options,
        restoreFailureHint(database, options),
      );
    } finally {
      await it.return?.().catch(() => {});
    }
  }

  /** A script made with --databases/--all-databases restores into the databases it names, nowhere else. */
  #checkMultiDatabaseRestore(options: RestoreOptions): void {
    if (options.targetDatabase !== undefined) {
      throw new UsageError(
        `cannot restore into ${options.targetDatabase}: this backup holds several databases (it was made with --databases or --all-databases) and restores into the databases it names`,
        {
          hint: 'restore without --target-db (with --drop-existing to replace them), or point a target at another server',
        },
      );
    }
    const single = this.#singleDatabase();
    if (single !== undefined) {
      throw new UsageError(
        `cannot restore into database ${single}: this backup holds several databases and restores into the databases it names`,
        {
          hint: "restore it through a target whose database setting lists the backup's databases, or is unset for all databases",
        },
      );
    }
  }

  /** Drops `database`, ending the other sessions that use it first (best effort: needs PROCESS/CONNECTION ADMIN). */
  async #dropDatabase(client: ResolvedTool, database: string, options: RestoreOptions): Promise<void> {
    const sessions = await this.#query(
      client,
      `SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ${literal(database)} AND ID <> CONNECTION_ID()`,
      { ...options, failAs: RestoreError },
    );
    if (sessions.length > 0) {
      const kill = sessions.map((r) => `KILL CONNECTION ${Number(r[0])};`).join(' ');
      // --force: a session that ended meanwhile is not an error.
      await this.#query(client, kill, { ...options, failAs: RestoreError, force: true }).catch((err) => {
        if (options.signal?.aborted) throw err;
      });
    }
    await this.#query(client, `DROP DATABASE IF EXISTS ${ident(database)}`, {
      ...options,
      failAs: RestoreError,
    });
  }

  /** Feeds a SQL script to the client; it stops at the first failing statement. */
  async #replay(
    client: ResolvedTool,
    script: AsyncIterable<Buffer>,
    database: string | undefined,
    options: RestoreOptions,
    hint: string,
  ): Promise<void> {
    const { signal } = options;
    const args = [
      '--connect-timeout=10',
      // Binary mode: no client commands from the script (storage is untrusted: `\!`, `system` and `source`
      // would reach the shell and the file system), NUL bytes and \r pass as they are.
      '--binary-mode',
      '--default-character-set=utf8mb4',
      '--max-allowed-packet=1G',
    ];
    if (database !== undefined) args.push(`--database=${database}`);
    const { p, close } = await this.#start(client, args, { stdin: 'pipe', stdout: 'ignore' }, signal);
    try {
      await feedStdin([p.child], script, signal);
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new RestoreError(
          `${basename(client.command)} ${describeExit(exit)}: ${this.#redact(clientMessage(p.stderr.text())) || 'no message'}`,
          { hint },
        );
      }
    } finally {
      await close();
    }
  }

  /**
   * Starts `tool` with the password's option file and the connection's arguments before `args`; it is
   * killed when `signal` aborts. `close()` stops it if it still runs and removes the option file; call it
   * in a `finally`. `forgetPassword()` removes the file early, once the tool has read it.
   */
  async #start(
    tool: ResolvedTool,
    args: string[],
    spawn: { stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' },
    signal: AbortSignal | undefined,
  ): Promise<{ p: Spawned; close: () => Promise<void>; forgetPassword: () => Promise<void> }> {
    signal?.throwIfAborted();
    const file = await createOptionFile(this.#target.connection.password);
    let p: Spawned;
    try {
      p = spawnTool(tool, [...file.args, ...connectionArgs(this.#target.connection, tool.flavour), ...args], {
        env: this.#env(),
        ...spawn,
      });
    } catch (err) {
      await file.remove();
      throw err;
    }
    const onAbort = () => killIfRunning(p.child);
    signal?.addEventListener('abort', onAbort, { once: true });
    return {
      p,
      forgetPassword: file.remove,
      close: async () => {
        signal?.removeEventListener('abort', onAbort);
        killIfRunning(p.child); // the consumer stopped early or failed: do not leave the tool running
        await p.exited.catch(() => {});
        await file.remove();
      },
    };
  }

  /**
   * "All databases" means every user database, named: `--all-databases` would also dump the `mysql`
   * system schema, whose restore replaces every account and grant of the destination server (possibly
   * the one datasaver connects with). Accounts and grants are not part of a backup.
   */
  async #userDatabases(client: ResolvedTool, signal: AbortSignal | undefined): Promise<string[]> {
    const rows = await this.#query(
      client,
      'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME',
      {
        signal,
        failAs: BackupError,
      },
    );
    const names = rows.map((r) => r[0]!).filter((n) => !SYSTEM_SCHEMAS.includes(n.toLowerCase()));
    if (names.length === 0)
      throw new BackupError(`${this.#target.name}: the server holds no user database to back up`);
    return names;
  }

  /** Spawns the dump tool and streams its output; the stream fails (before it ends) if the tool fails. */
  async *#streamDump(options: DumpOptions): AsyncGenerator<Buffer> {
    const { signal } = options;
    signal?.throwIfAborted();
    const { dump: tool, client } = await this.#backupTools();
    const database = this.#singleDatabase();
    if (database !== undefined) {
      // A one-database script has no CREATE DATABASE: carry the database's defaults, which decide the
      // character set of routine parameters and of tables created later, to wherever it is restored.
      const rows = await this.#query(
        client,
        `SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${literal(database)}`,
        { signal, failAs: BackupError },
      );
      const row = rows.find((r) => r[0] === database);
      if (row && /^\w+$/.test(row[1] ?? '') && /^\w+$/.test(row[2] ?? '')) {
        yield Buffer.from(`${DEFAULTS_LINE} CHARACTER SET ${row[1]} COLLATE ${row[2]};\n`);
      }
    }
    const databases = this.#databases();
    const args = dumpArgs(
      tool,
      databases ?? (await this.#userDatabases(client, signal)),
      options.schemaOnly,
      {
        several: databases === undefined,
      },
    );
    const { p, close, forgetPassword } = await this.#start(tool, args, {}, signal);
    try {
      let flowing = false;
      for await (const chunk of p.child.stdout!) {
        // The dump is flowing, so the tool has read its options and connected: the password file
        // need not outlive that (a dump can run for hours, and a SIGKILL would leave it behind).
        if (!flowing) {
          flowing = true;
          await forgetPassword();
        }
        yield chunk as Buffer;
      }
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new BackupError(
          `${basename(tool.command)} ${describeExit(exit)}: ${this.#redact(p.stderr.text()) || 'no message'}`,
          { hint: 'the backup was not committed; see the message above' },
        );
      }
    } finally {
      await close();
    }
  }

  /**
   * Runs SQL through the client in batch mode and returns the rows (tab-separated fields, unescaped).
   * Failing to connect is a ConnectionError; a failing statement is `failAs`.
   */
  async #query(
    client: ResolvedTool,
    sql: string,
    options: Signal & { failAs: FailAs; force?: boolean },
  ): Promise<string[][]> {
    const { signal } = options;
    const args = [
      '--connect-timeout=10',
      '--batch',
      '--skip-column-names',
      '--default-character-set=utf8mb4',
    ];
    if (options.force) args.push('--force');
    args.push(`--execute=${sql}`);
    const { p, close } = await this.#start(client, args, {}, signal);
    try {
      const out: Buffer[] = [];
      p.child.stdout?.on('data', (c: Buffer) => out.push(c));
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) throw this.#failure(p.stderr.text(), exit, options.failAs);
      return parseBatchOutput(Buffer.concat(out).toString('utf8'));
    } finally {
      await close();
    }
  }

  /** Turns a client's stderr into a ConnectionError (could not connect) or `FailAs` (a statement failed). */
  #failure(stderr: string, exit: Exit, FailAs: FailAs): Error {
    const text = this.#redact(clientMessage(stderr)) || describeExit(exit);
    const code = mysqlErrorCode(stderr);
    // The client numbers statement errors by script line; errors on connecting have no line.
    const duringStatement = / at line \d+/.test(stderr);
    const lost = code === 2006 || code === 2013;
    if (code !== undefined && (lost || (!duringStatement && isConnectionErrorCode(code)))) {
      return this.#connectionError(code, text);
    }
    return new FailAs(`${this.#where()}: ${text}`);
  }

  #connectionError(code: number, text: string): ConnectionError {
    const where = this.#where();
    const user = this.#user();
    const message = serverMessage(text);
    const known: Record<number, [string, string, boolean]> = {
      1045: [
        `authentication failed for user ${user} on ${where}: ${message}`,
        'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
        false,
      ],
      1698: [
        `authentication failed for user ${user} on ${where}: ${message}`,
        'check DATASAVER_DB_USER and DATASAVER_DB_PASSWORD',
        false,
      ],
      1044: [
        `${where} refused user ${user}: ${message}`,
        'grant the user access to the database, or check DATASAVER_DB_NAME',
        false,
      ],
      1049: [`${where}: ${message}`, 'check DATASAVER_DB_NAME (or the database in the URL)', false],
      1130: [
        `${where} does not accept user ${user} from this host: ${message}`,
        "check the host part of the user's account on the server",
        false,
      ],
      1129: [`${where} blocks this host: ${message}`, 'run FLUSH HOSTS on the server', false],
      1862: [
        `the password of user ${user} on ${where} has expired`,
        'set a new password for the user',
        false,
      ],
      2005: [
        `cannot resolve host ${this.#target.connection.host}: ${message}`,
        'check DATASAVER_DB_HOST',
        false,
      ],
      2026: [
        `TLS connection to ${where} failed: ${message}`,
        this.#target.connection.tlsCa
          ? `check that DATASAVER_DB_TLS_CA holds the CA that signed the server's certificate, and that the certificate names ${this.#target.connection.host ?? 'the host'}`
          : "check the server's TLS setup, or unset DATASAVER_DB_TLS",
        false,
      ],
      2059: [
        `the client tools cannot use the authentication method of user ${user} on ${where}: ${message}`,
        'install client tools that match the server, or change the authentication plugin of the user',
        false,
      ],
      2061: [
        `${where} requires a secure connection for user ${user}: ${message}`,
        'set DATASAVER_DB_TLS=true',
        false,
      ],
      3159: [`${where} requires TLS: ${message}`, 'set DATASAVER_DB_TLS=true', false],
    };
    const [msg, hint, transient] = known[code] ?? [
      `cannot connect to the MySQL/MariaDB server at ${where}: ${message}`,
      'check that the server runs and DATASAVER_DB_HOST/PORT',
      true,
    ];
    return new ConnectionError(msg, { hint, transient });
  }

  /** Both backup tools, dump tool first, shared by preflight and facts so both fail alike when one is missing. */
  async #backupTools(): Promise<{ dump: ResolvedTool; client: ResolvedTool }> {
    const dump = await this.#dump();
    return { dump, client: await this.#client() };
  }

  #dump(): Promise<ResolvedTool> {
    this.#dumpTool ??= this.#resolve(DUMP_TOOLS).catch((err) => {
      this.#dumpTool = undefined;
      throw err;
    });
    return this.#dumpTool;
  }

  #client(): Promise<ResolvedTool> {
    this.#clientTool ??= this.#resolve(CLIENT_TOOLS).catch((err) => {
      this.#clientTool = undefined;
      throw err;
    });
    return this.#clientTool;
  }

  /** The first of `names` in the target's tool directory (when set) or on PATH, with its version. */
  async #resolve(names: string[]): Promise<ResolvedTool> {
    const toolDir = this.#target.toolDir;
    const dirs = toolDir ? [toolDir] : (process.env.PATH ?? '').split(delimiter).filter(Boolean);
    for (const name of names) {
      for (const dir of dirs) {
        const command = join(dir, name);
        if (!(await isExecutable(command))) continue;
        const tool = { command, packageName: PACKAGE };
        const res = await runTool(tool, ['--version'], toolEnv(process.env)); // no connection, no secret
        const info = res.code === 0 ? parseToolVersion(name, res.stdout) : undefined;
        if (!info) {
          throw new BackupError(
            `cannot tell the version of ${command}: ${res.stderr || res.stdout || describeExit(res)}`,
          );
        }
        return { ...tool, ...info };
      }
    }
    const first = names[0]!;
    throw toolMissing({ command: toolDir ? join(toolDir, first) : first, packageName: PACKAGE }, undefined);
  }

  /** The configured databases; undefined means all of them. */
  #databases(): string[] | undefined {
    const list = (this.#target.connection.database ?? '')
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean);
    return list.length > 0 ? list : undefined;
  }

  #singleDatabase(): string | undefined {
    const list = this.#databases();
    return list?.length === 1 ? list[0] : undefined;
  }

  #where(): string {
    const c = this.#target.connection;
    return `${c.host ?? 'localhost'}:${c.port ?? 3306}`;
  }

  #user(): string {
    return this.#target.connection.user ?? 'the default user';
  }

  #redact(text: string): string {
    return redact(text, [this.#target.connection.password]);
  }

  /** The password is in the option file; MYSQL_PWD passes only for a target that has none. */
  #env(): ToolEnv {
    const own = this.#target.connection.password !== undefined;
    return toolEnv(process.env, { pass: own ? MYSQL_ENV : [...MYSQL_ENV, 'MYSQL_PWD'] });
  }
}

export function createMysqlEngine(target: EngineTarget): Engine {
  return new MysqlEngine(target);
}

/** What a failed single-database restore left behind, for the error's hint. */
function restoreFailureHint(database: string, options: RestoreOptions): string {
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

/** Counts tables, views, routines and events in the schemas matching `schemaCondition`. */
function objectCountSql(schemaCondition: string): string {
  return `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA ${schemaCondition})
    + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA ${schemaCondition})
    + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA ${schemaCondition})`;
}

/** Options that say where and as whom to connect; the password is in the option file. */
export function connectionArgs(c: ConnectionConfig, flavour: Flavour): string[] {
  const args: string[] = [];
  if (c.host !== undefined) args.push(`--host=${c.host}`);
  if (c.port !== undefined) args.push(`--port=${c.port}`);
  if (c.user !== undefined) args.push(`--user=${c.user}`);
  // MySQL's tools dropped --ssl for --ssl-mode; MariaDB's never had --ssl-mode. With a CA, the server's
  // certificate must chain to it and name the host.
  if (c.tlsCa !== undefined) {
    args.push(`--ssl-ca=${c.tlsCa}`);
    args.push(flavour === 'mariadb' ? '--ssl-verify-server-cert' : '--ssl-mode=VERIFY_IDENTITY');
  } else if (c.tls) {
    args.push(flavour === 'mariadb' ? '--ssl' : '--ssl-mode=REQUIRED');
  }
  return args;
}

/** The dump tool's options after the connection's: what to dump and how. */
export function dumpArgs(
  tool: ToolInfo,
  databases: string[] | undefined,
  schemaOnly: boolean,
  options: { several?: boolean } = {},
): string[] {
  const args = [
    '--single-transaction',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--default-character-set=utf8mb4',
    '--max-allowed-packet=1G',
  ];
  if (tool.flavour === 'mysql') {
    // A logical backup restores anywhere: no GTID_PURGED that only an empty replica would accept.
    args.push('--set-gtid-purged=OFF');
    // mysqldump 8 asks for histograms, which MariaDB servers do not have.
    if (tool.major >= 8) args.push('--column-statistics=0');
  }
  if (schemaOnly) args.push('--no-data');
  if (!databases) args.push('--all-databases');
  else if (databases.length === 1 && !options.several) args.push('--', databases[0]!);
  else args.push('--databases', '--', ...databases);
  return args;
}

/**
 * Reads `--version` output:
 *   mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
 *   mariadb-dump from 11.4.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)
 *   mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)
 *   mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)
 */
export function parseToolVersion(name: string, output: string): ToolInfo | undefined {
  const line = output.trim().split('\n')[0] ?? '';
  const major = (v: string) => Number(v.split('.')[0]);
  let m = /\bfrom\s+(\d+\.\d+(?:\.\d+)?)-MariaDB,?\s+client\s+(\d+(?:\.\d+)*)/i.exec(line);
  if (m) return { flavour: 'mariadb', version: `${name} ${m[2]} (MariaDB ${m[1]})`, major: major(m[1]!) };
  m = /\bVer\s+(\d+(?:\.\d+)*)\S*\s+Distrib\s+(\d+\.\d+(?:\.\d+)?)(\S*)/.exec(line);
  if (m) {
    const maria = /mariadb/i.test(m[3]!);
    return {
      flavour: maria ? 'mariadb' : 'mysql',
      version: `${name} ${m[1]} (${maria ? 'MariaDB' : 'MySQL'} ${m[2]})`,
      major: major(m[2]!),
    };
  }
  m = /\bVer\s+(\d+\.\d+(?:\.\d+)?)\S*\s+for\s/.exec(line);
  if (m) {
    const product = /percona/i.test(line) ? 'Percona Server' : 'MySQL';
    return { flavour: 'mysql', version: `${name} ${m[1]} (${product})`, major: major(m[1]!) };
  }
  return undefined;
}

/** An option file giving the password to every client tool: `[client]` with the value quoted and escaped. */
export function optionFileText(password: string): string {
  const escaped = password.replace(/[\\"\n\r\t\b]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\b':
        return '\\b';
      default:
        return `\\${c}`;
    }
  });
  return `[client]\npassword="${escaped}"\n`;
}

/**
 * Writes the password to a private option file for one tool run; `args` is `--defaults-extra-file=...`,
 * which the tools only accept as their first argument. Without a password there is no file.
 */
async function createOptionFile(
  password: Secret | undefined,
): Promise<{ args: string[]; remove: () => Promise<void> }> {
  if (!password) return { args: [], remove: async () => {} };
  const dir = await makePrivateTempDir('mysql'); // mode 0700, swept at the next start if we crash
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'client.cnf');
    await writeFile(file, optionFileText(password.reveal()), { mode: 0o600, flag: 'wx' });
    await failpoint('mysql.option-file');
    return { args: [`--defaults-extra-file=${file}`], remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The client's error lines. MariaDB's client also echoes the failing statement, which in a dump can be an
 * INSERT of megabytes: the `ERROR nnnn ... at line n: ... near '...'` line says enough.
 */
export function clientMessage(stderr: string): string {
  const errors = stderr.split('\n').filter((l) => /^ERROR \d+/.test(l));
  if (errors.length > 0) return errors.join('\n');
  const text = stderr.trim();
  return text.length > 2000 ? `...${text.slice(-2000)}` : text;
}

/** The MySQL error number in a tool's message (`ERROR 1045 (28000): ...`, `Got error: 2002: ...`). */
export function mysqlErrorCode(text: string): number | undefined {
  const m = /\b(?:ERROR|Got error:|Error:?)\s+(\d{4})\b/.exec(text) ?? /\((\d{4})\)\s*$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Errors that mean the session never started, or ended: the server is unreachable or refuses us. */
function isConnectionErrorCode(code: number): boolean {
  return (
    [1040, 1043, 1044, 1045, 1049, 1129, 1130, 1203, 1226, 1251, 1698, 1862, 3159].includes(code) ||
    (code >= 2000 && code < 3000)
  );
}

/** The server's words without the tool's prefix (`ERROR 1045 (28000): `, `mariadb-dump: Got error: 1045: `). */
function serverMessage(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line
    .replace(/^.*?\bERROR\s+\d+\s+\([0-9A-Z]+\)(?: at line \d+)?:\s*/, '')
    .replace(/^.*?\bGot error:\s+\d+:\s*/, '')
    .trim();
}

/** An SQL string literal. */
function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** An SQL identifier, quoted. */
function ident(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** Rows of `mysql --batch --skip-column-names`: tab-separated, with \t \n \\ \0 escaped. */
export function parseBatchOutput(text: string): string[][] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) =>
    line
      .split('\t')
      .map((f) =>
        f.replace(/\\([\\nt0])/g, (_, c: string) =>
          c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : '\\',
        ),
      ),
  );
}

/** Yields `head`, then the rest of `it`. */
async function* replay(head: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield r.value;
  }
}

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
async function peekDumpKind(it: AsyncIterator<Buffer>): Promise<{ head: Buffer[]; kind: DumpKind }> {
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
function dropBeforeCreateDatabase(head: string): string | undefined {
  const m = CREATE_DATABASE_LINE.exec(head);
  if (!m) return undefined;
  const name = m[1]!.slice(1, -1).replaceAll('``', '`');
  if (SYSTEM_SCHEMAS.includes(name.toLowerCase())) return undefined;
  return `DROP DATABASE IF EXISTS ${m[1]};\n`;
}

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

const BACKTICK_NAME = /^`((?:[^`]|``)+)`/;
const BARE_NAME = /^([^\s`(.;]+)/;

/** Reads `name`, `` `quoted name` `` or `schema.name` at the start of `text`. */
function readName(text: string): { schema?: string; name: string } | undefined {
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
const VERSIONED_CREATE = /^\/\*!\d+ CREATE\*\/.*?\/\*!\d+ (TRIGGER|EVENT|PROCEDURE|FUNCTION)\s+(.*)$/;
const ROUTINE = new RegExp(
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
