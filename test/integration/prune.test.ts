/**
 * Retention on real storage through the real CLI: prune follows each
 * successful backup and never a failed one, a run of failures removes no good backup, stale incomplete
 * uploads go after the grace period and young ones stay.
 */
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;

beforeAll(async () => {
  db = uniqueName('prune');
  await createRichDatabase(db);
});

/** Keeps the two newest backups and nothing for calendar rules, so no test depends on the time of day. */
const POLICY = {
  DATASAVER_KEEP_DAILY: '0',
  DATASAVER_KEEP_WEEKLY: '0',
  DATASAVER_KEEP_MONTHLY: '0',
  DATASAVER_MIN_KEEP: '2',
};

async function listIds(env: Record<string, string>): Promise<string[]> {
  const res = await runCli(['list', '--json'], env);
  expect(res.code, res.output).toBe(0);
  return (JSON.parse(res.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id);
}

describe('prune on real storage', () => {
  it('follows every successful backup, never a failed one, and a run of failures removes no good backup', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage, POLICY);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await runCli(['backup', '--json'], env);
      expect(res.code, res.output).toBe(0);
      ids.push(JSON.parse(res.stdout).backups[0].id);
    }
    // The third backup's prune removed the first: min-keep two.
    expect(await listIds(env)).toEqual([ids[1], ids[2]]);

    // Failed runs (the database is gone) commit nothing and prune nothing, however many there are.
    const broken = { ...targetEnv('no_such_database', storage, POLICY), DATASAVER_TARGET_NAME: db };
    for (let i = 0; i < 3; i++) {
      const res = await runCli(['backup'], broken);
      expect(res.code).toBe(3);
      expect(res.output).not.toMatch(/pruned/);
    }
    expect(await listIds(env)).toEqual([ids[1], ids[2]]);

    // Even a year later with a 1-day max-age, the floor keeps both good backups.
    const later = await runCli(
      ['prune', '--dry-run', '--json', '--now', new Date(Date.now() + 365 * 86_400_000).toISOString()],
      { ...env, DATASAVER_MAX_AGE_DAYS: '1' },
    );
    expect(later.code, later.output).toBe(0);
    const items = JSON.parse(later.stdout).results[0].items as {
      id: string;
      action: string;
      reasons: string[];
    }[];
    expect(items.map((i) => [i.id, i.action, i.reasons.at(-1)])).toEqual([
      [ids[2], 'keep', 'min-keep'],
      [ids[1], 'keep', 'min-keep'],
    ]);
    expect(await listIds(env)).toEqual([ids[1], ids[2]]);

    // What is kept still restores: the newest backup verifies after all of this.
    const verify = await runCli(['verify', 'latest', '--target', db], env);
    expect(verify.code, verify.output).toBe(0);
  });

  it('--no-prune skips it; prune --dry-run explains and deletes nothing; prune removes', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage, { ...POLICY, DATASAVER_KEEP_LAST: '1', DATASAVER_MIN_KEEP: '1' });
    for (let i = 0; i < 3; i++) {
      const res = await runCli(['backup', '--no-prune'], env);
      expect(res.code, res.output).toBe(0);
    }
    const ids = await listIds(env);
    expect(ids).toHaveLength(3);

    const dry = await runCli(['prune', '--dry-run'], env);
    expect(dry.code, dry.output).toBe(0);
    expect(dry.stdout).toContain('(dry run: nothing is deleted)');
    expect(dry.stdout).toMatch(new RegExp(`${ids[2]}\\s+backup\\s+.*keep\\s+last 1, min-keep`));
    expect(dry.stdout).toMatch(new RegExp(`${ids[0]}\\s+backup\\s+.*remove\\s+no rule keeps it`));
    expect(dry.stdout).toMatch(/would keep 1, remove 2/);
    expect(await listIds(env)).toHaveLength(3);

    const real = await runCli(['cleanup'], env);
    expect(real.code, real.output).toBe(0);
    expect(real.stdout).toMatch(/kept 1, removed 2/);
    expect(await listIds(env)).toEqual([ids[2]]);
    const files = await readdir(join(storage, db));
    expect(files.filter((f) => !f.startsWith(ids[2]!))).toEqual([]);
  });

  it('removes incomplete uploads older than the grace period and leaves young ones alone', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage, POLICY);
    const backup = await runCli(['backup'], env);
    expect(backup.code, backup.output).toBe(0);
    const dir = join(storage, db);
    await mkdir(dir, { recursive: true });
    const stale = `${db}-20200101T000000Z.dump.zst`;
    const young = `${db}-20200102T000000Z.dump.zst`;
    const staleTemp = `.${db}-20200103T000000Z.dump.zst.0123456789ab.tmp`;
    for (const f of [stale, young, staleTemp]) await writeFile(join(dir, f), 'partial upload');
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    await utimes(join(dir, stale), twoDaysAgo, twoDaysAgo);
    await utimes(join(dir, staleTemp), twoDaysAgo, twoDaysAgo);

    const res = await runCli(['prune', '--json'], env);
    expect(res.code, res.output).toBe(0);
    const items = JSON.parse(res.stdout).results[0].items as {
      kind: string;
      action: string;
      keys: string[];
    }[];
    expect(items.filter((i) => i.kind !== 'backup').map((i) => [i.kind, i.action, i.keys[0]])).toEqual(
      expect.arrayContaining([
        ['incomplete', 'remove', `${db}/${stale}`],
        ['incomplete', 'keep', `${db}/${young}`],
        ['temporary', 'remove', `${db}/${staleTemp}`],
      ]),
    );
    const left = await readdir(dir);
    expect(left).toContain(young);
    expect(left).not.toContain(stale);
    expect(left).not.toContain(staleTemp);
    expect(await listIds(env)).toHaveLength(1);
  });

  it('a policy that keeps nothing is refused before anything runs (exit 2); bad --now is a usage error', async () => {
    const storage = await tempDir();
    const nothing = targetEnv(db, storage, { ...POLICY, DATASAVER_MIN_KEEP: '0' });
    for (const args of [['backup'], ['prune']]) {
      const res = await runCli(args, nothing);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/would keep nothing/);
    }
    expect(await readdir(storage)).toEqual([]);
    const bad = await runCli(['prune', '--dry-run', '--now', 'yesterday'], targetEnv(db, storage));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--now 'yesterday' is not an ISO 8601 time/);
    // A pretend clock would age in-flight uploads past their grace period: it is only ever a question.
    const real = await runCli(['prune', '--now', '2099-01-01T00:00:00Z'], targetEnv(db, storage));
    expect(real.code).toBe(1);
    expect(real.stderr).toMatch(/--now only works with --dry-run/);
  });
});
