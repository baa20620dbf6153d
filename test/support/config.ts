/** Parsing configuration in unit tests: files from a table instead of the disk, errors checked as config problems. */
import { expect } from 'vitest';
import { parseConfig } from '../../src/config/parse.ts';
import type { Config } from '../../src/config/types.ts';
import { parseYamlText } from '../../src/config/yaml.ts';
import { ConfigError } from '../../src/util/errors.ts';

/** A parser of (environment, optional YAML text of /etc/datasaver.yaml) whose readFile serves `files`. */
export function configParser(
  files: Record<string, string>,
): (env: Record<string, string>, yaml?: string) => Config {
  const readFile = (p: string) => {
    const v = files[p];
    if (v === undefined) throw new Error(`ENOENT: no such file or directory, open '${p}'`);
    return v;
  };
  return (env, yaml) => {
    const path = '/etc/datasaver.yaml';
    return parseConfig({
      env,
      yaml: yaml === undefined ? undefined : { data: parseYamlText(yaml, path), path },
      readFile,
    });
  };
}

/** The ConfigError (exit 2) `fn` throws; fails the test when it throws nothing or something else. */
export function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}
