import { closeSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../util/errors.ts';
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
      text = readCapped(abs, MAX_CONFIG_BYTES);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`cannot read config file ${abs}: ${(err as Error).message}`, {
        hint: 'check the path given with --config or DATASAVER_CONFIG',
        cause: err,
      });
    }
    const { parseYamlText } = await import('./yaml.ts');
    yaml = { data: parseYamlText(text, abs), path: abs };
  }
  return parseConfig({ env: options.env, yaml, readFile: (p) => readCapped(p, MAX_CONFIG_BYTES) });
}

/** Config files and secret files are small; anything larger is a mistake or an attack, and is not read. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * Reads a file as UTF-8, at most `limit` bytes: a bigger file (or an endless one, like /dev/zero) is
 * refused after reading one byte past the limit, so it never fills memory.
 */
function readCapped(path: string, limit: number): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(limit + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > limit) {
        throw new ConfigError(`${path} is larger than ${limit / 1024 / 1024} MiB; it is not read`, {
          hint: 'point --config (or the *_FILE setting) at the right file; configuration files are small',
        });
      }
    }
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}
