/**
 * The engine contract: everything datasaver needs from a database, whatever the database. PostgreSQL,
 * MySQL/MariaDB, Redis and SQLite implement it, one folder each under src/engines/.
 * Jobs (src/jobs) orchestrate engines, the pipeline and storage and never call a dump tool themselves.
 *
 * An engine is bound to one target's connection settings (`createEngine(target)`). Every method that can
 * take long accepts an AbortSignal; aborting kills child processes, closes connections and rejects with
 * the signal's reason (an AbortError unless the caller gave another).
 *
 * The error classes, and what each means coming from an engine:
 *   - ConnectionError (exit 3): the server is unreachable, refuses the login, or the database (SQLite: the
 *     file) is missing; `transient` is false where retrying cannot help (credentials, a missing database,
 *     an unknown host).
 *   - ToolMissingError (exit 4, a BackupError): a client tool is not installed, or is too old for a backup
 *     it must read; its hint names the package to install.
 *   - BackupError (exit 4): a tool's version cannot be read, the dump tool is too old for the server, a
 *     control query or the dump failed, or a dump read back is broken.
 *   - RestoreError (exit 1): a restore or a control query on the restore path failed; its hint says what
 *     state the destination was left in.
 *   - UsageError (exit 1): the request cannot be done as asked (a format the engine does not have, an
 *     option the format or destination does not allow).
 * Messages never contain passwords: secrets reach child processes through their environment (allow-listed,
 * from util/tool-env.ts: a child never sees another's secret) or a private option file (mode 0600, removed
 * after use), never their argv.
 */

import type { Secret } from '../util/secret.ts';
import type { EngineDescriptor } from './descriptor.ts';

/**
 * How to reach the database. Every field is optional: the engine's defaults apply (libpq's for
 * PostgreSQL, localhost:3306 for MySQL, localhost:6379 for Redis).
 */
export interface ConnectionConfig {
  host: string | undefined;
  port: number | undefined;
  /**
   * PostgreSQL: the database; unset or `*` for the whole server (Engine.serverSet). MySQL: one
   * database, or several separated by commas; unset for all.
   * SQLite: the absolute path of the database file. Redis: unused (a backup holds every database).
   */
  database: string | undefined;
  user: string | undefined;
  password: Secret | undefined;
  /** libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); PostgreSQL only. */
  sslmode: string | undefined;
  /** Connect with TLS (Redis: `rediss://` or DATASAVER_DB_TLS; MySQL: DATASAVER_DB_TLS). */
  tls: boolean;
  /**
   * MySQL and Redis: a PEM file with the CA certificate(s) the server's certificate must chain to; with
   * it, the certificate and the host name are verified (and TLS is on). Without it, MySQL's TLS encrypts
   * without verifying, and Redis verifies against the system's CAs.
   */
  tlsCa: string | undefined;
}

/** A connection with nothing set: the engine's defaults for everything. */
export const NO_CONNECTION: Readonly<ConnectionConfig> = {
  host: undefined,
  port: undefined,
  database: undefined,
  user: undefined,
  password: undefined,
  sslmode: undefined,
  tls: false,
  tlsCa: undefined,
};

/** What an engine is bound to: the target's name (for messages), connection and client tool directory. */
export interface EngineTarget {
  name: string;
  connection: ConnectionConfig;
  /** Directory holding the engine's client tools, when they are not the ones on PATH. */
  toolDir: string | undefined;
}

/** Facts that identify the server and tools, recorded in the manifest. */
export interface ServerInfo {
  /** Server version as the server reports it, e.g. `15.18`. */
  serverVersion: string;
  /** Dump tool and its version, e.g. `pg_dump 15.18`. */
  toolVersion: string;
  /** What is set on the database itself (PostgreSQL), to carry to the database a restore creates. */
  databaseSettings?: DatabaseSettings | undefined;
}

/**
 * A PostgreSQL database's own properties: owner, `ALTER DATABASE … SET` (role null) and
 * `ALTER ROLE r IN DATABASE … SET` settings with their values as the server stores them, grants (null: the
 * default privileges; grantee null: PUBLIC) and comment.
 */
export interface DatabaseSettings {
  owner: string;
  settings: { role: string | null; name: string; value: string }[];
  grants:
    | { grantee: string | null; privilege: 'CONNECT' | 'CREATE' | 'TEMPORARY'; grantable: boolean }[]
    | null;
  comment: string | null;
}

/** Cheap facts about the database, recorded in the manifest for later verification. */
export interface DatabaseFacts {
  /** Per-table row counts (Redis: keys per logical database, named `db0`, `db1`...). */
  tables: { name: string; rows: number }[];
  /**
   * Objects counted by kind, for the kinds the engine records (PostgreSQL: `schemas`, `tables`, `views`,
   * `materialized views`, `functions`, `sequences`; Redis: keys by type, `string`, `hash`...). Absent when
   * the engine records none.
   */
  objects?: { kind: string; count: number }[] | undefined;
  /**
   * Sequence values (PostgreSQL: each sequence's `last_value`, or null before its first `nextval`), as text:
   * a bigint may pass what a JSON number holds exactly. In exact facts they are the dump's own, read from
   * its bytes (sequences are not transactional); absent when the dump could not be read for them.
   */
  sequences?: { name: string; value: string | null }[] | undefined;
  /**
   * True only when every count is what the dump holds: read from the dump's own copy or snapshot. Counts
   * taken from the live database around the dump (planner estimates, or counts before the dump's snapshot
   * while writers commit) are `false`, however close they are.
   */
  exact: boolean;
}

export interface DumpOptions {
  /** One of the engine's `formats`. */
  format: string;
  schemaOnly: boolean;
  signal?: AbortSignal | undefined;
  /** Called with exact facts read from what this dump holds, by engines that can count them cheaply. */
  onFacts?: ((facts: DatabaseFacts) => void) | undefined;
}

/** One entry of a dump's table of contents, as `restore --dry-run` and `verify` show it. */
export interface DumpEntry {
  /** Object type as the engine names it: TABLE, VIEW, FUNCTION, SCHEMA, TABLE DATA... */
  type: string;
  /** Schema or namespace; empty when the engine has none. */
  schema: string;
  name: string;
}

export interface InspectOptions {
  signal?: AbortSignal | undefined;
  /** The manifest's `toolVersion`: a reader too old for it fails with ToolMissingError, not a structure error. */
  dumpToolVersion?: string | undefined;
}

export interface DumpInspection {
  entries: DumpEntry[];
}

/** The state of the place a restore would write to. */
export interface RestoreTargetState {
  /** What is restored into, for messages: `database shop_restore on 127.0.0.1:5432`. */
  description: string;
  exists: boolean;
  /** No user objects in it (a freshly created database counts as empty). */
  empty: boolean;
}

export interface RestoreOptions {
  format: string;
  /** The manifest's `toolVersion`; checked against the restore tool before anything is changed. */
  dumpToolVersion?: string | undefined;
  /** Database to restore into; undefined means the target's configured database. */
  targetDatabase?: string | undefined;
  /** Create the database first (it does not exist). */
  create: boolean;
  /** Drop and recreate the database first, terminating its other connections. */
  dropExisting: boolean;
  /** Write into a non-empty database, replacing the objects the dump contains. */
  overwrite: boolean;
  /** `--force`: also replace a destination that is in use (a SQLite file another process writes). */
  force?: boolean | undefined;
  /** Parallel restore workers; > 1 may need a seekable file, which the engine spools to `tempDir`. */
  jobs: number;
  /**
   * Restore only these tables (their definitions and rows; not their indexes, constraints or triggers),
   * all in one schema. Only where `restoreCapabilities(format).tables`.
   */
  tables?: { schema: string; name: string }[] | undefined;
  tempDir?: string | undefined;
  /**
   * The backup's database settings, applied to a database the restore creates or recreates (and, with
   * `settingsToExisting`, to the existing one it restores into).
   */
  databaseSettings?: DatabaseSettings | undefined;
  /**
   * Apply `databaseSettings` to an existing database restored into as well: a whole-server set restored
   * onto a fresh server, whose own empty databases (PostgreSQL's `postgres`) hold none of the backup's
   * settings and grants. Without it a database restored into keeps its own.
   */
  settingsToExisting?: boolean | undefined;
  /** Leave out the owner, grants and settings that name roles missing on this server (instead of failing). */
  skipMissingRoles?: boolean | undefined;
  /**
   * Leave out who owns each object and the grants on it (PostgreSQL: `pg_restore --no-owner --no-acl`,
   * and a plain script's ownership and privilege statements), for a scratch server that has none of the
   * backup's roles: a restore drill. Engines whose dumps restore without roles ignore it.
   */
  skipOwnership?: boolean | undefined;
  /**
   * The destination is a scratch copy, thrown away afterwards (a restore drill's): the dump may stream
   * straight into the restore tool instead of being spooled and checked first (PostgreSQL), since a
   * restore that commits before its input was checked to the end harms nothing there, and the source's
   * error still fails it. Only with `create` and one job.
   */
  disposable?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** What a restore did besides restoring the dump, for its output. */
export interface RestoreReport {
  /** Database settings applied (`owner app`, `setting TimeZone = UTC`, `grant CONNECT to app`...). */
  applied: string[];
  /** Database settings left out because a role they name does not exist here. */
  skipped: string[];
}

/** What a restore of a dump in one format can do. */
export interface RestoreCapabilities {
  /**
   * Restoring over a destination that already holds data replaces what the dump contains. When false,
   * only an empty or recreated destination can be restored into (a plain SQL script cannot drop first).
   */
  overwrite: boolean;
  /** `jobs > 1` is used (parallel restore). */
  parallel: boolean;
  /** `tables` is used: some tables alone can be restored. */
  tables: boolean;
  /** What the restore destination is called in messages and hints: `database`, `server`, `file`. */
  destination: string;
  /**
   * `--target-db` restores the backup under another name. False where it is refused, so that no hint
   * suggests it: a Redis server, a MySQL backup of several or all databases (its script names them).
   */
  renames: boolean;
}

export interface Engine {
  /**
   * What the engine is, with no I/O (descriptor.ts): its name as stored in manifests, its formats, the
   * extension of each (`extension` throws UsageError for a format it lacks) and what a restore of each
   * can do (`restoreCapabilities`, read by restore and its hints before anything is touched).
   */
  readonly descriptor: EngineDescriptor;

  /**
   * Connects, checks credentials and that the database exists, and checks that the dump tool can dump
   * this server (e.g. pg_dump's major version >= the server's). Call before `dump`. Returns the server's
   * and the dump tool's versions (and PostgreSQL's database settings) for the manifest.
   * Throws ConnectionError for anything about reaching the server or finding the database (MySQL: also a
   * TLS connection the server did not encrypt); ToolMissingError when the dump tool (or the client that
   * runs the control queries) is not installed; BackupError when a tool's version cannot be read, the
   * dump tool is too old for the server, or a control query fails; UsageError when the target cannot be
   * dumped as configured (SQLite: no absolute path).
   */
  preflight(options?: { signal?: AbortSignal | undefined }): Promise<ServerInfo>;

  /**
   * Table row counts and the like, cheap enough to take before every backup: planner estimates or counts
   * of the live database, so `exact` is false (an engine with exact counts of the dump itself reports them
   * through `DumpOptions.onFacts`). Throws ConnectionError when the server cannot be reached,
   * ToolMissingError when the client tool is missing (MySQL), BackupError when a query fails or the
   * SQLite file is not a readable database, UsageError as `preflight` does.
   */
  facts(options?: { signal?: AbortSignal | undefined }): Promise<DatabaseFacts>;

  /**
   * Starts a dump and returns its raw bytes as a stream. Throws UsageError at once (before any stream)
   * when `format` is not one of `formats` or the engine has no such dump (SQLite: `schemaOnly`).
   * The stream errors with a BackupError (holding the tool's stderr, secrets redacted) if the tool exits
   * non-zero or is killed, or its output is not what it announced (Redis: the RDB's length, and an RDB
   * that fails its check as it streams); with ToolMissingError when the tool is not installed; with
   * ConnectionError when a query the dump needs first cannot reach the server (MySQL, and PostgreSQL's
   * snapshot for the facts). It errors before it ends, so a consumer that commits on end-of-stream never
   * commits a failed dump. Destroying the stream kills the tool.
   *
   * With `onFacts`, an engine that can count what this dump holds calls it once, after the dump's last
   * bytes and before the stream ends, with `exact: true` facts (PostgreSQL: counted in the dump's own
   * snapshot; Redis: from the RDB as it passes; SQLite: from the copy it streams). A failed dump reports
   * none.
   */
  dump(options: DumpOptions): AsyncIterable<Buffer>;

  /**
   * Reads a complete raw dump from `source` (consuming it to the end, even when the check itself needs
   * less) and checks its structure, returning its table of contents. Needs no database connection.
   * Throws BackupError when the dump is structurally broken (truncated, wrong format, a failed integrity
   * or checksum check), ToolMissingError when the reading tool is missing or older than
   * `dumpToolVersion`, UsageError when `format` is not one of `formats`; an error of `source` (a
   * VerifyError: the stored bytes differ from the manifest) is rethrown as it is.
   */
  inspect(source: AsyncIterable<Buffer>, format: string, options?: InspectOptions): Promise<DumpInspection>;

  /**
   * Whether the restore destination (`targetDatabase`, else the target's own database) exists and holds
   * anything; restore decides from it whether to create, refuse or overwrite. Changes nothing.
   * Throws ConnectionError when the server cannot be reached, RestoreError when a query fails,
   * ToolMissingError when the client tool is missing (MySQL), UsageError when `targetDatabase` cannot be
   * a destination of this engine (Redis: any; SQLite: a relative path). A SQLite file that cannot be read
   * as a database counts as not empty, so it is never replaced unasked.
   */
  restoreTargetState(
    targetDatabase?: string | undefined,
    options?: { signal?: AbortSignal | undefined },
  ): Promise<RestoreTargetState>;

  /**
   * The facts of a restored copy (`targetDatabase`, else the target's own database), read the way this
   * engine counts what a dump holds, so that a restore drill can compare them with the backup's exact
   * facts (jobs/facts-compare.ts). `exact: true`. Throws
   * ConnectionError when the copy cannot be reached, RestoreError when a query fails.
   */
  restoredFacts(
    targetDatabase?: string | undefined,
    options?: { signal?: AbortSignal | undefined },
  ): Promise<DatabaseFacts>;

  /**
   * The databases of this server whose names begin with `prefix`: on a drill server the user names,
   * the scratch databases drills made (jobs/drill-place.ts sweeps those a killed drill left). Changes
   * nothing. An engine whose server has no named databases (Redis) or no server (SQLite) throws
   * UsageError. Throws ConnectionError when the server cannot be reached, RestoreError when the query
   * fails.
   */
  listDatabases(prefix: string, options?: { signal?: AbortSignal | undefined }): Promise<string[]>;

  /**
   * Drops database `name` (a drill's scratch database), ending its other sessions first; nothing when it
   * does not exist. Throws as `listDatabases` does.
   */
  dropDatabase(name: string, options?: { signal?: AbortSignal | undefined }): Promise<void>;

  /**
   * Restores a raw dump from `source` into the destination. All-or-nothing where the format allows
   * (single transaction when `jobs` is 1). Checks the restore tool against `dumpToolVersion` before
   * creating or dropping anything (ToolMissingError, also when a tool is not installed). Throws
   * RestoreError with the tool's stderr, and a hint saying what state the destination was left in, when
   * the restore fails; ConnectionError when the server cannot be reached; UsageError, before anything is
   * changed, when the request cannot be done as asked (PostgreSQL: settings naming roles this server
   * lacks, without `skipMissingRoles`, or a `tables` entry that exists; MySQL: `targetDatabase` for a
   * backup of several databases; SQLite: a destination another process writes, without `force`).
   *
   * `source` comes from storage, which is untrusted: whatever it holds may change what is restored, but
   * never runs anything on this host (no client-side commands of psql or the mysql client; PostgreSQL
   * plain SQL that could lift psql's restricted mode is refused with a RestoreError before psql reads it).
   *
   * `source` is checked against the manifest as it flows and may fail anywhere up to its very end (a
   * VerifyError: the stored bytes differ, or decompress past `sizeBytes`); its last bytes arrive only
   * once it matched. So nothing may be committed before `source` has ended cleanly: a tool that commits
   * before reading its input to the end is fed from a spooled copy instead. A source error is rethrown
   * as it is. (MySQL commits as it goes, so there what ran before the failure stays.)
   * Returns what was done besides (PostgreSQL: the database settings applied and skipped).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: engines with nothing to report return nothing.
  restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<RestoreReport | void>;

  /**
   * Whole-server backup sets (PostgreSQL): every database of the server, each its own dump, plus the
   * server's globals (roles, memberships, tablespaces). Absent in engines whose backups are one dump
   * whatever they hold (MySQL's "all databases" is one script; Redis's RDB holds every database).
   */
  readonly serverSet?: ServerSet | undefined;
}

/**
 * What a whole-server backup set needs from the engine (Engine.serverSet). The set is one backup: jobs
 * dump the globals and each database through the same pipeline, each to its own object, and commit them
 * under one manifest (catalog/manifest.ts `set`).
 */
export interface ServerSet {
  /**
   * The target names no database (unset, or `*`): its backups are sets. False for a target bound to one
   * database, whose backups are single dumps (a set stored earlier can still be restored through it).
   */
  readonly wholeServer: boolean;

  /**
   * The globals script's format as manifests name it (`globals`), and its extension before compression,
   * one of the engine's dump extensions (`sql`: it is plain SQL), so its key reads as a datasaver object.
   */
  readonly globalsFormat: string;
  readonly globalsExtension: string;

  /**
   * What a set taken now would hold: every database that accepts connections and is not a template, in
   * name order, minus those named in `exclude`; those the backup user may not connect to are
   * `unreadable` (never an error: the set goes on without them, and says so). Also whether the user can
   * read role passwords. Throws ConnectionError when the server cannot be reached, BackupError when the
   * query fails.
   */
  members(exclude: readonly string[], options?: { signal?: AbortSignal | undefined }): Promise<ServerMembers>;

  /**
   * Whether database `name` is on the server at all, whatever it allows (a database renamed, or made a
   * template, is gone under this name; one that refuses connections for a moment is not). Throws
   * ConnectionError when the server cannot be reached, BackupError when the query fails.
   */
  databaseExists(name: string, options?: { signal?: AbortSignal | undefined }): Promise<boolean>;

  /**
   * An engine bound to database `name` of the same server, with the same connection, to preflight, read
   * facts from and dump it exactly as a target naming that database would.
   */
  database(name: string): Engine;

  /**
   * The server's globals as a plain SQL script (`pg_dumpall --globals-only`, with `--no-role-passwords`
   * when `rolePasswords` is false), streamed like `dump`, erroring before its end when the tool fails.
   */
  dumpGlobals(options: { rolePasswords: boolean; signal?: AbortSignal | undefined }): AsyncIterable<Buffer>;

  /**
   * Reads a globals script to its end and checks it: complete (its completion marker last) and made only
   * of statements a globals dump holds (roles, memberships, role settings and comments, tablespaces).
   * Throws BackupError naming the first statement that is not, or the missing marker. Its entries are
   * the roles and tablespaces it defines (type `ROLE`, `TABLESPACE`).
   */
  inspectGlobals(source: AsyncIterable<Buffer>, options?: InspectOptions): Promise<DumpInspection>;

  /**
   * Recreates on this server what a globals script defines, from storage (untrusted): the whole script is
   * read and checked as `inspectGlobals` does before anything is applied (RestoreError when it does not
   * check). Roles and tablespaces that exist here are left exactly as they are (no statement about them
   * runs) and reported; the others are created with their attributes, passwords, settings, comments and
   * memberships, roles in one transaction. Each statement runs alone through the extended protocol, so
   * nothing but the one statement that was checked can run, and no client-side command ever does.
   * Throws ConnectionError when the server cannot be reached, RestoreError when a statement fails (the
   * roles' transaction is rolled back; tablespaces created before stay, and the hint says so).
   */
  restoreGlobals(
    source: AsyncIterable<Buffer>,
    options?: { signal?: AbortSignal | undefined },
  ): Promise<GlobalsReport>;
}

/** What a whole-server backup holds (ServerSet.members). */
export interface ServerMembers {
  /** The databases to dump, in name order. */
  databases: string[];
  /** Databases left out because the target's exclude list names them. */
  excluded: string[];
  /** Databases the backup user may not read, and why (`no CONNECT privilege`). */
  unreadable: { database: string; reason: string }[];
  /** The user can read role passwords (pg_authid); else the globals are dumped without them. */
  rolePasswords: boolean;
}

/** What ServerSet.restoreGlobals did. */
export interface GlobalsReport {
  /** Roles created. */
  created: string[];
  /** Roles that existed and were left as they are. */
  existing: string[];
  /** Tablespaces created, and those that existed and were left as they are. */
  tablespacesCreated: string[];
  tablespacesExisting: string[];
  /** Statements left out, and why (`GRANT grp TO postgres: postgres existed`), for the output. */
  skipped: string[];
}
