import type { TargetConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { Engine } from './engine.ts';

/** Placeholder while the redis engine is being built; replaced by the real engine. */
export function createRedisEngine(target: TargetConfig): Engine {
  throw new ConfigError(`the redis engine of target ${target.name} is not built yet`);
}
