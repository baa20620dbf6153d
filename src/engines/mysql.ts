import type { TargetConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { Engine } from './engine.ts';

/** Placeholder while the mysql engine is being built; replaced by the real engine. */
export function createMysqlEngine(target: TargetConfig): Engine {
  throw new ConfigError(`the mysql engine of target ${target.name} is not built yet`);
}
