/**
 * One writer per target, with real processes on local disk and S3 (the
 * extended server, and an unmodified s3rver where the lease is written and read back). The first process
 * stops at the failpoint `lease-taken` (holding the target's lease, before writing anything), so the
 * second always meets a held lease: it waits, gives up, and never commits or prunes alongside.
 */
import type { ChildProcess } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { leaseKey } from '../../src/catalog/layout.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { type CliResult, collect, runCli, startCli } from '../support/cli.ts';
import { startDaemon, startReceiver, terminate, waitFor } from '../support/daemon.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { server, targetEnv, tempDir, uniqueName, yamlConfig } from '../support/pg.ts';
import { s3Config, s3EndpointOf, s3Env, s3Prefix } from '../support/s3.ts';

let db: string;
beforeAll(async () => {
  db = uniqueName('onewriter');
  await createRichDatabase(db);
});
const database = async () => db;

interface Place {
  env: Record<string, string>;
  storage: StorageBackend;
}

const PLACES: [string, (name: string) => Promise<Place>][] = [
  [
    'local disk',
    async (name) => {
      const dir = await tempDir();
      return { env: targetEnv(name, dir), storage: new LocalStorage(dir) };
    },
  ],
  [
    'S3',
    async (name) => {
      const prefix = s3Prefix('lease');
      return {
        env: targetEnv(name, await tempDir(), { ...s3Env(prefix), DATASAVER_STORAGE_BACKEND: 's3' }),
        storage: new S3Storage(s3Config(prefix)),
      };
    },
  ],
  [
    'S3 without conditional writes',
    async (name) => {
      const prefix = s3Prefix('lease');
      const endpoint = s3EndpointOf('plain');
      return {
        env: targetEnv(name, await tempDir(), {
          ...s3Env(prefix, endpoint),
          DATASAVER_STORAGE_BACKEND: 's3',
        }),
        storage: new S3Storage(s3Config(prefix, { endpoint })),
      };
    },
  ],
];

/** Starts datasaver stopped at `lease-taken`, holding the target's lease; resolves once it says so. */
async function startHolding(
  args: string[],
  env: Record<string, string>,
): Promise<{ child: ChildProcess; done: Promise<CliResult> }> {
  const child = startCli(args, { ...env, DATASAVER_FAILPOINT: 'lease-taken=pause' });
  const done = collect(child);
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('failpoint lease-taken\n')) resolve();
    });
    child.once('exit', () => reject(new Error(`exited before taking the lease: ${err}`)));
  });
  return { child, done };
}

async function backupIds(env: Record<string, string>): Promise<string[]> {
  const list = await runCli(['list', '--json'], env);
  expect(list.code, list.output).toBe(0);
  return (JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id);
}

// Each test has storage of its own, and mostly waits on leases: they run side by side.
describe.concurrent.each(PLACES)('one writer per target on %s', (_, place) => {
  it('a second backup meets the held lease, waits, gives up with exit 6 naming the holder; only the first commits', async () => {
    const name = await database();
    const { env, storage } = await place(name);
    // The holder's lease lasts the default 5 minutes; the second run, with a short TTL of its own, waits
    // a little over that and gives up.
    const first = await startHolding(['backup'], env);
    const second = await runCli(['backup'], { ...env, DATASAVER_LEASE_TTL_SECONDS: '2' });
    expect(second.code, second.output).toBe(6);
    expect(second.stderr).toMatch(
      new RegExp(
        `^waiting for the lease of ${name} in .*: held by host \\S+, pid ${first.child.pid}, backup since`,
        'm',
      ),
    );
    expect(second.stderr).toMatch(
      new RegExp(
        `target ${name} is held by another datasaver run \\(host \\S+, pid ${first.child.pid}, backup since .*; waited \\d+ s`,
      ),
    );
    expect(second.stdout).not.toMatch(/committed/);
    expect(await backupIds(env)).toEqual([]);
    // The holder goes on when let, and commits the one backup.
    first.child.kill('SIGCONT');
    const result = await first.done;
    expect(result.code, result.output).toBe(0);
    expect(await backupIds(env)).toHaveLength(1);
    expect(await storage.stat(leaseKey(name))).toBeUndefined();
  });
});

describe.concurrent('one writer per target: prune and crashes', () => {
  it('a second prune meets the held lease and exits 6 without deleting anything', async () => {
    const name = await database();
    const dir = await tempDir();
    const env = targetEnv(name, dir);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const first = await startHolding(['prune'], env);
    const second = await runCli(['prune'], { ...env, DATASAVER_LEASE_TTL_SECONDS: '1' });
    expect(second.code, second.output).toBe(6);
    expect(second.stderr).toMatch(/prune skipped 1 destination\(s\): another datasaver run holds them/);
    expect(second.stdout).not.toMatch(/^prune /m);
    // The lease object is no backup and no foreign file: list and a dry run pass it over in silence.
    const list = await runCli(['list'], env);
    const dryRun = await runCli(['prune', '--dry-run'], env);
    for (const res of [list, dryRun]) {
      expect(res.code, res.output).toBe(0);
      expect(res.output).not.toMatch(/\.lease\.json|skipping/);
    }
    expect(await new LocalStorage(dir).stat(leaseKey(name))).toBeDefined();
    first.child.kill('SIGCONT');
    expect((await first.done).code).toBe(0);
  });

  it('backup --resume-uploads takes the lease too: it meets the held one and exits 6', async () => {
    const name = await database();
    const env = targetEnv(name, await tempDir());
    const first = await startHolding(['backup'], env);
    const resume = await runCli(['backup', '--resume-uploads'], { ...env, DATASAVER_LEASE_TTL_SECONDS: '1' });
    expect(resume.code, resume.output).toBe(6);
    expect(resume.stderr).toMatch(
      new RegExp(`held by another datasaver run \\(host \\S+, pid ${first.child.pid}, backup since`),
    );
    first.child.kill('SIGCONT');
    expect((await first.done).code).toBe(0);
  });

  it('backup --resume-uploads --all reports a held target and goes on with the others', async () => {
    const dir = await tempDir();
    const targets = `  alpha:
    database: ${db}
  beta:
    database: ${db}
`;
    const file = await yamlConfig(dir, targets, '  lease_ttl_seconds: 1\n');
    const lease = {
      target: 'alpha',
      holder: { host: 'another-host', pid: 4242, pidNamespace: '', token: 'busy', operation: 'backup' },
      acquiredAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    };
    await new LocalStorage(dir).put(leaseKey('alpha'), [Buffer.from(JSON.stringify(lease))]);
    // beta's lease expired long ago: the run on beta takes it over and releases it.
    const stale = { ...lease, target: 'beta', expiresAt: new Date(Date.now() - 60_000).toISOString() };
    await new LocalStorage(dir).put(leaseKey('beta'), [Buffer.from(JSON.stringify(stale))]);
    const res = await runCli(['--config', file, 'backup', '--resume-uploads', '--all', '--json'], {
      PGTEST_PASSWORD: server().password,
    });
    expect(res.code, res.output).toBe(6);
    const out = JSON.parse(res.stdout) as { failures: { target: string; message: string }[] };
    expect(
      out.failures.map((f) => f.target),
      res.stderr,
    ).toEqual(['alpha']);
    expect(out.failures[0]!.message).toMatch(/held by another datasaver run \(host another-host, pid 4242/);
    // beta was still run after alpha failed: its stale lease was taken over and released.
    expect(await new LocalStorage(dir).stat(leaseKey('beta'))).toBeUndefined();
    expect(res.stderr).toMatch(/waiting for the lease of alpha/);
  });

  it('a daemon on a target another process holds skips the run: a log line and a metric, no failure', async () => {
    const name = await database();
    const dir = await tempDir();
    const hc = await startReceiver();
    const env = { ...targetEnv(name, dir), DATASAVER_SCHEDULE: '0 0 1 1 *' };
    const holder = await startHolding(['backup'], env);
    const daemon = await startDaemon({ ...env, DATASAVER_HEALTHCHECKS_URL: hc.url }, ['--run-now']);
    const series = `datasaver_runs_lease_held_total{target="${name}"}`;
    await waitFor('the daemon to skip the run', async () => (await daemon.metric(series)) === 1);
    expect(await daemon.metric(`datasaver_backups_failed_total{target="${name}"}`)).toBe(0);
    const { result } = await terminate(daemon);
    await hc.close();
    const skipped = result.stdout
      .split('\n')
      .filter((l) =>
        l.includes('skipped this run: another datasaver process holds the lease of this target'),
      );
    expect(skipped).toHaveLength(1);
    expect(JSON.parse(skipped[0]!).holder).toMatchObject({ pid: holder.child.pid, operation: 'backup' });
    expect(result.stdout).not.toMatch(/"backup started"|"backup failed"/);
    expect(hc.paths).toEqual([]); // no healthchecks `start` ping left without an end
    holder.child.kill('SIGCONT');
    expect((await holder.done).code).toBe(0);
  });

  it.each(PLACES)(
    'after kill -9 of the holder on %s, the next run on this host takes over at once',
    async (_, place) => {
      const name = await database();
      const { env, storage } = await place(name);
      const first = await startHolding(['backup'], env); // the default TTL: 5 minutes
      first.child.kill('SIGKILL');
      await first.done;
      expect(await storage.stat(leaseKey(name))).toBeDefined();
      const next = await runCli(['backup'], env);
      expect(next.code, next.output).toBe(0);
      expect(next.stderr).not.toMatch(/waiting for the lease/);
      expect(await backupIds(env)).toHaveLength(1);
      expect(await storage.stat(leaseKey(name))).toBeUndefined();
    },
  );

  it("a lease another host's run left behind is waited for until it expires, then taken over", async () => {
    const name = await database();
    const dir = await tempDir();
    const storage = new LocalStorage(dir);
    const plant = (expiresAt: Date) => {
      const holder = {
        host: 'another-host',
        pid: 4242,
        pidNamespace: 'pid:[1]',
        token: 'gone',
        operation: 'backup',
      };
      const lease = {
        target: name,
        holder,
        acquiredAt: new Date().toISOString(),
        expiresAt: expiresAt.toISOString(),
      };
      return storage.put(leaseKey(name), [Buffer.from(JSON.stringify(lease))]);
    };
    await plant(new Date(Date.now() + 3_600_000));
    const next = startCli(['backup', '--json'], {
      ...targetEnv(name, dir),
      DATASAVER_LEASE_TTL_SECONDS: '20',
    });
    const done = collect(next);
    await new Promise<void>((resolve) => {
      let err = '';
      next.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        if (/waiting for the lease of .*: held by host another-host, pid 4242, backup since/.test(err))
          resolve();
      });
    });
    // Its holder never renews it: once its time is up (brought forward here), the waiting run takes over.
    const expired = new Date();
    await plant(expired);
    const result = await done;
    expect(result.code, result.output).toBe(0);
    const [backup] = (JSON.parse(result.stdout) as { backups: { createdAt: string }[] }).backups;
    expect(Date.parse(backup!.createdAt)).toBeGreaterThanOrEqual(expired.getTime());
    expect(await storage.stat(leaseKey(name))).toBeUndefined();
  });
});
