import type { Engine, EngineTarget } from './engine.ts';
import { createMysqlEngine } from './mysql/engine.ts';
import { PostgresEngine } from './postgres/engine.ts';
import { createRedisEngine } from './redis/engine.ts';
import type { EngineName } from './registry.ts';
import { createSqliteEngine } from './sqlite/engine.ts';

/** The engine for a target, bound to its connection settings. */
export function createEngine(target: EngineTarget & { engine: EngineName }): Engine {
  switch (target.engine) {
    case 'postgres':
      return new PostgresEngine(target);
    case 'mysql':
      return createMysqlEngine(target);
    case 'redis':
      return createRedisEngine(target);
    case 'sqlite':
      return createSqliteEngine(target);
  }
}
