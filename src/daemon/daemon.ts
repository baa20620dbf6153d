/**
 * The sidecar: runs every target on its schedule, keeps what `/health` and `/metrics` report, sends
 * notifications, and watches for targets that stopped succeeding.
 *
 * Rules:
 *   - a target never runs twice at once: a scheduled time that arrives while the previous run is still
 *     going is skipped, logged and counted (`datasaver_runs_skipped_total`); missed times are not caught up;
 *   - nor by two processes: a run that finds the target's lease held by another datasaver (a second
 *     daemon, a CronJob; see lease/lease.ts) is skipped at once, logged and counted
 *     (`datasaver_runs_lease_held_total`), and is neither a failure nor a success;
 *   - a run that cannot reach the database is tried again (run.ts); other failures are not retried, the
 *     next scheduled run is the retry;
 *   - prune follows every successful backup (inside the run, see jobs/cycle.ts), never a failed one;
 *   - the dead man's switch (watchdog.ts) is a timer of its own that reads only the recorded results;
 *   - restore drills run on their own schedule, beside backups (drills.ts);
 *   - `stop()` stops scheduling, aborts running backups through their AbortSignal (the dump is killed,
 *     multipart uploads are aborted, no manifest is written) and waits for them, at most the given time.
 *
 * Time and timers come from an injected clock, and the backup itself from an injected `runTarget`, so the
 * scheduling rules are tested with fake time and fake runs (test/unit/daemon.test.ts).
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { TargetConfig } from '../config/types.ts';
import type { NotificationSender } from '../notify/channels.ts';
import { notification, startEvent } from '../notify/events.ts';
import { parseSchedule, planNext } from '../schedule/cron.ts';
import { type HealthReport, healthReport } from '../server/health.ts';
import type { DaemonMetrics } from '../server/metrics.ts';
import type { StorageBackend } from '../storage/backend.ts';
import { errorMessage } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { redact } from '../util/secret.ts';
import { DATASAVER_VERSION } from '../util/version.ts';
import { type Clock, systemClock, waitForPlan } from './clock.ts';
import { DrillScheduler, type RunDrill } from './drills.ts';
import { recordRun } from './record.ts';
import { type RunTarget, runWithRetries } from './run.ts';
import { type DaemonContext, historyOf, newSlot, type Slot } from './slot.ts';
import { type ReadUsage, refreshUsage } from './usage.ts';
import { StaleWatchdog } from './watchdog.ts';

export interface DaemonOptions {
  targets: TargetConfig[];
  log: Logger;
  metrics: DaemonMetrics;
  notifier: NotificationSender;
  openDestinations: (target: TargetConfig) => Promise<StorageBackend[]>;
  runTarget: RunTarget;
  /** A restore drill of a target's newest backup, for targets with a drill schedule. */
  runDrill: RunDrill;
  readUsage: ReadUsage;
  clock?: Clock;
  random?: () => number;
  /** Waits between connection retries; rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** `/health` shows error texts and destinations in full (they name hosts, users, paths, endpoints). */
  healthDetails?: boolean;
}

export class Daemon {
  readonly #options: DaemonOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #stop = new AbortController();
  readonly #ctx: DaemonContext;
  readonly #slots: Slot[] = [];
  readonly #watchdog: StaleWatchdog;
  readonly #drills: DrillScheduler;
  #startedAt: Date;
  #ready = false;
  #started = false;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.#startedAt = this.#clock.now();
    this.#ctx = {
      log: options.log,
      metrics: options.metrics,
      clock: this.#clock,
      signal: this.#stop.signal,
      startedAt: () => this.#startedAt,
      announce: (slot, event) =>
        options.notifier.notify(
          slot.target.notify,
          notification(
            { ...event, target: slot.target.name, time: this.#clock.now().toISOString() },
            DATASAVER_VERSION,
          ),
        ),
    };
    this.#watchdog = new StaleWatchdog(this.#ctx, this.#slots);
    this.#drills = new DrillScheduler(this.#ctx, options.runDrill, this.#random);
  }

  /** Opens storage, arms every schedule and the stale watchdog; with `runNow`, every target runs at once. */
  async start(options: { runNow?: boolean } = {}): Promise<void> {
    const { log, metrics } = this.#options;
    this.#startedAt = this.#clock.now();
    for (const target of this.#options.targets) {
      if (this.#stop.signal.aborted) return;
      const schedule = validSchedule(target.schedule.cron, target);
      const drill =
        target.drill.schedule === undefined ? undefined : validSchedule(target.drill.schedule, target);
      const destinations = await this.#options.openDestinations(target);
      metrics.registerTarget(
        target.name,
        destinations.map((d) => d.description),
      );
      this.#slots.push(newSlot(target, schedule, destinations, drill));
    }
    if (this.#stop.signal.aborted) return;
    this.#started = true;
    for (const slot of this.#slots) {
      this.#arm(slot);
      this.#drills.arm(slot);
      void this.#drills.seed(slot);
      log.info(
        {
          target: slot.target.name,
          schedule: slot.schedule.expression,
          timeZone: slot.target.timeZone,
          nextRun: slot.status.nextRun,
          ...(slot.drillSchedule
            ? { drillSchedule: slot.drillSchedule.expression, nextDrill: slot.status.nextDrill }
            : {}),
        },
        'target scheduled',
      );
      // Storage tells what the last success was before this process started (a restart is not a reset).
      void this.#refreshUsage(slot);
    }
    this.#watchdog.start();
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
    for (const slot of this.#slots) {
      slot.timer?.cancel();
      slot.drillTimer?.cancel();
    }
    this.#watchdog.stop();
    this.#stop.abort(new Error('datasaver is shutting down'));
    const running = this.#slots.flatMap((s) => [s.running, s.drilling].filter((p) => p !== undefined));
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
    waitForPlan(
      this.#clock,
      plan,
      this.#stop.signal,
      (timer) => {
        slot.timer = timer;
      },
      () => {
        this.#arm(slot, plan.nominal);
        this.#trigger(slot, 'schedule');
      },
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
        // A run records its own failures; this only catches a bug in the bookkeeping itself.
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
    const log = this.#options.log.child({ target: target.name });
    const startedAt = this.#clock.now();
    const outcome = await runWithRetries(target, slot.destinations, {
      runTarget: this.#options.runTarget,
      sleep: this.#sleep,
      log,
      signal: this.#stop.signal,
      onStarted: () => {
        log.info({ reason }, 'backup started');
        this.#ctx.announce(slot, startEvent(historyOf(slot)));
      },
      onRetry: () => this.#options.metrics.connectionRetries.inc({ target: target.name }),
    });
    recordRun(this.#ctx, slot, { outcome, startedAt, finishedAt: this.#clock.now() }, log);
  }

  #refreshUsage(slot: Slot): Promise<void> {
    return refreshUsage(this.#ctx, slot, this.#options.readUsage, () => this.#watchdog.check());
  }
}

/** A schedule config loading has validated; this only narrows the type. */
function validSchedule(expression: string, target: TargetConfig) {
  const schedule = parseSchedule(expression, target.timeZone);
  if ('problem' in schedule) throw new Error(`schedule of ${target.name}: ${schedule.problem}`);
  return schedule;
}
