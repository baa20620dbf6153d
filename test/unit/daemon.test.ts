import { describe, expect, it } from 'vitest';
import { readStorageUsage } from '../../src/daemon/usage.ts';
import { LeaseHeldError } from '../../src/lease/lease.ts';
import type { HealthReport } from '../../src/server/health.ts';
import { handle } from '../../src/server/http.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { BackupError, ConnectionError } from '../../src/util/errors.ts';
import { manifest, settle, setup } from '../support/fake-daemon.ts';
import { storeBackup } from '../support/manifests.ts';

describe('daemon scheduling', () => {
  it('runs on the schedule, skips and counts a run that would overlap, and records the next run', async () => {
    const { clock, runs, daemon, metric } = setup();
    await daemon.start();
    expect(daemon.ready).toBe(true);
    expect(daemon.health().report.targets[0]!.nextRun).toBe('2026-11-22T00:00:10.000Z');
    await clock.advance(10_000);
    expect(runs.calls).toHaveLength(1);
    await clock.advance(10_000); // 00:00:20 while the first run is still going
    expect(runs.calls).toHaveLength(1);
    expect(await metric('datasaver_runs_skipped_total')).toBe(1);
    expect(daemon.health().report.targets[0]).toMatchObject({ running: true, skippedRuns: 1 });
    runs.succeed(0, 'shop-1', '2026-11-22T00:00:25Z');
    await clock.advance(10_000);
    expect(runs.calls).toHaveLength(2);
    expect(await metric('datasaver_backups_succeeded_total')).toBe(1);
    expect(await metric('datasaver_prune_deleted_total')).toBe(2);
  });

  it("skips a run whose target's lease another process holds: a log line and a metric, neither failure nor success", async () => {
    const { clock, runs, daemon, metric, events, logs } = setup();
    runs.startsAtOnce = false; // it never gets the lease
    await daemon.start();
    await clock.advance(10_000);
    const holder = { host: 'db-2', pid: 7, pidNamespace: '', token: 't', operation: 'backup' };
    const lease = {
      target: 'shop',
      holder,
      acquiredAt: '2026-11-21T23:59:00.000Z',
      expiresAt: '2026-11-22T00:05:00.000Z',
    };
    runs.calls[0]!.reject(new LeaseHeldError('memory', lease, 0));
    await clock.advance(1);
    expect(await metric('datasaver_runs_lease_held_total')).toBe(1);
    expect(await metric('datasaver_backups_failed_total')).toBe(0);
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'skipped this run: another datasaver process holds the lease of this target',
        holder: expect.objectContaining({ host: 'db-2', pid: 7 }),
        expiresAt: '2026-11-22T00:05:00.000Z',
      }),
    );
    expect(events()).not.toContain('failure');
    // Not started at all: no `backup started` line, and no healthchecks `start` ping left without an end.
    expect(logs.map((l) => l.msg)).not.toContain('backup started');
    expect(daemon.health().report.targets[0]).toMatchObject({ lastAttempt: null, skippedRuns: 1 });
    await clock.advance(10_000); // the next scheduled run goes ahead as usual
    expect(runs.calls).toHaveLength(2);
  });

  it('a run that started, then meets another holder on its retry, ends as a failure: its start ping has an end', async () => {
    const { clock, runs, daemon, metric, events, logs } = setup();
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.reject(new ConnectionError('connection refused'));
    await settle();
    const holder = { host: 'db-2', pid: 7, pidNamespace: '', token: 't', operation: 'backup' };
    const lease = {
      target: 'shop',
      holder,
      acquiredAt: '2026-11-22T00:00:20.000Z',
      expiresAt: '2026-11-22T00:05:20.000Z',
    };
    runs.calls[1]!.reject(new LeaseHeldError('memory', lease, 0));
    await settle();
    expect(logs.map((l) => l.msg)).toContain('backup started');
    expect(events()).toEqual(['failure']);
    expect(await metric('datasaver_backups_failed_total')).toBe(1);
    expect(await metric('datasaver_runs_lease_held_total')).toBe(0);
  });

  it('waits for a run months away in steps of at most an hour, and fires on time', async () => {
    const { clock, runs, daemon } = setup({
      schedule: { cron: '0 0 1 1 *', jitterSeconds: 0, retryAttempts: 1, retryDelaySeconds: 1 },
    });
    await daemon.start();
    expect(daemon.health().report.targets[0]!.nextRun).toBe('2027-01-01T00:00:00.000Z');
    await clock.advance(Date.parse('2027-01-01T00:00:00Z') - clock.now().getTime() - 1);
    expect(runs.calls).toHaveLength(0);
    await clock.advance(1);
    expect(runs.calls).toHaveLength(1);
  });

  it('adds jitter to every run', async () => {
    const { clock, runs, daemon } = setup(
      { schedule: { cron: '*/10 * * * * *', jitterSeconds: 4, retryAttempts: 1, retryDelaySeconds: 1 } },
      { random: () => 0.5 },
    );
    await daemon.start();
    expect(daemon.health().report.targets[0]!.nextRun).toBe('2026-11-22T00:00:12.000Z');
    await clock.advance(11_999);
    expect(runs.calls).toHaveLength(0);
    await clock.advance(1);
    expect(runs.calls).toHaveLength(1);
    // The next run is planned from the cron time, not from the late start: 00:00:20 + 2 s.
    expect(daemon.health().report.targets[0]!.nextRun).toBe('2026-11-22T00:00:22.000Z');
  });

  it('--run-now runs every target at start', async () => {
    const { runs, daemon } = setup();
    await daemon.start({ runNow: true });
    await settle();
    expect(runs.calls).toHaveLength(1);
  });

  it('retries a run that cannot reach the database, with doubling delays', async () => {
    const { clock, runs, daemon, sleeps, metric } = setup();
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.reject(new ConnectionError('connection refused'));
    await settle();
    runs.calls[1]!.reject(new ConnectionError('connection refused'));
    await settle();
    runs.succeed(2, 'shop-1', '2026-11-22T00:00:11Z');
    await settle();
    expect(sleeps).toEqual([30_000, 60_000]);
    expect(await metric('datasaver_connection_retries_total')).toBe(2);
    expect(daemon.health().httpStatus).toBe(200);
  });

  it('does not retry what a retry cannot fix (wrong password, missing database)', async () => {
    const { clock, runs, daemon, sleeps, events } = setup();
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.reject(new ConnectionError('authentication failed for user app', { transient: false }));
    await settle();
    expect(runs.calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(events()).toEqual(['failure']);
    expect(daemon.health().report.targets[0]!.lastAttempt).toMatchObject({ ok: false, exitCode: 3 });
  });

  it('a failure turns /health 503 and notifies; the next success notifies recovery', async () => {
    const { clock, runs, daemon, sent, events, metric, sleeps } = setup();
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.reject(new BackupError('pg_dump exited with code 1: auth hunter2 leaked?'));
    await clock.advance(1);
    expect(runs.calls).toHaveLength(1); // only connection problems are retried
    expect(sleeps).toEqual([]);
    const health = daemon.health();
    expect(health.httpStatus).toBe(503);
    expect(health.report.targets[0]!.lastAttempt).toMatchObject({ ok: false, exitCode: 4 });
    expect(health.report.targets[0]!.reasons[0]).toMatch(/last run failed/);
    expect(await metric('datasaver_backups_failed_total')).toBe(1);
    expect(await metric('datasaver_target_healthy')).toBe(0);
    await clock.advance(9_999);
    runs.succeed(1, 'shop-2', '2026-11-22T00:00:21Z');
    await clock.advance(1);
    expect(events()).toEqual(['failure', 'recovery']);
    expect(sent[0]!.error).toEqual({ message: 'pg_dump exited with code 1: auth *** leaked?', exitCode: 4 });
    expect(JSON.stringify(health.report)).not.toContain('hunter2');
    expect(sent[1]!.backup).toMatchObject({ id: 'shop-2' });
    expect(daemon.health().httpStatus).toBe(200);
    runs.calls.length = 0;
    await clock.advance(10_000);
    runs.succeed(0, 'shop-3', '2026-11-22T00:00:31Z');
    await settle();
    expect(events()).toEqual(['failure', 'recovery', 'success']);
  });

  it('a run that commits but fails to upload or prune counts as failed, with the backup named', async () => {
    const { clock, runs, daemon, sent } = setup({}, { healthDetails: true });
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.resolve({
      backup: {
        manifest: manifest('shop-1', '2026-11-22T00:00:11Z'),
        verified: false,
        committed: [],
        failures: [],
      },
      copies: [],
      pruned: [],
      problems: [{ stage: 'upload', message: 's3://b/p: access denied', exitCode: 6, hint: undefined }],
      warnings: [],
      interrupted: false,
    });
    await settle();
    const t = daemon.health().report.targets[0]!;
    expect(t.lastAttempt).toMatchObject({
      ok: false,
      backupId: 'shop-1',
      exitCode: 6,
      error: 's3://b/p: access denied',
    });
    // The backup is committed: the dead man's switch counts it, while /health reports the failed upload.
    expect(t.lastSuccess?.backupId).toBe('shop-1');
    expect(daemon.health().httpStatus).toBe(503);
    expect(sent.map((n) => [n.event, n.backup?.id])).toEqual([['failure', 'shop-1']]);
  });
});

describe('a backup out of line with the recent ones', () => {
  it('sends size-change with the figures, counts it, and keeps the ratio as a gauge', async () => {
    const { clock, runs, daemon, sent, metric } = setup();
    await daemon.start();
    await clock.advance(10_000);
    const size = {
      backupId: 'shop-1',
      series: 'full' as const,
      sizeBytes: 400,
      medianBytes: 1000,
      basis: 5,
      change: -0.6,
      threshold: 0.5,
      alert: true,
    };
    runs.calls[0]!.resolve({
      backup: {
        manifest: manifest('shop-1', '2026-11-22T00:00:11Z'),
        verified: false,
        committed: [],
        failures: [],
      },
      copies: [],
      pruned: [],
      problems: [],
      warnings: [],
      interrupted: false,
      size,
    });
    await settle();
    await daemon.stop(1000);
    expect(sent.map((n) => n.event)).toEqual(['success', 'size-change']);
    expect(sent[1]).toMatchObject({
      target: 'shop',
      backup: { id: 'shop-1' },
      error: null,
      sizeChange: { sizeBytes: 400, medianBytes: 1000, change: -0.6, basis: 5, threshold: 0.5 },
      message: expect.stringMatching(
        /^datasaver: shop: backup shop-1 is 60% smaller than the median of the last 5 full backups/,
      ),
    });
    expect(await metric('datasaver_backup_size_alerts_total')).toBe(1);
    expect(await metric('datasaver_backup_size_change_ratio')).toBe(-0.6);
    // A size change is a warning: the run itself succeeded.
    expect(daemon.health().httpStatus).toBe(200);
  });
});

describe('a whole-server set', () => {
  it('logs its databases, and warns of what the backup user could not read, on every success', async () => {
    const { clock, runs, daemon, logs } = setup();
    await daemon.start();
    await clock.advance(10_000);
    const members = {
      databases: ['app', 'shop'],
      excluded: ['tmp'],
      unreadable: [{ database: 'hr', reason: 'no CONNECT privilege' }],
      rolePasswords: false,
    };
    runs.calls[0]!.resolve({
      backup: {
        manifest: manifest('shop-1', '2026-11-22T00:00:11Z'),
        verified: false,
        committed: [],
        failures: [],
        members,
      },
      copies: [],
      pruned: [],
      problems: [],
      warnings: [],
      interrupted: false,
    });
    await settle();
    await daemon.stop(1000);
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'backup succeeded', databases: ['app', 'shop'], excluded: ['tmp'] }),
    );
    const warnings = logs.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toContainEqual(expect.stringMatching(/^database hr is not in the backup/));
    expect(warnings).toContainEqual(expect.stringMatching(/^role passwords are not in the backup/));
  });
});

describe("dead man's switch", () => {
  it('turns stale once per alert window, even while a run hangs, and recovers on success', async () => {
    const { clock, runs, daemon, events } = setup({
      alertAfterHours: 1,
      schedule: { cron: '0 0 1 1 *', jitterSeconds: 0, retryAttempts: 1, retryDelaySeconds: 1 },
    });
    await daemon.start({ runNow: true }); // this run never finishes
    await clock.advance(59 * 60_000);
    expect(daemon.health().httpStatus).toBe(200);
    await clock.advance(2 * 60_000);
    expect(daemon.health().httpStatus).toBe(503);
    expect(daemon.health().report.targets[0]).toMatchObject({ stale: true, running: true });
    await clock.advance(30 * 60_000);
    expect(events()).toEqual(['stale']);
    await clock.advance(31 * 60_000);
    expect(events()).toEqual(['stale', 'stale']);
    runs.succeed(0, 'shop-1', clock.now().toISOString());
    await settle();
    expect(events()).toEqual(['stale', 'stale', 'recovery']);
    expect(daemon.health().httpStatus).toBe(200);
  });

  it('a restart is not a reset: the newest backup in storage is the last success', async () => {
    const { clock, daemon, events } = setup(
      {
        alertAfterHours: 26,
        schedule: { cron: '0 2 * * *', jitterSeconds: 0, retryAttempts: 1, retryDelaySeconds: 1 },
      },
      {
        start: '2026-11-22T00:00:00Z',
        readUsage: async () => ({
          backups: 4,
          bytes: 400,
          newest: { time: '2026-11-20T02:00:00.000Z', backupId: 'shop-old', sizeBytes: 1, durationMs: 1 },
        }),
      },
    );
    await daemon.start();
    await clock.advance(1000);
    const t = daemon.health().report.targets[0]!;
    expect(t.lastSuccess?.backupId).toBe('shop-old');
    expect(t.destinations).toEqual([{ destination: 'memory', backups: 4, bytes: 400, error: null }]);
    expect(daemon.health().httpStatus).toBe(503);
    expect(events()).toEqual(['stale']);
  });
});

describe('what storage says at start', () => {
  it("a backup dated in the future never counts as the last success: the dead man's switch stays armed", async () => {
    const storage = new MemoryStorage();
    const real = await storeBackup(storage, new Date('2026-11-20T02:00:00Z'));
    // Forged (or written while a clock ran a year ahead): without the check it would be the last success.
    await storeBackup(storage, new Date('2027-11-20T02:00:00Z'));
    const { clock, daemon, events } = setup(
      {
        alertAfterHours: 26,
        schedule: { cron: '0 2 * * *', jitterSeconds: 0, retryAttempts: 1, retryDelaySeconds: 1 },
      },
      { start: '2026-11-22T00:00:00Z', storage, readUsage: readStorageUsage },
    );
    await daemon.start();
    await clock.advance(1000);
    const t = daemon.health().report.targets[0]!;
    expect(t.lastSuccess?.backupId).toBe(real.id);
    expect(t.destinations).toEqual([
      { destination: 'memory', backups: 2, bytes: real.storedBytes * 2, error: null },
    ]);
    expect(daemon.health().httpStatus).toBe(503);
    expect(events()).toEqual(['stale']);
    await daemon.stop(1000);
  });
});

describe('shutdown', () => {
  it('a stop while start() is still opening storage schedules and runs nothing', async () => {
    const { daemon, runs, clock } = setup();
    const starting = daemon.start({ runNow: true });
    expect(daemon.health().httpStatus).toBe(503);
    expect(daemon.health().report.status).toBe('starting');
    await daemon.stop(1000);
    await starting;
    await clock.advance(60_000);
    expect(runs.calls).toHaveLength(0);
    expect(daemon.ready).toBe(false);
  });

  it('aborts the running backup, waits for it, and records no failure', async () => {
    const { clock, runs, daemon, events } = setup();
    await daemon.start();
    await clock.advance(10_000);
    const call = runs.calls[0]!;
    // The run winds down after the abort, not at once: stop waits for it.
    call.signal.addEventListener('abort', () => setImmediate(() => call.reject(call.signal.reason)));
    expect(await daemon.stop(5000)).toBe(true);
    expect(call.signal.aborted).toBe(true);
    expect(daemon.ready).toBe(false);
    expect(daemon.health().report.targets[0]!.lastAttempt).toBeNull();
    expect(events()).toEqual([]);
    await clock.advance(60_000);
    expect(runs.calls).toHaveLength(1);
  });

  it('gives up waiting after the bound', async () => {
    const { clock, runs, daemon } = setup();
    await daemon.start();
    await clock.advance(10_000); // a run that ignores its abort signal
    // The run never ends: stop returns only because its bound ran out, and says so.
    expect(await daemon.stop(100)).toBe(false);
    expect(runs.calls[0]!.signal.aborted).toBe(true);
    expect(daemon.health().report.targets[0]!.running).toBe(true);
  });
});

describe('/health shows no host, user, path or endpoint unless DATASAVER_HEALTH_DETAILS is on', () => {
  /** A failed run whose error names host, port and user, and a destination that cannot be listed. */
  async function failedTarget(healthDetails: boolean) {
    const at = (description: string) =>
      Object.defineProperty(new MemoryStorage(), 'description', { value: description });
    const { clock, runs, daemon, metrics } = setup(
      {},
      {
        healthDetails,
        destinations: () => [at('local:/srv/backups'), at('s3://bucket/prod at https://minio.internal:9000')],
        readUsage: async (storage) => {
          if (storage.description.startsWith('s3'))
            throw new Error('s3://bucket/prod at https://minio.internal:9000: access denied');
          return { backups: 2, bytes: 10, newest: undefined };
        },
      },
    );
    await daemon.start();
    await clock.advance(10_000);
    runs.calls[0]!.reject(
      new ConnectionError(
        'cannot connect to PostgreSQL at db.internal:5432 as backup_user: no pg_hba entry',
        {
          transient: false,
        },
      ),
    );
    await settle();
    const res = await handle('GET', '/health', {
      health: () => daemon.health(),
      ready: () => daemon.ready,
      metrics: () => metrics.render(),
    });
    return { status: res.status, body: res.body, report: JSON.parse(res.body) as HealthReport };
  }

  it('by default: the kind of failure and of destination only', async () => {
    const { status, body, report } = await failedTarget(false);
    expect(status).toBe(503);
    for (const detail of ['db.internal', '5432', 'backup_user', '/srv/backups', 'minio.internal', 'bucket'])
      expect(body).not.toContain(detail);
    const t = report.targets[0]!;
    expect(t.lastAttempt).toMatchObject({
      ok: false,
      exitCode: 3,
      error: 'the database could not be reached (exit 3); the log has the details',
    });
    expect(t.reasons).toEqual([
      expect.stringMatching(/^last run failed at .*: the database could not be reached \(exit 3\)/),
    ]);
    expect(t.destinations).toEqual([
      { destination: 'local', backups: 2, bytes: 10, error: null },
      { destination: 's3', backups: 0, bytes: 0, error: 'cannot be listed; the log has the details' },
    ]);
  });

  it('with DATASAVER_HEALTH_DETAILS=true: the error texts and destinations in full', async () => {
    const { status, report } = await failedTarget(true);
    expect(status).toBe(503);
    const t = report.targets[0]!;
    expect(t.lastAttempt?.error).toMatch(/at db\.internal:5432 as backup_user/);
    expect(t.reasons[0]).toMatch(/db\.internal:5432/);
    expect(t.destinations.map((d) => d.destination)).toEqual([
      'local:/srv/backups',
      's3://bucket/prod at https://minio.internal:9000',
    ]);
    expect(t.destinations[1]!.error).toMatch(/access denied/);
  });
});
