import type { TargetConfig } from '../config/types.ts';
import type { Engine } from './engine.ts';
import { PostgresEngine } from './postgres.ts';

/** The engine for a target, bound to its connection settings. */
export function createEngine(target: TargetConfig): Engine {
  switch (target.engine) {
    case 'postgres':
      return new PostgresEngine(target);
  }
}
