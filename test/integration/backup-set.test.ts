/**
 * Whole-server backup sets against a real PostgreSQL server of their own (the suite's shared server holds
 * other files' databases, coming and going): every database and the globals under one manifest, new
 * databases in the next set, excluded ones in none, a non-superuser's set saying what it could not read,
 * a kill mid-set committing nothing, and --resume-uploads completing a set on S3.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { storedObjects } from '../../src/catalog/parts.ts';
import { runCli, startPausedAt } from '../support/cli.ts';
import { tempDir } from '../support/pg.ts';
import { type PostgresServer, startPostgres } from '../support/postgres-server.ts';
import { s3Env, s3Prefix } from '../support/s3.ts';

let srv: PostgresServer;

beforeAll(async () => {
  srv = await startPostgres();
  for (const [db, rows] of [
    ['alpha', 3],
    ['beta', 5],
    ['gamma', 7],
    ['scratch', 1],
  ] as const) {
    await srv.createDatabase(db);
    await srv.query(db, `CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, ${rows})`);
  }
}, 120_000);

afterAll(async () => {
  await srv?.stop();
});

function serverEnv(storage: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATASAVER_DATABASE_URL: srv.url('*'),
    DATASAVER_TARGET_NAME: 'srv',
    DATASAVER_DB_EXCLUDE: 'scratch',
    DATASAVER_STORAGE_PATH: storage,
    ...extra,
  };
}

async function backupSet(env: Record<string, string>): Promise<Manifest & { members: unknown }> {
  const res = await runCli(['backup', '--json'], env);
  expect(res.code, res.output).toBe(0);
  return JSON.parse(res.stdout).backups[0];
}

const names = (m: Manifest) => m.set!.databases.map((d) => d.database);

describe('whole-server backup sets', () => {
  it('back up every database and the globals, each its own object, under one manifest', async () => {
    const storage = await tempDir();
    const env = serverEnv(storage, { DATASAVER_DUMP_JOBS: '2' });
    const first = await backupSet(env);
    expect(names(first)).toEqual(['alpha', 'beta', 'gamma', 'postgres']);
    expect(first.set).toMatchObject({
      excluded: ['scratch'],
      unreadable: [],
      globals: { rolePasswords: true },
    });
    expect(first.set!.databases.find((d) => d.database === 'beta')!.facts).toMatchObject({
      exact: true,
      tables: [{ name: 'public.t', rows: 5 }],
    });
    for (const o of storedObjects(first)) {
      const stored = await readFile(join(storage, o.object));
      expect(createHash('sha256').update(stored).digest('hex')).toBe(o.sha256);
    }
    expect((await readdir(join(storage, 'srv'))).filter((f) => f.endsWith('.manifest.json'))).toHaveLength(1);

    // A database created between two backups is in the second; the excluded one is in neither.
    await srv.createDatabase('delta');
    await srv.query('delta', 'CREATE TABLE d (x text)');
    const second = await backupSet(env);
    expect(names(second)).toEqual(['alpha', 'beta', 'delta', 'gamma', 'postgres']);

    const list = await runCli(['list'], env);
    expect(list.code, list.output).toBe(0);
    expect(list.stdout).toMatch(/DATABASE/);
    expect(list.stdout).toMatch(new RegExp(`srv\\s+server \\(5 databases\\)\\s+${second.id}`));
    expect(list.stdout).toMatch(new RegExp(`srv\\s+server \\(4 databases\\)\\s+${first.id}`));
    const text = await runCli(['backup'], env);
    expect(text.stdout).toMatch(
      /whole server: 5 databases \(alpha, beta, delta, gamma, postgres\); excluded: scratch/,
    );
    await srv.query('postgres', 'DROP DATABASE delta');
  });

  it('a kill in the middle of a set commits nothing; prune collects its parts after the grace period', async () => {
    const storage = await tempDir();
    const env = serverEnv(storage);
    const { child, done } = await startPausedAt('backup.dumping', ['backup'], env);
    // Paused inside the first database's dump: the globals part is stored under its final name already.
    const parts = (await readdir(join(storage, 'srv'))).filter((f) => f.includes('.globals.'));
    expect(parts).toHaveLength(1);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    const list = JSON.parse((await runCli(['list', '--all', '--json'], env)).stdout);
    expect(list.backups).toEqual([]);
    expect(list.incomplete.map((o: { key: string }) => o.key)).toEqual([`srv/${parts[0]}`]);

    // Left: the globals part and the killed dump's hidden temporary file, both older than the grace now.
    const old = new Date(Date.now() - 48 * 3_600_000);
    const left = (await readdir(join(storage, 'srv'))).filter((f) => !f.endsWith('.lease.json'));
    expect(left.some((f) => f.startsWith('.') && f.includes('.db1.'))).toBe(true);
    for (const f of left) await utimes(join(storage, 'srv', f), old, old);
    const prune = await runCli(['prune'], env);
    expect(prune.code, prune.output).toBe(0);
    expect((await readdir(join(storage, 'srv'))).filter((f) => !f.endsWith('.lease.json'))).toEqual([]);
  });

  it('a kill with every part stored and the manifest not yet written commits nothing', async () => {
    const storage = await tempDir();
    const env = serverEnv(storage);
    const { child, done } = await startPausedAt('backup.before-manifest', ['backup'], env);
    const parts = (await readdir(join(storage, 'srv'))).filter((f) => !f.endsWith('.lease.json'));
    // The globals and the four databases, each under its final name.
    expect(parts.filter((f) => /\.(globals|db[1-4])\.(sql|dump)\.zst$/.test(f))).toHaveLength(5);
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    const list = JSON.parse((await runCli(['list', '--all', '--json'], env)).stdout);
    expect(list.backups).toEqual([]);
    expect(list.incomplete).toHaveLength(5);
  });

  it('--resume-uploads completes a set on S3 that only the local destination took', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('set');
    const broken = serverEnv(storage, { ...s3Env(prefix), DATASAVER_S3_BUCKET: 'no-such-bucket' });
    const failed = await runCli(['backup', '--json'], broken);
    expect(failed.code, failed.output).toBe(6);
    const set: Manifest = JSON.parse(failed.stdout).backups[0];
    const resumed = await runCli(['backup', '--resume-uploads'], serverEnv(storage, s3Env(prefix)));
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`uploaded ${set.id} to s3://`));
    // On S3 alone: the set is listed, nothing incomplete, and prune counts it good (every part, its size).
    const list = JSON.parse((await runCli(['list', '--all', '--json'], s3Env(prefix))).stdout);
    expect(list.backups.map((m: Manifest) => m.id)).toEqual([set.id]);
    expect(list.incomplete).toEqual([]);
    const plan = await runCli(
      ['prune', '--dry-run', '--json'],
      serverEnv(storage, { ...s3Env(prefix), DATASAVER_STORAGE_BACKEND: 's3' }),
    );
    expect(plan.code, plan.output).toBe(0);
    const item = JSON.parse(plan.stdout).results[0].items.find((i: { id: string }) => i.id === set.id);
    expect(item).toMatchObject({
      good: true,
      keys: expect.arrayContaining(storedObjects(set).map((o) => o.object)),
    });
  });

  it('a backup user without superuser rights: the set says what it could not read', async () => {
    await srv.createDatabase('locked');
    await srv.query(
      'postgres',
      `CREATE ROLE reader LOGIN PASSWORD 'reader-pw'; REVOKE CONNECT ON DATABASE locked FROM PUBLIC`,
    );
    // Rights on what it dumps, and nothing more (pg_read_all_data would let it read pg_authid too).
    for (const db of ['alpha', 'beta', 'gamma']) await srv.query(db, 'GRANT SELECT ON t TO reader');
    const storage = await tempDir();
    const url = srv.url('*').replace(/\/\/postgres:[^@]*@/, '//reader:reader-pw@');
    const res = await runCli(['backup', '--json'], serverEnv(storage, { DATASAVER_DATABASE_URL: url }));
    expect(res.code, res.output).toBe(0);
    const set: Manifest = JSON.parse(res.stdout).backups[0];
    expect(names(set)).toEqual(['alpha', 'beta', 'gamma', 'postgres']);
    expect(set.set).toMatchObject({
      unreadable: [{ database: 'locked', reason: 'no CONNECT privilege' }],
      globals: { rolePasswords: false },
    });
    expect(res.stderr).toMatch(/database locked is not in the backup \(no CONNECT privilege\)/);
    expect(res.stderr).toMatch(/role passwords are not in the backup/);
  });
});
