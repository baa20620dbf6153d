/**
 * SQLite: a consistent hot copy of a live database file, through SQLite's online backup API (node:sqlite,
 * no external tool). The copy is taken in one backup step, which holds a read transaction on the source
 * for its duration: the copy is one committed state of the database, whatever other processes write
 * meanwhile. In WAL mode writers go on during the copy; in rollback-journal mode they wait for it (their
 * busy timeout). The copy goes to a private temp file, is streamed into the pipeline, and is removed.
 *
 * Restore writes the database beside the destination file, checks it (`PRAGMA integrity_check`), fsyncs
 * it, removes the destination's stale `-wal`/`-shm`/`-journal` files and renames it into place, then
 * fsyncs the directory: readers see the old database or the new one, never a mix. A destination that
 * another process has open for writing is refused unless forced, because that process would go on
 * writing into a file that is no longer the database.
 *
 * A database file from storage (untrusted) runs no code on the restore host: no tool is started, node:sqlite
 * keeps extension loading off (`load_extension()` is refused), and datasaver only runs `PRAGMA
 * integrity_check` and reads `sqlite_schema` on it, so no trigger fires.
 *
 * Failure modes: ConnectionError when the database file does not exist or cannot be opened (exit 3);
 * BackupError when the file is not a SQLite database or the copy fails (exit 4); BackupError from inspect
 * when a dump fails `PRAGMA integrity_check` (verify: `structure`); UsageError for a relative path or a
 * destination in use; RestoreError when the restored file cannot be written.
 */

import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, readFile, readlink, realpath, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
import { pipeline } from 'node:stream/promises';
import { keepOwnership, publish, writeTemp } from '../../util/durable-file.ts';
import {
  BackupError,
  ConnectionError,
  errorMessage,
  RestoreError,
  UsageError,
  VerifyError,
} from '../../util/errors.ts';
import { makePrivateTempDir, sweepTempFilesBeside, tempFileBeside } from '../../util/private-temp.ts';
import type {
  DatabaseFacts,
  DumpEntry,
  DumpInspection,
  DumpOptions,
  Engine,
  EngineTarget,
  InspectOptions,
  RestoreOptions,
  RestoreTargetState,
  ServerInfo,
} from '../engine.ts';
import { noNamedDatabases } from '../scratch.ts';
import { sqliteDescriptor } from './descriptor.ts';

/** Files beside a database that belong to its current state. */
export const SIDE_FILES = ['-wal', '-shm', '-journal'] as const;
/** Waiting for a writer's lock before giving up (ms). */
const BUSY_TIMEOUT = 30_000;
/** Pages per backup step: all of them at once, so the copy is one snapshot. */
const ALL_PAGES = 2 ** 31 - 1;

export class SqliteEngine implements Engine {
  readonly descriptor = sqliteDescriptor;
  readonly #target: EngineTarget;

  constructor(target: EngineTarget) {
    this.#target = target;
  }

  async preflight(): Promise<ServerInfo> {
    const version = this.#withSource((db) => {
      db.prepare('SELECT count(*) FROM sqlite_schema').get(); // fails on a file that is not a database
      return String((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v);
    });
    return {
      serverVersion: `SQLite ${version}`,
      toolVersion: `node:sqlite ${process.versions.node} (SQLite ${version})`,
    };
  }

  /**
   * Counts of the live file, before the copy: writers may commit between them and the copy, so they are
   * not exact. The dump replaces them (`onFacts`) with exact counts read from the copy it streams.
   */
  async facts(): Promise<DatabaseFacts> {
    return this.#withSource((db) => ({ exact: false, tables: countRows(db) }));
  }

  dump(options: DumpOptions): AsyncIterable<Buffer> {
    this.descriptor.extension(options.format);
    if (options.schemaOnly) throw new UsageError('sqlite backups have no schema-only mode');
    return this.#dump(options.signal, options.onFacts);
  }

  async *#dump(signal: AbortSignal | undefined, onFacts: DumpOptions['onFacts']): AsyncGenerator<Buffer> {
    const dir = await makePrivateTempDir('sqlite');
    try {
      const copy = join(dir, 'copy.sqlite');
      const source = this.#open();
      try {
        await backup(source, copy, { rate: ALL_PAGES });
      } catch (err) {
        throw new BackupError(`copying SQLite database ${this.#path()} failed: ${errorMessage(err)}`, {
          cause: err,
        });
      } finally {
        source.close();
      }
      signal?.throwIfAborted();
      if (onFacts) {
        // The copy is exactly the bytes streamed below: its counts are the backup's.
        const db = new DatabaseSync(copy, { readOnly: true });
        try {
          onFacts({ exact: true, tables: countRows(db) });
        } finally {
          db.close();
        }
      }
      for await (const chunk of createReadStream(copy, { highWaterMark: 1024 * 1024, signal })) {
        yield chunk as Buffer;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async inspect(
    source: AsyncIterable<Buffer>,
    format: string,
    options: InspectOptions = {},
  ): Promise<DumpInspection> {
    this.descriptor.extension(format);
    const dir = await makePrivateTempDir('sqlite');
    try {
      const file = join(dir, 'check.sqlite');
      await pipeline(source, createWriteStream(file), { signal: options.signal });
      return { entries: checkDatabase(file) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async restoredFacts(targetDatabase?: string | undefined): Promise<DatabaseFacts> {
    const path = this.#destination(targetDatabase);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT });
    } catch (err) {
      throw new ConnectionError(`cannot open SQLite database ${path}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      return { exact: true, tables: countRows(db) };
    } catch (err) {
      throw new RestoreError(`cannot count the rows of ${path}: ${errorMessage(err)}`, { cause: err });
    } finally {
      db.close();
    }
  }

  async listDatabases(): Promise<string[]> {
    return noNamedDatabases(this.descriptor.label);
  }

  async dropDatabase(): Promise<void> {
    noNamedDatabases(this.descriptor.label);
  }

  async restoreTargetState(targetDatabase?: string | undefined): Promise<RestoreTargetState> {
    const path = this.#destination(targetDatabase);
    const description = `SQLite database file ${path}`;
    const info = await stat(path).catch(() => undefined);
    if (!info) return { description, exists: false, empty: true };
    if (info.size === 0) return { description, exists: true, empty: true };
    let empty: boolean;
    try {
      const db = new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT });
      try {
        empty = userTables(db).length === 0 && schemaCount(db) === 0;
      } finally {
        db.close();
      }
    } catch {
      empty = false; // not a database we can read: never "empty", so it is not replaced without --force
    }
    return { description, exists: true, empty };
  }

  async restore(source: AsyncIterable<Buffer>, options: RestoreOptions): Promise<void> {
    this.descriptor.extension(options.format);
    const path = this.#destination(options.targetDatabase);
    const dir = dirname(path);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      throw new UsageError(`cannot restore to ${path}: the directory ${dir} does not exist`);
    }
    if (!options.force) {
      const users = [...(await writersOf(path)), ...lockHolders(path)];
      if (users.length > 0) {
        throw new UsageError(`refusing to replace ${path}: it is open for writing by ${users.join(', ')}`, {
          hint: 'stop that process first (it would go on writing into the replaced file), restore to another file with --target-db PATH or --to-file PATH, or pass --force',
        });
      }
    }
    await sweepTempFilesBeside(path); // the copy a restore to this path that was killed left
    const temp = await tempFileBeside(path);
    const aside: string[] = [];
    try {
      await writeTemp(temp, source, { signal: options.signal, check: checkDatabase });
      const previous = await stat(path).catch(() => undefined);
      // The app must be able to open the restored file as it could the old one.
      if (previous) await keepOwnership(temp, previous);
      // Stale WAL or journal files of the old database would be applied to the new one. They are moved
      // aside first and only deleted once the new file is in place, so a failed rename loses nothing.
      for (const s of SIDE_FILES) {
        if (
          await rename(`${path}${s}`, `${temp}${s}.old`).then(
            () => true,
            () => false,
          )
        )
          aside.push(s);
      }
      await publish(temp, path);
      await Promise.all(aside.map((s) => rm(`${temp}${s}.old`, { force: true })));
      aside.length = 0;
    } catch (err) {
      await rm(temp, { force: true });
      for (const s of aside) await rename(`${temp}${s}.old`, `${path}${s}`).catch(() => {});
      // A source that differs from its manifest is the backup's fault (exit 5), not the restore's.
      if (err instanceof UsageError || err instanceof VerifyError || options.signal?.aborted) throw err;
      const why = err instanceof BackupError ? err.message : errorMessage(err);
      throw new RestoreError(`restoring to ${path} failed: ${why}`, {
        hint: `${path} was not changed`,
        cause: err,
      });
    }
  }

  #path(): string {
    const path = this.#target.connection.database;
    if (!path || !isAbsolute(path)) {
      throw new UsageError(`target ${this.#target.name} has no absolute SQLite database path`, {
        hint: 'set DATASAVER_DATABASE_URL=sqlite:///absolute/path.db',
      });
    }
    return path;
  }

  #destination(targetDatabase: string | undefined): string {
    if (targetDatabase === undefined) return this.#path();
    if (!isAbsolute(targetDatabase)) {
      throw new UsageError(
        `--target-db for a SQLite backup is a file path; '${targetDatabase}' is not absolute`,
        {
          hint: 'pass an absolute path such as /var/lib/app/restored.db',
        },
      );
    }
    return targetDatabase;
  }

  /** Opens the source read-only; a missing or unopenable file is a connection problem (exit 3). */
  #open(): DatabaseSync {
    const path = this.#path();
    try {
      // Read-only, but not immutable: a WAL database needs its -shm to see what writers committed.
      return new DatabaseSync(path, { readOnly: true, timeout: BUSY_TIMEOUT });
    } catch (err) {
      throw new ConnectionError(`cannot open SQLite database ${path}: ${errorMessage(err)}`, {
        hint: 'check the path in DATASAVER_DATABASE_URL (sqlite:///absolute/path.db) and that datasaver can read it (and its directory, for WAL files)',
        cause: err,
        transient: false,
      });
    }
  }

  #withSource<T>(fn: (db: DatabaseSync) => T): T {
    const db = this.#open();
    try {
      return fn(db);
    } catch (err) {
      if (err instanceof ConnectionError) throw err;
      throw new BackupError(`${this.#path()} is not a readable SQLite database: ${errorMessage(err)}`, {
        cause: err,
      });
    } finally {
      db.close();
    }
  }
}

export function createSqliteEngine(target: EngineTarget): Engine {
  return new SqliteEngine(target);
}

function countRows(db: DatabaseSync): { name: string; rows: number }[] {
  return userTables(db).map((name) => ({
    name,
    rows: Number((db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(name)}`).get() as { n: number }).n),
  }));
}

function userTables(db: DatabaseSync): string[] {
  return (
    db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
      )
      .all() as { name: string }[]
  ).map((r) => r.name);
}

function schemaCount(db: DatabaseSync): number {
  return Number(
    (
      db
        .prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .get() as { n: number }
    ).n,
  );
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Opens a database file and runs `PRAGMA integrity_check`; returns its schema as entries. */
function checkDatabase(file: string): DumpEntry[] {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { timeout: BUSY_TIMEOUT });
  } catch (err) {
    throw new BackupError(`not a SQLite database: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const rows = db.prepare('PRAGMA integrity_check').all() as { integrity_check: string }[];
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) {
      throw new BackupError(`PRAGMA integrity_check failed: ${problems.slice(0, 5).join('; ')}`);
    }
    return (
      db
        .prepare(
          "SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name",
        )
        .all() as { type: string; name: string }[]
    ).map((r) => ({ type: r.type.toUpperCase(), schema: '', name: r.name }));
  } catch (err) {
    if (err instanceof BackupError) throw err;
    // "database disk image is malformed", "file is not a database"...
    throw new BackupError(`not a valid SQLite database: ${errorMessage(err)}`, { cause: err });
  } finally {
    db.close();
  }
}

/**
 * Processes (other than this one) that have `path`, or its WAL or journal, open for writing. Linux only
 * (reads /proc), and only processes this one can see: an app in another container is found by
 * `lockHolders` instead.
 */
async function writersOf(path: string): Promise<string[]> {
  // /proc shows resolved paths: compare against the file's real path (a symlinked directory).
  const real = await realpath(path).catch(() => path);
  const files = new Set([real, `${real}-wal`, `${real}-journal`]);
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  const found: string[] = [];
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (!files.has(target)) continue;
      const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
      const flags = Number.parseInt(/^flags:\s*([0-7]+)/m.exec(info)?.[1] ?? '0', 8);
      // O_WRONLY (1) or O_RDWR (2).
      if ((flags & 0o3) === 0) continue;
      const command = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
      found.push(`pid ${pid} (${command})`);
      break;
    }
  }
  return found;
}

/**
 * Connections that hold the database right now, seen through SQLite's own locks (which work across
 * containers sharing the file): a writer in a transaction holds the write lock; in WAL mode, any other
 * open connection keeps the WAL in use, which `PRAGMA wal_checkpoint(TRUNCATE)` reports as busy.
 */
function lockHolders(path: string): string[] {
  // Opening a path that does not exist would create an empty database there.
  if (!existsSync(path)) return [];
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { timeout: 0 });
  } catch {
    return []; // no database there (or not one): nothing to protect from a writer
  }
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    const mode = (db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode;
    if (mode === 'wal') {
      const r = db.prepare('PRAGMA wal_checkpoint(TRUNCATE)').get() as { busy: number };
      if (r.busy) return ['another connection (it is reading or writing)'];
    }
    return [];
  } catch (err) {
    return /locked|busy/i.test(errorMessage(err)) ? ['another connection (the database is locked)'] : [];
  } finally {
    db.close();
  }
}
