/**
 * datasaver's Prometheus metrics (prom-client), in a registry of their own. Labels are target names and
 * destination descriptions (`/backups`, `s3://bucket/prefix`): never URLs with credentials or secrets.
 *
 * `BackupMetrics` holds every metric of targets, runs and drills: the daemon's `/metrics` and a one-shot
 * run's textfile or Pushgateway push (server/run-metrics.ts) fill the same definitions. `DaemonMetrics`
 * adds what only a long-running process has (its HTTP port, Node's process metrics).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CycleResult } from '../jobs/cycle.ts';
import type { DrillStatus } from '../jobs/drill.ts';

/** `datasaver_drills_total`'s result label for each drill result. */
const DRILL_RESULT = { passed: 'success', failed: 'failure', error: 'error' } as const;

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]) {
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]) {
  return new Gauge<L>({ name, help, labelNames, registers: [registry] });
}

function histogram<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: L[],
  buckets: number[],
) {
  return new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });
}

/** The metrics of targets, runs and drills, shared by the daemon and one-shot runs. */
export class BackupMetrics {
  readonly registry = new Registry();

  readonly duration = histogram(
    this.registry,
    'datasaver_backup_duration_seconds',
    'Duration of backup runs (dump, upload, resume and prune), by target and result',
    ['target', 'result'],
    [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800],
  );
  readonly lastSize = gauge(
    this.registry,
    'datasaver_backup_last_size_bytes',
    'Raw dump size of the last committed backup',
    ['target'],
  );
  readonly lastStored = gauge(
    this.registry,
    'datasaver_backup_last_stored_bytes',
    'Stored (compressed) size of the last committed backup',
    ['target'],
  );
  readonly lastSuccess = gauge(
    this.registry,
    'datasaver_backup_last_success_timestamp_seconds',
    'Unix time the last successful backup finished',
    ['target'],
  );
  readonly lastAttempt = gauge(
    this.registry,
    'datasaver_backup_last_attempt_timestamp_seconds',
    'Unix time the last backup run finished, whatever its result',
    ['target'],
  );
  readonly succeeded = counter(
    this.registry,
    'datasaver_backups_succeeded_total',
    'Backup runs that succeeded',
    ['target'],
  );
  readonly failed = counter(
    this.registry,
    'datasaver_backups_failed_total',
    'Backup runs that failed (including runs that committed a backup but failed to upload or prune)',
    ['target'],
  );
  readonly skipped = counter(
    this.registry,
    'datasaver_runs_skipped_total',
    'Scheduled runs skipped because the previous run of the target was still going',
    ['target'],
  );
  readonly leaseHeld = counter(
    this.registry,
    'datasaver_runs_lease_held_total',
    "Scheduled runs skipped because another datasaver process held the target's lease (one writer per target)",
    ['target'],
  );
  readonly connectionRetries = counter(
    this.registry,
    'datasaver_connection_retries_total',
    'Backup attempts retried because the database could not be reached',
    ['target'],
  );
  readonly healthy = gauge(
    this.registry,
    'datasaver_target_healthy',
    '1 when the target is healthy (last run succeeded, last success inside the alert window), else 0',
    ['target'],
  );
  readonly storedBackups = gauge(
    this.registry,
    'datasaver_stored_backups',
    'Committed backups of the target held by the destination',
    ['target', 'destination'],
  );
  readonly storedBytes = gauge(
    this.registry,
    'datasaver_stored_bytes',
    'Bytes of committed backups of the target held by the destination',
    ['target', 'destination'],
  );
  readonly pruneDeleted = counter(
    this.registry,
    'datasaver_prune_deleted_total',
    'Backups and leftovers removed by retention',
    ['target', 'destination'],
  );
  readonly storageRetries = counter(
    this.registry,
    'datasaver_storage_retries_total',
    'Storage operations (uploads, lists, downloads) retried after a transient error',
    ['target', 'destination', 'operation'],
  );
  readonly notificationFailures = counter(
    this.registry,
    'datasaver_notification_failures_total',
    'Notifications that could not be delivered after retries',
    ['channel'],
  );

  readonly sizeChange = gauge(
    this.registry,
    'datasaver_backup_size_change_ratio',
    'Raw size of the last committed backup against the median of the earlier ones, as a fraction (-0.6 is 60% smaller)',
    ['target'],
  );
  readonly sizeAlerts = counter(
    this.registry,
    'datasaver_backup_size_alerts_total',
    'Committed backups whose size differed from the median of the earlier ones by more than DATASAVER_SIZE_CHANGE_ALERT',
    ['target'],
  );
  readonly drills = counter(
    this.registry,
    'datasaver_drills_total',
    'Restore drills by result: success (restored to the recorded facts), failure (the backup failed its drill), error (the drill could not run)',
    ['target', 'result'],
  );
  readonly drillLastSuccess = gauge(
    this.registry,
    'datasaver_drill_last_success_timestamp_seconds',
    'Unix time the last restore drill that passed finished',
    ['target'],
  );
  readonly drillDuration = gauge(
    this.registry,
    'datasaver_drill_last_restore_seconds',
    "The last drill's restore time, checksum pass included: the recovery time a restore would take",
    ['target'],
  );
  readonly drillCompared = gauge(
    this.registry,
    'datasaver_drill_last_items_compared',
    'Items (tables, object kinds, sequences, key spaces) the last drill compared',
    ['target'],
  );
  readonly drillMismatches = gauge(
    this.registry,
    'datasaver_drill_last_mismatches',
    'Items that differed from the recorded facts in the last drill that restored',
    ['target'],
  );
  /** Makes every per-target series exist at 0 from the start, so dashboards and alerts see them. */
  registerTarget(target: string, destinations: string[]): void {
    for (const c of [
      this.succeeded,
      this.failed,
      this.skipped,
      this.leaseHeld,
      this.connectionRetries,
      this.sizeAlerts,
    ]) {
      c.inc({ target }, 0);
    }
    for (const result of Object.values(DRILL_RESULT)) this.drills.inc({ target, result }, 0);
    for (const destination of destinations) this.pruneDeleted.inc({ target, destination }, 0);
  }

  /**
   * Records a run of `target` that finished (not one stopped by shutdown, nor one skipped for another
   * lease holder): its duration and result, the committed backup's sizes and time, what retention
   * removed, and how the backup's size compares with the recent ones.
   */
  observeRun(
    target: string,
    run: { ok: boolean; durationMs: number; finishedAt: Date; result: CycleResult | undefined },
  ): void {
    const labels = { target };
    const { result } = run;
    this.duration.observe({ ...labels, result: run.ok ? 'success' : 'failure' }, run.durationMs / 1000);
    this.lastAttempt.set(labels, run.finishedAt.getTime() / 1000);
    const manifest = result?.backup.manifest;
    if (manifest) {
      this.lastSize.set(labels, manifest.sizeBytes);
      this.lastStored.set(labels, manifest.storedBytes);
      // A committed backup is a success for the dead man's switch, even when its run failed later on.
      this.lastSuccess.set(labels, Date.parse(manifest.finishedAt) / 1000);
    }
    for (const p of [...(result?.prunedFirst ?? []), ...(result?.pruned ?? [])]) {
      this.pruneDeleted.inc({ target, destination: p.storage }, p.removed);
    }
    if (result?.size) this.sizeChange.set(labels, result.size.change);
    if (result?.size?.alert) this.sizeAlerts.inc(labels);
    (run.ok ? this.succeeded : this.failed).inc(labels);
  }

  /** Records a finished restore drill of `target` (not one stopped by shutdown). */
  observeDrill(target: string, drill: DrillStatus): void {
    const labels = { target };
    this.drills.inc({ target, result: DRILL_RESULT[drill.result] });
    // The gauges describe the last drill that restored: one that did not restore changes none of them.
    if (drill.result === 'error' || drill.restoreMs === null) return;
    this.drillDuration.set(labels, drill.restoreMs / 1000);
    this.drillCompared.set(labels, drill.compared);
    this.drillMismatches.set(labels, drill.mismatches);
    if (drill.result === 'passed') this.drillLastSuccess.set(labels, Date.parse(drill.finishedAt) / 1000);
  }

  /** The Prometheus text exposition of every metric in the registry. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/**
 * The daemon's metrics: `BackupMetrics` plus its HTTP port's and, unless turned off (tests), Node's
 * process metrics. Registered after the shared ones, so `/metrics` lists them last.
 */
export class DaemonMetrics extends BackupMetrics {
  readonly httpDropped = counter(
    this.registry,
    'datasaver_http_connections_dropped_total',
    'Connections to the HTTP port closed unserved because the connection limit was reached',
    [],
  );

  constructor(options: { processMetrics?: boolean } = {}) {
    super();
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}
