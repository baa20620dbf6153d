/**
 * restore: checksum first (a damaged backup never touches the database), then stream the stored object
 * through the decompressor into the engine. Writing into a database that already holds objects needs an
 * explicit choice: overwrite (--force, or a typed confirmation on a terminal) or drop and recreate
 * (--drop-existing). A missing database is created.
 */
import type { DumpEntry, Engine, RestoreTargetState } from '../engines/engine.ts';
import { UsageError } from '../errors.ts';
import type { Manifest } from '../manifest.ts';
import { MemoryGovernor } from '../pipeline/memory.ts';
import { Meter } from '../pipeline/meter.ts';
import { rawDumpStream } from '../pipeline/read.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { checkStoredObject } from './verify.ts';

export interface RestoreRequest {
  manifest: Manifest;
  targetDatabase?: string | undefined;
  dryRun: boolean;
  force: boolean;
  dropExisting: boolean;
  jobs: number;
  tempDir?: string | undefined;
}

export interface RestoreDeps {
  engine: Engine;
  storage: StorageBackend;
  signal?: AbortSignal | undefined;
  /** Asked before writing into a non-empty database without --force/--drop-existing; absent = refuse. */
  confirmOverwrite?: ((state: RestoreTargetState) => Promise<boolean>) | undefined;
  onProgress?: ((phase: 'checksum' | 'restore', storedBytes: number) => void) | undefined;
}

export type RestoreAction = 'create' | 'restore-into-empty' | 'overwrite' | 'drop-and-recreate';

export interface RestorePlan {
  backup: string;
  destination: RestoreTargetState;
  action: RestoreAction;
  /** Parallel jobs actually used (plain SQL restores with one). */
  jobs: number;
  /** Only for dry runs: what the backup contains. */
  entries?: DumpEntry[];
}

export async function runRestore(request: RestoreRequest, deps: RestoreDeps): Promise<RestorePlan> {
  const { manifest } = request;
  const { engine, storage, signal } = deps;
  if (manifest.engine !== engine.name) {
    throw new UsageError(
      `backup ${manifest.id} is a ${manifest.engine} backup; the chosen target is ${engine.name}`,
      {
        hint: 'pick a target of the same engine with --target',
      },
    );
  }
  if (request.force && request.dropExisting) {
    throw new UsageError('--force and --drop-existing are exclusive', { hint: 'use one of them' });
  }

  await checkStoredObject(manifest, {
    storage,
    engine,
    signal,
    onProgress: (_pass, n) => deps.onProgress?.('checksum', n),
  });

  const destination = await engine.restoreTargetState(request.targetDatabase, { signal });
  const can = engine.restoreCapabilities(manifest.format);
  const jobs = can.parallel ? Math.max(1, request.jobs) : 1;
  const action = chooseAction(destination, request);
  const plan: RestorePlan = { backup: manifest.id, destination, action, jobs };

  if (request.dryRun) {
    const source = await storage.get(manifest.object, { signal });
    const inspection = await engine.inspect(rawDumpStream(source, manifest.compression), manifest.format, {
      signal,
      dumpToolVersion: manifest.toolVersion,
    });
    return { ...plan, entries: inspection.entries };
  }

  if (action === 'overwrite' && !can.overwrite) {
    // e.g. a plain SQL script has no "drop what exists first" mode (pg_restore --clean needs an archive).
    throw new UsageError(
      `cannot restore the ${manifest.format} backup ${manifest.id} over the objects in ${destination.description}`,
      {
        hint: `use --drop-existing to recreate the ${can.destination}, or --target-db NAME for a new one`,
      },
    );
  }
  if (action === 'overwrite' && !request.force) {
    const confirmed = deps.confirmOverwrite ? await deps.confirmOverwrite(destination) : false;
    if (!confirmed) {
      throw new UsageError(`refusing to restore into ${destination.description}: it is not empty`, {
        hint: 'pass --force to restore over the existing objects, --drop-existing to recreate the database, or --target-db NAME for a new database',
      });
    }
  }

  const meter = new Meter({ memory: new MemoryGovernor(), onBytes: (n) => deps.onProgress?.('restore', n) });
  const source = await storage.get(manifest.object, { signal });
  await engine.restore(rawDumpStream(source, manifest.compression, { stored: meter }), {
    format: manifest.format,
    dumpToolVersion: manifest.toolVersion,
    targetDatabase: request.targetDatabase,
    create: action === 'create',
    dropExisting: action === 'drop-and-recreate',
    overwrite: action === 'overwrite',
    jobs,
    tempDir: request.tempDir,
    signal,
  });
  return plan;
}

function chooseAction(state: RestoreTargetState, request: RestoreRequest): RestoreAction {
  if (!state.exists) return 'create';
  if (request.dropExisting) return 'drop-and-recreate';
  return state.empty ? 'restore-into-empty' : 'overwrite';
}
