import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { parseConfig } from './parse.ts';
import type { Config } from './types.ts';

/**
 * Reads the config file (from `--config` or DATASAVER_CONFIG) and the environment, then hands both to the
 * pure parser. The only I/O of configuration lives here.
 */
export function loadConfig(options: { configFile?: string | undefined; env: NodeJS.ProcessEnv }): Config {
  const path = options.configFile ?? (options.env.DATASAVER_CONFIG || undefined);
  let yaml: { text: string; path: string } | undefined;
  if (path) {
    const abs = resolve(path);
    try {
      yaml = { text: readFileSync(abs, 'utf8'), path: abs };
    } catch (err) {
      throw new ConfigError(`cannot read config file ${abs}: ${(err as Error).message}`, {
        hint: 'check the path given with --config or DATASAVER_CONFIG',
        cause: err,
      });
    }
  }
  return parseConfig({ env: options.env, yaml, readFile: (p) => readFileSync(p, 'utf8') });
}
