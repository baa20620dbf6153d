/**
 * The config file as layers of settings: `defaults:`, each of `targets:`, and `daemon:`. Each value is
 * checked for its shape (text where text is needed), `${VAR}` is expanded from the environment, and
 * `<key>_file` reads a secret from a file.
 */
import { DAEMON_FIELDS, type DaemonFieldName, FIELD_NAMES, FIELDS, type FieldName } from './fields.ts';
import { type ParseInput, type Problems, type RawDaemon, type RawTarget, readSecretFile } from './raw.ts';

/** The layers a config file holds. */
export interface YamlDoc {
  /** `defaults:`, shared by every target. */
  defaults: RawTarget;
  /** Each of `targets:`, its name set from its key. */
  targets: RawTarget[];
  /** `daemon:`. */
  daemon: RawDaemon;
}

/** The layers of a config file's data; anything it cannot hold is a problem, and left out. */
export function readYaml(data: unknown, path: string, input: ParseInput, problems: Problems): YamlDoc {
  const root: unknown = data ?? {};
  if (!isRecord(root)) {
    problems.add(path, 'expected a mapping with `targets:` (and optionally `defaults:`, `daemon:`)');
    return { defaults: {}, targets: [], daemon: {} };
  }
  for (const key of Object.keys(root)) {
    if (key !== 'targets' && key !== 'defaults' && key !== 'daemon')
      problems.add(key, 'unknown top-level key; expected targets, defaults, daemon');
  }
  const defaults = root.defaults === undefined ? {} : yamlLayer(root.defaults, 'defaults', input, problems);
  const targets: RawTarget[] = [];
  if (!isRecord(root.targets) || Object.keys(root.targets).length === 0) {
    problems.add('targets', 'expected a mapping of target names to their settings, with at least one target');
  } else {
    for (const [name, body] of Object.entries(root.targets)) {
      const layer = yamlLayer(body ?? {}, `targets.${name}`, input, problems);
      layer.name = { value: name, origin: `targets.${name}` };
      targets.push(layer);
    }
  }
  return { defaults, targets, daemon: daemonYaml(root.daemon, input, problems) };
}

function daemonYaml(body: unknown, input: ParseInput, problems: Problems): RawDaemon {
  const layer: RawDaemon = {};
  if (body === undefined || body === null) return layer;
  if (!isRecord(body)) {
    problems.add('daemon', 'expected a mapping of settings');
    return layer;
  }
  const byYaml = new Map(
    (Object.entries(DAEMON_FIELDS) as [DaemonFieldName, { yaml: string }][]).map(([f, s]) => [s.yaml, f]),
  );
  for (const [key, value] of Object.entries(body)) {
    const origin = `daemon.${key}`;
    const field = byYaml.get(key);
    if (!field) {
      problems.add(origin, `unknown setting; expected one of ${[...byYaml.keys()].join(', ')}`);
      continue;
    }
    const shape = yamlShapeProblem(value, TEXT_DAEMON_FIELDS.has(field), false, false);
    if (shape) {
      problems.add(origin, shape);
      continue;
    }
    const expanded = typeof value === 'string' ? expand(value, origin, input, problems) : value;
    if (expanded !== undefined) layer[field] = { value: expanded, origin };
  }
  return layer;
}

const YAML_KEYS = new Map<string, FieldName>(
  FIELD_NAMES.filter((f) => f !== 'name').map((f) => [FIELDS[f].yaml, f]),
);

function yamlLayer(body: unknown, at: string, input: ParseInput, problems: Problems): RawTarget {
  const layer: RawTarget = {};
  if (!isRecord(body)) {
    problems.add(at, 'expected a mapping of settings');
    return layer;
  }
  for (const [key, value] of flatten(body)) {
    const origin = `${at}.${key}`;
    const fileKey = key.endsWith('_file') ? key.slice(0, -'_file'.length) : undefined;
    const secretField = fileKey !== undefined ? YAML_KEYS.get(fileKey) : undefined;
    if (secretField && (FIELDS[secretField].secret || FIELDS[secretField].fromFile)) {
      if (layer[secretField]) problems.add(origin, `both ${fileKey} and ${key} are set; set only one`);
      const shape = yamlShapeProblem(value, true, false, false);
      if (shape) {
        problems.add(origin, shape);
        continue;
      }
      const path = expand(String(value), origin, input, problems);
      const secret = path === undefined ? undefined : readSecretFile(input, path, origin, problems);
      if (secret !== undefined)
        layer[secretField] = {
          value: secret,
          origin: `${origin} (${path})`,
          secret: FIELDS[secretField].secret,
        };
      continue;
    }
    const field = YAML_KEYS.get(key);
    if (!field) {
      problems.add(origin, `unknown setting; expected one of ${[...YAML_KEYS.keys()].join(', ')}`);
      continue;
    }
    if (layer[field]) problems.add(origin, `both ${key} and ${key}_file are set; set only one`);
    const shape = yamlShapeProblem(
      value,
      TEXT_FIELDS.has(field),
      LIST_FIELDS.has(field),
      FIELDS[field].secret === true,
    );
    if (shape) {
      problems.add(origin, shape);
      continue;
    }
    const expanded = typeof value === 'string' ? expand(value, origin, input, problems) : value;
    if (expanded !== undefined) layer[field] = { value: expanded, origin, secret: FIELDS[field].secret };
  }
  return layer;
}

/**
 * Settings whose YAML value must be text. A YAML number or boolean in their place has lost its form
 * before datasaver sees it (a password `0123` reads as 123, `1e3` as 1000), and a list or a mapping would
 * turn into `a` or `[object Object]`: both are refused, naming the field, instead of being guessed at.
 * Every other setting takes a single scalar (text, number or boolean); those in LIST_FIELDS a list too.
 */
const TEXT_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'engine',
  'url',
  'host',
  'database',
  'excludeDatabases',
  'user',
  'password',
  'sslmode',
  'tlsCa',
  'format',
  'compression',
  'storagePath',
  's3Endpoint',
  's3Region',
  's3Bucket',
  's3Prefix',
  's3AccessKey',
  's3SecretKey',
  's3Sse',
  's3SseKmsKeyId',
  's3StorageClass',
  'toolDir',
  'timeZone',
  'schedule',
  'webhookUrl',
  'slackWebhookUrl',
  'discordWebhookUrl',
  'ntfyUrl',
  'ntfyToken',
  'telegramBotToken',
  'telegramApiUrl',
  'healthchecksUrl',
  'encryptionRecipients',
  'encryptionPassphrase',
  'encryptionIdentityFile',
  'signingKey',
  'verifyKeys',
]);

/** Settings that take a list of names as well as one text. */
const LIST_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>(['storageBackend', 'excludeDatabases']);

const TEXT_DAEMON_FIELDS: ReadonlySet<DaemonFieldName> = new Set<DaemonFieldName>([
  'metricsHost',
  'logLevel',
  'logFormat',
]);

/** Why a YAML value cannot be the setting it is given for, or undefined when its shape fits. */
function yamlShapeProblem(value: unknown, text: boolean, list: boolean, secret: boolean): string | undefined {
  if (value === null || value === undefined) return 'has no value; give one, or remove the key';
  const kind = typeof value;
  if (list && (Array.isArray(value) || kind === 'object')) {
    const names = Array.isArray(value) && value.every((v) => typeof v === 'string');
    return names ? undefined : 'expected a name or a list of names, e.g. [local, s3]';
  }
  if (Array.isArray(value)) return 'is a list; expected a single value';
  if (kind === 'object') return 'is a mapping; expected a single value';
  if (text && kind !== 'string') {
    const shown = secret ? '' : ` (${String(value)})`;
    return `is a ${kind}${shown}; expected text: put the value in quotes`;
  }
  if (kind !== 'string' && kind !== 'number' && kind !== 'boolean') return 'expected a single value';
  return undefined;
}

const NESTED = new Set(['storage', 'retention', 's3', 'notify', 'encryption', 'signing']);

/**
 * `storage: {path: x}` -> `storage.path` (and `retention.*`, `s3.*`, `notify.*`, `encryption.*`,
 * `signing.*`); other values stay as they are.
 */
function flatten(body: Record<string, unknown>, prefix = ''): [string, unknown][] {
  return Object.entries(body).flatMap(([k, v]) =>
    isRecord(v) && NESTED.has(k) && !prefix
      ? flatten(v, `${k}.`)
      : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

/** `${VAR}` and `${VAR:-default}` from the environment; `$${` is a literal `${`. */
function expand(value: string, origin: string, input: ParseInput, problems: Problems): string | undefined {
  let ok = true;
  const out = value.replace(
    /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (m, name?: string, def?: string) => {
      if (m === '$${') return '${';
      const v = input.env[name!];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      ok = false;
      problems.add(origin, `refers to \${${name}}, which is not set in the environment`);
      return '';
    },
  );
  return ok ? out : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
