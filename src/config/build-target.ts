/** One target: its layers merged, every setting validated, into a TargetConfig. */
import type { EngineDescriptor } from '../engines/descriptor.ts';
import { COMPRESSION_ALGORITHMS, type CompressionConfig } from '../pipeline/compression.ts';
import { isTimeZone } from '../retention/calendar.ts';
import { buildConnection } from './connection.ts';
import { buildDrill } from './drill-settings.ts';
import { buildEncryption, drillKeyProblem } from './encryption-settings.ts';
import { FIELDS } from './fields.ts';
import { buildNotify, buildPushgateway } from './notify-settings.ts';
import { type ParseInput, type Problems, type RawTarget, rawText } from './raw.ts';
import { buildRetention } from './retention-settings.ts';
import { buildSchedule, scheduleWarning } from './schedule-settings.ts';
import { buildServerSet } from './server-set-settings.ts';
import { buildSigning } from './signing-settings.ts';
import { buildDestinations } from './storage-settings.ts';
import { DEFAULT_LEASE_TTL_SECONDS, DEFAULT_SIZE_CHANGE_ALERT, MAX_LEASE_TTL_SECONDS } from './target.ts';
import type { TargetConfig } from './types.ts';
import { BOOLEAN, check, intIn, matching, oneOf, POSITIVE_NUMBER, type Validator } from './values.ts';

/** Merges a target's layers into a validated TargetConfig, or records problems and returns undefined. */
export function buildTarget(
  raw: RawTarget,
  problems: Problems,
  warnings: string[],
  defaultRegion: string,
  readFile: ParseInput['readFile'],
): TargetConfig | undefined {
  const before = problems.list.length;
  const { engine, descriptor, connection } = buildConnection(raw, problems);

  const derived = descriptor.defaultTargetName(connection.database);
  const nameSource =
    raw.name ?? (derived === undefined ? undefined : { value: targetName(derived), origin: 'target name' });
  if (!nameSource) problems.add(FIELDS.name.env, 'no target name and no database name to derive one from');
  const name = check(nameSource, TARGET_NAME, problems);

  const { format, schemaOnly, compression } = buildDump(raw, descriptor, problems);
  const { excludeDatabases, dumpJobs } = buildServerSet(raw, { descriptor, connection }, problems);
  const destinations = buildDestinations(raw, problems, true, defaultRegion);
  const timeZone = check(raw.timeZone, TIME_ZONE, problems) ?? 'UTC';
  const retention = buildRetention(raw, name, problems);
  const schedule = buildSchedule(raw, timeZone, problems);
  const alertAfterHours = check(raw.alertAfterHours, ALERT_HOURS, problems) ?? 26;
  const sizeChangeAlert = check(raw.sizeChangeAlert, PERCENT_OR_OFF, problems) ?? DEFAULT_SIZE_CHANGE_ALERT;
  const leaseTtlSeconds = check(raw.leaseTtlSeconds, LEASE_TTL, problems) ?? DEFAULT_LEASE_TTL_SECONDS;
  const notify = buildNotify(raw, problems);
  const drill = buildDrill(raw, engine, timeZone, problems);
  const signing = buildSigning(raw, problems);
  const encryption = buildEncryption(raw, readFile, problems);
  drillKeyProblem(raw, encryption, drill.schedule, problems);
  if (schedule && name) scheduleWarning(raw, name, schedule, timeZone, alertAfterHours, warnings);

  if (problems.list.length > before || !name || !destinations || !retention || !schedule) return undefined;
  return {
    name,
    engine,
    connection,
    format,
    schemaOnly,
    excludeDatabases,
    dumpJobs,
    compression,
    destinations,
    toolDir: rawText(raw, 'toolDir'),
    timeZone,
    retention,
    schedule,
    alertAfterHours,
    sizeChangeAlert,
    leaseTtlSeconds,
    notify,
    pushgatewayUrl: buildPushgateway(raw, problems),
    drill,
    signing,
    encryption,
  };
}

/** How a target is dumped and compressed: format, schema-only, compression and its level. */
function buildDump(
  raw: RawTarget,
  descriptor: EngineDescriptor,
  problems: Problems,
): { format: string; schemaOnly: boolean; compression: CompressionConfig } {
  const engine = descriptor.name;
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
  return { format, schemaOnly, compression: { algorithm, level } };
}

/** The levels each compression algorithm takes. */
const LEVELS: Record<string, [number, number]> = { zstd: [1, 19], gzip: [1, 9] };

const TARGET_NAME = matching(
  /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/,
  'letters, digits, `_` and `-`, starting with a letter or digit, at most 63 characters',
);

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

const TIME_ZONE: Validator<string> = {
  parse: (v) => (typeof v === 'string' && isTimeZone(v) ? v : undefined),
  expected: 'an IANA time zone such as UTC, Europe/Berlin or America/New_York',
};

const ALERT_HOURS = POSITIVE_NUMBER('hours');

/** No lease is believed past a day after its last write (lease/lease.ts), so no TTL may be longer. */
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
