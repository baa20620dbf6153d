import type { Engine, EngineTarget } from './engine.ts';
import { createMysqlEngine } from './mysql/engine.ts';
import { startMysqlScratchServer } from './mysql/scratch-server.ts';
import { PostgresEngine } from './postgres/engine.ts';
import { startPostgresScratchServer } from './postgres/scratch-server.ts';
import { createRedisEngine } from './redis/engine.ts';
import { startRedisScratchServer } from './redis/scratch-server.ts';
import type { EngineName } from './registry.ts';
import type { ScratchServer, ScratchServerOptions, StartScratchServer } from './scratch.ts';
import { createSqliteEngine } from './sqlite/engine.ts';
import { startSqliteScratchServer } from './sqlite/scratch-server.ts';

/**
 * Each engine's implementation, by name: the one place that loads them, apart from the registry's pure
 * descriptors. The type asks for an entry for every engine in the registry.
 */
const IMPLEMENTATIONS: { readonly [N in EngineName]: (target: EngineTarget) => Engine } = {
  postgres: (target) => new PostgresEngine(target),
  mysql: createMysqlEngine,
  redis: createRedisEngine,
  sqlite: createSqliteEngine,
};

/** The engine for a target, bound to its connection settings. */
export function createEngine(target: EngineTarget & { engine: EngineName }): Engine {
  return IMPLEMENTATIONS[target.engine](target);
}

/** Each engine's throwaway server for restore drills (scratch.ts), by name; one entry per engine. */
const SCRATCH_SERVERS: { readonly [N in EngineName]: StartScratchServer } = {
  postgres: (options) => startPostgresScratchServer(options),
  mysql: (options) => startMysqlScratchServer(options),
  redis: (options) => startRedisScratchServer(options),
  sqlite: startSqliteScratchServer,
};

/** Starts a throwaway server of `engine` for a restore drill; see StartScratchServer for its failures. */
export function startScratchServer(
  engine: EngineName,
  options: ScratchServerOptions,
): Promise<ScratchServer> {
  return SCRATCH_SERVERS[engine](options);
}
