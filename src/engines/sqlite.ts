import type { TargetConfig } from '../config/types.ts';
import { ConfigError } from '../errors.ts';
import type { Engine } from './engine.ts';

/** Placeholder while the sqlite engine is being built; replaced by the real engine. */
export function createSqliteEngine(target: TargetConfig): Engine {
  throw new ConfigError(`the sqlite engine of target ${target.name} is not built yet`);
}
