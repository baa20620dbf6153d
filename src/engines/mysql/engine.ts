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
 * A backup's facts are counted from the script as it streams to storage (dump-facts.ts: rows per table,
 * objects by kind), so they are exactly what a restore of it holds, at the cost of a byte scan and no
 * query. A restored copy's facts are read back with the same definitions (restored-facts.ts), every table
 * counted exactly, for a restore drill to compare.
 *
 * The password reaches the tools through a `--defaults-extra-file` (mode 0600 in a private temp dir,
 * removed when the tool has exited), never through argv or the environment.
 */

import { basename } from 'node:path';
import {
  BackupError,
  ConnectionError,
  DestinationError,
  RestoreError,
  UsageError,
} from '../../util/errors.ts';
import { describeExit, feedStdin } from '../../util/process.ts';
import type {
  DatabaseFacts,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreOptions,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { dumpArgs } from './args.ts';
import { mysqlDescriptor } from './descriptor.ts';
import { MysqlDumpCounter } from './dump-facts.ts';
import { clientMessage } from './errors.ts';
import { inspectMysqlDump } from './inspect.ts';
import { eachLine, replay } from './lines.ts';
import { readRestoredFacts } from './restored-facts.ts';
import { MysqlRunner } from './runner.ts';
import {
  DEFAULTS_LINE,
  dropBeforeCreateDatabase,
  peekDumpKind,
  restoreFailureHint,
  unnameAlterDatabase,
} from './script.ts';
import { COUNT_BATCH, countRowsSql, ident, literal, objectCountSql, SYSTEM_SCHEMAS } from './sql.ts';
import { MysqlTools, type ResolvedTool } from './tools.ts';

/** InnoDB tables up to this many estimated rows get a count(*) for the manifest's facts. */
const COUNT_MAX_ROWS = 100_000;
const COUNT_MAX_TABLES = 1_000;
/** Engines whose information_schema row count is a count, not an estimate. */
const EXACT_ROW_ENGINES = ['MyISAM', 'Aria', 'MEMORY'];

type Signal = { signal?: AbortSignal | undefined };

export class MysqlEngine implements Engine {
  readonly descriptor = mysqlDescriptor;
  readonly #target: EngineTarget;
  readonly #tools: MysqlTools;
  readonly #run: MysqlRunner;

  constructor(target: EngineTarget) {
    this.#target = target;
    this.#tools = new MysqlTools(target.toolDir);
    this.#run = new MysqlRunner(target);
  }

  async preflight(options: Signal = {}): Promise<ServerInfo> {
    const { dump, client } = await this.#tools.backupTools();
    const version = await this.#run.query(client, 'SELECT VERSION()', { ...options, failAs: BackupError });
    const serverVersion = version[0]?.[0];
    if (!serverVersion) throw new BackupError(`${this.#where()} did not report its version`);
    const databases = this.#databases();
    if (databases) {
      const rows = await this.#run.query(
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
      const ssl = await this.#run.query(client, "SHOW SESSION STATUS LIKE 'Ssl_cipher'", {
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
    const { client } = await this.#tools.backupTools();
    const databases = this.#databases();
    const filter = databases
      ? `TABLE_SCHEMA IN (${databases.map(literal).join(', ')})`
      : `TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(literal).join(', ')})`;
    const rows = await this.#run.query(
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
    for (let i = 0; i < toCount.length; i += COUNT_BATCH) {
      const batch = toCount.slice(i, i + COUNT_BATCH);
      try {
        const counted = await this.#run.query(client, countRowsSql(batch), {
          ...options,
          failAs: BackupError,
        });
        for (const [j, n] of counted) {
          const t = batch[Number(j)];
          if (t) Object.assign(t, { rows: Number(n), exact: true });
        }
      } catch (err) {
        if (options.signal?.aborted || err instanceof ConnectionError) throw err;
        // A table dropped or locked meanwhile: its estimate will do.
      }
    }
    // Counted before the dump's snapshot (--single-transaction) while writers go on: never the
    // backup's exact counts (the dump reports those, counted from its script).
    return {
      exact: false,
      tables: tables.map((t) => ({ name: `${t.schema}.${t.table}`, rows: t.rows })),
    };
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.descriptor.extension(options.format);
    return this.#streamDump(options);
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    _options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.descriptor.extension(format);
    // A SQL script needs no tool to read: any client can replay what any dump tool wrote.
    return inspectMysqlDump(source);
  }

  async restoredFacts(targetDatabase?: string, options: Signal = {}): Promise<DatabaseFacts> {
    const client = await this.#tools.client();
    const databases = targetDatabase === undefined ? this.#databases() : [targetDatabase];
    return readRestoredFacts(this.#run, client, databases, options.signal);
  }

  async listDatabases(prefix: string, options: Signal = {}): Promise<string[]> {
    const client = await this.#tools.client();
    const rows = await this.#run.query(
      client,
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ${prefix.length}) = ${literal(prefix)} ORDER BY SCHEMA_NAME`,
      { ...options, failAs: RestoreError },
    );
    return rows.map((r) => String(r[0]));
  }

  async dropDatabase(name: string, options: Signal = {}): Promise<void> {
    await this.#dropDatabase(await this.#tools.client(), name, options);
  }

  async restoreTargetState(targetDatabase?: string, options: Signal = {}): Promise<RestoreTargetState> {
    const client = await this.#tools.client();
    const where = this.#where();
    const databases = targetDatabase === undefined ? this.#databases() : [targetDatabase];
    if (!databases) {
      // Every database: the server is the destination; it exists, and is empty when no user schema holds anything.
      const rows = await this.#run.query(
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
    const rows = await this.#run.query(
      client,
      `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (${list})`,
      { ...options, failAs: RestoreError },
    );
    const existing = databases.filter((d) => rows.some((r) => r[0] === d));
    const description = `${databases.length > 1 ? 'databases' : 'database'} ${databases.join(', ')} on ${where}`;
    if (existing.length === 0) return { description, exists: false, empty: true };
    const count = await this.#run.query(client, objectCountSql(`IN (${existing.map(literal).join(', ')})`), {
      ...options,
      failAs: RestoreError,
    });
    return { description, exists: true, empty: Number(count[0]?.[0] ?? 0) === 0 };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<void> {
    this.descriptor.extension(options.format);
    // Before anything is created or dropped: the client must be there.
    const client = await this.#tools.client();
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
        // Refused (no CREATE right): the place's fault, and nothing of the dump was read yet.
        await this.#run.query(client, `CREATE DATABASE ${ident(database)}`, {
          ...options,
          failAs: DestinationError,
        });
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
  async #dropDatabase(client: ResolvedTool, database: string, options: Signal): Promise<void> {
    const sessions = await this.#run.query(
      client,
      `SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ${literal(database)} AND ID <> CONNECTION_ID()`,
      { ...options, failAs: RestoreError },
    );
    if (sessions.length > 0) {
      const kill = sessions.map((r) => `KILL CONNECTION ${Number(r[0])};`).join(' ');
      // --force: a session that ended meanwhile is not an error.
      await this.#run.query(client, kill, { ...options, failAs: RestoreError, force: true }).catch((err) => {
        if (options.signal?.aborted) throw err;
      });
    }
    await this.#run.query(client, `DROP DATABASE IF EXISTS ${ident(database)}`, {
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
    const { p, close } = await this.#run.start(client, args, { stdin: 'pipe', stdout: 'ignore' }, signal);
    try {
      await feedStdin([p.child], script, signal);
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new RestoreError(
          `${basename(client.command)} ${describeExit(exit)}: ${this.#run.redact(clientMessage(p.stderr.text())) || 'no message'}`,
          { hint },
        );
      }
    } finally {
      await close();
    }
  }

  /**
   * "All databases" means every user database, named: `--all-databases` would also dump the `mysql`
   * system schema, whose restore replaces every account and grant of the destination server (possibly
   * the one datasaver connects with). Accounts and grants are not part of a backup.
   */
  async #userDatabases(client: ResolvedTool, signal: AbortSignal | undefined): Promise<string[]> {
    const rows = await this.#run.query(
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
    const { dump: tool, client } = await this.#tools.backupTools();
    const database = this.#singleDatabase();
    if (database !== undefined) {
      // A one-database script has no CREATE DATABASE: carry the database's defaults, which decide the
      // character set of routine parameters and of tables created later, to wherever it is restored.
      const rows = await this.#run.query(
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
    // Counted as the script passes: its exact facts, reported once the tool has succeeded.
    const counter = options.onFacts ? new MysqlDumpCounter(database) : undefined;
    const { p, close, forgetPassword } = await this.#run.start(tool, args, {}, signal);
    try {
      let flowing = false;
      for await (const chunk of p.child.stdout!) {
        // The dump is flowing, so the tool has read its options and connected: the password file
        // need not outlive that (a dump can run for hours, and a SIGKILL would leave it behind).
        if (!flowing) {
          flowing = true;
          await forgetPassword();
        }
        counter?.write(chunk as Buffer);
        yield chunk as Buffer;
      }
      const exit = await p.exited;
      signal?.throwIfAborted();
      if (exit.code !== 0) {
        throw new BackupError(
          `${basename(tool.command)} ${describeExit(exit)}: ${this.#run.redact(p.stderr.text()) || 'no message'}`,
          { hint: 'the backup was not committed; see the message above' },
        );
      }
      if (counter) options.onFacts?.(counter.facts());
    } finally {
      await close();
    }
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
    return this.#run.server.where;
  }

  #user(): string {
    return this.#run.server.user;
  }
}

export function createMysqlEngine(target: EngineTarget): Engine {
  return new MysqlEngine(target);
}
