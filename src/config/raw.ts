/**
 * Settings as configuration parsing holds them before they are validated: each value with where it came
 * from (so a message can name `DATASAVER_DB_PORT` or `targets.shop.port`), and the problems found so far.
 */
import { ConfigError } from '../util/errors.ts';
import type { DaemonFieldName, FieldName } from './fields.ts';

/** What configuration is parsed from. */
export interface ParseInput {
  /** The process environment (or a test's). */
  env: Readonly<Record<string, string | undefined>>;
  /** The config file's content (already parsed from YAML by `yaml.ts`), and its path for messages. */
  yaml?: { data: unknown; path: string } | undefined;
  /** Reads a `*_FILE` secret; throws if the file cannot be read. */
  readFile: (path: string) => string;
}

/** A value plus where it came from, so errors can name `DATASAVER_DB_PORT` or `targets.shop.port`. */
export interface Sourced {
  value: unknown;
  /** The variable or key it came from: `DATASAVER_DB_PORT`, `targets.shop.port`. */
  origin: string;
  /** Never shown in a message (passwords, URLs with credentials). */
  secret?: boolean | undefined;
}

/** A target's settings from one layer, or from its layers merged (later layers win). */
export type RawTarget = Partial<Record<FieldName, Sourced>>;

/** The daemon's settings from the environment and the file's `daemon:` section. */
export type RawDaemon = Partial<Record<DaemonFieldName, Sourced>>;

/** Every problem found in the configuration, so that one run reports them all. */
export class Problems {
  /** Each problem as `origin: message`, in the order found. */
  readonly list: string[] = [];
  /** Records a problem once (a shared layer is checked once per target that uses it). */
  add(origin: string, message: string): void {
    const line = `${origin}: ${message}`;
    if (!this.list.includes(line)) this.list.push(line); // shared layers are checked once per target
  }
  /** Throws a ConfigError listing every problem (naming the config file, if any); nothing if none. */
  throwIfAny(file: string | undefined): void {
    if (this.list.length === 0) return;
    const where = file ? ` in ${file}` : '';
    throw new ConfigError(`invalid configuration${where}:\n  - ${this.list.join('\n  - ')}`, {
      hint: 'fix the settings named above; `datasaver config check` shows the effective configuration',
    });
  }
}

/** A target setting as text, or undefined when it is not set. */
export function rawText(raw: RawTarget, field: FieldName): string | undefined {
  const v = raw[field];
  return v === undefined ? undefined : String(v.value);
}

/** A secret from a `*_FILE` variable or `*_file` key: the file's content, or a problem recorded. */
export function readSecretFile(
  input: ParseInput,
  path: string,
  origin: string,
  problems: Problems,
): string | undefined {
  try {
    // Secret files from Docker/Kubernetes usually end with a newline that is not part of the secret.
    return input.readFile(path).replace(/\r?\n$/, '');
  } catch (err) {
    problems.add(origin, `cannot read secret file ${path}: ${(err as Error).message}`);
    return undefined;
  }
}

/** An environment value; an empty variable counts as unset. */
export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
