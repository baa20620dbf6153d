/**
 * What every command gets: its streams, the environment, the abort signal, and config helpers that pick
 * targets and storage the same way for every command.
 */

import { findBackup, type ManifestTrust, type StoredBackup } from '../catalog/catalog.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { EncryptionConfig } from '../config/encryption-settings.ts';
import { loadConfig } from '../config/load.ts';
import type { SigningConfig } from '../config/signing-settings.ts';
import { offlineTarget } from '../config/target.ts';
import type { Config, TargetConfig } from '../config/types.ts';
import type { Engine } from '../engines/engine.ts';
import { createEngine } from '../engines/index.ts';
import { isEngineName } from '../engines/registry.ts';
import type { StorageBackend } from '../storage/backend.ts';
import type { StorageConfig } from '../storage/config.ts';
import { openStorage } from '../storage/index.ts';
import { ConfigError, errorMessage, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import type { Out } from './output.ts';

export interface CliContext {
  env: NodeJS.ProcessEnv;
  stdout: Out;
  stderr: Out;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  signal: AbortSignal;
  configFile: string | undefined;
}

export async function readConfig(ctx: CliContext): Promise<Config> {
  const config = await loadConfig({ configFile: ctx.configFile, env: ctx.env });
  for (const w of config.warnings) ctx.stderr.write(`warning: ${w}\n`);
  return config;
}

const NO_TARGET_HINT =
  'set DATASAVER_DATABASE_URL (or DATASAVER_DB_HOST, DATASAVER_DB_NAME...) and DATASAVER_STORAGE_PATH or DATASAVER_S3_BUCKET, or pass --config FILE';

/** The targets a command runs on: `--target NAME`, `--all`, or the only configured one. */
export function selectTargets(config: Config, name: string | undefined, all = false): TargetConfig[] {
  if (config.targets.length === 0) throw new ConfigError('no target is configured', { hint: NO_TARGET_HINT });
  if (name) {
    const t = config.targets.find((x) => x.name === name);
    if (!t) {
      throw new UsageError(`no target named ${name}`, {
        hint: `configured targets: ${config.targets.map((x) => x.name).join(', ')}`,
      });
    }
    return [t];
  }
  if (all || config.targets.length === 1) return config.targets;
  throw new UsageError(`${config.targets.length} targets are configured`, {
    hint: `pass --target NAME (one of ${config.targets.map((x) => x.name).join(', ')}) or --all`,
  });
}

/** Opens storage, warning on stderr about every retried operation and every feature the service lacks. */
export function open(ctx: CliContext, config: StorageConfig): Promise<StorageBackend> {
  return openStorage(config, {
    onRetry: (r) =>
      ctx.stderr.write(
        `warning: ${printable(r.error.message)}; retrying ${printable(r.operation)} (attempt ${r.attempt + 1}) in ${r.delayMs} ms\n`,
      ),
    onWarning: (message) => ctx.stderr.write(`warning: ${message}\n`),
  });
}

/** The destinations of a target, opened. */
export function openDestinations(ctx: CliContext, target: TargetConfig): Promise<StorageBackend[]> {
  return Promise.all(target.destinations.map((d) => open(ctx, d)));
}

/** Every distinct storage the config mentions, for commands that read storage only (list, verify). */
export async function allStorages(ctx: CliContext, config: Config): Promise<StorageBackend[]> {
  const configs: StorageConfig[] = [
    ...config.targets.flatMap((t) => t.destinations),
    ...config.defaultDestinations,
  ];
  const seen = new Map<string, StorageBackend>();
  for (const c of configs) {
    const s = await open(ctx, c);
    if (!seen.has(s.description)) seen.set(s.description, s);
  }
  if (seen.size === 0) {
    throw new ConfigError('no storage is configured', {
      hint: 'set DATASAVER_STORAGE_PATH or DATASAVER_S3_BUCKET, or pass --config FILE',
    });
  }
  return [...seen.values()];
}

/**
 * The storages that may hold backups of `backupTarget`, in the order to try them: that target's own
 * destinations when it is configured, else the shared storage settings (restoring on a fresh machine from
 * storage settings alone).
 */
export async function storagesForBackups(
  ctx: CliContext,
  config: Config,
  backupTarget: string,
): Promise<StorageBackend[]> {
  const own = config.targets.find((t) => t.name === backupTarget);
  const configs = own
    ? own.destinations
    : config.defaultDestinations.length > 0
      ? config.defaultDestinations
      : config.targets.length === 1
        ? config.targets[0]!.destinations
        : [];
  if (configs.length === 0) {
    throw new ConfigError(`no storage is configured for backups of ${backupTarget}`, {
      hint: 'set DATASAVER_STORAGE_PATH or DATASAVER_S3_BUCKET, or configure that target',
    });
  }
  return Promise.all(configs.map((c) => open(ctx, c)));
}

/**
 * The signing settings for backups of `backupTarget`: the configured target's, else the shared ones (a
 * restore on a fresh machine from storage settings alone still checks signatures).
 */
export function signingFor(config: Config, backupTarget: string): SigningConfig {
  return config.targets.find((t) => t.name === backupTarget)?.signing ?? config.defaultSigning;
}

/**
 * Which manifests of `backupTarget`'s backups to believe: those signed by one of its verify keys (all
 * readable ones when it has none); unsigned ones too with `allowUnsigned` (`restore --allow-unsigned`).
 */
export function trustFor(config: Config, backupTarget: string, allowUnsigned = false): ManifestTrust {
  return { verifyKeys: signingFor(config, backupTarget).verifyKeys, allowUnsigned };
}

/**
 * Finds backup `ref` (an id, or `latest`) of `backupTarget` in the storages that may hold it, in order;
 * a storage that cannot be read is warned about and the others are tried. `latest` is the newest trusted
 * backup; a suspect one named by its id is returned with a warning (manifest-trust.ts). With verify keys,
 * a backup whose manifest is not signed by one is refused (VerifyError, exit 5), unless `allowUnsigned`.
 */
export async function findStoredBackup(
  ctx: CliContext,
  config: Config,
  ref: string,
  backupTarget: string,
  options: { allowUnsigned?: boolean | undefined } = {},
): Promise<{ manifest: Manifest; storage: StorageBackend }> {
  const storages = await storagesForBackups(ctx, config, backupTarget);
  const found = await findBackup(storages, ref, backupTarget, {
    signal: ctx.signal,
    now: new Date(),
    onUnreadable: (storage, err) => warnUnreadable(ctx, storage, err),
    trust: trustFor(config, backupTarget, options.allowUnsigned),
  });
  // Named by its id, a suspect backup is still used (a backup taken while a clock ran ahead is real),
  // but never silently.
  if (found.suspect !== undefined) {
    ctx.stderr.write(
      `warning: backup ${found.manifest.id} is suspect: ${found.suspect}; using it only because it was named by its id\n`,
    );
  }
  warnUntrusted(ctx, found);
  return found;
}

/** A backup whose signature is not believed is used (`--allow-unsigned`), and never silently. */
export function warnUntrusted(ctx: CliContext, found: StoredBackup): void {
  if (found.untrusted === undefined) return;
  ctx.stderr.write(
    `warning: backup ${found.manifest.id} is not signed by one of the verify keys (${found.untrusted}); using it only because of --allow-unsigned\n`,
  );
}

/** One storage holding backups cannot be read, and the others are tried. */
export function warnUnreadable(ctx: CliContext, storage: StorageBackend, err: unknown): void {
  ctx.stderr.write(
    `warning: cannot read ${storage.description}: ${printable(errorMessage(err))}; trying the others\n`,
  );
}

/**
 * An engine for reading dumps when the backup's target may not be configured here (verify from storage
 * alone): the configured target if there is one, else an engine with no connection settings.
 */
export function engineForBackup(config: Config, backupTarget: string, engineName: string): Engine {
  const own = config.targets.find((t) => t.name === backupTarget);
  // A target that changed engine since (same name, new database) cannot read its old backups.
  if (own && own.engine === engineName) return createEngine(own);
  if (!isEngineName(engineName)) {
    throw new UsageError(
      `backup of ${backupTarget} uses engine ${engineName}, which this datasaver does not support`,
    );
  }
  return createEngine(offlineTarget(backupTarget, config.defaultToolDir, engineName));
}

/**
 * The encryption settings for backups of `backupTarget`: the configured target's, else the shared ones
 * (restoring on a fresh machine from storage settings alone).
 */
export function encryptionFor(config: Config, backupTarget: string): EncryptionConfig {
  return config.targets.find((t) => t.name === backupTarget)?.encryption ?? config.defaultEncryption;
}
