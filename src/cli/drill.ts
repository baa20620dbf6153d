/**
 * `datasaver drill [<id|latest|all>]`: restores backups into a scratch place, compares the restored
 * copy's facts with the backup's, and removes the copy (jobs/drill.ts). Exits 5 when a backup fails its
 * drill, naming every item that differs; a drill that cannot run (no server binaries, a drill server
 * that cannot be reached) fails with that error's exit code, and records nothing. A configured target's
 * notification channels hear of it as from the daemon: `drill-failure`, and `drill-success` with
 * on_success; deliveries are awaited before the command returns, at most 30 s.
 */
import { resolve } from 'node:path';
import { readCatalog } from '../catalog/catalog.ts';
import { parseBackupId } from '../catalog/layout.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { DrillConfig } from '../config/drill-settings.ts';
import type { Config } from '../config/types.ts';
import { startScratchServer } from '../engines/index.ts';
import { isEngineName } from '../engines/registry.ts';
import {
  type DrillDeps,
  type DrillResult,
  type DrillStatus,
  drillBackup,
  drillStatus,
  type OpenDrillPlace,
} from '../jobs/drill.ts';
import { type DrillPlaceSettings, drillPlaces } from '../jobs/drill-place.ts';
import { Notifier } from '../notify/channels.ts';
import { drillEvent, notification } from '../notify/events.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ExitCode, errorMessage, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import {
  allStorages,
  type CliContext,
  encryptionFor,
  findStoredBackup,
  readConfig,
  selectTargets,
  trustFor,
} from './context.ts';
import { sweepLeftovers } from './leftovers.ts';
import { formatBytes, formatDuration, Progress, printJson } from './output.ts';
import { type SkippedBackup, skipUnopened } from './skip-unopened.ts';

export interface DrillOptions {
  target?: string;
  json?: boolean;
  jobs?: string;
  tempDir?: string;
}

export async function drillCommand(ctx: CliContext, ref: string, opts: DrillOptions): Promise<number> {
  const config = await readConfig(ctx);
  const jobs = opts.jobs === undefined ? 1 : Number(opts.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) {
    throw new UsageError(`--jobs ${opts.jobs} is not a number of workers`, { hint: 'use 1-64' });
  }
  // The system temp dir was swept at start; the throwaway servers a killed drill left in --temp-dir
  // are stopped, and their dirs removed, before this drill uses it.
  if (opts.tempDir !== undefined) await sweepLeftovers(ctx.stderr, resolve(opts.tempDir));
  const results: DrillResult[] = [];
  const notifier = new Notifier({
    log: {
      warn: (fields, message) =>
        ctx.stderr.write(`warning: ${message}${fields.error ? `: ${String(fields.error)}` : ''}\n`),
      debug: () => {},
    },
  });
  const skipped: SkippedBackup[] = [];
  try {
    const work = await backupsToDrill(ctx, config, ref, opts.target);
    for (const { manifest, storage } of work) {
      const result = await skipUnopened(ctx, work.length, skipped, manifest.id, () =>
        drillOne(ctx, config, manifest, storage, { ...opts, jobs }, notifier),
      );
      if (result === undefined) continue;
      results.push(result);
      if (!opts.json) ctx.stdout.write(describeResult(result));
    }
  } finally {
    await notifier.flush(30_000, ctx.signal);
  }
  const failed = results.filter((r) => !r.ok);
  if (opts.json) printJson(ctx.stdout, { drills: results, skipped });
  else if (results.length + skipped.length === 0) ctx.stdout.write('no backups to drill\n');
  else if (results.length + skipped.length > 1)
    ctx.stdout.write(
      `${results.length - failed.length} restored as recorded, ${failed.length} failed${skipped.length > 0 ? `, ${skipped.length} not opened (no key for them)` : ''}\n`,
    );
  return failed.length > 0 ? ExitCode.verify : skipped.length > 0 ? ExitCode.config : ExitCode.ok;
}

async function backupsToDrill(
  ctx: CliContext,
  config: Config,
  ref: string,
  target: string | undefined,
): Promise<{ manifest: Manifest; storage: StorageBackend }[]> {
  if (ref === 'all') {
    const work: { manifest: Manifest; storage: StorageBackend }[] = [];
    const seen = new Set<string>();
    for (const storage of await allStorages(ctx, config)) {
      const catalog = await readCatalog(storage, {
        target,
        signal: ctx.signal,
        trust: (t) => trustFor(config, t),
      });
      for (const w of catalog.warnings) ctx.stderr.write(`warning: ${w}\n`);
      // A backup in several destinations is one backup: it is drilled once, from the first that has it.
      for (const manifest of catalog.backups.filter((m) => !seen.has(m.id))) {
        seen.add(manifest.id);
        work.push({ manifest, storage });
      }
    }
    return work;
  }
  const backupTarget =
    ref === 'latest' ? (target ?? selectTargets(config, undefined)[0]!.name) : parseBackupId(ref)?.target;
  if (!backupTarget) {
    throw new UsageError(`'${ref}' is not a backup id`, {
      hint: 'use an id from `datasaver list`, latest or all',
    });
  }
  return [await findStoredBackup(ctx, config, ref, backupTarget)];
}

async function drillOne(
  ctx: CliContext,
  config: Config,
  manifest: Manifest,
  storage: StorageBackend,
  opts: { json?: boolean; jobs: number; tempDir?: string },
  notifier: Notifier,
): Promise<DrillResult> {
  const engine = manifest.engine;
  if (!isEngineName(engine)) {
    throw new UsageError(
      `backup ${manifest.id} uses engine ${printable(engine)}, which this datasaver does not support`,
    );
  }
  const own = config.targets.find((t) => t.name === manifest.target && t.engine === engine);
  const secrets = [own?.connection.password, own?.drill.server?.connection.password];
  const announce = (status: DrillStatus) => {
    if (!own) return;
    const event = drillEvent({ ...status, message: status.message && redact(status.message, secrets) }, null);
    notifier.notify(own.notify, notification({ ...event, target: own.name }, DATASAVER_VERSION));
  };
  const progress = new Progress(ctx.stderr, !opts.json);
  const total = formatBytes(manifest.storedBytes);
  const deps: DrillDeps = {
    storage,
    openPlace: placesFor(
      { name: manifest.target, engine, toolDir: own?.toolDir ?? config.defaultToolDir },
      own?.drill ?? config.defaultDrill,
      { tempDir: opts.tempDir, onNote: (text) => ctx.stderr.write(`note: ${printable(text)}\n`) },
    ),
    jobs: opts.jobs,
    tempDir: opts.tempDir,
    signal: ctx.signal,
    decrypt: encryptionFor(config, manifest.target).decrypt,
    onPhase: (phase) => progress.update(`drill ${manifest.id}: ${PHASES[phase]}`, 0),
    onProgress: (phase, n) =>
      progress.update(
        `drill ${manifest.id}: ${PHASES[phase]} ${Math.floor((100 * n) / Math.max(1, manifest.storedBytes))}% of ${total}`,
        n,
      ),
  };
  const startedAt = new Date();
  let result: DrillResult;
  try {
    result = await drillBackup(manifest, deps);
  } catch (err) {
    if (!ctx.signal?.aborted) {
      announce(drillStatus({ error: errorMessage(err), backupId: manifest.id }, startedAt, new Date()));
    }
    throw err;
  } finally {
    progress.done();
  }
  announce(drillStatus({ result }, startedAt, new Date()));
  if (result.recordError)
    ctx.stderr.write(
      `warning: could not record the drill of ${result.id}: ${printable(result.recordError)}\n`,
    );
  if (result.cleanupError)
    ctx.stderr.write(
      `warning: could not remove the drill's copy of ${result.id} (${printable(result.place)}): ${printable(result.cleanupError)}; the next drill removes it\n`,
    );
  return result;
}

/**
 * Where drills of a target's backups restore: its drill server, when one of its engine is configured,
 * else a throwaway server started from this machine's server binaries.
 */
export function placesFor(
  target: DrillPlaceSettings['target'],
  drill: DrillConfig,
  options: { tempDir?: string | undefined; onNote: (text: string) => void },
): OpenDrillPlace {
  return drillPlaces({
    target,
    server: drill.server?.engine === target.engine ? drill.server.connection : undefined,
    tempDir: options.tempDir,
    startServer: startScratchServer,
    onNote: options.onNote,
  });
}

const PHASES = {
  place: 'starting the scratch server',
  checksum: 'checksum',
  restore: 'restoring',
  compare: 'reading the restored copy',
  cleanup: 'removing the copy',
} as const;

/** One result for people: a line, then each difference on its own indented line. */
function describeResult(r: DrillResult): string {
  const took = r.restoreMs === null ? '' : ` in ${formatDuration(r.restoreMs)}`;
  if (r.ok) {
    const what = r.note ? printable(r.note) : `${r.compared} item${r.compared === 1 ? '' : 's'} as recorded`;
    const expired =
      r.expired.length > 0 ? `; ${r.expired.length} item(s) lower by keys that expired since` : '';
    return `ok      ${r.id} restored${took} into ${printable(r.place)}: ${what}${expired}\n`;
  }
  const lines = [
    `FAILED  ${r.id} (${r.reason})${took ? ` after restoring${took}` : ''}: ${printable(r.message ?? '', { multiline: true }).replaceAll('\n', '\n        ')}`,
  ];
  for (const d of r.differences.slice(0, 50)) {
    lines.push(
      `        ${printable(d.item)}: expected ${printable(d.expected)}, found ${printable(d.found)}`,
    );
  }
  if (r.differences.length > 50)
    lines.push(`        ... and ${r.differences.length - 50} more (--json lists them all)`);
  return `${lines.join('\n')}\n`;
}
