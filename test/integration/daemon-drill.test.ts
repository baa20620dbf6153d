import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import {
  type HealthBody,
  type RunningDaemon,
  startDaemon,
  startReceiver,
  terminate,
  waitFor,
} from '../support/daemon.ts';
import { drillParent, replaceStoredDump, storedDump } from '../support/drill.ts';
import { createDatabase, dbUrl, query, tempDir, uniqueName } from '../support/pg.ts';
import { processesUsing } from '../support/processes.ts';

/** Backups once a year: after `--run-now`'s backup none comes, so the drilled (and tampered) backup stays the newest. */
const NO_MORE_BACKUPS = '0 0 1 1 *';
/** A drill every two seconds (six fields, seconds first). */
const DRILL_OFTEN = '*/2 * * * * *';
/** A drill has to start an initdb'd server on this machine, shared with other tests: generous. */
const DRILL_TIMEOUT_MS = 90_000;

type TargetHealth = HealthBody['targets'][number];

/** Waits until the only target's last drill satisfies `done`, and returns /health at that moment. */
async function waitForDrill(
  daemon: RunningDaemon,
  what: string,
  done: (drill: NonNullable<TargetHealth['lastDrill']>) => boolean,
): Promise<{ status: number; target: TargetHealth }> {
  return waitFor(
    what,
    async () => {
      const { status, body } = await daemon.health();
      const target = body.targets[0]!;
      return target.lastDrill && done(target.lastDrill) ? { status, target } : undefined;
    },
    DRILL_TIMEOUT_MS,
  );
}

/** A SQLite database with two tables: `notes` (200 rows) and `tags` (3 rows). */
async function seedSqlite(): Promise<string> {
  const path = join(await tempDir(), 'notes.db');
  const db = new DatabaseSync(path);
  db.exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
    INSERT INTO notes SELECT i, 'note ' || i FROM n;
    CREATE TABLE tags (name TEXT PRIMARY KEY);
    INSERT INTO tags VALUES ('a'), ('b'), ('c');`);
  db.close();
  return path;
}

/**
 * Removes rows from a stored SQLite backup the way an attacker or a broken pipeline could, and makes it
 * consistent again (test/support/drill.ts replaceStoredDump: files replaced by renames, so a drill
 * running meanwhile reads old or new), so `verify` passes. Only its facts (which still say 200 notes) tell
 * the difference.
 */
async function removeRows(storage: string, id: string, rowsLeft: number): Promise<void> {
  const file = join(await tempDir(), 'edit.db');
  await writeFile(file, await storedDump(storage, 'notes', id));
  const db = new DatabaseSync(file);
  db.exec(`DELETE FROM notes WHERE id > ${rowsLeft}`);
  db.close();
  await replaceStoredDump(storage, 'notes', id, await readFile(file));
}

describe('datasaver daemon: scheduled restore drills', () => {
  it('a clean backup drills clean; a tampered one fails its drill, turns /health 503 and notifies', async () => {
    const receiver = await startReceiver();
    const storage = await tempDir();
    const env = { DATASAVER_DATABASE_URL: `sqlite://${await seedSqlite()}`, DATASAVER_STORAGE_PATH: storage };
    const daemon = await startDaemon(
      {
        ...env,
        DATASAVER_SCHEDULE: NO_MORE_BACKUPS,
        DATASAVER_DRILL_SCHEDULE: DRILL_OFTEN,
        DATASAVER_WEBHOOK_URL: receiver.url,
      },
      ['--run-now'],
    );
    try {
      const clean = await waitForDrill(daemon, 'a drill that passed', (d) => d.result === 'passed');
      expect(clean.status).toBe(200);
      const id = clean.target.lastSuccess!.backupId;
      expect(clean.target).toMatchObject({ target: 'notes', healthy: true, drillSchedule: DRILL_OFTEN });
      expect(Date.parse(clean.target.nextDrill!)).toBeGreaterThan(Date.now() - 5000);
      expect(clean.target.lastDrill).toMatchObject({
        backupId: id,
        result: 'passed',
        reason: null,
        compared: 2,
        mismatches: 0,
        message: null,
        restoreMs: expect.any(Number),
      });

      const metrics = (await daemon.get('/metrics')).text;
      expect(metrics).toMatch(/^datasaver_drill_last_success_timestamp_seconds\{target="notes"\} 1\d{9}/m);
      expect(metrics).toMatch(/^datasaver_drill_last_restore_seconds\{target="notes"\} \d/m);
      expect(metrics).toMatch(/^datasaver_drill_last_items_compared\{target="notes"\} 2$/m);
      expect(metrics).toMatch(/^datasaver_drill_last_mismatches\{target="notes"\} 0$/m);
      expect(await daemon.metric('datasaver_drills_total{target="notes",result="success"}')).toBeGreaterThan(
        0,
      );
      expect(await daemon.metric('datasaver_drills_total{target="notes",result="failure"}')).toBe(0);
      expect(await daemon.metric('datasaver_drills_total{target="notes",result="error"}')).toBe(0);

      // 50 of the 200 notes go; sizes and checksum are recomputed, so the backup verifies.
      await removeRows(storage, id, 150);
      const verify = await runCli(['verify', id], env);
      expect(verify.code, verify.output).toBe(0);

      // A drill that read the manifest before the data object was replaced may fail on its checksum
      // instead: wait for the drill that restored the tampered copy.
      const failed = await waitForDrill(
        daemon,
        'a drill that found the missing rows',
        (d) => d.result === 'failed' && d.reason === 'drill',
      );
      expect(failed.status).toBe(503);
      expect(failed.target.healthy).toBe(false);
      expect(failed.target.reasons).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^backup ${id} failed its restore drill at .*: the restored copy differs from the backup's facts in 1 of 2 items`,
          ),
        ),
      );
      expect(failed.target.lastDrill).toMatchObject({ backupId: id, compared: 2, mismatches: 1 });
      // Without DATASAVER_HEALTH_DETAILS, /health names no table; the log does.
      expect(JSON.stringify(failed.target)).not.toMatch(/notes: expected/);

      const notice = await waitFor('a drill-failure notification', async () =>
        receiver.received.find(
          (n) => n.event === 'drill-failure' && (n.drill as { reason?: string } | null)?.reason === 'drill',
        ),
      );
      expect(notice).toMatchObject({
        target: 'notes',
        drill: { backupId: id, result: 'failed', reason: 'drill', compared: 2, mismatches: 1 },
        error: { exitCode: 5 },
      });
      expect(await daemon.metric('datasaver_drills_total{target="notes",result="failure"}')).toBeGreaterThan(
        0,
      );
      expect(await daemon.metric('datasaver_drill_last_mismatches{target="notes"}')).toBe(1);
      expect(await daemon.metric('datasaver_target_healthy{target="notes"}')).toBe(0);
      // Successes only notify with DATASAVER_NOTIFY_ON_SUCCESS.
      expect(receiver.received.filter((n) => n.event === 'drill-success')).toEqual([]);

      // The failure is recorded beside the manifest: the backup no longer counts as good.
      const record = JSON.parse(await readFile(join(storage, 'notes', `${id}.drill.json`), 'utf8'));
      expect(record).toMatchObject({ id, ok: false, reason: 'drill' });
    } finally {
      const { result } = await terminate(daemon);
      await receiver.close();
      expect(result.code, result.output).toBe(0);
      const lines = result.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.some((l) => String(l.msg).startsWith('drill passed'))).toBe(true);
      // The log names the table and both counts.
      const failure = lines.find(
        (l) => l.msg === 'the backup failed its restore drill' && l.reason === 'drill',
      );
      expect(String(failure?.error)).toMatch(/notes: expected 200, found 150/);
    }
  });

  it('drills a PostgreSQL target on a throwaway server; SIGTERM leaves no server or directory', async () => {
    const database = uniqueName('drilled');
    await createDatabase(database);
    await query(
      database,
      `CREATE TABLE orders (id int PRIMARY KEY, note text);
      INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 300) g;
      CREATE SEQUENCE invoice_no; SELECT setval('invoice_no', 41);`,
    );
    // The daemon's temp dir, where its throwaway servers live (see drillParent).
    const temp = await drillParent();
    const daemon = await startDaemon(
      {
        TMPDIR: temp,
        DATASAVER_DATABASE_URL: dbUrl(database),
        DATASAVER_STORAGE_PATH: await tempDir(),
        DATASAVER_SCHEDULE: NO_MORE_BACKUPS,
        DATASAVER_DRILL_SCHEDULE: '*/3 * * * * *',
      },
      ['--run-now'],
    );
    try {
      const { status, target } = await waitForDrill(daemon, 'a drill that passed', (d) => d.result !== null);
      expect(target.lastDrill, JSON.stringify(target)).toMatchObject({
        backupId: target.lastSuccess?.backupId,
        result: 'passed',
        mismatches: 0,
      });
      expect(status).toBe(200);
      // The table, the sequence's value and the object kinds were compared.
      expect(target.lastDrill!.compared).toBeGreaterThan(3);
      expect(await daemon.metric(`datasaver_drill_last_items_compared{target="${database}"}`)).toBe(
        target.lastDrill!.compared,
      );
      expect(
        await daemon.metric(`datasaver_drills_total{target="${database}",result="success"}`),
      ).toBeGreaterThan(0);
    } finally {
      const { result } = await terminate(daemon);
      expect(result.code, result.output).toBe(0);
      expect(result.stdout).toMatch(/drill passed/);
      // Drills keep coming every three seconds, so SIGTERM may well have stopped one midway: whatever
      // it was doing, its server is stopped and its directory gone.
      const running = await processesUsing(temp);
      const left = (await readdir(temp)).filter((name) => name.startsWith('datasaver-'));
      await rm(temp, { recursive: true, force: true });
      expect(running).toEqual([]);
      expect(left).toEqual([]);
    }
  });
});
