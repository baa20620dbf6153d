/**
 * Pure configuration parsing: environment + optional YAML text in, validated `Config` out. File reading is
 * injected (`readFile`) so this module does no I/O of its own; `load.ts` is the thin wrapper that does.
 *
 * Layers, lowest first: built-in defaults < environment < the file's `defaults:` < the file's target.
 * Without a file, the environment describes one target (when it names a database). With a file, the
 * environment only supplies shared settings (storage, compression, format...); connection variables are
 * ignored so that one sidecar's env cannot silently redirect every target of a file.
 *
 * The layers are read by env-layer.ts and yaml-layer.ts; build-target.ts turns a target's merged layers
 * into a TargetConfig (with connection.ts, storage-, schedule-, retention-, notify-, drill- and
 * encryption-settings.ts), and daemon-settings.ts does the same for the daemon. Every problem is
 * collected (raw.ts) and reported at once.
 */

import { buildTarget } from './build-target.ts';
import { buildDaemon } from './daemon-settings.ts';
import { buildDrill } from './drill-settings.ts';
import { buildEncryption } from './encryption-settings.ts';
import { readDaemonEnv, readEnvLayer } from './env-layer.ts';
import { FIELD_NAMES, FIELDS, type FieldName } from './fields.ts';
import { nonEmpty, type ParseInput, Problems, type RawTarget } from './raw.ts';
import { buildSigning } from './signing-settings.ts';
import { buildDestinations } from './storage-settings.ts';
import type { Config, TargetConfig } from './types.ts';
import { readYaml } from './yaml-layer.ts';

export type { ParseInput } from './raw.ts';

/**
 * The validated configuration from the environment and the config file; throws a ConfigError listing
 * every problem found.
 */
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
  const built = targets.map((t) => buildTarget(t, problems, warnings, region, input.readFile));
  const daemon = buildDaemon(daemonLayer, problems);
  const defaultDestinations = buildDestinations(sharedLayer, problems, false, region) ?? [];
  const names = new Set<string>();
  for (const t of built) {
    if (!t) continue;
    if (names.has(t.name))
      problems.add(`target ${t.name}`, 'two targets have this name; names must be unique');
    names.add(t.name);
  }
  // The targets report the shared drill, encryption and signing settings' problems; with none, they are
  // reported here.
  const sharedProblems = built.length > 0 ? new Problems() : problems;
  const defaultDrill = buildDrill(sharedLayer, undefined, 'UTC', sharedProblems);
  const defaultEncryption = buildEncryption(sharedLayer, input.readFile, sharedProblems);
  const defaultSigning = buildSigning(sharedLayer, sharedProblems);
  problems.throwIfAny(file);
  const defaultToolDir = sharedLayer.toolDir ? String(sharedLayer.toolDir.value) : undefined;
  return {
    file,
    targets: built.filter((t): t is TargetConfig => t !== undefined),
    defaultDestinations,
    defaultToolDir,
    defaultDrill,
    defaultEncryption,
    defaultSigning,
    daemon,
    warnings,
  };
}

const DEFAULT_S3_REGION = 'us-east-1';

function pick(layer: RawTarget, keep: (f: FieldName) => boolean): RawTarget {
  return Object.fromEntries(Object.entries(layer).filter(([f]) => keep(f as FieldName)));
}
