/**
 * What the daemon knows about each target, and the pure rule that turns it into healthy or not. A target
 * is healthy when its last run succeeded and its last success is younger than its alert window (the dead
 * man's switch). A target that has never succeeded is measured from when the daemon started, so a fresh
 * sidecar is not unhealthy before its first scheduled run, and a sidecar that never manages one is.
 * A backup that failed its last restore drill makes its target unhealthy too, until a later drill passes;
 * a drill that could not run (no server binaries, say) is shown but judges nothing.
 */
import type { DrillStatus } from '../jobs/drill.ts';

/** One finished run of a target. */
export interface RunRecord {
  /** ISO times. */
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  ok: boolean;
  /** The backup the run committed, if it got that far (a run can commit and still fail to upload). */
  backupId: string | null;
  /** Raw dump bytes and stored bytes of that backup. */
  sizeBytes: number | null;
  storedBytes: number | null;
  /** Why the run failed (secrets removed); null when it succeeded. */
  error: string | null;
  /** The exit code `datasaver backup` would have given. */
  exitCode: number;
}

/** The last successful backup: from a run of this daemon, or read from storage at start. */
export interface SuccessRecord {
  /** When the backup finished (ISO). */
  time: string;
  backupId: string;
  sizeBytes: number;
  durationMs: number;
}

export interface DestinationUsage {
  destination: string;
  backups: number;
  bytes: number;
  /** Why the destination could not be listed, when it could not. */
  error: string | null;
}

export interface TargetStatus {
  target: string;
  schedule: string;
  timeZone: string;
  alertAfterHours: number;
  running: boolean;
  lastAttempt: RunRecord | null;
  lastSuccess: SuccessRecord | null;
  /** ISO time of the next scheduled run (jitter included); null when the schedule never fires again. */
  nextRun: string | null;
  skippedRuns: number;
  consecutiveFailures: number;
  destinations: DestinationUsage[];
  /** The drill schedule (cron), or null when the daemon runs no drills of this target. */
  drillSchedule: string | null;
  /** ISO time of the next drill; null when none is scheduled. */
  nextDrill: string | null;
  drilling: boolean;
  lastDrill: DrillStatus | null;
}

export interface TargetHealth {
  healthy: boolean;
  /** No successful backup within the alert window. */
  stale: boolean;
  /** Why the target is unhealthy; empty when healthy. */
  reasons: string[];
}

/** Judges one target at `now`; `since` is when the daemon started. */
export function targetHealth(status: TargetStatus, now: Date, since: Date): TargetHealth {
  const reasons: string[] = [];
  const last = status.lastAttempt;
  if (last && !last.ok)
    reasons.push(`last run failed at ${last.finishedAt}: ${last.error ?? 'unknown error'}`);
  const drill = status.lastDrill;
  if (drill?.result === 'failed') {
    reasons.push(
      `backup ${drill.backupId} failed its restore drill at ${drill.finishedAt}: ${drill.message ?? drill.reason}`,
    );
  }
  const windowMs = status.alertAfterHours * 3_600_000;
  const successAt = status.lastSuccess ? Date.parse(status.lastSuccess.time) : undefined;
  const ageMs = now.getTime() - (successAt ?? since.getTime());
  const stale = ageMs > windowMs;
  if (stale) {
    reasons.push(
      status.lastSuccess
        ? `no successful backup for ${hours(ageMs)} (last ${status.lastSuccess.backupId} at ${status.lastSuccess.time}); the alert window is ${status.alertAfterHours} h`
        : `no successful backup since the daemon started ${hours(ageMs)} ago; the alert window is ${status.alertAfterHours} h`,
    );
  }
  return { healthy: reasons.length === 0, stale, reasons };
}

export interface HealthReport {
  /** `starting` until the daemon has scheduled every target (answered with 503). */
  status: 'ok' | 'unhealthy' | 'starting';
  time: string;
  startedAt: string;
  version: string;
  targets: (TargetStatus & TargetHealth)[];
}

/**
 * The `/health` document and its HTTP status: 200 when every target is healthy, else 503. Without
 * `details`, the report holds no error text and no destination beyond its kind (see `withoutDetails`).
 */
export function healthReport(
  statuses: TargetStatus[],
  now: Date,
  since: Date,
  version: string,
  options: { details: boolean } = { details: false },
): { httpStatus: 200 | 503; report: HealthReport } {
  const shown = options.details ? statuses : statuses.map(withoutDetails);
  const targets = shown.map((s) => ({ ...s, ...targetHealth(s, now, since) }));
  const healthy = targets.every((t) => t.healthy);
  return {
    httpStatus: healthy ? 200 : 503,
    report: {
      status: healthy ? 'ok' : 'unhealthy',
      time: now.toISOString(),
      startedAt: since.toISOString(),
      version,
      targets,
    },
  };
}

function hours(ms: number): string {
  const h = ms / 3_600_000;
  return h >= 10 ? `${Math.round(h)} h` : h >= 0.1 ? `${h.toFixed(1)} h` : `${Math.round(ms / 1000)} s`;
}

const FAILURE_KIND: Record<number, string> = {
  1: 'the run failed',
  2: 'the configuration is invalid',
  3: 'the database could not be reached',
  4: 'the dump failed',
  5: 'verification failed',
  6: 'storage failed',
  7: 'prune failed',
};

/**
 * A status fit for anyone who can reach the port. Error texts name database hosts, users, paths and
 * endpoints, and a destination's description names its directory or bucket and endpoint: they are
 * replaced by what kind of failure it was (the exit code) and the destination's kind. The log has the
 * full text; DATASAVER_HEALTH_DETAILS=true puts it back in the report.
 */
export function withoutDetails(status: TargetStatus): TargetStatus {
  const last = status.lastAttempt;
  const drill = status.lastDrill;
  return {
    ...status,
    lastAttempt:
      last && !last.ok
        ? {
            ...last,
            error: `${FAILURE_KIND[last.exitCode] ?? 'the run failed'} (exit ${last.exitCode}); the log has the details`,
          }
        : last,
    lastDrill: drill && drill.message !== null ? { ...drill, message: drillSummary(drill) } : drill,
    destinations: status.destinations.map((d) => ({
      ...d,
      destination: d.destination.split(':')[0] ?? 'storage',
      error: d.error === null ? null : 'cannot be listed; the log has the details',
    })),
  };
}

/** A drill's outcome without names (tables, hosts): what kind of failure, and how many items differ. */
function drillSummary(drill: DrillStatus): string {
  if (drill.result === 'error') return 'the drill could not run; the log has the details';
  if (drill.reason === 'drill') {
    return `the restored copy differs from the backup's facts in ${drill.mismatches} of ${drill.compared} items; the log has the details`;
  }
  return `the backup failed its drill (${drill.reason}); the log has the details`;
}
