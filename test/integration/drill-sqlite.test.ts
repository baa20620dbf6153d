/**
 * Restore drills of SQLite backups, through the real command line: a good backup drills clean into a
 * temporary file and leaves nothing; a stored copy with rows deleted (and its manifest recomputed)
 * passes `verify` but fails its drill naming the table; the temporary file of a drill killed -9 goes at
 * the next command (with --temp-dir, at the next drill there); SIGTERM removes it before exiting; and a
 * drill server is a configuration error for an engine without named databases (SQLite, Redis).
 */
import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startPausedAt } from '../support/cli.ts';
import {
  drillDirsOf,
  drillParent,
  removeDrillParent,
  replaceStoredDump,
  runCliWithPid,
  stderrSays,
  storedDump,
  storedFiles,
  tempDirsOf,
} from '../support/drill.ts';
import { tempDir } from '../support/pg.ts';

/** Parent of every drill dir (TMPDIR of every run, so that each command's start-up sweep looks there). */
let parent: string;
let database: string;
let storage: string;
/** Two backups of `database`, older first. */
let ids: [string, string];
const TARGET = 'shop';

beforeAll(async () => {
  parent = await drillParent();
  database = join(await tempDir(), `${TARGET}.db`);
  const db = new DatabaseSync(database);
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers, qty INTEGER);
    CREATE TABLE empty_log (at TEXT, what TEXT);
    CREATE INDEX orders_customer ON orders (customer_id);
    CREATE VIEW order_totals AS SELECT customer_id, sum(qty) AS qty FROM orders GROUP BY customer_id;
    INSERT INTO customers (name) VALUES ('a'), ('b'), ('c'), ('d'), ('e');
    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 30)
      INSERT INTO orders (customer_id, qty) SELECT 1 + n % 5, n FROM g;
  `);
  db.close();
  storage = await tempDir();
  const taken: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await runCli(['backup', '--json'], env(storage));
    expect(res.code, res.output).toBe(0);
    taken.push(JSON.parse(res.stdout).backups[0].id);
  }
  ids = taken as [string, string];
});

afterAll(async () => {
  if (parent) await removeDrillParent(parent);
});

function env(at: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATASAVER_DATABASE_URL: `sqlite://${database}`,
    DATASAVER_STORAGE_PATH: at,
    TMPDIR: parent,
    ...extra,
  };
}

/** A copy of the storage with its two backups. */
async function copyOfStorage(): Promise<string> {
  const copy = await tempDir();
  await cp(storage, copy, { recursive: true });
  return copy;
}

async function drillRecord(at: string, id: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(at, TARGET, `${id}.drill.json`), 'utf8'));
}

function drillJson(stdout: string) {
  const { drills } = JSON.parse(stdout);
  expect(drills).toHaveLength(1);
  return drills[0];
}

describe('a SQLite backup', () => {
  it('drills clean into a temporary file, records it, and leaves nothing', async () => {
    const at = await copyOfStorage();
    const res = await runCliWithPid(['drill', '--json'], env(at));
    expect(res.code, res.output).toBe(0);
    const result = drillJson(res.stdout);
    expect(result).toMatchObject({
      id: ids[1],
      ok: true,
      place: 'temporary SQLite file',
      compared: 3,
      differences: [],
    });
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(await drillRecord(at, ids[1])).toMatchObject({ ok: true, compared: 3 });
    expect(await drillDirsOf(parent, res.pid)).toEqual([]);
  });

  it('with rows deleted from the stored file and its manifest recomputed, passes verify but fails its drill naming the table', async () => {
    const at = await copyOfStorage();
    const [older, newer] = ids;
    await replaceStoredDump(at, TARGET, newer, await withoutRows(await storedDump(at, TARGET, newer)));
    const verify = await runCli(['verify', newer], env(at));
    expect(verify.code, verify.output).toBe(0);

    const difference = { item: 'table orders', expected: '30', found: '20' };
    const res = await runCliWithPid(['drill', newer, '--json'], env(at));
    expect(res.code, res.output).toBe(5);
    expect(drillJson(res.stdout)).toMatchObject({ ok: false, reason: 'drill', differences: [difference] });
    expect(await drillDirsOf(parent, res.pid)).toEqual([]);
    const human = await runCli(['drill', newer], env(at));
    expect(human.code, human.output).toBe(5);
    expect(human.stdout).toContain(`FAILED  ${newer} (drill)`);
    expect(human.stdout).toContain('        table orders: expected 30, found 20\n');
    expect(await drillRecord(at, newer)).toMatchObject({
      ok: false,
      reason: 'drill',
      differences: [difference],
    });

    const prune = await runCli(['prune', '--dry-run', '--json'], env(at));
    expect(prune.code, prune.output).toBe(0);
    const items: { id?: string; good?: boolean }[] = JSON.parse(prune.stdout).results[0].items;
    expect(items.find((i) => i.id === newer)?.good).toBe(false);
    expect(items.find((i) => i.id === older)?.good).toBe(true);
  });

  it('with its stored object damaged, fails its drill with the reason verify gives, and leaves nothing', async () => {
    const at = await copyOfStorage();
    const { objectPath } = await storedFiles(at, TARGET, ids[1]);
    const stored = await readFile(objectPath);
    stored[stored.length >> 1]! ^= 0x01;
    await writeFile(objectPath, stored);
    const res = await runCliWithPid(['drill', ids[1], '--json'], env(at));
    expect(res.code, res.output).toBe(5);
    expect(drillJson(res.stdout)).toMatchObject({
      ok: false,
      reason: 'checksum',
      restoreMs: null,
    });
    expect(await drillRecord(at, ids[1])).toMatchObject({ ok: false, reason: 'checksum' });
    expect(await tempDirsOf(parent, res.pid)).toEqual([]);
  });
});

/** The SQLite file `raw` without 10 of its 30 orders (written to a file, changed there, read back). */
async function withoutRows(raw: Buffer): Promise<Buffer> {
  const file = join(await tempDir(), 'tampered.db');
  await writeFile(file, raw);
  const db = new DatabaseSync(file);
  db.exec('DELETE FROM orders WHERE id % 3 = 0');
  db.close();
  return readFile(file);
}

describe('a SQLite drill killed -9 while it holds its restored copy', () => {
  it('leaves a dir that the next command removes; the next drill passes', async () => {
    const at = await copyOfStorage();
    const { child, done } = await startPausedAt('drill.restored', ['drill'], env(at));
    const pid = child.pid!;
    const [dir] = await drillDirsOf(parent, pid);
    expect((await stat(join(dir!, 'drill.sqlite'))).size).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await done;

    const list = await runCli(['list'], env(at));
    expect(list.code, list.output).toBe(0);
    expect(list.stderr).toContain(
      `note: removed ${dir}, a temporary directory (drill) of datasaver process ${pid}`,
    );
    expect(await drillDirsOf(parent, pid)).toEqual([]);
    const again = await runCliWithPid(['drill', '--json'], env(at));
    expect(again.code, again.output).toBe(0);
    expect(drillJson(again.stdout).ok).toBe(true);
  });

  it('with --temp-dir: the next drill with that --temp-dir removes the dir', async () => {
    const at = await copyOfStorage();
    const own = await tempDir();
    const args = ['drill', '--temp-dir', own];
    const { child, done } = await startPausedAt('drill.restored', args, env(at));
    const pid = child.pid!;
    const [dir] = await drillDirsOf(own, pid);
    expect(dir).toBeDefined();
    child.kill('SIGKILL');
    await done;

    const next = await runCliWithPid([...args, '--json'], env(at));
    expect(next.code, next.output).toBe(0);
    expect(next.stderr).toContain(`note: removed ${dir}`);
    expect(await drillDirsOf(own, pid)).toEqual([]);
    expect(await drillDirsOf(own, next.pid)).toEqual([]);
  });
});

describe('SIGTERM during a SQLite drill', () => {
  it('removes the temporary file and its dir before exiting', async () => {
    const at = await copyOfStorage();
    const { child, done } = await startPausedAt('drill.restored', ['drill'], env(at));
    const [dir] = await drillDirsOf(parent, child.pid!);
    expect(dir).toBeDefined();
    const stopping = stderrSays(child, 'SIGTERM: stopping');
    child.kill('SIGTERM');
    await stopping;
    child.kill('SIGCONT');
    const res = await done;
    expect(res.code, res.output).not.toBe(0);
    expect(res.stderr).toContain('interrupted');
    await expect(stat(dir!)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('DATASAVER_DRILL_URL', () => {
  it.each([
    ['sqlite:///tmp/other.db', 'SQLite', 'a SQLite drill restores into a throwaway server'],
    ['postgres://u:hidden-pw@127.0.0.1:5432', 'SQLite', 'this target is SQLite'],
    ['redis://:hidden-pw@127.0.0.1:2', 'Redis', 'a Redis drill restores into a throwaway server'],
  ])('%s is a configuration error for a %s target', async (url, engine, says) => {
    const at = await tempDir();
    const targetUrl = engine === 'Redis' ? 'redis://127.0.0.1:1' : `sqlite://${database}`;
    const res = await runCli(['drill'], {
      ...env(at),
      DATASAVER_DATABASE_URL: targetUrl,
      DATASAVER_DRILL_URL: url,
    });
    expect(res.code, res.output).toBe(2);
    expect(res.stderr).toContain('DATASAVER_DRILL_URL');
    expect(res.stderr).toContain(says);
    expect(res.output).not.toContain('hidden-pw');
  });
});
