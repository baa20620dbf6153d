/**
 * Pure configuration parsing: environment + optional YAML text in, validated `Config` out. File reading is
 * injected (`readFile`) so this module does no I/O of its own; `load.ts` is the thin wrapper that does.
 *
 * Layers, lowest first: built-in defaults < environment < the file's `defaults:` < the file's target.
 * Without a file, the environment describes one target (when it names a database). With a file, the
 * environment only supplies shared settings (storage, compression, format...); connection variables are
 * ignored so that one sidecar's env cannot silently redirect every target of a file.
 */

import type { EngineDescriptor, EngineSettings } from '../engines/descriptor.ts';
import {
  DEFAULT_ENGINE,
  ENGINE_NAMES,
  ENGINES,
  type EngineName,
  engineDescriptor,
  engineForScheme,
} from '../engines/registry.ts';
import { COMPRESSION_ALGORITHMS } from '../pipeline/compression.ts';
import { isTimeZone } from '../retention/calendar.ts';
import { DEFAULT_RULES, policyProblem, type RetentionRules } from '../retention/policy.ts';
import { DEFAULT_SCHEDULE, longestInterval, parseSchedule } from '../schedule/cron.ts';
import {
  S3_SSE_MODES,
  S3_VERIFY_MODES,
  type S3StorageConfig,
  type S3VerifyMode,
  type StorageConfig,
} from '../storage/config.ts';
import { ConfigError } from '../util/errors.ts';
import { LOG_FORMATS, LOG_LEVELS } from '../util/log.ts';
import { redact, Secret } from '../util/secret.ts';
import { DAEMON_FIELDS, type DaemonFieldName, FIELD_NAMES, FIELDS, type FieldName } from './fields.ts';
import { DEFAULT_LEASE_TTL_SECONDS, DEFAULT_SIZE_CHANGE_ALERT, MAX_LEASE_TTL_SECONDS } from './target.ts';
import type {
  Config,
  DaemonConfig,
  NotifyConfig,
  RetentionConfig,
  ScheduleConfig,
  TargetConfig,
} from './types.ts';

export interface ParseInput {
  env: Readonly<Record<string, string | undefined>>;
  /** The config file's content (already parsed from YAML by `yaml.ts`), and its path for messages. */
  yaml?: { data: unknown; path: string } | undefined;
  /** Reads a `*_FILE` secret; throws if the file cannot be read. */
  readFile: (path: string) => string;
}

/** A value plus where it came from, so errors can name `DATASAVER_DB_PORT` or `targets.shop.port`. */
interface Sourced {
  value: unknown;
  origin: string;
  /** Never shown in a message (passwords, URLs with credentials). */
  secret?: boolean | undefined;
}
type RawTarget = Partial<Record<FieldName, Sourced>>;

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
const LEVELS: Record<string, [number, number]> = { zstd: [1, 19], gzip: [1, 9] };

class Problems {
  readonly list: string[] = [];
  add(origin: string, message: string): void {
    const line = `${origin}: ${message}`;
    if (!this.list.includes(line)) this.list.push(line); // shared layers are checked once per target
  }
  throwIfAny(file: string | undefined): void {
    if (this.list.length === 0) return;
    const where = file ? ` in ${file}` : '';
    throw new ConfigError(`invalid configuration${where}:\n  - ${this.list.join('\n  - ')}`, {
      hint: 'fix the settings named above; `datasaver config check` shows the effective configuration',
    });
  }
}

export function parseConfig(input: ParseInput): Config {
  const problems = new Problems();
  const warnings: string[] = [];
  const envLayer = readEnvLayer(input, problems);

  let file: string | undefined;
  const targets: RawTarget[] = [];
  let sharedLayer: RawTarget;
  let daemonLayer = readDaemonEnv(input);

  if (input.yaml) {
    file = input.yaml.path;
    const doc = readYaml(input.yaml.data, file, input, problems);
    sharedLayer = { ...pick(envLayer, (f) => !FIELDS[f].connection), ...doc.defaults };
    daemonLayer = { ...daemonLayer, ...doc.daemon };
    for (const f of FIELD_NAMES) {
      if (FIELDS[f].connection && envLayer[f]) {
        warnings.push(
          `${envLayer[f].origin} is ignored because the config file ${file} describes the targets`,
        );
      }
    }
    for (const t of doc.targets) targets.push({ ...sharedLayer, ...t });
  } else {
    sharedLayer = envLayer;
    const describesDatabase = envLayer.url || envLayer.database || envLayer.host;
    if (describesDatabase) targets.push(envLayer);
  }

  // Where DATASAVER_S3_REGION is not set: the AWS SDK's own variables (ECS and Lambda set AWS_REGION).
  const region =
    nonEmpty(input.env.AWS_REGION) ?? nonEmpty(input.env.AWS_DEFAULT_REGION) ?? DEFAULT_S3_REGION;
  const built = targets.map((t) => buildTarget(t, problems, warnings, region));
  const daemon = buildDaemon(daemonLayer, problems);
  const defaultDestinations = buildDestinations(sharedLayer, problems, false, region) ?? [];
  const names = new Set<string>();
  for (const t of built) {
    if (!t) continue;
    if (names.has(t.name))
      problems.add(`target ${t.name}`, 'two targets have this name; names must be unique');
    names.add(t.name);
  }
  problems.throwIfAny(file);
  const defaultToolDir = sharedLayer.toolDir ? String(sharedLayer.toolDir.value) : undefined;
  return {
    file,
    targets: built.filter((t): t is TargetConfig => t !== undefined),
    defaultDestinations,
    defaultToolDir,
    daemon,
    warnings,
  };
}

type RawDaemon = Partial<Record<DaemonFieldName, Sourced>>;

function readDaemonEnv(input: ParseInput): RawDaemon {
  const layer: RawDaemon = {};
  for (const [f, spec] of Object.entries(DAEMON_FIELDS) as [DaemonFieldName, { env: string }][]) {
    const v = nonEmpty(input.env[spec.env]);
    if (v !== undefined) layer[f] = { value: v, origin: spec.env };
  }
  return layer;
}

function buildDaemon(raw: RawDaemon, problems: Problems): DaemonConfig {
  return {
    metricsPort: check(raw.metricsPort, intIn(1, 65535, 'a port number 1-65535'), problems) ?? 9090,
    metricsHost: raw.metricsHost ? String(raw.metricsHost.value) : DEFAULT_METRICS_HOST,
    shutdownTimeoutSeconds:
      check(raw.shutdownTimeoutSeconds, intIn(1, 3600, 'a number of seconds, 1-3600'), problems) ?? 30,
    logLevel: check(raw.logLevel, oneOf(LOG_LEVELS), problems) ?? 'info',
    logFormat: check(raw.logFormat, oneOf(LOG_FORMATS), problems) ?? 'auto',
    healthDetails: check(raw.healthDetails, BOOLEAN, problems) ?? false,
  };
}

/** Loopback: the port serves health and metrics to the host's own probes unless told otherwise. */
const DEFAULT_METRICS_HOST = '127.0.0.1';

const DEFAULT_S3_REGION = 'us-east-1';

function readEnvLayer(input: ParseInput, problems: Problems): RawTarget {
  const layer: RawTarget = {};
  for (const f of FIELD_NAMES) {
    const spec = FIELDS[f];
    const direct = nonEmpty(input.env[spec.env]);
    const fileVar = `${spec.env}_FILE`;
    const filePath = spec.secret ? nonEmpty(input.env[fileVar]) : undefined;
    if (direct !== undefined && filePath !== undefined) {
      problems.add(spec.env, `both ${spec.env} and ${fileVar} are set; set only one`);
    } else if (filePath !== undefined) {
      const value = readSecretFile(input, filePath, fileVar, problems);
      if (value !== undefined) layer[f] = { value, origin: `${fileVar} (${filePath})`, secret: true };
    } else if (direct !== undefined) {
      layer[f] = { value: direct, origin: spec.env, secret: spec.secret };
    }
  }
  return layer;
}

function readSecretFile(
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

interface YamlDoc {
  defaults: RawTarget;
  targets: RawTarget[];
  daemon: RawDaemon;
}

function readYaml(data: unknown, path: string, input: ParseInput, problems: Problems): YamlDoc {
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
    if (secretField && FIELDS[secretField].secret) {
      if (layer[secretField]) problems.add(origin, `both ${fileKey} and ${key} are set; set only one`);
      const shape = yamlShapeProblem(value, true, false, false);
      if (shape) {
        problems.add(origin, shape);
        continue;
      }
      const path = expand(String(value), origin, input, problems);
      const secret = path === undefined ? undefined : readSecretFile(input, path, origin, problems);
      if (secret !== undefined)
        layer[secretField] = { value: secret, origin: `${origin} (${path})`, secret: true };
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
      field === 'storageBackend',
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
 * Every other setting takes a single scalar (text, number or boolean); only `storage.backend` a list.
 */
const TEXT_FIELDS: ReadonlySet<FieldName> = new Set<FieldName>([
  'engine',
  'url',
  'host',
  'database',
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
]);
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

const NESTED = new Set(['storage', 'retention', 's3', 'notify']);

/** `storage: {path: x}` -> `storage.path` (and `retention.*`, `s3.*`, `notify.*`); other values stay as they are. */
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

/** Merges a target's layers into a validated TargetConfig, or records problems and returns undefined. */
function buildTarget(
  raw: RawTarget,
  problems: Problems,
  warnings: string[],
  defaultRegion: string,
): TargetConfig | undefined {
  const before = problems.list.length;
  const fromUrl = raw.url ? parseDatabaseUrl(raw.url, problems) : {};
  const pickStr = (f: FieldName): string | undefined => {
    const v = raw[f];
    return v === undefined ? undefined : String(v.value);
  };

  const declared = check(raw.engine, oneOf(ENGINE_NAMES), problems);
  if (declared && fromUrl.engine && declared !== fromUrl.engine) {
    problems.add(raw.engine!.origin, `says ${declared} but the database URL is for ${fromUrl.engine}`);
  }
  const engine = declared ?? fromUrl.engine ?? DEFAULT_ENGINE;
  const descriptor = engineDescriptor(engine);
  const port = raw.port ? check(raw.port, intIn(1, 65535, 'a port number 1-65535'), problems) : fromUrl.port;
  const sslmode = raw.sslmode ? check(raw.sslmode, oneOf(SSL_MODES), problems) : fromUrl.sslmode;
  if (raw.sslmode && !descriptor.settings.sslmode)
    problems.add(
      raw.sslmode.origin,
      `applies to ${enginesTaking('sslmode')} only; for ${engine} use ${FIELDS.tls.env}`,
    );
  const tlsCa = raw.tlsCa ? check(raw.tlsCa, TLS_CA_FILE, problems) : undefined;
  // A CA to verify against only makes sense over TLS: it turns TLS on.
  const tls = (raw.tls ? check(raw.tls, BOOLEAN, problems) : fromUrl.tls) || tlsCa !== undefined;
  if (tls && !descriptor.settings.tls)
    problems.add(
      raw.tls?.origin ?? raw.tlsCa?.origin ?? 'database URL',
      `TLS applies to ${enginesTaking('tls')}; ${enginesTaking('sslmode')} uses ${FIELDS.sslmode.env} (verify-full checks the server's certificate against libpq's root.crt)`,
    );
  const password = raw.password ? new Secret(String(raw.password.value)) : fromUrl.password;
  const database = pickStr('database') ?? fromUrl.database;
  const databaseOrigin = raw.database?.origin ?? raw.url?.origin ?? FIELDS.database.env;
  if (descriptor.database === 'file' && !database?.startsWith('/')) {
    problems.add(
      databaseOrigin,
      `a ${descriptor.label} target needs the absolute path of its database file: ${exampleFileUrl(descriptor)}, or ${FIELDS.database.env}=${EXAMPLE_FILE}`,
    );
  }
  if (descriptor.database === 'server' && raw.database) {
    problems.add(
      raw.database.origin,
      `a ${descriptor.label} backup holds every database of the server; remove this setting`,
    );
  }

  const derived = descriptor.defaultTargetName(database);
  const nameSource =
    raw.name ?? (derived === undefined ? undefined : { value: targetName(derived), origin: 'target name' });
  if (!nameSource) problems.add(FIELDS.name.env, 'no target name and no database name to derive one from');
  const name = check(nameSource, TARGET_NAME, problems);

  const formats = descriptor.formatNames;
  const format =
    check(raw.format, oneOf(formats, `one of ${formats.join(', ')} for ${engine}`), problems) ?? formats[0]!;
  const schemaOnly = check(raw.schemaOnly, BOOLEAN, problems) ?? false;
  if (schemaOnly && !descriptor.settings.schemaOnly)
    problems.add(raw.schemaOnly!.origin, `${engine} backups have no schema-only mode`);
  const algorithm = check(raw.compression, oneOf(COMPRESSION_ALGORITHMS), problems) ?? 'zstd';
  const range = LEVELS[algorithm];
  // A level set in shared defaults simply does not apply to a target that turns compression off.
  const level =
    raw.compressionLevel && range
      ? check(
          raw.compressionLevel,
          intIn(range[0], range[1], `an integer ${range[0]}-${range[1]} for ${algorithm}`),
          problems,
        )
      : undefined;
  const destinations = buildDestinations(raw, problems, true, defaultRegion);
  const timeZone = check(raw.timeZone, TIME_ZONE, problems) ?? 'UTC';
  const retention = buildRetention(raw, name, problems);
  const schedule = buildSchedule(raw, timeZone, problems);
  const alertAfterHours = check(raw.alertAfterHours, ALERT_HOURS, problems) ?? 26;
  const sizeChangeAlert = check(raw.sizeChangeAlert, PERCENT_OR_OFF, problems) ?? DEFAULT_SIZE_CHANGE_ALERT;
  const leaseTtlSeconds = check(raw.leaseTtlSeconds, LEASE_TTL, problems) ?? DEFAULT_LEASE_TTL_SECONDS;
  const notify = buildNotify(raw, problems);
  if (schedule && name) scheduleWarning(raw, name, schedule, timeZone, alertAfterHours, warnings);

  if (problems.list.length > before || !name || !destinations || !retention || !schedule) return undefined;
  return {
    name,
    engine,
    connection: {
      host: pickStr('host') ?? fromUrl.host,
      port,
      database,
      user: pickStr('user') ?? fromUrl.user,
      password,
      sslmode,
      tls,
      tlsCa,
    },
    format,
    schemaOnly,
    compression: { algorithm, level },
    destinations,
    toolDir: pickStr('toolDir'),
    timeZone,
    retention,
    schedule,
    alertAfterHours,
    sizeChangeAlert,
    leaseTtlSeconds,
    notify,
  };
}

function buildSchedule(raw: RawTarget, timeZone: string, problems: Problems): ScheduleConfig | undefined {
  const cron = raw.schedule ? String(raw.schedule.value).trim() : DEFAULT_SCHEDULE;
  const parsed = parseSchedule(cron, timeZone);
  if ('problem' in parsed) {
    problems.add(
      raw.schedule?.origin ?? FIELDS.schedule.env,
      `'${cron}' is not a valid schedule (${parsed.problem}); expected a cron expression such as '0 2 * * *' (02:00 daily) or, with seconds first, '*/30 * * * * *'`,
    );
  }
  const settings = {
    cron,
    jitterSeconds: check(raw.jitterSeconds, intIn(0, 86_400, 'a number of seconds, 0-86400'), problems) ?? 0,
    retryAttempts:
      check(raw.retryAttempts, intIn(1, 100, 'a number of tries, 1 (no retry) to 100'), problems) ?? 3,
    retryDelaySeconds: check(raw.retryDelaySeconds, POSITIVE_NUMBER('seconds'), problems) ?? 30,
  };
  return 'problem' in parsed ? undefined : settings;
}

/** A dead man's switch shorter than the gap between runs would call a healthy target stale. */
function scheduleWarning(
  raw: RawTarget,
  name: string,
  schedule: ScheduleConfig,
  timeZone: string,
  alertAfterHours: number,
  warnings: string[],
): void {
  const parsed = parseSchedule(schedule.cron, timeZone);
  if ('problem' in parsed) return;
  const gap = longestInterval(parsed, new Date());
  const windowMs = alertAfterHours * 3_600_000;
  if (gap !== undefined && schedule.jitterSeconds * 1000 >= gap) {
    warnings.push(
      `target ${name}: ${raw.jitterSeconds?.origin ?? FIELDS.jitterSeconds.env} (${schedule.jitterSeconds} s) is not shorter than the gap between scheduled runs (${Math.round(gap / 1000)} s), so runs will be skipped; keep the jitter well below the gap`,
    );
  }
  if (gap !== undefined && gap + schedule.jitterSeconds * 1000 >= windowMs) {
    warnings.push(
      `target ${name}: ${raw.alertAfterHours?.origin ?? FIELDS.alertAfterHours.env} (${alertAfterHours} h) is not longer than the gap between scheduled runs (${(gap / 3_600_000).toFixed(2)} h), so the target will look stale between runs; raise it above the gap`,
    );
  }
}

function buildNotify(raw: RawTarget, problems: Problems): NotifyConfig {
  const url = (f: FieldName): Secret | undefined => {
    const v = check(raw[f], SECRET_URL, problems);
    return v === undefined ? undefined : new Secret(v);
  };
  const secret = (f: FieldName): Secret | undefined => {
    const v = raw[f];
    return v === undefined ? undefined : new Secret(String(v.value));
  };
  const ntfyUrl = url('ntfyUrl');
  if (raw.ntfyToken && !raw.ntfyUrl)
    problems.add(raw.ntfyToken.origin, `an ntfy token needs ${FIELDS.ntfyUrl.env} (the topic URL)`);
  const botToken = secret('telegramBotToken');
  const chatId = raw.telegramChatId ? String(raw.telegramChatId.value) : undefined;
  if ((botToken === undefined) !== (chatId === undefined)) {
    const given = raw.telegramBotToken ?? raw.telegramChatId;
    problems.add(
      given!.origin,
      `Telegram needs both ${FIELDS.telegramBotToken.env} and ${FIELDS.telegramChatId.env}`,
    );
  }
  const apiUrl = check(raw.telegramApiUrl, HTTP_URL, problems) ?? 'https://api.telegram.org';
  return {
    webhookUrl: url('webhookUrl'),
    slackWebhookUrl: url('slackWebhookUrl'),
    discordWebhookUrl: url('discordWebhookUrl'),
    ntfy: ntfyUrl ? { url: ntfyUrl, token: secret('ntfyToken') } : undefined,
    telegram: botToken && chatId ? { botToken, chatId, apiUrl } : undefined,
    healthchecksUrl: url('healthchecksUrl'),
    onSuccess: check(raw.notifyOnSuccess, BOOLEAN, problems) ?? false,
  };
}

const RULE_FIELDS = [
  'keepLast',
  'keepDaily',
  'keepWeekly',
  'keepMonthly',
  'keepYearly',
  'maxAgeDays',
  'minKeep',
] as const satisfies readonly (keyof RetentionRules & FieldName)[];

function buildRetention(
  raw: RawTarget,
  name: string | undefined,
  problems: Problems,
): RetentionConfig | undefined {
  const rules = { ...DEFAULT_RULES };
  for (const f of RULE_FIELDS) {
    const n = check(raw[f], intIn(0, 100_000, 'a whole number, 0 to turn the rule off'), problems);
    if (n !== undefined) rules[f] = n;
  }
  const grace = check(raw.incompleteGraceHours, GRACE_HOURS, problems) ?? 24;
  const problem = policyProblem(rules);
  if (problem) {
    const given = RULE_FIELDS.filter((f) => raw[f]).map((f) => raw[f]!.origin);
    problems.add(given.join(', ') || `retention of target ${name}`, problem);
    return undefined;
  }
  return { ...rules, incompleteGraceHours: grace };
}

const BACKENDS = ['local', 's3'] as const;

/**
 * Where backups go: `storage.backend` lists the destinations (`local`, `s3`, or both); without it they
 * follow from what is set (a storage path means local, a bucket means S3). Local comes first: it is the
 * fastest copy to restore from.
 */
function buildDestinations(
  raw: RawTarget,
  problems: Problems,
  required: boolean,
  defaultRegion: string,
): StorageConfig[] | undefined {
  let backends: ('local' | 's3')[] = [];
  if (raw.storageBackend) {
    const value = raw.storageBackend.value;
    const names = (Array.isArray(value) ? value.map(String) : String(value).split(','))
      .map((n) => n.trim())
      .filter(Boolean);
    for (const n of names) {
      const b = BACKENDS.find((x) => x === n);
      if (b) backends.push(b);
      else
        problems.add(raw.storageBackend.origin, `'${n}' is not valid; expected local, s3, or both: local,s3`);
    }
  } else {
    if (raw.storagePath) backends.push('local');
    if (raw.s3Bucket) backends.push('s3');
  }
  backends = BACKENDS.filter((b) => backends.includes(b));
  if (backends.length === 0) {
    if (required) {
      problems.add(
        FIELDS.storagePath.env,
        `no storage is set; set ${FIELDS.storagePath.env} (a directory) and/or ${FIELDS.s3Bucket.env} (an S3 bucket), or storage.path / s3.bucket in the config file`,
      );
    }
    return required ? undefined : [];
  }
  const out: StorageConfig[] = [];
  for (const backend of backends) {
    if (backend === 'local') {
      if (!raw.storagePath) {
        problems.add(
          FIELDS.storagePath.env,
          `not set, but the local backend is selected; set it (or ${FIELDS.storagePath.yaml})`,
        );
        continue;
      }
      const path = check(raw.storagePath, ABSOLUTE_PATH, problems);
      if (path !== undefined) out.push({ backend: 'local', path: path.replace(/(.)\/+$/, '$1') });
    } else {
      const s3 = buildS3(raw, problems, defaultRegion);
      if (s3) out.push(s3);
    }
  }
  return out.length === backends.length ? out : undefined;
}

function buildS3(raw: RawTarget, problems: Problems, defaultRegion: string): S3StorageConfig | undefined {
  const before = problems.list.length;
  if (!raw.s3Bucket) {
    problems.add(
      FIELDS.s3Bucket.env,
      `not set, but the s3 backend is selected; set it (or ${FIELDS.s3Bucket.yaml})`,
    );
  }
  const bucket = check(raw.s3Bucket, S3_BUCKET, problems);
  const endpoint = check(raw.s3Endpoint, HTTP_URL, problems);
  const sse = check(raw.s3Sse, oneOf(S3_SSE_MODES), problems);
  // S3 allows 5 MiB parts, but 8 MiB is the least with which 10,000 growing parts reach 5 TiB.
  const partSizeMb = check(raw.s3PartSizeMb, intIn(8, 5120, 'a part size in MiB, 8-5120'), problems) ?? 8;
  const uploadConcurrency =
    check(raw.s3UploadConcurrency, intIn(1, 64, 'a number of parallel part uploads, 1-64'), problems) ?? 4;
  const accessKey = raw.s3AccessKey ? new Secret(String(raw.s3AccessKey.value)) : undefined;
  const secretKey = raw.s3SecretKey ? new Secret(String(raw.s3SecretKey.value)) : undefined;
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    const given = raw.s3AccessKey ?? raw.s3SecretKey;
    problems.add(
      given!.origin,
      `set both ${FIELDS.s3AccessKey.env} and ${FIELDS.s3SecretKey.env}, or neither (to use the AWS default credential chain)`,
    );
  }
  if (raw.s3SseKmsKeyId && sse !== 'aws:kms') {
    problems.add(raw.s3SseKmsKeyId.origin, `a KMS key id needs ${FIELDS.s3Sse.env}=aws:kms`);
  }
  const prefix = raw.s3Prefix ? String(raw.s3Prefix.value).replace(/^\/+|\/+$/g, '') : '';
  if (prefix.split('/').some((s) => s === '.' || s === '..' || (prefix !== '' && s === ''))) {
    problems.add(
      raw.s3Prefix!.origin,
      `'${prefix}' is not valid; expected a key prefix such as backups/prod`,
    );
  }
  if (problems.list.length > before || !bucket) return undefined;
  return {
    backend: 's3',
    bucket,
    prefix,
    endpoint,
    region: raw.s3Region ? String(raw.s3Region.value) : defaultRegion,
    // Self-hosted S3 (MinIO and most others) needs path-style addressing; AWS prefers virtual hosts.
    forcePathStyle: check(raw.s3ForcePathStyle, BOOLEAN, problems) ?? endpoint !== undefined,
    accessKey,
    secretKey,
    sse,
    sseKmsKeyId: raw.s3SseKmsKeyId ? String(raw.s3SseKmsKeyId.value) : undefined,
    storageClass: check(raw.s3StorageClass, STORAGE_CLASS, problems),
    partSizeMb,
    uploadConcurrency,
    verifyUpload: check(raw.s3VerifyUpload, VERIFY_UPLOAD, problems) ?? 'etag',
  };
}

interface UrlParts {
  engine?: EngineName;
  tls?: boolean;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: Secret;
  sslmode?: string;
}

const URL_EXAMPLES = ENGINES.map((d) => d.urlExample).join(', ');

/** The database file that messages about a file engine's settings show. */
const EXAMPLE_FILE = '/var/lib/app/app.db';

function exampleFileUrl(descriptor: EngineDescriptor): string {
  return `${descriptor.schemes[0]!.scheme}//${EXAMPLE_FILE}`;
}

/** The engines that take a setting, for messages: `mysql and redis`. */
function enginesTaking(setting: keyof EngineSettings): string {
  return ENGINES.filter((d) => d.settings[setting])
    .map((d) => d.name)
    .join(' and ');
}

/**
 * Splits `scheme://user:pass@host:port/db?sslmode=x`; the password becomes a Secret. The scheme names the
 * engine (its descriptor's `schemes`; one may turn TLS on, as `rediss:` does), and the engine's database
 * kind says what the path is: a database name after the host, or a file (`sqlite:///absolute/path.db`).
 */
function parseDatabaseUrl(source: Sourced, problems: Problems): UrlParts {
  const text = String(source.value);
  const shown = redact(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.add(source.origin, `'${shown}' is not a URL; expected one of ${URL_EXAMPLES}`);
    return {};
  }
  const descriptor = engineForScheme(url.protocol);
  if (!descriptor) {
    problems.add(
      source.origin,
      `'${shown}': unknown scheme ${url.protocol}; expected one of ${URL_EXAMPLES}`,
    );
    return {};
  }
  const engine = descriptor.name;
  const parts: UrlParts = { engine };
  if (descriptor.schemes.some((s) => s.scheme === url.protocol && s.tls)) parts.tls = true;
  if (url.hash) {
    problems.add(source.origin, `'${shown}' has a '#' part; encode '#' in a path or password as %23`);
    return {};
  }
  try {
    if (url.hostname) parts.host = decodeURIComponent(url.hostname.replace(/^\[(.*)\]$/, '$1'));
    if (url.username) parts.user = decodeURIComponent(url.username);
    if (url.password) parts.password = new Secret(decodeURIComponent(url.password));
    const path = decodeURIComponent(url.pathname);
    // sqlite:///var/lib/app.db names a file; the others name a database after the host.
    const db = descriptor.database === 'file' ? path : path.replace(/^\//, '');
    const problem = urlPathProblem(descriptor, db);
    if (problem) {
      problems.add(source.origin, `'${shown}': ${problem}`);
      return {};
    }
    if (db && descriptor.database !== 'server') parts.database = db;
  } catch {
    problems.add(source.origin, `'${shown}' has a malformed %-escape; encode special characters as %XX`);
    return {};
  }
  if (descriptor.database === 'file' && parts.host) {
    problems.add(
      source.origin,
      `'${shown}': a ${descriptor.label} URL has no host; write ${descriptor.schemes[0]!.scheme}///absolute/path.db (three slashes)`,
    );
    return {};
  }
  if (url.port) parts.port = Number(url.port);
  for (const [key, value] of url.searchParams) {
    if (!descriptor.settings.sslmode) {
      problems.add(source.origin, `URL parameter ${key} is not supported for ${engine}`);
      continue;
    }
    // Only the key is shown: a libpq URL may carry `password=` as a parameter.
    if (key !== 'sslmode')
      problems.add(source.origin, `URL parameter ${key} is not supported; supported: sslmode`);
    else if ((SSL_MODES as readonly string[]).includes(value)) parts.sslmode = value;
    else
      problems.add(
        source.origin,
        `sslmode '${value}' in the URL is not valid; expected one of ${SSL_MODES.join(', ')}`,
      );
  }
  return parts;
}

/** Why a database URL's (decoded) path cannot be what the engine's database kind needs. */
function urlPathProblem(descriptor: EngineDescriptor, db: string): string | undefined {
  const scheme = descriptor.schemes[0]!.scheme;
  // redis://host/0 picks a database number for clients; a backup holds every database anyway.
  if (descriptor.database === 'server' && db && !/^\d+$/.test(db))
    return `a ${descriptor.label} URL is ${scheme}//user:password@host:port (optionally /N); unix socket paths are not supported`;
  if (descriptor.database === 'file' && (db === '' || db.endsWith('/')))
    return `name the database file, e.g. ${exampleFileUrl(descriptor)}`;
  return undefined;
}

/** Turns a raw setting into a typed value, or undefined when it is not valid. */
interface Validator<T> {
  parse(value: unknown): T | undefined;
  /** What a valid value looks like, for the error message. */
  expected: string;
}

function oneOf<T extends string>(
  values: readonly T[],
  expected = `one of ${values.join(', ')}`,
): Validator<T> {
  return { parse: (v) => values.find((x) => x === String(v)), expected };
}

function intIn(min: number, max: number, expected: string): Validator<number> {
  return {
    parse: (v) => {
      const text = String(v).trim();
      const n = Number(text);
      return /^-?\d+$/.test(text) && n >= min && n <= max ? n : undefined;
    },
    expected,
  };
}

function matching(pattern: RegExp, expected: string): Validator<string> {
  return { parse: (v) => (typeof v === 'string' && pattern.test(v) ? v : undefined), expected };
}

const TARGET_NAME = matching(
  /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
  'letters, digits, `_` and `-`, starting with a letter or digit, at most 63 characters',
);
const ABSOLUTE_PATH = matching(/^\//, 'an absolute directory path');
const TLS_CA_FILE = matching(/^\/[^\n]*[^/\n]$/, 'the absolute path of a PEM file with CA certificates');
const S3_BUCKET = matching(
  /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  'an S3 bucket name: 3-63 lowercase letters, digits, `.` and `-`',
);
const HTTP_URL: Validator<string> = {
  parse: (v) => {
    try {
      const u = new URL(String(v));
      // Credentials belong in the key settings, where they are treated as secrets.
      if (u.username || u.password) return undefined;
      return u.protocol === 'http:' || u.protocol === 'https:' ? String(v).replace(/\/+$/, '') : undefined;
    } catch {
      return undefined;
    }
  },
  expected:
    'an http:// or https:// URL without credentials, such as https://s3.eu-central-1.amazonaws.com or http://minio:9000 (keys go in DATASAVER_S3_ACCESS_KEY / DATASAVER_S3_SECRET_KEY)',
};
/** Classes whose objects can be read at once: archives would make list, verify and restore fail. */
const STORAGE_CLASS: Validator<string> = {
  parse: (v) => {
    const c = String(v).trim();
    return /^[A-Z][A-Z0-9_]*$/.test(c) && !['GLACIER', 'DEEP_ARCHIVE'].includes(c) ? c : undefined;
  },
  expected:
    'a storage class whose objects can be read at once, e.g. STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR (not GLACIER or DEEP_ARCHIVE)',
};
const TIME_ZONE: Validator<string> = {
  parse: (v) => (typeof v === 'string' && isTimeZone(v) ? v : undefined),
  expected: 'an IANA time zone such as UTC, Europe/Berlin or America/New_York',
};
/** An upload in flight must never look abandoned: at least an hour. */
const GRACE_HOURS: Validator<number> = {
  parse: (v) => {
    const text = String(v).trim();
    return /^\d+(\.\d+)?$/.test(text) && Number(text) >= 1 ? Number(text) : undefined;
  },
  expected: 'a number of hours, at least 1 (fractions allowed)',
};
/** Where notifications go: an http(s) URL (it may carry credentials; it is a secret). */
const SECRET_URL: Validator<string> = {
  parse: (v) => {
    try {
      const u = new URL(String(v));
      return u.protocol === 'http:' || u.protocol === 'https:' ? String(v) : undefined;
    } catch {
      return undefined;
    }
  },
  expected: 'an http:// or https:// URL',
};
const POSITIVE_NUMBER = (unit: string): Validator<number> => ({
  parse: (v) => {
    const text = String(v).trim();
    return /^\d+(\.\d+)?$/.test(text) && Number(text) > 0 ? Number(text) : undefined;
  },
  expected: `a number of ${unit} greater than 0 (fractions allowed)`,
});
const ALERT_HOURS = POSITIVE_NUMBER('hours');
/** No lease is believed past a day after its last write (jobs/lease.ts), so no TTL may be longer. */
const LEASE_TTL: Validator<number> = {
  parse: (v) => {
    const n = POSITIVE_NUMBER('seconds').parse(v);
    return n !== undefined && n <= MAX_LEASE_TTL_SECONDS ? n : undefined;
  },
  expected: `a number of seconds greater than 0, at most ${MAX_LEASE_TTL_SECONDS} (a day)`,
};
/** `50%` as the fraction 0.5; `off` (or 0, 0%) as 0. Only the percent form: a bare 50 is ambiguous. */
const PERCENT_OR_OFF: Validator<number> = {
  parse: (v) => {
    const text = String(v).trim().toLowerCase();
    if (text === 'off' || text === '0' || text === 'false') return 0;
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
    return m ? Number(m[1]) / 100 : undefined;
  },
  expected: 'a percentage such as 50%, or off',
};
const BOOLEAN: Validator<boolean> = {
  parse: (v) => {
    if (typeof v === 'boolean') return v;
    const s = String(v).toLowerCase();
    return ['true', '1', 'yes', 'on'].includes(s)
      ? true
      : ['false', '0', 'no', 'off'].includes(s)
        ? false
        : undefined;
  },
  expected: 'true or false',
};

/** A verification mode; `true` and `false` (the older boolean form) mean read-back and size. */
const VERIFY_UPLOAD: Validator<S3VerifyMode> = {
  parse: (v) => {
    const mode = S3_VERIFY_MODES.find((m) => m === String(v).trim().toLowerCase());
    if (mode) return mode;
    const flag = BOOLEAN.parse(v);
    return flag === undefined ? undefined : flag ? 'read-back' : 'size';
  },
  expected: `one of ${S3_VERIFY_MODES.join(', ')} (true means read-back, false means size)`,
};

function check<T>(source: Sourced | undefined, validator: Validator<T>, problems: Problems): T | undefined {
  if (!source) return undefined;
  const value = validator.parse(source.value);
  if (value === undefined)
    problems.add(source.origin, `${show(source)} is not valid; expected ${validator.expected}`);
  return value;
}

function show(source: Sourced): string {
  if (source.secret) return "'***'";
  // `user:password@host` in a value that should not hold one (an endpoint) is still hidden.
  return `'${redact(String(source.value)).replace(/[^\s/@:]+:[^\s/@]+@/g, '***@')}'`;
}

/**
 * A target name from the base the engine derives from its database (descriptor's `defaultTargetName`):
 * what a name cannot hold becomes `-` (`my.db` -> `my-db`).
 */
function targetName(base: string): string {
  return (
    base
      .replace(/[^A-Za-z0-9_-]+/g, '-')
      .replace(/^[-_]+/, '')
      .slice(0, 63) || 'db'
  );
}

function pick(layer: RawTarget, keep: (f: FieldName) => boolean): RawTarget {
  return Object.fromEntries(Object.entries(layer).filter(([f]) => keep(f as FieldName)));
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
