/**
 * Restoring a whole-server backup set (catalog/parts.ts): the server's roles and tablespaces first, then
 * every database in the set's order, each with its owner, settings and grants, so that a set restores
 * onto an empty server. Each database is restored as one dump (jobs/restore.ts), by the same code that
 * restores a one-dump backup or one database of a set (`--database`).
 *
 * Nothing is changed before everything that can be known is: the manifest opens (encrypted sets), every
 * part passes its checksum, and every database's destination is judged. A database that exists and holds
 * objects is refused, all of them in one message, unless `--force` (restore over it) or
 * `--drop-existing` (recreate it); one that exists and is empty (a fresh server's maintenance database)
 * is restored into, and gets the backup's settings and grants as a created one does. Roles that exist
 * are left as they are (ServerSet.restoreGlobals) and reported.
 *
 * A failure after the roles were restored leaves what was restored: the error names the database it
 * failed on and those restored before it, so the rest can be restored one by one with `--database`.
 */
import type { Manifest } from '../catalog/manifest.ts';
import { type BackupPart, backupParts, isBackupSet } from '../catalog/parts.ts';
import { openManifest } from '../catalog/sealed.ts';
import type { DumpEntry, Engine, GlobalsReport, RestoreTargetState, ServerSet } from '../engines/engine.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { checkedDumpStream } from '../pipeline/read.ts';
import { DatasaverError, UsageError, VerifyError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { keyFor, type RestoreDeps, type RestorePlan, type RestoreRequest, runRestore } from './restore.ts';
import { checkStoredObjects } from './verify.ts';

/** What a restore of a whole set did (or, in a dry run, would do). */
export interface SetRestorePlan {
  backup: string;
  /** Always true: tells a set's plan from a one-dump RestorePlan, in `--json` too. */
  set: true;
  /** The backup holds the roles' passwords; false: restored roles have none, and need them set by hand. */
  rolePasswords: boolean;
  /**
   * What restoring the globals did: roles and tablespaces created, those that existed and were left as
   * they are, statements left out. Absent in a dry run.
   */
  globals?: GlobalsReport;
  /** Dry run: the roles and tablespaces the globals define. */
  globalsEntries?: DumpEntry[];
  /** Every database, in the set's order: where it went and what was done (dry run: its entries). */
  databases: (RestorePlan & { database: string })[];
}

/**
 * Restores a backup as asked: a whole set, or one dump (a one-dump backup, or one database of a set
 * with `request.database`).
 */
export function restoreBackup(
  request: RestoreRequest,
  deps: RestoreDeps,
): Promise<RestorePlan | SetRestorePlan> {
  return isBackupSet(request.manifest) && request.database === undefined
    ? runSetRestore(request, deps)
    : runRestore(request, deps);
}

/**
 * Restores every part of a set: see above. Throws UsageError, before anything is changed, for options a
 * whole set refuses (`--target-db`, `--table`: they need `--database`), an engine without whole-server
 * support, or databases that hold objects; VerifyError for a damaged part (named); the errors of
 * ServerSet.restoreGlobals and runRestore otherwise, a database's naming it.
 */
export async function runSetRestore(request: RestoreRequest, deps: RestoreDeps): Promise<SetRestorePlan> {
  const { storage, signal } = deps;
  const manifest = request.opened ? request.manifest : await openManifest(request.manifest, deps.decrypt);
  if (!isBackupSet(manifest)) throw new TypeError(`backup ${manifest.id} is not a backup set`);
  const serverSet = setRestorer(manifest, deps.engine);
  refuseOptions(manifest, request);
  if (!request.checked) {
    await checkStoredObjects(manifest, {
      storage,
      signal,
      onProgress: (_pass, n) => deps.onProgress?.('checksum', n, manifest.storedBytes),
    });
  }
  const [globals, ...parts] = backupParts(manifest);
  const names = parts.map((part) => databaseName(manifest, part));
  let done = 0; // stored bytes of the parts read before this one, for progress over the whole set
  const progress = (part: BackupPart) => {
    const before = done;
    done += part.manifest.storedBytes;
    return (n: number) => deps.onProgress?.('restore', before + n, manifest.storedBytes);
  };
  const read = async (part: BackupPart, onBytes: (n: number) => void) =>
    checkedDumpStream(await storage.get(part.manifest.object, { signal }), part.manifest, {
      memory: new MemoryGovernor(),
      onStoredBytes: onBytes,
      decrypt: keyFor(manifest, deps.decrypt),
    });
  // The databases that exist and hold objects may be restored over or recreated (refused, or not, before
  // anything changes). An empty one is restored into, never dropped: it may be the very database the
  // engine connects to (PostgreSQL's `postgres`).
  const occupied = await occupiedDatabases(names, deps);
  const restoreOne = (database: string, part: BackupPart) => {
    const onBytes = progress(part);
    const dropExisting = request.dropExisting && occupied.has(database);
    return runRestore(
      {
        ...request,
        manifest,
        opened: true,
        checked: true,
        database,
        targetDatabase: database,
        dropExisting,
        // Restoring a server: its own empty databases get the backup's settings and grants too.
        settingsToEmpty: true,
      },
      {
        ...deps,
        confirmOverwrite: async () => occupied.has(database),
        onProgress: (_phase, n) => onBytes(n),
      },
    );
  };
  const plan = { backup: manifest.id, set: true as const, rolePasswords: manifest.set.globals.rolePasswords };

  if (request.dryRun) {
    const globalsEntries = (
      await serverSet.inspectGlobals(await read(globals!, progress(globals!)), {
        signal,
        dumpToolVersion: manifest.toolVersion,
      })
    ).entries;
    const databases: SetRestorePlan['databases'] = [];
    for (const [i, database] of names.entries())
      databases.push({ database, ...(await restoreOne(database, parts[i]!)) });
    return { ...plan, globalsEntries, databases };
  }

  await refuseOccupied(manifest, occupied, request, deps);
  const report = await serverSet.restoreGlobals(await read(globals!, progress(globals!)), { signal });
  const databases: SetRestorePlan['databases'] = [];
  for (const [i, database] of names.entries()) {
    const restored = databases.map((d) => d.database);
    databases.push({
      database,
      ...(await naming(database, restored, signal, () => restoreOne(database, parts[i]!))),
    });
  }
  return { ...plan, globals: report, databases };
}

/** The engine's whole-server support, for a set of its own engine. Throws UsageError otherwise. */
function setRestorer(manifest: Manifest, engine: Engine): ServerSet {
  if (manifest.engine !== engine.descriptor.name) {
    throw new UsageError(
      `backup ${manifest.id} is a ${manifest.engine} backup; the chosen target is ${engine.descriptor.name}`,
      { hint: 'pick a target of the same engine with --target' },
    );
  }
  if (engine.serverSet === undefined) {
    throw new UsageError(
      `backup ${manifest.id} is a whole-server set, which the ${engine.descriptor.label} engine cannot restore`,
      { hint: 'the manifest names the wrong engine: it was altered, or written by another program' },
    );
  }
  return engine.serverSet;
}

/** Options that apply to one database, and pairs that exclude each other: refused for a whole set. */
function refuseOptions(manifest: Manifest, request: RestoreRequest): void {
  if (request.force && request.dropExisting) {
    throw new UsageError('--force and --drop-existing are exclusive', { hint: 'use one of them' });
  }
  const one = [
    request.targetDatabase !== undefined ? '--target-db' : undefined,
    request.tables?.length ? '--table' : undefined,
  ].filter((flag) => flag !== undefined);
  if (one.length > 0) {
    throw new UsageError(
      `${one.join(' and ')} ${one.length > 1 ? 'apply' : 'applies'} to one database: backup ${manifest.id} is a whole-server set, restored whole under its own names`,
      { hint: `add --database NAME to restore one database of it (${setNames(manifest)})` },
    );
  }
}

/** A database part's name; a set read without its key has none, and cannot be restored anyway. */
function databaseName(manifest: Manifest, part: BackupPart): string {
  if (part.manifest.database !== null) return part.manifest.database;
  throw new VerifyError(manifest.id, 'manifest', `part ${part.part} of the set names no database`);
}

/** The set's databases for hints, made printable (the names come from the manifest). */
function setNames(manifest: Manifest): string {
  const names = (manifest.set?.databases ?? []).map((d) => printable(d.database ?? '?'));
  return `its databases: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', ...' : ''}`;
}

/** The set's databases that exist here and hold objects, with their state: changes nothing. */
async function occupiedDatabases(
  names: string[],
  deps: RestoreDeps,
): Promise<Map<string, RestoreTargetState>> {
  const occupied = new Map<string, RestoreTargetState>();
  for (const name of names) {
    const state = await deps.engine.restoreTargetState(name, { signal: deps.signal });
    if (state.exists && !state.empty) occupied.set(name, state);
  }
  return occupied;
}

/**
 * Refuses, before anything is changed, to restore over databases that hold objects: all of them in one
 * message, unless --drop-existing (they are recreated) or --force (restored over, where the format can
 * replace what exists), or the user confirms each (a typed confirmation on a terminal).
 */
async function refuseOccupied(
  manifest: Manifest,
  occupied: ReadonlyMap<string, RestoreTargetState>,
  request: RestoreRequest,
  deps: RestoreDeps,
): Promise<void> {
  if (occupied.size === 0 || request.dropExisting) return;
  const list = [...occupied.values()].map((s) => s.description).join('; ');
  const several = occupied.size > 1;
  if (!deps.engine.descriptor.restoreCapabilities(manifest.format, null).overwrite) {
    throw new UsageError(
      `cannot restore backup ${manifest.id} (${manifest.format} format) over the objects in ${list}: this format cannot replace what exists; nothing was changed`,
      { hint: `use --drop-existing to recreate ${several ? 'them' : 'it'}` },
    );
  }
  if (request.force) return;
  for (const state of occupied.values()) {
    if (deps.confirmOverwrite && (await deps.confirmOverwrite(state))) continue;
    throw new UsageError(
      `refusing to restore backup ${manifest.id}: ${several ? `${occupied.size} of its databases exist and are` : 'a database of it exists and is'} not empty (${list}); nothing was changed`,
      {
        hint: `pass --force to restore over the existing objects, --drop-existing to recreate ${several ? 'those databases' : 'it'}, or --database NAME --target-db NEW to restore one database under a new name`,
      },
    );
  }
}

/**
 * Runs one database's restore; its error names the database and what is already restored (the roles,
 * the databases before it), keeping its exit code (and VerifyError its class: a damaged part).
 */
async function naming<T>(
  database: string,
  restored: string[],
  signal: AbortSignal | undefined,
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (signal?.aborted || !(err instanceof DatasaverError)) throw err;
    const before = restored.length > 0 ? `the databases before it (${restored.join(', ')})` : 'no database';
    const hint = `${err.hint ? `${err.hint}; ` : ''}the roles and ${before} are restored: restore ${printable(database)} and the databases after it one at a time with --database NAME`;
    const what = `database ${database}`;
    if (err instanceof VerifyError)
      throw new VerifyError(err.backupId, err.reason, `${what}: ${err.detail}`, { hint, cause: err });
    throw new DatasaverError(err.exitCode, `${what}: ${err.message}`, { hint, cause: err });
  }
}
