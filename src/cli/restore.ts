import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseBackupId } from '../catalog/layout.ts';
import { openManifest } from '../catalog/sealed.ts';
import type { Config } from '../config/types.ts';
import type { RestoreTargetState } from '../engines/engine.ts';
import { createEngine } from '../engines/index.ts';
import { dumpOf, restoreToFile } from '../jobs/restore.ts';
import { restoreBackup } from '../jobs/restore-set.ts';
import { UsageError, VerifyError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { type CliContext, encryptionFor, readConfig, selectTargets } from './context.ts';
import { sweepLeftovers } from './leftovers.ts';
import { formatBytes, Progress, printJson } from './output.ts';
import { printRestore } from './restore-output.ts';
import { backupToRestore, withOlderIntact } from './restore-pick.ts';

export interface RestoreOptions {
  target?: string;
  /** Of a whole-server backup set: restore this database alone. */
  database?: string;
  targetDb?: string;
  dryRun?: boolean;
  force?: boolean;
  dropExisting?: boolean;
  jobs?: string;
  table?: string[];
  tempDir?: string;
  toFile?: string;
  skipMissingRoles?: boolean;
  /** Restore a backup whose manifest is not signed by one of the verify keys (with a warning). */
  allowUnsigned?: boolean;
  json?: boolean;
}

/**
 * `datasaver restore <id|latest>`: restores into the target's database or --target-db; a whole-server
 * set restores its roles and every database under its own name, or with --database one of them.
 */
export async function restoreCommand(ctx: CliContext, ref: string, opts: RestoreOptions): Promise<number> {
  const config = await readConfig(ctx);
  if (opts.toFile !== undefined) return restoreToFileCommand(ctx, config, ref, opts);
  const [target] = selectTargets(config, opts.target);
  // The system temp dir was swept at start; a restore's own spool directory is swept before it is used.
  if (opts.tempDir !== undefined) await sweepLeftovers(ctx.stderr, resolve(opts.tempDir));
  const jobs = opts.jobs === undefined ? 1 : Number(opts.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) {
    throw new UsageError(`--jobs '${opts.jobs}' is not valid`, {
      hint: 'give a whole number of parallel workers, 1-64',
    });
  }
  const backupTarget = ref === 'latest' ? target!.name : parseBackupId(ref)?.target;
  if (!backupTarget)
    throw new UsageError(`'${ref}' is not a backup id`, {
      hint: 'use an id from `datasaver list`, or latest',
    });
  const progress = new Progress(ctx.stderr, !opts.json);
  const { manifest, storage, passedOver, checked } = await backupToRestore(
    ctx,
    config,
    ref,
    backupTarget,
    checksumProgress(progress),
    opts.allowUnsigned,
  );
  const engine = createEngine(target!);

  const interactive = !opts.json && ctx.stdin.isTTY === true && ctx.stderr.isTTY === true;
  const plan = await restoreBackup(
    {
      manifest,
      checked,
      database: opts.database,
      targetDatabase: opts.targetDb,
      dryRun: opts.dryRun ?? false,
      force: opts.force ?? false,
      dropExisting: opts.dropExisting ?? false,
      jobs,
      tables: opts.table,
      tempDir: opts.tempDir,
      skipMissingRoles: opts.skipMissingRoles ?? false,
    },
    {
      engine,
      storage,
      signal: ctx.signal,
      decrypt: encryptionFor(config, manifest.target).decrypt,
      confirmOverwrite: interactive ? (state) => confirm(ctx, state) : undefined,
      onProgress: (phase, n, total) =>
        progress.update(
          `restore ${manifest.id}: ${phase} ${Math.floor((100 * n) / Math.max(1, total))}% of ${formatBytes(total)}`,
          n,
        ),
    },
  ).catch((err: unknown) => rethrow(ctx, config, err, opts));
  progress.done();
  return printRestore(ctx, plan, manifest, { ...opts, jobs }, passedOver);
}

/**
 * `restore <id> --to-file PATH`: the backup's raw dump as a file (an RDB for a stopped Redis, a SQLite
 * database, a pg_dump archive). Needs only storage: the backup's target need not be configured here.
 */
async function restoreToFileCommand(
  ctx: CliContext,
  config: Config,
  ref: string,
  opts: RestoreOptions,
): Promise<number> {
  for (const [flag, set] of [
    ['--target-db', opts.targetDb !== undefined],
    ['--drop-existing', opts.dropExisting],
    ['--jobs', opts.jobs !== undefined],
    ['--table', opts.table !== undefined],
    ['--skip-missing-roles', opts.skipMissingRoles],
  ] as const) {
    if (set) throw new UsageError(`${flag} does not apply to --to-file`, { hint: 'drop one of them' });
  }
  let backupTarget = parseBackupId(ref)?.target;
  if (ref === 'latest') {
    backupTarget = opts.target ?? (config.targets.length === 1 ? config.targets[0]!.name : undefined);
    if (!backupTarget)
      throw new UsageError('latest needs --target NAME here', {
        hint: 'or give a backup id from `datasaver list`',
      });
  }
  if (!backupTarget)
    throw new UsageError(`'${ref}' is not a backup id`, {
      hint: 'use an id from `datasaver list`, or latest',
    });
  const progress = new Progress(ctx.stderr, !opts.json);
  const { manifest, storage, passedOver } = await backupToRestore(
    ctx,
    config,
    ref,
    backupTarget,
    checksumProgress(progress),
    opts.allowUnsigned,
  );
  progress.done();
  const path = resolve(opts.toFile!);
  const { decrypt } = encryptionFor(config, manifest.target);
  if (opts.dryRun) {
    // An encrypted backup's dry run proves the key opens it; a set's, that it holds the database.
    const dump = dumpOf(await openManifest(manifest, decrypt), opts.database, '--to-file of');
    const database = opts.database === undefined ? {} : { database: opts.database };
    const plan = {
      backup: manifest.id,
      ...database,
      file: path,
      bytes: dump.sizeBytes,
      passedOver,
      dryRun: true,
    };
    if (opts.json) printJson(ctx.stdout, plan);
    else
      ctx.stdout.write(
        `dry run: would write ${manifest.id}${ofDatabase(opts)} (${manifest.engine} ${dump.format}, ${formatBytes(dump.sizeBytes)}) to ${path}\n`,
      );
    return 0;
  }
  const result = await restoreToFile(
    { manifest, database: opts.database, path, force: opts.force ?? false },
    {
      storage,
      signal: ctx.signal,
      decrypt,
      onProgress: (n) =>
        progress.update(
          `restore ${manifest.id} to ${path}: ${formatBytes(n)} of ${formatBytes(manifest.storedBytes)}`,
          n,
        ),
    },
  ).catch((err: unknown) => rethrow(ctx, config, err, opts));
  progress.done();
  if (opts.json) printJson(ctx.stdout, { ...result, passedOver });
  else
    ctx.stdout.write(
      `restored ${manifest.id}${ofDatabase(opts)} to file ${path} (${formatBytes(result.bytes)}, ${manifest.engine} ${manifest.format})\n`,
    );
  return 0;
}

/** ` (database shop)` with --database: a set's one database written to the file. */
function ofDatabase(opts: RestoreOptions): string {
  return opts.database === undefined ? '' : ` (database ${printable(opts.database)})`;
}

function checksumProgress(progress: Progress) {
  return (id: string, n: number, total: number) =>
    progress.update(
      `restore latest: checksum of ${id} ${Math.floor((100 * n) / total)}% of ${formatBytes(total)}`,
      n,
    );
}

/** A damaged backup's error gains the command that restores the newest older intact one. */
async function rethrow(ctx: CliContext, config: Config, err: unknown, opts: RestoreOptions): Promise<never> {
  throw err instanceof VerifyError ? await withOlderIntact(ctx, config, err, opts) : err;
}

async function confirm(ctx: CliContext, state: RestoreTargetState): Promise<boolean> {
  const name = state.description.replace(/^database (\S+).*$/, '$1');
  const rl = createInterface({ input: ctx.stdin, output: ctx.stderr as NodeJS.WritableStream });
  try {
    const answer = await rl.question(
      `${state.description} is not empty. Type its name (${name}) to restore over it: `,
    );
    return answer.trim() === name;
  } finally {
    rl.close();
  }
}
