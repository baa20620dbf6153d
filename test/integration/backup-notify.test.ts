/**
 * One-shot `datasaver backup` (a Kubernetes CronJob, a host cron) notifies the same channels the daemon
 * does: start and result pings, failures, and successes when asked. Real server, real CLI, a local
 * receiver for the webhook and the ping URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { type Receiver, startReceiver } from '../support/daemon.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { createDatabase, query, server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;
let hook: Receiver;
let pings: Receiver;

beforeAll(async () => {
  db = uniqueName('notify');
  await createRichDatabase(db);
  [hook, pings] = await Promise.all([startReceiver(), startReceiver()]);
});
afterAll(async () => {
  await Promise.all([hook.close(), pings.close()]);
});

function channels(extra: Record<string, string> = {}): Record<string, string> {
  for (const r of [hook, pings]) {
    r.received.length = 0;
    r.paths.length = 0;
  }
  return { DATASAVER_WEBHOOK_URL: hook.url, DATASAVER_HEALTHCHECKS_URL: pings.url, ...extra };
}

const pingPaths = () => pings.paths;

describe('one-shot backup notifications', () => {
  it('a failed backup sends failure to the webhook and /start then /fail to the ping URL, no secrets', async () => {
    const env = {
      ...channels(),
      DATASAVER_DATABASE_URL: `postgres://postgres:${server().password}@127.0.0.1:1/${db}`,
      DATASAVER_STORAGE_PATH: await tempDir(),
    };
    const res = await runCli(['backup'], env);
    expect(res.code, res.output).toBe(3);
    expect(hook.received).toEqual([
      expect.objectContaining({
        event: 'failure',
        target: db,
        backup: null,
        error: {
          message: expect.stringMatching(/cannot connect to PostgreSQL at 127\.0\.0\.1:1/),
          exitCode: 3,
        },
        message: expect.stringMatching(new RegExp(`^datasaver: ${db}: backup failed: cannot connect`)),
      }),
    ]);
    expect(pingPaths()).toEqual(['/hook/start', '/hook/fail']);
    expect(JSON.stringify([hook.received, pings.received])).not.toContain(server().password);
  });

  it('a good backup pings /start then success; the webhook hears of it only with on_success', async () => {
    const quiet = await runCli(['backup', '--json'], targetEnv(db, await tempDir(), channels()));
    expect(quiet.code, quiet.output).toBe(0);
    expect(hook.received).toEqual([]);
    expect(pingPaths()).toEqual(['/hook/start', '/hook']);

    const env = targetEnv(db, await tempDir(), channels({ DATASAVER_NOTIFY_ON_SUCCESS: 'true' }));
    const res = await runCli(['backup', '--json'], env);
    expect(res.code, res.output).toBe(0);
    const id = (JSON.parse(res.stdout) as { backups: { id: string; storedBytes: number }[] }).backups[0]!;
    expect(hook.received).toEqual([
      expect.objectContaining({
        event: 'success',
        target: db,
        error: null,
        backup: expect.objectContaining({ id: id.id, storedBytes: id.storedBytes }),
      }),
    ]);
  });

  it('a channel that is down only warns: the backup still exits 0', async () => {
    const env = targetEnv(db, await tempDir(), {
      DATASAVER_WEBHOOK_URL: 'http://127.0.0.1:1/hook',
      DATASAVER_NOTIFY_ON_SUCCESS: 'true',
    });
    const res = await runCli(['backup'], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stderr).toMatch(/warning: webhook notification failed/);
  });

  it('a dropped table after a few backups: the smaller dump sends a size-change warning, the backup exits 0', async () => {
    const shop = uniqueName('sizes');
    await createDatabase(shop);
    await query(
      shop,
      `CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g;
       CREATE TABLE customers AS SELECT g AS id, 'customer ' || g AS name FROM generate_series(1, 50) g;`,
    );
    const env = targetEnv(shop, await tempDir(), channels());
    for (let i = 0; i < 3; i++) {
      const res = await runCli(['backup'], env);
      expect(res.code, res.output).toBe(0);
      expect(res.stderr).not.toContain('warning');
    }
    expect(hook.received).toEqual([]);

    await query(shop, 'DROP TABLE orders');
    const res = await runCli(['backup', '--json'], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(
        `^warning: ${shop}: backup ${shop}-\\S+ is \\d+% smaller than the median of the last 3 full backups`,
        'm',
      ),
    );
    const backup = (JSON.parse(res.stdout) as { backups: { id: string; sizeBytes: number }[] }).backups[0]!;
    expect(hook.received).toEqual([
      expect.objectContaining({
        event: 'size-change',
        target: shop,
        error: null,
        backup: expect.objectContaining({ id: backup.id, sizeBytes: backup.sizeBytes }),
        sizeChange: expect.objectContaining({ sizeBytes: backup.sizeBytes, basis: 3, threshold: 0.5 }),
        message: expect.stringMatching(/smaller than the median of the last 3 full backups/),
      }),
    ]);
    const change = (hook.received[0]!.sizeChange as { change: number }).change;
    expect(change).toBeLessThan(-0.5);
    // A size change is no run result: the ping URL heard start and success of each run only.
    expect(pingPaths()).toEqual(Array(4).fill(['/hook/start', '/hook']).flat());
  });
});
