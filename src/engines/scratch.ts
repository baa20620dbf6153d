/**
 * Throwaway servers for restore drills: a server an engine starts itself, from the server binaries on
 * this machine, in a private temp dir, so that a drill restores a backup without an extra host and
 * without touching any database of the target's server. Each engine implements `StartScratchServer`
 * (engines/<name>/scratch-server.ts); engines/index.ts maps engine names to them.
 */
import { UsageError } from '../util/errors.ts';
import type { ConnectionConfig } from './engine.ts';

export interface ScratchServerOptions {
  /**
   * An empty private temp dir of this process (util/private-temp.ts, kind `drill`), for the server's
   * data, socket, configuration and log. The caller removes it after `stop()`; if this process dies
   * first, the next datasaver's sweep of stale temp dirs stops the server and removes the dir.
   */
  dir: string;
  signal?: AbortSignal | undefined;
}

export interface ScratchServer {
  /** What it is, for messages and drill reports: `throwaway PostgreSQL 15.18 server`. */
  readonly description: string;
  /**
   * How the engine reaches the server as a user that may create databases and restore anything into
   * them (`database` unset, except SQLite: the path of a database file in the dir, not yet created).
   */
  readonly connection: ConnectionConfig;
  /** Stops the server and waits until it is gone. Never throws; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a throwaway server in `options.dir` and resolves once it accepts connections. Throws
 * ToolMissingError (hint: the Debian package to install) when the server binaries are not on this
 * machine, and RestoreError (with the server's log tail) when the server fails to start; what was
 * started is stopped before it throws.
 */
export type StartScratchServer = (options: ScratchServerOptions) => Promise<ScratchServer>;

/**
 * `listDatabases` and `dropDatabase` of an engine whose server has no named databases (a Redis backup
 * holds the whole server) or no server (SQLite): a drill of its backups always uses a throwaway server.
 */
export function noNamedDatabases(label: string): never {
  throw new UsageError(`a ${label} drill cannot use a drill server's scratch database: it has none by name`, {
    hint: 'unset DATASAVER_DRILL_URL for this target: its drills start a throwaway server of their own',
  });
}
