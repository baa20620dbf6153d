/**
 * The sidecar: runs every target on its schedule, keeps what `/health` and `/metrics` report, sends
 * notifications, and watches for targets that stopped succeeding.
 *
 * Rules:
 *   - a target never runs twice at once: a scheduled time that arrives while the previous run is still
 *     going is skipped, logged and counted (`datasaver_runs_skipped_total`); missed times are not caught up;
 *   - nor by two processes: a run that finds the target's lease held by another datasaver (a second
 *     daemon, a CronJob; see jobs/lease.ts) is skipped at once, logged and counted
 *     (`datasaver_runs_lease_held_total`), and is neither a failure nor a success;
 *   - a run that cannot reach the database is tried again (`retry_attempts`, delay doubling from
 *     `retry_delay_seconds`); other failures are not retried, the next scheduled run is the retry;
 *   - prune follows every successful backup (inside the run, see jobs/cycle.ts), never a failed one;
 *   - the dead man's switch is a timer of its own that reads only the recorded results: a run that hangs
 *     forever still turns the target stale, and one `stale` notification goes out per alert window;
 *   - `stop()` stops scheduling, aborts running backups through their AbortSignal (the dump is killed,
 *     multipart uploads are aborted, no manifest is written) and waits for them, at most the given time.
 *
 * Time and timers come from an injected clock, and the backup itself from an injected `runTarget`, so the
 * scheduling rules are tested with fake time and fake runs (test/unit/daemon.test.ts).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { readTargetUsage } from '../catalog/catalog.ts';
import type { TargetConfig } from '../config/types.ts';
import type { CycleResult } from '../jobs/cycle.ts';
import { LeaseHeldError } from '../jobs/lease.ts';
import { describeSizeChange } from '../jobs/size-change.ts';
import { type Notifier, type NotifyEvent, notification } from '../notify/channels.ts';
import { type PlannedRun, parseSchedule, planNext, type Schedule } from '../schedule/cron.ts';
import {
  type DestinationUsage,
  type HealthReport,
  healthReport,
  type RunRecord,
  type SuccessRecord,
  type TargetStatus,
  targetHealth,
} from '../server/health.ts';
import type { DaemonMetrics } from '../server/metrics.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { ConnectionError, DatasaverError, ExitCode, errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Calls `fn` after `ms` (never more than MAX_TIMER_MS). */
  setTimer(fn: () => void, ms: number): Timer;
}

/**
 * The longest single timer: waits are done in steps of at most an hour, each re-reading the clock, so a
 * wall-clock change (NTP step, suspended VM) moves the run to the right time within the hour, and
 * setTimeout's 24.8-day limit is never reached.
 */
export const MAX_TIMER_MS = 3_600_000;

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * One run of a target: backup, resume, prune. Throws when the backup itself fails. Calls `onStarted` once
 * it holds the target's lease, before it writes anything (a run skipped for another holder never starts).
 */
export type RunTarget = (
  target: TargetConfig,
  destinations: StorageBackend[],
  signal: AbortSignal,
  onStarted: () => void,
) => Promise<CycleResult>;

/**
 * Committed backups of a target in one destination, and the newest of them that can be trusted at `now`
 * (the daemon's clock): a backup dated in the future must never stand for a recent success.
 */
export type ReadUsage = (
  storage: StorageBackend,
  target: string,
  signal: AbortSignal,
  now: Date,
) => Promise<{ backups: number; bytes: number; newest: SuccessRecord | undefined }>;

/** The production ReadUsage: storage's catalog, with suspect backups never counted as the newest. */
export const readStorageUsage: ReadUsage = async (storage, target, signal, now) => {
  const usage = await readTargetUsage(storage, target, { now, signal });
  const newest = usage.newest;
  return {
    backups: usage.backups,
    bytes: usage.bytes,
    newest: newest && {
      time: newest.finishedAt,
      backupId: newest.id,
      sizeBytes: newest.sizeBytes,
      durationMs: newest.durationMs,
    },
  };
};

export interface DaemonOptions {
  targets: TargetConfig[];
  log: Logger;
  metrics: DaemonMetrics;
  notifier: Notifier;
  openDestinations: (target: TargetConfig) => Promise<StorageBackend[]>;
  runTarget: RunTarget;
  readUsage: ReadUsage;
  clock?: Clock;
  random?: () => number;
  /** Waits between connection retries; rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** `/health` shows error texts and destinations in full (they name hosts, users, paths, endpoints). */
  healthDetails?: boolean;
}

interface Slot {
  target: TargetConfig;
  schedule: Schedule;
  destinations: StorageBackend[];
  status: TargetStatus;
  timer: Timer | undefined;
  running: Promise<void> | undefined;
  /** When the last `stale` notification went out; cleared by a success. */
  staleNotifiedAt: number | undefined;
  /** Storage listings finish out of order; only the newest one started is kept. */
  usageSeq: number;
}

export class Daemon {
  readonly #options: DaemonOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #stop = new AbortController();
  #slots: Slot[] = [];
  #startedAt: Date;
  #watchTimer: Timer | undefined;
  #ready = false;
  #started = false;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.#startedAt = this.#clock.now();
  }

  /** Opens storage, arms every schedule and the stale watchdog; with `runNow`, every target runs at once. */
  async start(options: { runNow?: boolean } = {}): Promise<void> {
    const { log, metrics } = this.#options;
    this.#startedAt = this.#clock.now();
    for (const target of this.#options.targets) {
      if (this.#stop.signal.aborted) return;
      const schedule = parseSchedule(target.schedule.cron, target.timeZone);
      // Config loading has validated the expression; this only narrows the type.
      if ('problem' in schedule) throw new Error(`schedule of ${target.name}: ${schedule.problem}`);
      const destinations = await this.#options.openDestinations(target);
      metrics.registerTarget(
        target.name,
        destinations.map((d) => d.description),
      );
      this.#slots.push({
        target,
        schedule,
        destinations,
        timer: undefined,
        running: undefined,
        staleNotifiedAt: undefined,
        usageSeq: 0,
        status: {
          target: target.name,
          schedule: target.schedule.cron,
          timeZone: target.timeZone,
          alertAfterHours: target.alertAfterHours,
          running: false,
          lastAttempt: null,
          lastSuccess: null,
          nextRun: null,
          skippedRuns: 0,
          consecutiveFailures: 0,
          destinations: destinations.map((d) => ({
            destination: d.description,
            backups: 0,
            bytes: 0,
            error: null,
          })),
        },
      });
    }
    if (this.#stop.signal.aborted) return;
    this.#started = true;
    for (const slot of this.#slots) {
      this.#arm(slot);
      log.info(
        {
          target: slot.target.name,
          schedule: slot.schedule.expression,
          timeZone: slot.target.timeZone,
          nextRun: slot.status.nextRun,
        },
        'target scheduled',
      );
      // Storage tells what the last success was before this process started (a restart is not a reset).
      void this.#refreshUsage(slot);
    }
    this.#watch();
    this.#ready = true;
    if (options.runNow) for (const slot of this.#slots) this.#trigger(slot, 'start');
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** The /health answer; 503 until start() has scheduled every target. */
  health(): { httpStatus: 200 | 503; report: HealthReport } {
    const health = healthReport(
      this.#slots.map((s) => s.status),
      this.#clock.now(),
      this.#startedAt,
      DATASAVER_VERSION,
      { details: this.#options.healthDetails ?? false },
    );
    if (this.#started) return health;
    return { httpStatus: 503, report: { ...health.report, status: 'starting' } };
  }

  /**
   * Stops scheduling, aborts running backups and waits for them to wind down, at most `timeoutMs`.
   * Resolves true when everything stopped in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.#stop.signal.aborted) return true;
    this.#ready = false;
    for (const slot of this.#slots) slot.timer?.cancel();
    this.#watchTimer?.cancel();
    this.#stop.abort(new Error('datasaver is shutting down'));
    const running = this.#slots.flatMap((s) => (s.running ? [s.running] : []));
    const deadline = Date.now() + timeoutMs;
    const clean = await Promise.race([
      Promise.allSettled(running).then(() => true),
      sleepFor(timeoutMs, false, { ref: false }),
    ]);
    await this.#options.notifier.flush(Math.max(0, Math.min(5000, deadline - Date.now())));
    return clean;
  }

  #arm(slot: Slot, previous?: Date): void {
    if (this.#stop.signal.aborted) return;
    const now = this.#clock.now();
    const plan = planNext(
      slot.schedule,
      now,
      slot.target.schedule.jitterSeconds * 1000,
      this.#random,
      previous,
    );
    slot.status.nextRun = plan ? plan.at.toISOString() : null;
    if (!plan) {
      this.#options.log.warn({ target: slot.target.name }, 'the schedule has no further runs');
      return;
    }
    this.#wait(slot, plan);
  }

  #wait(slot: Slot, plan: PlannedRun): void {
    const delay = plan.at.getTime() - this.#clock.now().getTime();
    if (delay > MAX_TIMER_MS) {
      slot.timer = this.#clock.setTimer(() => this.#wait(slot, plan), MAX_TIMER_MS);
      return;
    }
    slot.timer = this.#clock.setTimer(
      () => {
        if (this.#stop.signal.aborted) return;
        // The wall clock went back since the timer was set: wait for the planned time.
        if (plan.at.getTime() - this.#clock.now().getTime() > 1000) return this.#wait(slot, plan);
        this.#arm(slot, plan.nominal);
        this.#trigger(slot, 'schedule');
      },
      Math.max(0, delay),
    );
  }

  #trigger(slot: Slot, reason: 'schedule' | 'start'): void {
    const { log, metrics } = this.#options;
    if (this.#stop.signal.aborted) return;
    if (slot.running) {
      slot.status.skippedRuns++;
      metrics.skipped.inc({ target: slot.target.name });
      log.warn(
        { target: slot.target.name, skippedRuns: slot.status.skippedRuns },
        'skipped a scheduled run: the previous run of this target is still going',
      );
      return;
    }
    slot.status.running = true;
    slot.running = this.#run(slot, reason)
      .catch((err: unknown) => {
        // #run records its own failures; this only catches a bug in the bookkeeping itself.
        log.error({ target: slot.target.name, error: redact(errorMessage(err)) }, 'internal error in a run');
      })
      .finally(() => {
        slot.status.running = false;
        slot.running = undefined;
        // Counting what storage holds reads every manifest: it must not keep the target busy.
        if (!this.#stop.signal.aborted) void this.#refreshUsage(slot);
      });
  }

  async #run(slot: Slot, reason: 'schedule' | 'start'): Promise<void> {
    const { target } = slot;
    const { metrics } = this.#options;
    const log = this.#options.log.child({ target: target.name });
    const signal = this.#stop.signal;
    // Errors are redacted before shown anywhere; this also hides the target's own password if a tool
    // printed it in some form the engine did not catch.
    const clean = (text: string) => redact(text, [target.connection.password]);
    const startedAt = this.#clock.now();
    let announced = false;
    // After the lease is taken: a standby daemon that skips must not ping `start` with no end to it.
    const onStarted = () => {
      if (announced) return;
      announced = true;
      log.info({ reason }, 'backup started');
      this.#notify(slot, 'start', 'started', null, null);
    };

    let result: CycleResult | undefined;
    let error: unknown;
    for (let attempt = 1; ; attempt++) {
      try {
        result = await this.#options.runTarget(target, slot.destinations, signal, onStarted);
        break;
      } catch (err) {
        if (signal.aborted) {
          log.warn(
            { error: clean(errorMessage(err)) },
            'backup interrupted by shutdown; no partial backup was committed',
          );
          return;
        }
        // A run that already announced its start (it held the lease, then lost the target to another
        // process while it waited to retry) ends as a failure below: its `start` ping needs an end.
        if (err instanceof LeaseHeldError && !announced) {
          slot.status.skippedRuns++;
          metrics.leaseHeld.inc({ target: target.name });
          log.warn(
            { holder: err.lease.holder, expiresAt: err.lease.expiresAt, error: clean(err.message) },
            'skipped this run: another datasaver process holds the lease of this target',
          );
          return;
        }
        if (err instanceof ConnectionError && err.transient && attempt < target.schedule.retryAttempts) {
          const delayMs = Math.round(target.schedule.retryDelaySeconds * 1000 * 2 ** (attempt - 1));
          metrics.connectionRetries.inc({ target: target.name });
          log.warn(
            { attempt, retryInMs: delayMs, error: clean(errorMessage(err)) },
            'cannot reach the database; retrying',
          );
          try {
            await this.#sleep(delayMs, signal);
          } catch {
            log.warn('backup interrupted by shutdown while waiting to retry');
            return;
          }
          continue;
        }
        error = err;
        break;
      }
    }

    const finishedAt = this.#clock.now();
    const durationMs = finishedAt.getTime() - startedAt.getTime();
    const manifest = result?.backup.manifest;
    const problems = result?.problems ?? [];
    const ok = result !== undefined && problems.length === 0;
    const record: RunRecord = {
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs,
      ok,
      backupId: manifest?.id ?? null,
      sizeBytes: manifest?.sizeBytes ?? null,
      storedBytes: manifest?.storedBytes ?? null,
      error: ok
        ? null
        : clean(error !== undefined ? errorMessage(error) : problems.map((p) => p.message).join('; ')),
      exitCode: ok
        ? ExitCode.ok
        : error instanceof DatasaverError
          ? error.exitCode
          : (problems[0]?.exitCode ?? ExitCode.general),
    };
    const wasFailing = slot.status.consecutiveFailures > 0 || slot.staleNotifiedAt !== undefined;
    const previousSuccess = slot.status.lastSuccess;
    slot.status.lastAttempt = record;
    const labels = { target: target.name };
    metrics.duration.observe({ ...labels, result: ok ? 'success' : 'failure' }, durationMs / 1000);
    metrics.lastAttempt.set(labels, finishedAt.getTime() / 1000);
    if (manifest) {
      metrics.lastSize.set(labels, manifest.sizeBytes);
      metrics.lastStored.set(labels, manifest.storedBytes);
    }
    for (const p of [...(result?.prunedFirst ?? []), ...(result?.pruned ?? [])]) {
      metrics.pruneDeleted.inc({ target: target.name, destination: p.storage }, p.removed);
    }
    for (const p of result?.prunedFirst ?? []) {
      log.warn(
        { destination: p.storage, removed: p.removed, removedBytes: p.removedBytes },
        'the disk was full: pruned what retention removes there, then tried again',
      );
    }
    const size = result?.size;
    if (size) metrics.sizeChange.set(labels, size.change);
    for (const w of result?.warnings ?? []) log.warn(w);
    if (result?.interrupted) {
      log.warn({ backupId: manifest?.id }, 'interrupted by shutdown after the backup was committed');
    }
    if (manifest) {
      // A committed backup is what the dead man's switch waits for, even when an upload to another
      // destination or the prune after it failed (that failure is reported on its own).
      slot.status.lastSuccess = {
        time: manifest.finishedAt,
        backupId: manifest.id,
        sizeBytes: manifest.sizeBytes,
        durationMs,
      };
      metrics.lastSuccess.set(labels, Date.parse(manifest.finishedAt) / 1000);
    }

    if (ok && manifest) {
      slot.status.consecutiveFailures = 0;
      slot.staleNotifiedAt = undefined;
      metrics.succeeded.inc(labels);
      log.info(
        {
          backupId: manifest.id,
          sizeBytes: manifest.sizeBytes,
          storedBytes: manifest.storedBytes,
          durationMs,
          destinations: result?.backup.committed.map((d) => d.description),
          pruned: result?.pruned.reduce((n, p) => n + p.removed, 0),
        },
        'backup succeeded',
      );
      this.#notify(
        slot,
        wasFailing ? 'recovery' : 'success',
        wasFailing ? `recovered: backup ${manifest.id} succeeded` : `backup ${manifest.id} succeeded`,
        result ?? null,
        null,
        previousSuccess,
      );
    } else {
      slot.status.consecutiveFailures++;
      metrics.failed.inc(labels);
      log.error(
        { backupId: record.backupId, exitCode: record.exitCode, durationMs, error: record.error },
        'backup failed',
      );
      this.#notify(
        slot,
        'failure',
        `backup failed: ${record.error}`,
        result ?? null,
        { message: record.error ?? '', exitCode: record.exitCode },
        previousSuccess,
      );
    }
    if (size?.alert) {
      metrics.sizeAlerts.inc(labels);
      const what = describeSizeChange(size);
      log.warn({ backupId: size.backupId, change: size.change, medianBytes: size.medianBytes }, what);
      this.#notify(slot, 'size-change', what, result ?? null, null);
    }
    this.#updateHealthGauge(slot);
  }

  #notify(
    slot: Slot,
    event: NotifyEvent,
    what: string,
    result: CycleResult | null,
    error: { message: string; exitCode: number } | null,
    lastSuccess = slot.status.lastSuccess,
  ): void {
    this.#options.notifier.notify(
      slot.target.notify,
      notification(
        {
          event,
          target: slot.target.name,
          what,
          time: this.#clock.now().toISOString(),
          result,
          error,
          lastSuccess: lastSuccess ? { time: lastSuccess.time, backupId: lastSuccess.backupId } : null,
        },
        DATASAVER_VERSION,
      ),
    );
  }

  /** The dead man's switch: its own timer, reading only recorded results. */
  #watch(): void {
    this.#checkStale();
    if (this.#stop.signal.aborted) return;
    const shortest = Math.min(...this.#slots.map((s) => s.target.alertAfterHours * 3_600_000));
    const every = Math.min(60_000, Math.max(1000, Math.floor(shortest / 10)));
    this.#watchTimer = this.#clock.setTimer(() => this.#watch(), every);
  }

  /** Sends `stale` for every target without a success in its window, once per window. */
  #checkStale(): void {
    try {
      const now = this.#clock.now();
      for (const slot of this.#slots) {
        const health = this.#updateHealthGauge(slot);
        if (!health.stale) continue;
        const windowMs = slot.target.alertAfterHours * 3_600_000;
        if (slot.staleNotifiedAt !== undefined && now.getTime() - slot.staleNotifiedAt < windowMs) continue;
        slot.staleNotifiedAt = now.getTime();
        const reason = health.reasons.at(-1) ?? 'no recent successful backup';
        this.#options.log.error({ target: slot.target.name, reason }, 'target is stale');
        this.#notify(slot, 'stale', reason, null, null);
      }
    } catch (err) {
      this.#options.log.error({ error: errorMessage(err) }, 'internal error in the stale check');
    }
  }

  #updateHealthGauge(slot: Slot) {
    const health = targetHealth(slot.status, this.#clock.now(), this.#startedAt);
    this.#options.metrics.healthy.set({ target: slot.target.name }, health.healthy ? 1 : 0);
    return health;
  }

  /**
   * Counts what each destination holds. Until this process has seen a backup of the target, the newest
   * one in storage is its last success (a restart is not a reset).
   */
  async #refreshUsage(slot: Slot): Promise<void> {
    const { metrics, readUsage } = this.#options;
    const name = slot.target.name;
    const seq = ++slot.usageSeq;
    let newest: SuccessRecord | undefined;
    const usage: DestinationUsage[] = await Promise.all(
      slot.destinations.map(async (d) => {
        try {
          const u = await readUsage(d, name, this.#stop.signal, this.#clock.now());
          if (u.newest && (!newest || u.newest.time > newest.time)) newest = u.newest;
          return { destination: d.description, backups: u.backups, bytes: u.bytes, error: null };
        } catch (err) {
          const error = redact(errorMessage(err));
          if (!this.#stop.signal.aborted)
            this.#options.log.warn(
              { target: name, destination: d.description, error },
              'cannot list storage',
            );
          return { destination: d.description, backups: 0, bytes: 0, error };
        }
      }),
    );
    if (seq !== slot.usageSeq) return; // a newer listing started meanwhile: its counts win
    slot.status.destinations = usage;
    for (const u of usage.filter((x) => x.error === null)) {
      metrics.storedBackups.set({ target: name, destination: u.destination }, u.backups);
      metrics.storedBytes.set({ target: name, destination: u.destination }, u.bytes);
    }
    if (newest && !slot.status.lastSuccess) {
      slot.status.lastSuccess = newest;
      metrics.lastSuccess.set({ target: name }, Date.parse(newest.time) / 1000);
      // A sidecar restarted long after its last backup says so at once, not a minute later.
      if (!this.#stop.signal.aborted) this.#checkStale();
    }
  }
}
