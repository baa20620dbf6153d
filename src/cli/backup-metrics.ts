/**
 * The metrics of a one-shot `datasaver backup`: each target's run is recorded as it ends, and at the end
 * of the command, whatever its outcome, they go to `--metrics-file` (a textfile collector's file) and to
 * each target's Pushgateway. Neither can fail the backup: a failure is a warning on stderr.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { TargetConfig } from '../config/types.ts';
import { readStorageUsage } from '../daemon/usage.ts';
import type { CycleResult } from '../jobs/cycle.ts';
import { pushMetrics, writeMetricsFile } from '../server/metrics-export.ts';
import { type OneShotRun, oneShotMetrics, type RunUsage } from '../server/run-metrics.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage, UsageError } from '../util/errors.ts';
import { printable } from '../util/printable.ts';
import { redact } from '../util/secret.ts';
import type { CliContext } from './context.ts';

/** How long one push may take: a Pushgateway that hangs must not hold a CronJob's pod. */
const PUSH_TIMEOUT_MS = 10_000;

/**
 * The absolute path of `--metrics-file`, checked before any backup starts: its directory must exist, so
 * that a mistyped path fails the command at once rather than after the backup.
 */
export async function metricsFilePath(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  const absolute = resolve(path);
  const dir = dirname(absolute);
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir)
    throw new UsageError(`--metrics-file: ${dir} is not a directory`, {
      hint: "point it into the textfile collector's directory (node_exporter --collector.textfile.directory)",
    });
  return absolute;
}

interface Recorded {
  target: TargetConfig;
  storages: StorageBackend[];
  run: Omit<OneShotRun, 'usage' | 'newestStored' | 'destinations' | 'target'>;
}

/** The runs of one `datasaver backup`, and where their metrics go. */
export class BackupMetricsReport {
  readonly #ctx: CliContext;
  readonly #file: string | undefined;
  readonly #runs: Recorded[] = [];

  /** `file`: the checked `--metrics-file` (see metricsFilePath), or undefined. */
  constructor(ctx: CliContext, file: string | undefined) {
    this.#ctx = ctx;
    this.#file = file;
  }

  /**
   * Records how `target`'s run ended: `result` is what it returned (undefined when it threw), `ok` false
   * for any failure, an interruption included.
   */
  record(
    target: TargetConfig,
    storages: StorageBackend[],
    startedAt: Date,
    outcome: { ok: boolean; result: CycleResult | undefined },
  ): void {
    const finishedAt = new Date();
    const durationMs = finishedAt.getTime() - startedAt.getTime();
    this.#runs.push({ target, storages, run: { ...outcome, durationMs, finishedAt } });
  }

  /** Writes the file and pushes each target's group; never throws (failures are warnings). */
  async publish(): Promise<void> {
    const pushed = this.#runs.filter((r) => r.target.pushgatewayUrl !== undefined);
    // A command that ran no backup (a bad config, --resume-uploads) leaves the last run's metrics alone.
    if (this.#runs.length === 0 || (this.#file === undefined && pushed.length === 0)) return;
    const runs = await Promise.all(this.#runs.map((r) => this.#complete(r)));
    if (this.#file !== undefined) {
      try {
        await writeMetricsFile(this.#file, (await oneShotMetrics(runs).render()).body);
      } catch (err) {
        this.#warn(`cannot write the metrics file ${this.#file}: ${errorMessage(err)}`);
      }
    }
    await Promise.all(
      runs.map(async (run, i) => {
        const url = this.#runs[i]!.target.pushgatewayUrl;
        if (url === undefined) return;
        const { contentType, body } = await oneShotMetrics([run]).render();
        try {
          await pushMetrics(url, run.target, body, { contentType, timeoutMs: PUSH_TIMEOUT_MS });
        } catch (err) {
          this.#warn(redact(errorMessage(err), [url]));
        }
      }),
    );
  }

  /** Adds what storage holds after the run; a destination that cannot be listed is left out. */
  async #complete(r: Recorded): Promise<OneShotRun> {
    const { signal } = this.#ctx;
    // An interrupted command reads nothing more: it is asked to stop.
    const read = signal.aborted
      ? []
      : await Promise.all(
          r.storages.map((storage) =>
            readStorageUsage(storage, r.target.name, signal, new Date(), r.target.signing).then(
              (u) => ({
                destination: storage.description,
                backups: u.backups,
                bytes: u.bytes,
                newest: u.newest,
              }),
              // The run's own result already reports a destination that cannot be read.
              () => undefined,
            ),
          ),
        );
    const listed = read.filter((u) => u !== undefined);
    const usage: RunUsage[] = listed.map(({ destination, backups, bytes }) => ({
      destination,
      backups,
      bytes,
    }));
    const newest = listed
      .map((u) => (u.newest === undefined ? Number.NaN : Date.parse(u.newest.time)))
      .filter((t) => Number.isFinite(t))
      .reduce<number | undefined>((a, t) => (a === undefined || t > a ? t : a), undefined);
    return {
      ...r.run,
      target: r.target.name,
      destinations: r.storages.map((s) => s.description),
      usage,
      newestStored: newest === undefined ? undefined : new Date(newest),
    };
  }

  #warn(text: string): void {
    this.#ctx.stderr.write(`warning: ${printable(text)}\n`);
  }
}
