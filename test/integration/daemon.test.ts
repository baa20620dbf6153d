/**
 * The daemon against a PostgreSQL server of its own (stopped and started by the test): scheduled backups,
 * /health and /metrics, failure and recovery notifications, logs, and a clean SIGTERM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, startReceiver, terminate, waitFor } from '../support/daemon.ts';
import { tempDir } from '../support/pg.ts';
import { type PostgresServer, startPostgres } from '../support/postgres-server.ts';

let pg: PostgresServer;

beforeAll(async () => {
  pg = await startPostgres();
  await pg.createDatabase('shop');
  await pg.query(
    'shop',
    `CREATE TABLE orders (id int PRIMARY KEY, note text);
    INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 500) g;`,
  );
});

afterAll(async () => {
  await pg?.stop();
});

describe('datasaver daemon', () => {
  it('backs up on schedule, reports health and metrics, notifies failure and recovery, stops on SIGTERM', async () => {
    const receiver = await startReceiver();
    const storage = await tempDir();
    const daemon = await startDaemon({
      DATASAVER_DATABASE_URL: pg.url('shop'),
      DATASAVER_STORAGE_PATH: storage,
      DATASAVER_SCHEDULE: '*/2 * * * * *',
      DATASAVER_RETRY_ATTEMPTS: '2',
      DATASAVER_RETRY_DELAY_SECONDS: '0.2',
      DATASAVER_WEBHOOK_URL: receiver.url,
      DATASAVER_KEEP_LAST: '3',
      DATASAVER_KEEP_DAILY: '0',
      DATASAVER_KEEP_WEEKLY: '0',
      DATASAVER_KEEP_MONTHLY: '0',
      DATASAVER_MIN_KEEP: '3',
    });
    try {
      // Several scheduled backups; retention keeps the newest three.
      await waitFor(
        'four backups',
        async () => ((await daemon.metric('datasaver_backups_succeeded_total{target="shop"}')) ?? 0) >= 4,
      );
      const { status, body } = await daemon.health();
      expect(status).toBe(200);
      expect(body.status).toBe('ok');
      const t = body.targets[0]!;
      expect(t).toMatchObject({ target: 'shop', healthy: true, stale: false, reasons: [] });
      expect(t.lastAttempt).toMatchObject({ ok: true, error: null, exitCode: 0 });
      expect(t.lastSuccess?.backupId).toMatch(/^shop-\d{8}T\d{6}Z/);
      expect(t.lastSuccess?.sizeBytes).toBeGreaterThan(1000);
      expect(Date.parse(t.nextRun!)).toBeGreaterThan(Date.now() - 2000);
      // Without DATASAVER_HEALTH_DETAILS, a destination is named by its kind, never by its path.
      expect(t.destinations).toEqual([
        {
          destination: 'local',
          backups: expect.any(Number),
          bytes: expect.any(Number),
          error: null,
        },
      ]);
      expect(t.destinations[0]!.backups).toBeGreaterThanOrEqual(3);
      expect(t.destinations[0]!.bytes).toBeGreaterThan(0);

      const metrics = (await daemon.get('/metrics')).text;
      expect(metrics).toMatch(
        /^datasaver_backup_duration_seconds_count\{target="shop",result="success"\} [1-9]/m,
      );
      expect(metrics).toMatch(/^datasaver_backup_last_size_bytes\{target="shop"\} [1-9]/m);
      expect(metrics).toMatch(/^datasaver_backup_last_success_timestamp_seconds\{target="shop"\} 1\d{9}/m);
      expect(metrics).toMatch(/^datasaver_backups_failed_total\{target="shop"\} 0$/m);
      expect(metrics).toMatch(/^datasaver_runs_skipped_total\{target="shop"\} 0$/m);
      expect(metrics).toMatch(
        new RegExp(`^datasaver_stored_backups\\{target="shop",destination="local:${storage}"\\} [3-9]`, 'm'),
      );
      expect(metrics).toMatch(
        /^datasaver_prune_deleted_total\{target="shop",destination="local:.*"\} [1-9]/m,
      );
      expect(metrics).toMatch(/^process_resident_memory_bytes /m);
      expect(receiver.received).toEqual([]); // successes only notify with DATASAVER_NOTIFY_ON_SUCCESS

      // The database goes away: the run fails after its retries, /health turns 503, a webhook arrives.
      await pg.pause();
      const failure = await waitFor('a failure notification', async () =>
        receiver.received.find((n) => n.event === 'failure'),
      );
      expect(failure).toMatchObject({ target: 'shop', error: { exitCode: 3 }, backup: null });
      expect(String((failure.error as { message: string }).message)).toMatch(/connect|refused/i);
      expect((failure.lastSuccess as { backupId: string }).backupId).toMatch(/^shop-/);
      const down = await daemon.health();
      expect(down.status).toBe(503);
      expect(down.body.targets[0]!.reasons[0]).toMatch(
        /last run failed at .*: the database could not be reached \(exit 3\)/,
      );
      expect(JSON.stringify(down.body)).not.toContain('127.0.0.1'); // the database host
      expect(await daemon.metric('datasaver_backups_failed_total{target="shop"}')).toBeGreaterThanOrEqual(1);
      expect(await daemon.metric('datasaver_connection_retries_total{target="shop"}')).toBeGreaterThanOrEqual(
        1,
      );
      expect(await daemon.metric('datasaver_target_healthy{target="shop"}')).toBe(0);

      // It comes back: the next run succeeds and a recovery arrives.
      await pg.start();
      const recovery = await waitFor('a recovery notification', async () =>
        receiver.received.find((n) => n.event === 'recovery'),
      );
      expect(recovery).toMatchObject({
        target: 'shop',
        error: null,
        backup: { id: expect.stringMatching(/^shop-/) },
      });
      await waitFor('healthy again', async () => (await daemon.health()).status === 200);
      expect(JSON.stringify(receiver.received)).not.toContain(pg.password);
    } finally {
      const { ms, result } = await terminate(daemon);
      await receiver.close();
      expect(result.code, result.output).toBe(0);
      expect(ms).toBeLessThan(10_000);
      // Structured JSON lines with target, backup id, duration and size; no secret anywhere.
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const ok = lines.find((l) => l.msg === 'backup succeeded');
      expect(ok).toMatchObject({
        level: 'info',
        target: 'shop',
        backupId: expect.any(String),
        durationMs: expect.any(Number),
        sizeBytes: expect.any(Number),
      });
      expect(lines.some((l) => l.msg === 'backup failed' && l.level === 'error')).toBe(true);
      expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
      expect(result.output).not.toContain(pg.password);
    }
  });
});
