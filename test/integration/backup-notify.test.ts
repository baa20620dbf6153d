/**
 * One-shot `datasaver backup` (a Kubernetes CronJob, a host cron) notifies the same channels the daemon
 * does: start and result pings, failures, and successes when asked. Real server, real CLI, a local
 * receiver for the webhook and the ping URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { type Receiver, startReceiver } from '../support/daemon.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

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
});
