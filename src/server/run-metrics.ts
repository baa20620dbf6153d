/**
 * The metrics of one-shot runs (`datasaver backup` from a CronJob or a host cron): the daemon's metric
 * definitions (metrics.ts) filled from what the run did, for a Prometheus textfile collector or a
 * Pushgateway. Pure: the caller runs the backups and reads storage, and passes the results in.
 *
 * A one-shot process remembers nothing of earlier runs, so its series describe the run that wrote them:
 * the counters are 0 or 1, `datasaver_target_healthy` is 1 when the run succeeded, and the last success
 * is the newer of this run's committed backup and the newest trusted backup in storage (so a failed run
 * still says when the last good one was).
 */
import type { CycleResult } from '../jobs/cycle.ts';
import { BackupMetrics } from './metrics.ts';

/** What one destination holds of the target, read after the run; absent when it could not be read. */
export interface RunUsage {
  /** The destination's description (`/backups`, `s3://bucket/prefix`), never a URL with credentials. */
  destination: string;
  backups: number;
  bytes: number;
}

/** One target's run, as a one-shot command saw it. */
export interface OneShotRun {
  target: string;
  /** Descriptions of the target's destinations, for the per-destination series. */
  destinations: string[];
  /** False for a run that threw, was interrupted, or committed a backup but failed after (upload, prune). */
  ok: boolean;
  durationMs: number;
  finishedAt: Date;
  /** What the run returned; undefined when it threw before committing anything. */
  result: CycleResult | undefined;
  /** What each destination that could be listed holds after the run. */
  usage: RunUsage[];
  /** The finish time of the newest trusted backup in storage, if any was found. */
  newestStored: Date | undefined;
}

/** A registry holding the daemon's metrics for `runs` (no process metrics: they are not the run's). */
export function oneShotMetrics(runs: readonly OneShotRun[]): BackupMetrics {
  const metrics = new BackupMetrics();
  for (const run of runs) {
    const labels = { target: run.target };
    metrics.registerTarget(run.target, run.destinations);
    metrics.observeRun(run.target, run);
    metrics.healthy.set(labels, run.ok ? 1 : 0);
    for (const u of run.usage) {
      metrics.storedBackups.set({ ...labels, destination: u.destination }, u.backups);
      metrics.storedBytes.set({ ...labels, destination: u.destination }, u.bytes);
    }
    const committed = run.result?.backup.manifest.finishedAt;
    const newest = [committed === undefined ? undefined : Date.parse(committed), run.newestStored?.getTime()]
      .filter((t) => t !== undefined)
      .reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
    if (Number.isFinite(newest)) metrics.lastSuccess.set(labels, newest / 1000);
  }
  return metrics;
}
