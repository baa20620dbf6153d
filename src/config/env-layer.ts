/**
 * The environment as a layer of settings: one variable per setting (fields.ts), a secret (or a
 * `fromFile` setting) also from `<VAR>_FILE`.
 */
import { DAEMON_FIELDS, type DaemonFieldName, FIELD_NAMES, FIELDS } from './fields.ts';
import {
  nonEmpty,
  type ParseInput,
  type Problems,
  type RawDaemon,
  type RawTarget,
  readSecretFile,
} from './raw.ts';

/** The target settings the environment sets; both `VAR` and `VAR_FILE` set is a problem. */
export function readEnvLayer(input: ParseInput, problems: Problems): RawTarget {
  const layer: RawTarget = {};
  for (const f of FIELD_NAMES) {
    const spec = FIELDS[f];
    const direct = nonEmpty(input.env[spec.env]);
    const fileVar = `${spec.env}_FILE`;
    const filePath = spec.secret || spec.fromFile ? nonEmpty(input.env[fileVar]) : undefined;
    if (direct !== undefined && filePath !== undefined) {
      problems.add(spec.env, `both ${spec.env} and ${fileVar} are set; set only one`);
    } else if (filePath !== undefined) {
      const value = readSecretFile(input, filePath, fileVar, problems);
      if (value !== undefined)
        layer[f] = { value, origin: `${fileVar} (${filePath})`, secret: spec.secret === true };
    } else if (direct !== undefined) {
      layer[f] = { value: direct, origin: spec.env, secret: spec.secret };
    }
  }
  return layer;
}

/** The daemon settings the environment sets. */
export function readDaemonEnv(input: ParseInput): RawDaemon {
  const layer: RawDaemon = {};
  for (const [f, spec] of Object.entries(DAEMON_FIELDS) as [DaemonFieldName, { env: string }][]) {
    const v = nonEmpty(input.env[spec.env]);
    if (v !== undefined) layer[f] = { value: v, origin: spec.env };
  }
  return layer;
}
