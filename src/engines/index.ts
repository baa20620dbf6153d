import type { Engine, EngineTarget } from './engine.ts';
import { createMysqlEngine } from './mysql/engine.ts';
import { PostgresEngine } from './postgres/engine.ts';
import { createRedisEngine } from './redis/engine.ts';
import type { EngineName } from './registry.ts';
import { createSqliteEngine } from './sqlite/engine.ts';

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
