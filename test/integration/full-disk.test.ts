/**
 * A full local disk, for real: the storage directory is a small tmpfs filled with backups until the next
 * one does not fit. Where retention would remove backups anyway, `datasaver backup` prunes those first
 * and tries again; where it keeps them all, the backup fails with exit 6, says why, and deletes nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createDatabase, query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;
const mounts: string[] = [];

beforeAll(async () => {
  db = uniqueName('fulldisk');
  await createDatabase(db);
  // About 700 KB of dump that compression is turned off for: four fit on a 3 MB disk, five do not.
  await query(
    db,
    `CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 10) AS v FROM generate_series(1, 2000) g`,
  );
});

afterAll(async () => {
  for (const m of mounts) {
    execFileSync('umount', [m]);
    await rm(m, { recursive: true, force: true });
  }
});

/** A fresh 3 MB tmpfs (mounting needs root, which the suite runs as). */
async function smallDisk(): Promise<string> {
  const dir = join(await tempDir(), 'disk');
  await mkdir(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

const KEEP_EVERYTHING = {
  DATASAVER_COMPRESSION: 'none',
  DATASAVER_KEEP_LAST: '100',
  DATASAVER_KEEP_DAILY: '0',
  DATASAVER_KEEP_WEEKLY: '0',
  DATASAVER_KEEP_MONTHLY: '0',
  DATASAVER_MIN_KEEP: '1',
};

/** Backs up until the disk is full; returns the ids that fit and the failing run's result. */
async function fillDisk(disk: string) {
  const env = targetEnv(db, disk, KEEP_EVERYTHING);
  for (let i = 0; i < 10; i++) {
    const res = await runCli(['backup'], env);
    if (res.code !== 0) return { ids: await listIds(disk), failed: res };
  }
  throw new Error(`${disk} never filled up`);
}

async function listIds(disk: string): Promise<string[]> {
  const res = await runCli(['list', '--json'], targetEnv(db, disk));
  expect(res.code, res.output).toBe(0);
  return (JSON.parse(res.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id);
}

describe('a full disk', () => {
  it('retention removes some backups anyway: they are pruned first, and the retried backup is committed', async () => {
    const disk = await smallDisk();
    const { ids, failed } = await fillDisk(disk);
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(failed.code, failed.output).toBe(6);
    expect(failed.stderr).toMatch(/no space left on device.*retention keeps every backup there/);

    // Keep the two newest: the older ones go before the retry, the newest two never.
    const res = await runCli(
      ['backup', '--json'],
      targetEnv(db, disk, { ...KEEP_EVERYTHING, DATASAVER_KEEP_LAST: '2', DATASAVER_MIN_KEEP: '2' }),
    );
    expect(res.code, res.output).toBe(0);
    const out = JSON.parse(res.stdout) as {
      backups: { id: string }[];
      pruned: { items: { id: string; action: string }[]; removed: number }[];
    };
    expect(res.stderr).toMatch(
      new RegExp(
        `^note: local:${disk} was full: pruned ${ids.length - 2} item\\(s\\) \\(.+\\) that retention removes, then backed up again$`,
        'm',
      ),
    );
    const newId = out.backups[0]!.id;
    const first = out.pruned[0]!;
    expect(
      first.items
        .filter((i) => i.action === 'remove')
        .map((i) => i.id)
        .sort(),
    ).toEqual(ids.slice(0, -2).sort());
    expect(
      first.items
        .filter((i) => i.action === 'keep')
        .map((i) => i.id)
        .sort(),
    ).toEqual(ids.slice(-2).sort());
    // Then the ordinary prune, which counts the new backup: it and the newest old one stay.
    expect(await listIds(disk)).toEqual([ids.at(-1), newId]);
    // Nothing half-written was left by the failed attempts.
    expect((await readdir(join(disk, db))).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('retention keeps everything: exit 6 saying so, and every backup is still there', async () => {
    const disk = await smallDisk();
    const { ids } = await fillDisk(disk);
    const res = await runCli(
      ['backup'],
      targetEnv(db, disk, { ...KEEP_EVERYTHING, DATASAVER_MIN_KEEP: '3' }),
    );
    expect(res.code, res.output).toBe(6);
    expect(res.stderr).toMatch(
      /^Error: .*no space left on device.*; retention keeps every backup there, so nothing was removed to make room$/m,
    );
    expect(res.stderr).toMatch(/^Try: free space on local:.*, keep fewer backups/m);
    expect(await listIds(disk)).toEqual(ids);
  });
});
