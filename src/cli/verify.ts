import { readCatalog } from '../catalog/catalog.ts';
import { parseBackupId } from '../catalog/layout.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { type VerifyResult, verifyBackup } from '../jobs/verify.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ExitCode, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import {
  allStorages,
  type CliContext,
  encryptionFor,
  engineForBackup,
  findStoredBackup,
  readConfig,
  selectTargets,
  trustFor,
} from './context.ts';
import { formatBytes, Progress, printJson } from './output.ts';
import { type SkippedBackup, skipUnopened } from './skip-unopened.ts';

export interface VerifyOptions {
  target?: string;
  json?: boolean;
}

/** `datasaver verify <id|latest|all>`: exits 5 when any backup fails, naming it and the reason. */
export async function verifyCommand(ctx: CliContext, ref: string, opts: VerifyOptions): Promise<number> {
  const config = await readConfig(ctx);
  const work: { manifest: Manifest; storage: StorageBackend }[] = [];
  if (ref === 'all') {
    for (const storage of await allStorages(ctx, config)) {
      const catalog = await readCatalog(storage, {
        target: opts.target,
        signal: ctx.signal,
        trust: (t) => trustFor(config, t),
      });
      for (const w of catalog.warnings) ctx.stderr.write(`warning: ${w}\n`);
      work.push(...catalog.backups.map((manifest) => ({ manifest, storage })));
    }
  } else {
    const backupTarget =
      ref === 'latest'
        ? (opts.target ?? selectTargets(config, undefined)[0]!.name)
        : parseBackupId(ref)?.target;
    if (!backupTarget)
      throw new UsageError(`'${ref}' is not a backup id`, {
        hint: 'use an id from `datasaver list`, latest or all',
      });
    work.push(await findStoredBackup(ctx, config, ref, backupTarget));
  }

  const results: VerifyResult[] = [];
  const skipped: SkippedBackup[] = [];
  for (const { manifest, storage } of work) {
    const progress = new Progress(ctx.stderr, !opts.json);
    const result = await skipUnopened(ctx, work.length, skipped, manifest.id, () =>
      verifyBackup(manifest, {
        storage,
        engine: engineForBackup(config, manifest.target, manifest.engine),
        signal: ctx.signal,
        decrypt: encryptionFor(config, manifest.target).decrypt,
        onProgress: (pass, n) =>
          progress.update(
            `verify ${manifest.id}: ${pass} ${Math.floor((100 * n) / manifest.storedBytes)}% of ${formatBytes(manifest.storedBytes)}`,
            n,
          ),
      }),
    );
    progress.done();
    if (result === undefined) continue;
    results.push(result);
    if (result.recordError)
      ctx.stderr.write(
        `warning: could not record the result of ${result.id}: ${printable(result.recordError)}\n`,
      );
    if (!opts.json) {
      ctx.stdout.write(
        result.ok
          ? result.note
            ? `ok      ${result.id} (${result.note})\n`
            : `ok      ${result.id} (${result.entries} entries${manifest.set ? `: its globals and ${manifest.set.databases.length} database(s)` : ''})\n`
          : // A tool's message may run over several lines: indented, none can pass for a result line.
            `FAILED  ${printable(result.message ?? '', { multiline: true }).replaceAll('\n', '\n        ')}\n`,
      );
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (opts.json) printJson(ctx.stdout, { results, skipped });
  else if (results.length + skipped.length === 0) ctx.stdout.write('no backups to verify\n');
  else if (results.length + skipped.length > 1)
    ctx.stdout.write(
      `${results.length - failed.length} ok, ${failed.length} failed${skipped.length > 0 ? `, ${skipped.length} not opened (no key for them)` : ''}\n`,
    );
  return failed.length > 0 ? ExitCode.verify : skipped.length > 0 ? ExitCode.config : ExitCode.ok;
}
