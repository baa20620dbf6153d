/**
 * Crash-atomic commit: SIGKILL datasaver, or the real pg_dump, in the middle of
 * a backup; no run ever appears as a backup, and the next backup works.
 */
import { execFileSync } from 'node:child_process';
import { readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { collect, runCli, startCli } from '../support/cli.ts';
import { createBulkDatabase } from '../support/fixtures.ts';
import { comparableDump, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;

beforeAll(async () => {
  db = uniqueName('bulk');
  await createBulkDatabase(db, 60);
});

/** Waits until the backup's hidden temporary file holds data, i.e. the dump is streaming into storage. */
async function waitForStreaming(storage: string): Promise<void> {
  const dir = join(storage, db);
  for (let i = 0; i < 2000; i++) {
    const files = await readdir(dir).catch(() => [] as string[]);
    for (const f of files.filter((n) => n.endsWith('.tmp'))) {
      if (((await stat(join(dir, f)).catch(() => undefined))?.size ?? 0) > 64 * 1024) return;
    }
    await sleep(5);
  }
  throw new Error('the backup never started streaming');
}

function childPid(parent: number, name: string): number {
  const out = execFileSync('pgrep', ['-P', String(parent), '-x', name])
    .toString()
    .trim();
  return Number(out.split('\n')[0]);
}

async function expectNothingCommitted(env: Record<string, string>) {
  const list = await runCli(['list', '--all', '--json'], env);
  expect(list.code, list.output).toBe(0);
  const parsed = JSON.parse(list.stdout);
  expect(parsed.backups).toEqual([]);
  expect(parsed.incomplete).toEqual([]);
}

describe('killed backups never become backups', () => {
  it('SIGKILL of datasaver mid-stream', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage);
    const child = startCli(['backup'], env);
    const done = collect(child);
    await waitForStreaming(storage);
    child.kill('SIGKILL');
    const res = await done;
    expect(res.signal).toBe('SIGKILL');
    await expectNothingCommitted(env);
    // Only the hidden temporary file remains (collected by prune), and the killed run's lease (taken over
    // by the next run on this host); no backup file under a final name.
    const files = (await readdir(join(storage, db))).filter((f) => f !== `${db}.lease.json`);
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((f) => f.startsWith('.') && f.endsWith('.tmp'))).toBe(true);

    // The next run is unaffected and restores correctly.
    const again = await runCli(['backup', '--verify'], env);
    expect(again.code, again.output).toBe(0);
    const copy = uniqueName('copy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    expect(await comparableDump(copy)).toBe(await comparableDump(db));

    // The killed run's temporary file may have been an upload in flight until the grace period is over;
    // then prune removes it and only the committed backup remains.
    const temporary = files.filter((f) => f.endsWith('.tmp'));
    expect((await readdir(join(storage, db))).filter((f) => f.endsWith('.tmp'))).toEqual(temporary);
    const old = new Date(Date.now() - 48 * 3_600_000);
    for (const f of temporary) await utimes(join(storage, db, f), old, old);
    const prune = await runCli(['prune', '--json'], env);
    expect(prune.code, prune.output).toBe(0);
    expect(JSON.parse(prune.stdout).results).toEqual([
      expect.objectContaining({ removed: temporary.length }),
    ]);
    const left = await readdir(join(storage, db));
    expect(left.filter((f) => f.startsWith('.'))).toEqual([]);
    expect(left).toHaveLength(3); // the new backup's data, manifest and verify record
  });

  it('SIGKILL of pg_dump mid-stream: exit 4, nothing committed, no temporary file left', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage);
    const child = startCli(['backup'], env);
    const done = collect(child);
    await waitForStreaming(storage);
    process.kill(childPid(child.pid!, 'pg_dump'), 'SIGKILL');
    const res = await done;
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_dump was killed by SIGKILL/);
    await expectNothingCommitted(env);
    expect(await readdir(join(storage, db))).toEqual([]);
  });

  it('SIGTERM of datasaver aborts cleanly: pg_dump is stopped and nothing is committed', async () => {
    const storage = await tempDir();
    const env = targetEnv(db, storage);
    const child = startCli(['backup'], env);
    const done = collect(child);
    await waitForStreaming(storage);
    const dumpPid = childPid(child.pid!, 'pg_dump');
    child.kill('SIGTERM');
    const res = await done;
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/interrupted/);
    await expectNothingCommitted(env);
    expect(await readdir(join(storage, db))).toEqual([]);
    expect(() => process.kill(dumpPid, 0)).toThrow(); // pg_dump is gone
  });
});
