/**
 * restore: checksum first (a damaged backup never touches the database), then stream the stored object
 * through the decompressor into the engine, hashing it again on the way and holding its end back until
 * the hash matched (pipeline/read.ts checkedDumpStream). Writing into a database that already holds objects needs an
 * explicit choice: overwrite (--force, or a typed confirmation on a terminal) or drop and recreate
 * (--drop-existing). A missing database is created.
 *
 * An encrypted backup is opened first (its manifest's sealed part, catalog/sealed.ts: a missing or wrong
 * key fails there, a ConfigError, before anything is read or written) and decrypted between the check
 * of its stored bytes and the decompressor; ciphertext that fails authentication fails the restore with
 * a VerifyError (`decrypt`) before its end reaches the engine.
 *
 * This module restores one dump: a one-dump backup, or one database of a whole-server backup set
 * (`database`). A whole set (its roles, then every database) is jobs/restore-set.ts.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Manifest } from '../catalog/manifest.ts';
import { backupParts, isBackupSet } from '../catalog/parts.ts';
import { openManifest } from '../catalog/sealed.ts';
import type { DumpEntry, Engine, RestoreReport, RestoreTargetState } from '../engines/engine.ts';
import { IN_USE_SIDE_FILES } from '../engines/registry.ts';
import type { DecryptionKey } from '../pipeline/encryption.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { checkedDumpStream } from '../pipeline/read.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { writeFileDurably } from '../util/durable-file.ts';
import { UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { sweepTempFilesBeside, tempFileBeside } from '../util/private-temp.ts';
import { checkStoredObject } from './verify.ts';

export interface RestoreRequest {
  manifest: Manifest;
  /** The stored object already passed its checksum pass (chosen as `latest`, jobs/intact.ts). */
  checked?: boolean | undefined;
  /** The manifest's sealed fields are already put back (catalog/sealed.ts openManifest; a drill's). */
  opened?: boolean | undefined;
  /**
   * `--database NAME`: of a whole-server backup set, restore this database alone (its part, as a one-dump
   * backup). Required by `runRestore` for a set; a one-dump backup takes only its own database's name.
   */
  database?: string | undefined;
  targetDatabase?: string | undefined;
  dryRun: boolean;
  force: boolean;
  dropExisting: boolean;
  jobs: number;
  /** Only these tables (`table` or `schema.table`), where the format allows it. */
  tables?: string[] | undefined;
  tempDir?: string | undefined;
  /** Leave out the database owner, grants and settings naming roles this server lacks, instead of failing. */
  skipMissingRoles?: boolean | undefined;
  /**
   * Apply the backup's database settings to an empty existing database restored into, as to one the
   * restore creates (a whole set restored onto a fresh server: its `postgres` database exists, empty).
   */
  settingsToEmpty?: boolean | undefined;
  /** Leave out object ownership and grants (a drill's scratch server has none of the backup's roles). */
  skipOwnership?: boolean | undefined;
  /** The destination is a scratch copy thrown away afterwards (see RestoreOptions.disposable). */
  disposable?: boolean | undefined;
}

export interface RestoreDeps {
  engine: Engine;
  storage: StorageBackend;
  signal?: AbortSignal | undefined;
  /** Asked before writing into a non-empty database without --force/--drop-existing; absent = refuse. */
  confirmOverwrite?: ((state: RestoreTargetState) => Promise<boolean>) | undefined;
  /**
   * Stored bytes read so far in each phase, of `totalBytes` that phase reads: the backup's object, the
   * one database's part of a set (`database`), or every part of a whole set.
   */
  onProgress?: ((phase: 'checksum' | 'restore', storedBytes: number, totalBytes: number) => void) | undefined;
  /** The key that opens an encrypted backup (the encryption settings' `decrypt`). */
  decrypt?: DecryptionKey | undefined;
}

export type RestoreAction =
  | 'create'
  | 'restore-into-empty'
  | 'overwrite'
  | 'drop-and-recreate'
  | 'add-tables';

export interface RestorePlan {
  backup: string;
  destination: RestoreTargetState;
  action: RestoreAction;
  /** Parallel jobs actually used (plain SQL restores with one). */
  jobs: number;
  /** With --table: the tables restored, as `schema.table`. */
  tables?: string[];
  /** Only for dry runs: what the backup contains. */
  entries?: DumpEntry[];
  /** The database settings applied to a created database, and those skipped (roles missing). */
  databaseSettings?: RestoreReport;
}

export async function runRestore(request: RestoreRequest, deps: RestoreDeps): Promise<RestorePlan> {
  const { engine, storage, signal } = deps;
  const opened = request.opened ? request.manifest : await openManifest(request.manifest, deps.decrypt);
  const manifest = dumpOf(opened, request.database, 'restoring');
  const decrypt = keyFor(manifest, deps.decrypt);
  // A database of a set goes to the database of its own name unless --target-db renames it: the
  // target's own database (the maintenance database, for a whole server) is never its default.
  const targetDatabase =
    request.targetDatabase ?? (isBackupSet(opened) ? (manifest.database ?? undefined) : undefined);
  if (manifest.engine !== engine.descriptor.name) {
    throw new UsageError(
      `backup ${manifest.id} is a ${manifest.engine} backup; the chosen target is ${engine.descriptor.name}`,
      {
        hint: 'pick a target of the same engine with --target',
      },
    );
  }
  if (request.force && request.dropExisting) {
    throw new UsageError('--force and --drop-existing are exclusive', { hint: 'use one of them' });
  }
  const tables = request.tables?.length ? pickTables(manifest, request, engine) : undefined;

  if (!request.checked) {
    await checkStoredObject(manifest, {
      storage,
      signal,
      onProgress: (_pass, n) => deps.onProgress?.('checksum', n, manifest.storedBytes),
    });
  }

  const destination = await engine.restoreTargetState(targetDatabase, { signal });
  const can = engine.descriptor.restoreCapabilities(manifest.format, manifest.database);
  const jobs = can.parallel ? Math.max(1, request.jobs) : 1;
  const action = chooseAction(destination, request);
  const plan: RestorePlan = { backup: manifest.id, destination, action, jobs };
  if (tables) plan.tables = tables.map((t) => `${t.schema}.${t.name}`);

  if (request.dryRun) {
    const source = await storage.get(manifest.object, { signal });
    const inspection = await engine.inspect(
      checkedDumpStream(source, manifest, { decrypt }),
      manifest.format,
      {
        signal,
        dumpToolVersion: manifest.toolVersion,
      },
    );
    return { ...plan, entries: inspection.entries };
  }

  if (action === 'overwrite' && !can.overwrite) {
    // e.g. a plain SQL script has no "drop what exists first" mode (pg_restore --clean needs an archive).
    throw new UsageError(
      `cannot restore backup ${manifest.id} (${manifest.engine} ${manifest.format} format) over the objects in ${destination.description}: this format cannot replace what exists`,
      {
        hint: `use --drop-existing to recreate the ${can.destination}${can.renames ? ', or --target-db NAME for a new one' : ''}`,
      },
    );
  }
  if (action === 'overwrite' && !request.force) {
    const confirmed = deps.confirmOverwrite ? await deps.confirmOverwrite(destination) : false;
    if (!confirmed) {
      throw new UsageError(`refusing to restore into ${destination.description}: it is not empty`, {
        hint: `pass --force to restore over the existing objects${can.renames ? `, --drop-existing to recreate the ${can.destination}, or --target-db NAME for a new ${can.destination}` : ` or --drop-existing to recreate the ${can.destination}`}`,
      });
    }
  }

  // The bytes restored are the bytes checked: storage may have changed since the checksum pass above
  // (anyone who can write it can swap the object), so this read is hashed again, and its end reaches the
  // engine only once the hash matched. A restore that commits at the end of its input (PostgreSQL in one
  // transaction, Redis and SQLite from a checked spool) then commits nothing that differs from the manifest.
  const source = await storage.get(manifest.object, { signal });
  const checked = checkedDumpStream(source, manifest, {
    memory: new MemoryGovernor(),
    onStoredBytes: (n) => deps.onProgress?.('restore', n, manifest.storedBytes),
    decrypt,
  });
  const report = await engine.restore(checked, {
    format: manifest.format,
    dumpToolVersion: manifest.toolVersion,
    targetDatabase,
    create: action === 'create',
    dropExisting: action === 'drop-and-recreate',
    overwrite: action === 'overwrite',
    force: request.force,
    jobs,
    tables,
    tempDir: request.tempDir,
    databaseSettings: manifest.databaseSettings,
    settingsToExisting: request.settingsToEmpty === true && action === 'restore-into-empty',
    skipMissingRoles: request.skipMissingRoles,
    skipOwnership: request.skipOwnership,
    disposable: request.disposable,
    signal,
  });
  return report ? { ...plan, databaseSettings: report } : plan;
}

/**
 * The one dump a request restores, from an opened manifest: a one-dump backup as it is, or of a
 * whole-server set the part of `database` (as a one-dump manifest, catalog/parts.ts). Throws UsageError
 * for a set without `database` (`doing` says what needs one: `restoring`, `--to-file`), a database the
 * set does not hold, or `database` given for a one-dump backup of another database.
 */
export function dumpOf(manifest: Manifest, database: string | undefined, doing: string): Manifest {
  if (!isBackupSet(manifest)) {
    if (database === undefined || database === manifest.database) return manifest;
    throw new UsageError(
      `backup ${manifest.id} holds one dump${manifest.database === null ? '' : ` (of ${printable(manifest.database)})`}, not a set of databases to pick ${printable(database)} from`,
      { hint: 'drop --database; --target-db restores a backup under another name' },
    );
  }
  const names = manifest.set.databases.map((d) => printable(d.database ?? '?'));
  const held = `${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`;
  if (database === undefined) {
    throw new UsageError(
      `backup ${manifest.id} is a whole-server set of ${names.length} database(s): ${doing} one of them needs --database NAME`,
      { hint: `its databases: ${held}` },
    );
  }
  const part = backupParts(manifest).find((p) => p.kind === 'dump' && p.manifest.database === database);
  if (part === undefined) {
    throw new UsageError(`backup ${manifest.id} holds no database ${printable(database)}`, {
      hint: `its databases: ${held}`,
    });
  }
  return part.manifest;
}

/**
 * Resolves `--table` names against the tables the backup recorded (`schema.table`): a bare name must
 * name one table. Refuses formats that cannot restore single tables, tables of several schemas (pg_restore
 * selects by name within schemas) and --drop-existing (it would drop everything else).
 */
function pickTables(manifest: Manifest, request: RestoreRequest, engine: Engine) {
  if (!engine.descriptor.restoreCapabilities(manifest.format, manifest.database).tables) {
    throw new UsageError(
      `--table cannot be used with backup ${manifest.id} (${manifest.engine} ${manifest.format} format): it restores whole`,
      { hint: 'PostgreSQL backups in custom format (the default) restore single tables' },
    );
  }
  if (request.dropExisting || request.force) {
    throw new UsageError(
      `--table and ${request.force ? '--force' : '--drop-existing'} are exclusive: --table only adds tables a database lacks, and never replaces or drops any`,
      { hint: 'restore into a new database (--target-db NAME) and copy the rows you need from there' },
    );
  }
  const known = manifest.facts.tables.map((t) => t.name);
  // The names come from the manifest unchecked, and messages are printed with their newlines kept: one
  // line each, so that a forged name cannot fake lines of its own under the error.
  const names = (list: string[]) => list.map((n) => printable(n)).join(', ');
  const picked = (request.tables ?? []).map((wanted) => {
    const matches = known.filter((k) => k === wanted || (!wanted.includes('.') && k.endsWith(`.${wanted}`)));
    if (matches.length !== 1) {
      throw new UsageError(
        matches.length === 0
          ? `backup ${manifest.id} has no table ${wanted}`
          : `table ${wanted} is ambiguous in backup ${manifest.id}: ${names(matches)}`,
        {
          hint: `name it as schema.table; the backup's tables: ${names(known.slice(0, 20))}${known.length > 20 ? ', ...' : ''}`,
        },
      );
    }
    const full = matches[0]!;
    const dot = full.indexOf('.');
    return { schema: full.slice(0, dot), name: full.slice(dot + 1) };
  });
  const schemas = [...new Set(picked.map((t) => t.schema))];
  if (schemas.length > 1) {
    throw new UsageError(`--table names tables of several schemas (${schemas.join(', ')})`, {
      hint: 'restore the tables of one schema at a time',
    });
  }
  return picked;
}

function chooseAction(state: RestoreTargetState, request: RestoreRequest): RestoreAction {
  if (!state.exists) return 'create';
  // Named tables go into a database that lacks them (the engine checks): what else it holds is left alone.
  if (request.tables?.length) return 'add-tables';
  if (request.dropExisting) return 'drop-and-recreate';
  return state.empty ? 'restore-into-empty' : 'overwrite';
}

export interface RestoreToFileRequest {
  manifest: Manifest;
  /** Of a whole-server backup set: the database whose dump is written (required for a set). */
  database?: string | undefined;
  /** Absolute path of the file to write. */
  path: string;
  /** Replace an existing file. */
  force: boolean;
}

/**
 * `restore --to-file`: writes the backup's raw dump (an RDB file, a SQLite database, a pg_dump archive, a
 * SQL script) to a file, atomically: into a temp file beside it, checked against the manifest's size and
 * sha256 while it is written, fsynced, then renamed into place and the directory fsynced. A damaged
 * backup leaves nothing behind; an existing file is only replaced with `force`.
 */
export async function restoreToFile(
  request: RestoreToFileRequest,
  deps: {
    storage: StorageBackend;
    signal?: AbortSignal | undefined;
    onProgress?: (storedBytes: number) => void;
    /** The key that opens an encrypted backup. */
    decrypt?: DecryptionKey | undefined;
  },
): Promise<{ backup: string; database?: string; file: string; bytes: number }> {
  const { path } = request;
  const { storage, signal } = deps;
  const manifest = dumpOf(
    await openManifest(request.manifest, deps.decrypt),
    request.database,
    '--to-file of',
  );
  const decrypt = keyFor(manifest, deps.decrypt);
  const dir = dirname(path);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new UsageError(`cannot write ${path}: the directory ${dir} does not exist`);
  }
  const previous = await stat(path).catch(() => undefined);
  if (previous && !request.force) {
    throw new UsageError(`refusing to replace ${path}: the file exists`, {
      hint: 'pass --force to replace it, or choose another path',
    });
  }
  // A SQLite database's WAL or journal beside the file would be applied to the replacement (bringing
  // the old data back, or corrupting it): a live database is replaced by `datasaver restore`, which
  // checks for writers and deals with them, never by overwriting the file.
  for (const side of IN_USE_SIDE_FILES) {
    if (await stat(`${path}${side}`).catch(() => undefined)) {
      throw new UsageError(`refusing to write ${path}: ${path}${side} exists, so it is a database in use`, {
        hint: 'restore a SQLite database in place with `datasaver restore` (without --to-file), or stop its app and remove the stale file first',
      });
    }
  }
  await sweepTempFilesBeside(path); // what a restore to this path that was killed left
  const temp = await tempFileBeside(path);
  const source = await storage.get(manifest.object, { signal });
  // Checked on the way (size, sha256, no decompression past sizeBytes): a mismatch fails the write of
  // the temp file, which is removed, so nothing reaches `path`.
  const body = checkedDumpStream(source, manifest, {
    memory: new MemoryGovernor(),
    onStoredBytes: deps.onProgress,
    decrypt,
  });
  try {
    // Replacing a file (an RDB in a Redis data dir): whoever read the old one must read the new one.
    await writeFileDurably(path, body, { temp, signal, replacing: previous });
  } catch (err) {
    body.destroy(); // a write that failed before reading it all leaves no storage read open
    throw err;
  }
  const database = request.database === undefined ? {} : { database: request.database };
  return { backup: manifest.id, ...database, file: path, bytes: manifest.sizeBytes };
}

/** The key for the data object's decryption stage: none for a backup in clear, whatever is configured. */
export function keyFor(manifest: Manifest, key: DecryptionKey | undefined): DecryptionKey | undefined {
  return manifest.encryption ? key : undefined;
}
