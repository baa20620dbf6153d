/**
 * The daemon's fault paths against the suite's PostgreSQL and S3 servers: the dead man's switch with a
 * schedule that never fires, SIGTERM in the middle of a large backup to local disk and S3, runs that
 * would overlap, and `datasaver health` for container HEALTHCHECKs.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { runCli } from '../support/cli.ts';
import { startDaemon, startReceiver, terminate, waitFor } from '../support/daemon.ts';
import { fakePgDump, fakeToolDir } from '../support/fake-tools.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { createDatabase, server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';
import { s3Config, s3Endpoint, s3Env, s3Prefix } from '../support/s3.ts';

let db: string;
const NEVER = '0 0 1 1 *'; // once a year: never during a test

beforeAll(async () => {
  db = uniqueName('daemon');
  await createDatabase(db);
});

describe('daemon faults', () => {
  it('no success within the alert window: /health turns 503 and one stale notification goes out', async () => {
    const receiver = await startReceiver();
    const daemon = await startDaemon(
      targetEnv(db, await tempDir(), {
        DATASAVER_SCHEDULE: NEVER,
        DATASAVER_ALERT_AFTER_HOURS: '0.001', // 3.6 s
        DATASAVER_WEBHOOK_URL: receiver.url,
      }),
    );
    try {
      expect((await daemon.health()).status).toBe(200);
      const health = await waitFor('/health 503', async () => {
        const h = await daemon.health();
        return h.status === 503 ? h : undefined;
      });
      expect(health.body.targets[0]).toMatchObject({ stale: true, healthy: false, lastSuccess: null });
      expect(health.body.targets[0]!.reasons[0]).toMatch(/no successful backup since the daemon started/);
      const stale = await waitFor('a stale notification', async () =>
        receiver.received.find((n) => n.event === 'stale'),
      );
      expect(stale).toMatchObject({
        target: db,
        backup: null,
        message: expect.stringMatching(/no successful backup/),
      });
      // One per window: nothing more before the window has passed again.
      await sleep(2500);
      expect(receiver.received.filter((n) => n.event === 'stale')).toHaveLength(1);

      const check = await runCli(['health'], { DATASAVER_METRICS_PORT: String(daemon.port) });
      expect(check.code).toBe(1);
      expect(check.stdout).toMatch(/^unhealthy \(HTTP 503/);
      expect(check.stdout).toMatch(/no successful backup/);
    } finally {
      const { result } = await terminate(daemon);
      await receiver.close();
      expect(result.code, result.output).toBe(0);
    }
  });

  it('SIGTERM during a large backup to local disk and S3: exits 0 within the bound, nothing committed, no upload left', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('sigterm');
    // A dump that never ends: random data as fast as it can be uploaded.
    const tools = await fakeToolDir({
      pg_dump: fakePgDump(server().binDir, 'while :; do head -c 1048576 /dev/urandom || exit 1; done'),
    });
    const env = targetEnv(db, storage, {
      ...s3Env(prefix),
      DATASAVER_STORAGE_BACKEND: 'local,s3',
      DATASAVER_TOOL_DIR: tools,
      DATASAVER_SCHEDULE: NEVER,
      DATASAVER_SHUTDOWN_TIMEOUT_SECONDS: '15',
    });
    const daemon = await startDaemon(env, ['--run-now']);
    // Wait until well past the first multipart parts, so uploads are in flight when the signal comes.
    await waitFor('the dump to stream 24 MB', async () => {
      const files = await readdir(join(storage, db)).catch(() => [] as string[]);
      for (const f of files.filter((n) => n.endsWith('.tmp'))) {
        if (((await stat(join(storage, db, f)).catch(() => undefined))?.size ?? 0) > 24 * 1024 * 1024)
          return true;
      }
      return false;
    });
    const s3 = new S3Storage(s3Config(prefix));
    expect((await s3.listTemporary('')).length).toBe(1);
    expect((await daemon.health()).body.targets[0]!.running).toBe(true);
    const { ms, result } = await terminate(daemon);
    expect(result.code, result.output).toBe(0);
    expect(ms).toBeLessThan(15_000);
    expect(result.stdout).toMatch(/backup interrupted by shutdown/);
    expect(result.stdout).not.toMatch(/"backup failed"/);

    const list = await runCli(['list', '--all', '--json'], env);
    expect(list.code, list.output).toBe(0);
    const parsed = JSON.parse(list.stdout) as { backups: unknown[]; incomplete: unknown[] };
    expect(parsed.backups).toEqual([]);
    expect(parsed.incomplete).toEqual([]);
    expect(await s3.list('')).toEqual([]);
    expect(await s3.listTemporary('')).toEqual([]);
    // No temporary file is left under a final name locally either.
    expect(
      (await readdir(join(storage, db)).catch(() => [] as string[])).filter((f) => !f.startsWith('.')),
    ).toEqual([]);
  });

  it('storage retries during a scheduled backup are counted per destination', async () => {
    const proxy = await startFaultProxy(s3Endpoint());
    let lists = 0;
    // The first listing of the bucket (the daemon reading what storage holds) gets a 503.
    proxy.setRule((req) =>
      req.method === 'GET' && /[?&]list-type=2/.test(req.url) && ++lists === 1 ? { status: 503 } : undefined,
    );
    const prefix = s3Prefix('retries');
    const daemon = await startDaemon(
      targetEnv(db, await tempDir(), {
        ...s3Env(prefix, proxy.endpoint),
        DATASAVER_STORAGE_BACKEND: 's3',
        DATASAVER_SCHEDULE: NEVER,
      }),
      ['--run-now'],
    );
    try {
      await waitFor(
        'a successful run',
        async () => ((await daemon.metric(`datasaver_backups_succeeded_total{target="${db}"}`)) ?? 0) >= 1,
      );
      const { text } = await daemon.get('/metrics');
      expect(text).toMatch(
        new RegExp(
          `^datasaver_storage_retries_total\\{target="${db}",destination="s3://[^"]+",operation="list"\\} [1-9]`,
          'm',
        ),
      );
      expect(text).not.toContain('S3RVER'); // the test server's keys
    } finally {
      const { result } = await terminate(daemon);
      await proxy.stop();
      expect(result.code, result.output).toBe(0);
      expect(result.stdout).toMatch(/storage operation failed; retrying/);
    }
  });

  it('a schedule faster than the backup skips runs and counts them', async () => {
    const tools = await fakeToolDir({
      pg_dump: fakePgDump(server().binDir, `sleep 2.5; exec "${server().binDir}/pg_dump" "$@"`),
    });
    const daemon = await startDaemon(
      targetEnv(db, await tempDir(), { DATASAVER_TOOL_DIR: tools, DATASAVER_SCHEDULE: '* * * * * *' }),
    );
    try {
      await waitFor(
        'a successful run',
        async () => ((await daemon.metric(`datasaver_backups_succeeded_total{target="${db}"}`)) ?? 0) >= 1,
      );
      const skipped = await daemon.metric(`datasaver_runs_skipped_total{target="${db}"}`);
      expect(skipped).toBeGreaterThanOrEqual(1);
      const { body } = await daemon.health();
      expect(body.targets[0]!.skippedRuns).toBeGreaterThanOrEqual(skipped!);
      expect(body.status).toBe('ok');
    } finally {
      const { result } = await terminate(daemon);
      expect(result.code, result.output).toBe(0);
      expect(result.stdout).toMatch(
        /skipped a scheduled run: the previous run of this target is still going/,
      );
    }
  });

  it('datasaver health: 0 from a healthy daemon, 1 when nothing answers', async () => {
    const daemon = await startDaemon(targetEnv(db, await tempDir(), { DATASAVER_SCHEDULE: NEVER }));
    try {
      const ok = await runCli(['health', '--url', daemon.url('/health'), '--json'], {});
      expect(ok.code, ok.output).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({
        healthy: true,
        httpStatus: 200,
        report: { status: 'ok' },
      });
      // Without --url, the address comes from the daemon's own settings, here the config file's.
      const file = join(await tempDir(), 'datasaver.yaml');
      await writeFile(
        file,
        `daemon:\n  metrics_port: ${daemon.port}\ntargets:\n  x:\n    url: postgres://h/x\n    storage: { path: /b }\n`,
      );
      const fromFile = await runCli(['health', '--config', file], { DATASAVER_METRICS_PORT: '1' });
      expect(fromFile.code, fromFile.output).toBe(0);
      expect(fromFile.stdout).toContain(`healthy (HTTP 200 from http://127.0.0.1:${daemon.port}/health)`);
    } finally {
      await terminate(daemon);
    }
    const down = await runCli(['health'], { DATASAVER_METRICS_PORT: String(daemon.port) });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/unhealthy: cannot reach http:\/\/127\.0\.0\.1:\d+\/health: .*ECONNREFUSED/);
  });

  it('a port in use is a configuration error (exit 2) naming the port', async () => {
    const first = await startDaemon(targetEnv(db, await tempDir(), { DATASAVER_SCHEDULE: NEVER }));
    try {
      const res = await runCli(['daemon'], {
        ...targetEnv(db, await tempDir(), { DATASAVER_SCHEDULE: NEVER }),
        DATASAVER_METRICS_PORT: String(first.port),
        DATASAVER_METRICS_HOST: '127.0.0.1',
      });
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(new RegExp(`cannot listen on port ${first.port}.*EADDRINUSE`));
      expect(res.stderr).toMatch(/Try: set DATASAVER_METRICS_PORT/);
    } finally {
      await terminate(first);
    }
  });
});
