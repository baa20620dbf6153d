import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import { parseConfig } from './parse.ts';
import type { Config } from './types.ts';

/**
 * Reads the config file (from `--config` or DATASAVER_CONFIG) and the environment, then hands both to the
 * pure parser. The only I/O of configuration lives here.
 */
export async function loadConfig(options: {
  configFile?: string | undefined;
  env: NodeJS.ProcessEnv;
}): Promise<Config> {
  const path = options.configFile ?? (options.env.DATASAVER_CONFIG || undefined);
  let yaml: { data: unknown; path: string } | undefined;
  if (path) {
    const abs = resolve(path);
    let text: string;
    try {
      text = readFileSync(abs, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${abs}: ${(err as Error).message}`, {
        hint: 'check the path given with --config or DATASAVER_CONFIG',
        cause: err,
      });
    }
    const { parseYamlText } = await import('./yaml.ts');
    yaml = { data: parseYamlText(text, abs), path: abs };
  }
  return parseConfig({ env: options.env, yaml, readFile: (p) => readFileSync(p, 'utf8') });
}
