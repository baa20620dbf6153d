/**
 * Which backup `datasaver restore` restores. `latest` is the newest backup of the target that is intact
 * (jobs/intact.ts): every trusted committed backup is a candidate, newest first, each checksum-checked in
 * turn until one passes, so a damaged newest backup never leaves the user without a restore, and the
 * ones passed over are named on stderr with the reason. A backup named by its id is restored as named;
 * when it is damaged, the error names the newest older intact backup as a command to run.
 */

import { type StoredBackup, trustedBackups } from '../catalog/catalog.ts';
import { compareIds, parseBackupId } from '../catalog/layout.ts';
import type { Config } from '../config/types.ts';
import { type PassedOver, pickIntact } from '../jobs/intact.ts';
import { DatasaverError, ExitCode, errorMessage, UsageError, VerifyError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import {
  type CliContext,
  findStoredBackup,
  storagesForBackups,
  trustFor,
  warnUnreadable,
  warnUntrusted,
} from './context.ts';
import type { RestoreOptions } from './restore.ts';

export interface BackupToRestore extends StoredBackup {
  /** Newer backups `latest` did not take, and why. */
  passedOver: PassedOver[];
  /** Its checksum pass is done (`latest` checked it while choosing). */
  checked: boolean;
}

export async function backupToRestore(
  ctx: CliContext,
  config: Config,
  ref: string,
  backupTarget: string,
  onChecksum: (id: string, storedBytes: number, total: number) => void,
  allowUnsigned = false,
): Promise<BackupToRestore> {
  if (ref !== 'latest') {
    const found = await findStoredBackup(ctx, config, ref, backupTarget, { allowUnsigned });
    return { ...found, passedOver: [], checked: false };
  }
  // `latest` is chosen among believed backups only: a forger's unsigned manifest dated newest must never
  // be picked by a flag meant for one backup the user knows.
  if (allowUnsigned) {
    throw new UsageError('--allow-unsigned restores one backup named by its id, never `latest`', {
      hint: '`datasaver list` shows the ignored backups and why; name the one you trust by its id',
    });
  }
  const candidates = await trustedBackups(await storagesForBackups(ctx, config, backupTarget), backupTarget, {
    signal: ctx.signal,
    now: new Date(),
    onUnreadable: (storage, err) => warnUnreadable(ctx, storage, err),
    trust: trustFor(config, backupTarget),
  });
  let current = candidates[0]!.manifest;
  const { chosen, passedOver } = await pickIntact(candidates, {
    signal: ctx.signal,
    onChecking: (c) => {
      current = c.manifest;
    },
    onProgress: (n) => onChecksum(current.id, n, current.storedBytes),
  });
  for (const p of passedOver) {
    ctx.stderr.write(`warning: latest: passed over ${p.id} in ${p.storage}: ${printable(p.reason)}\n`);
  }
  if (!chosen) {
    throw new DatasaverError(
      ExitCode.verify,
      `no intact backup of target ${backupTarget}: all ${passedOver.length} were passed over (see the warnings above)`,
      {
        hint: `run \`datasaver verify all --target ${arg(backupTarget)}\` for each one's state; \`datasaver list --all\` shows what storage holds`,
      },
    );
  }
  if (passedOver.length > 0) {
    ctx.stderr.write(
      `note: latest is ${chosen.manifest.id}, the newest intact backup of ${backupTarget}; restore a passed-over one by its id to see its error in full\n`,
    );
  }
  warnUntrusted(ctx, chosen);
  return { ...chosen, passedOver, checked: true };
}

/**
 * The error for a backup named by its id that failed its check, with the newest older intact backup of
 * its target as the command to run instead (each older one checksum-checked, newest first, until one
 * passes). The original error stands alone when no older backup is intact or storage cannot be read.
 */
export async function withOlderIntact(
  ctx: CliContext,
  config: Config,
  err: VerifyError,
  opts: RestoreOptions,
): Promise<VerifyError> {
  const target = parseBackupId(err.backupId)?.target;
  if (target === undefined) return err;
  ctx.stderr.write(`backup ${err.backupId} is damaged; looking for an older intact backup of ${target}\n`);
  let older: StoredBackup[];
  try {
    older = (
      await trustedBackups(await storagesForBackups(ctx, config, target), target, {
        signal: ctx.signal,
        trust: trustFor(config, target),
      })
    ).filter((b) => compareIds(b.manifest.id, err.backupId) < 0);
  } catch (lookup) {
    ctx.signal?.throwIfAborted();
    ctx.stderr.write(`warning: cannot look for one: ${printable(errorMessage(lookup))}\n`);
    return err;
  }
  const { chosen } = await pickIntact(older, { signal: ctx.signal });
  const hint = chosen
    ? `the newest older intact backup is ${chosen.manifest.id}: run \`${restoreCommandLine(chosen.manifest.id, opts)}\``
    : `no older backup of ${target} is intact either; run \`datasaver list --all\` to see what storage holds`;
  return new VerifyError(err.backupId, err.reason, err.detail, { hint, cause: err });
}

/** The `datasaver restore` command line that restores `id` with the options given. */
function restoreCommandLine(id: string, opts: RestoreOptions): string {
  const words = ['datasaver', 'restore', id];
  const add = (flag: string, value?: string) =>
    words.push(value === undefined ? flag : `${flag} ${arg(value)}`);
  if (opts.target !== undefined) add('--target', opts.target);
  if (opts.database !== undefined) add('--database', opts.database);
  if (opts.targetDb !== undefined) add('--target-db', opts.targetDb);
  if (opts.toFile !== undefined) add('--to-file', opts.toFile);
  if (opts.force) add('--force');
  if (opts.dropExisting) add('--drop-existing');
  if (opts.jobs !== undefined) add('--jobs', opts.jobs);
  for (const t of opts.table ?? []) add('--table', t);
  if (opts.tempDir !== undefined) add('--temp-dir', opts.tempDir);
  if (opts.skipMissingRoles) add('--skip-missing-roles');
  if (opts.allowUnsigned) add('--allow-unsigned');
  if (opts.dryRun) add('--dry-run');
  if (opts.json) add('--json');
  return words.join(' ');
}

/** One shell word: names with spaces or quotes (a MySQL database may have them) are single-quoted. */
function arg(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${printable(value).replaceAll("'", `'\\''`)}'`;
}
