/**
 * Where a restore drill restores (jobs/drill.ts): never the target's own database.
 *   - By default, a throwaway server the engine starts from this machine's server binaries, in a private
 *     temp dir (engines/scratch.ts): the backup restores under its own names, and the server and its
 *     directory go afterwards. A drill killed before that leaves them to the sweep of stale temp dirs
 *     that every datasaver command runs at start (util/private-temp.ts).
 *   - With a drill server (DATASAVER_DRILL_URL), a scratch database of a unique name
 *     (`datasaver_drill_…`, util/private-temp.ts scratchDatabaseName) is created there and dropped
 *     afterwards; the scratch databases killed drills of this machine left are dropped first. Nothing
 *     else there is touched: a backup that restores into the databases it names (a MySQL backup of
 *     several databases) is refused.
 * A whole-server backup set gets a scratch database in both places: its databases restore into it one
 * after the other (jobs/drill-restore.ts).
 */
import { rm } from 'node:fs/promises';
import type { Manifest } from '../catalog/manifest.ts';
import { isBackupSet } from '../catalog/parts.ts';
import type { ConnectionConfig, Engine } from '../engines/engine.ts';
import { createEngine } from '../engines/index.ts';
import type { EngineName } from '../engines/registry.ts';
import type { ScratchServer, ScratchServerOptions } from '../engines/scratch.ts';
import { ConnectionError, UsageError } from '../util/errors.ts';
import {
  abandonedScratchDatabases,
  makePrivateTempDir,
  SCRATCH_DATABASE_PREFIX,
  scratchDatabaseName,
} from '../util/private-temp.ts';
import type { DrillPlace, OpenDrillPlace } from './drill.ts';

export interface DrillPlaceSettings {
  /** The backup's target: its name for messages and the directory of its client tools. */
  target: { name: string; engine: EngineName; toolDir: string | undefined };
  /** A drill server of the target's engine; undefined: a throwaway server. */
  server: ConnectionConfig | undefined;
  /** Parent of the throwaway server's private temp dir (default: the system temp dir). */
  tempDir?: string | undefined;
  /** Starts a throwaway server (engines/index.ts startScratchServer). */
  startServer: (engine: EngineName, options: ScratchServerOptions) => Promise<ScratchServer>;
  /** Said about what a killed drill left and this one removed. */
  onNote?: ((text: string) => void) | undefined;
}

/** The opener of a drill's scratch place for the settings. */
export function drillPlaces(settings: DrillPlaceSettings): OpenDrillPlace {
  return (manifest, signal) =>
    settings.server === undefined
      ? throwawayPlace(settings, manifest, signal)
      : scratchDatabasePlace(settings, settings.server, manifest, signal);
}

async function throwawayPlace(
  settings: DrillPlaceSettings,
  manifest: Manifest,
  signal: AbortSignal | undefined,
): Promise<DrillPlace> {
  const { target } = settings;
  const dir = await makePrivateTempDir('drill', settings.tempDir);
  let server: ScratchServer;
  try {
    server = await settings.startServer(target.engine, { dir, signal });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const engine = createEngine({ ...target, connection: server.connection });
  return {
    engine,
    // A set's databases restore one after the other into a scratch database: under their own names,
    // one of them could be a database every new server has (PostgreSQL's `postgres`), which is not the
    // drill's to write into.
    database: isBackupSet(manifest)
      ? await scratchDatabaseName()
      : ownName(engine, manifest, server.connection),
    description: server.description,
    release: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Where on a throwaway server the backup restores: under its own name where a restore can name the
 * database (it holds nothing else), the file the server gave (SQLite), or the names the dump holds.
 */
function ownName(engine: Engine, manifest: Manifest, connection: ConnectionConfig): string | undefined {
  const { descriptor } = engine;
  if (descriptor.database === 'file') return connection.database;
  const renames = descriptor.restoreCapabilities(manifest.format, manifest.database).renames;
  return renames ? (manifest.database ?? undefined) : undefined;
}

async function scratchDatabasePlace(
  settings: DrillPlaceSettings,
  server: ConnectionConfig,
  manifest: Manifest,
  signal: AbortSignal | undefined,
): Promise<DrillPlace> {
  const engine = createEngine({ ...settings.target, connection: server });
  const where = `${server.host ?? 'localhost'}${server.port === undefined ? '' : `:${server.port}`}`;
  if (!engine.descriptor.restoreCapabilities(manifest.format, manifest.database).renames) {
    throw new UsageError(
      `backup ${manifest.id} restores into the databases it names, so it cannot be drilled in a scratch database on the drill server ${where}`,
      {
        hint: 'unset DATASAVER_DRILL_URL for this target: its drills then start a throwaway server of their own',
      },
    );
  }
  const existing = await engine.listDatabases(SCRATCH_DATABASE_PREFIX, { signal }).catch((err: unknown) => {
    // The engine's hint names the target's settings; this server comes from the drill URL.
    if (!(err instanceof ConnectionError)) throw err;
    throw new ConnectionError(`drill server: ${err.message}`, {
      hint: 'check the host, port, user and password in DATASAVER_DRILL_URL',
      transient: err.transient,
      cause: err,
    });
  });
  const abandoned = await abandonedScratchDatabases(existing);
  for (const leftover of abandoned) {
    await engine.dropDatabase(leftover, { signal });
    settings.onNote?.(
      `dropped ${leftover} on ${where}, the scratch database of a drill that ended without dropping it`,
    );
  }
  // Those of another machine or container (a restarted one among them) cannot be judged from here.
  const others = existing.filter((n) => !abandoned.includes(n));
  if (others.length > 0) {
    settings.onNote?.(
      `${others.length} other scratch database(s) on ${where} (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}) belong to running drills or to drills of another machine or container; drop any that no drill uses by hand`,
    );
  }
  const name = await scratchDatabaseName();
  return {
    engine,
    database: name,
    description: `scratch database ${name} on ${where}`,
    release: () => engine.dropDatabase(name),
  };
}
