/**
 * What the daemon keeps per target (its schedule, destinations, the status `/health` reports and the
 * run in progress), and what the parts working on it (scheduling, the run's bookkeeping, the stale
 * watchdog, storage usage) share.
 */
import type { TargetConfig } from '../config/types.ts';
import type { RunEvent, TargetHistory } from '../notify/events.ts';
import type { Schedule } from '../schedule/cron.ts';
import type { TargetStatus } from '../server/health.ts';
import type { DaemonMetrics } from '../server/metrics.ts';
import type { StorageBackend } from '../storage/backend.ts';
import type { Logger } from '../util/log.ts';
import type { Clock, Timer } from './clock.ts';

export interface Slot {
  target: TargetConfig;
  schedule: Schedule;
  /** Opened once at start; every run of the target writes to these. */
  destinations: StorageBackend[];
  /** What `/health` reports of the target, and what the dead man's switch reads. */
  status: TargetStatus;
  /** The wait for the next scheduled run; undefined before start. */
  timer: Timer | undefined;
  /** The run in progress (it never rejects); undefined when the target is idle. */
  running: Promise<void> | undefined;
  /** When the last `stale` notification went out; cleared by a success. */
  staleNotifiedAt: number | undefined;
  /** Storage listings finish out of order; only the newest one started is kept. */
  usageSeq: number;
  /** When the target's newest backup is drilled (drills.ts); undefined: never. */
  drillSchedule: Schedule | undefined;
  /** The wait for the next drill. */
  drillTimer: Timer | undefined;
  /** The drill in progress (it never rejects); it runs beside backups, never beside another drill. */
  drilling: Promise<void> | undefined;
}

/** What the daemon's parts share. */
export interface DaemonContext {
  /** The daemon's logger (not a target's child). */
  readonly log: Logger;
  readonly metrics: DaemonMetrics;
  /** Every time and timer of the daemon. */
  readonly clock: Clock;
  /** Aborts when the daemon stops. */
  readonly signal: AbortSignal;
  /** When the daemon started: a target without a success is stale counted from here. */
  startedAt(): Date;
  /** Starts sending `event` of the slot's target to its channels, at the clock's time; never throws. */
  announce(slot: Slot, event: RunEvent): void;
}

/** A target as scheduled, before its first run and before storage was read. */
export function newSlot(
  target: TargetConfig,
  schedule: Schedule,
  destinations: StorageBackend[],
  drillSchedule?: Schedule,
): Slot {
  return {
    drillSchedule,
    drillTimer: undefined,
    drilling: undefined,
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
      drillSchedule: drillSchedule?.expression ?? null,
      nextDrill: null,
      drilling: false,
      lastDrill: null,
    },
  };
}

/** What the notification rule needs to know of the target's earlier runs. */
export function historyOf(slot: Slot): TargetHistory {
  const last = slot.status.lastSuccess;
  return {
    consecutiveFailures: slot.status.consecutiveFailures,
    staleNotified: slot.staleNotifiedAt !== undefined,
    lastSuccess: last ? { time: last.time, backupId: last.backupId } : null,
  };
}
