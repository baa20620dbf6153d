/**
 * Restore drills of PostgreSQL backups, through the real command line: a good backup (custom and plain)
 * drills clean on a throwaway server that has none of its roles and leaves nothing behind; a backup with
 * rows removed (or a sequence value changed) and its manifest recomputed passes `verify` but fails its
 * drill naming the table (or sequence), and is then no longer good; a drill killed -9 leaves a server,
 * dir or scratch database that the next command removes; SIGTERM removes the copy before exiting; and
 * a drill server (DATASAVER_DRILL_URL, here the suite's server that also holds the target) has nothing
 * but its own scratch database touched.
 */
import { execFile as execFileCb } from 'node:child_process';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, startPausedAt } from '../support/cli.ts';
import {
  drillDirsOf,
  drillParent,
  removeDrillParent,
  replaceStoredDump,
  runCliWithPid,
  scratchDatabaseOwner,
  stderrSays,
  storedDump,
  storedFiles,
  tempDirsOf,
} from '../support/drill.ts';
import {
  comparableDump,
  createDatabase,
  query,
  server,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';
import { processesUsing, processesWithin, processRunning } from '../support/processes.ts';

const execFile = promisify(execFileCb);

const FORMATS = ['custom', 'plain'] as const;
type Format = (typeof FORMATS)[number];

/** Parent of every drill dir (TMPDIR of every run, so that each command's start-up sweep looks there). */
let parent: string;
/** The target's database, and so the target's name. */
let db: string;
/** Per format, a storage dir holding two backups of `db`, older first; tests drill copies of it. */
const base = new Map<Format, { storage: string; ids: [string, string] }>();

/**
 * Tables (one empty), a view, a function, sequences (one never called), an identity column, a schema
 * and objects owned by a role that is not a superuser, with grants (default ones too) to another role
 * and the database owned by the first: a throwaway server has none of these roles.
 */
function schemaSql(database: string, owner: string, reader: string): string {
  return `
CREATE SCHEMA ledger AUTHORIZATION ${owner};
CREATE TABLE public.items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);
CREATE TABLE public.orders (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES public.items, qty int NOT NULL);
CREATE TABLE public.empty_log (at timestamptz, what text);
CREATE TABLE ledger.entries (id bigint PRIMARY KEY, amount numeric NOT NULL);
CREATE SEQUENCE public.counter;
CREATE SEQUENCE public.never_called;
CREATE VIEW public.order_totals AS SELECT item_id, sum(qty) AS qty FROM public.orders GROUP BY item_id;
CREATE FUNCTION public.total_qty() RETURNS bigint LANGUAGE sql STABLE
  AS 'SELECT coalesce(sum(qty), 0) FROM public.orders';
INSERT INTO public.items (name) SELECT 'item ' || g FROM generate_series(1, 20) g;
INSERT INTO public.orders (item_id, qty) SELECT 1 + g % 20, g FROM generate_series(1, 50) g;
INSERT INTO ledger.entries SELECT g, g * 1.5 FROM generate_series(1, 7) g;
SELECT nextval('public.counter') FROM generate_series(1, 3);
ALTER TABLE public.items OWNER TO ${owner};
ALTER TABLE public.orders OWNER TO ${owner};
ALTER TABLE public.empty_log OWNER TO ${owner};
ALTER TABLE ledger.entries OWNER TO ${owner};
ALTER SEQUENCE public.counter OWNER TO ${owner};
ALTER SEQUENCE public.never_called OWNER TO ${owner};
ALTER VIEW public.order_totals OWNER TO ${owner};
ALTER FUNCTION public.total_qty() OWNER TO ${owner};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${reader};
GRANT USAGE ON SCHEMA ledger TO ${reader};
GRANT SELECT, UPDATE ON ledger.entries TO ${reader};
GRANT USAGE ON SEQUENCE public.counter TO ${reader};
REVOKE EXECUTE ON FUNCTION public.total_qty() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.total_qty() TO ${reader};
ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA ledger GRANT SELECT ON TABLES TO ${reader};
ALTER DATABASE "${database}" OWNER TO ${owner};
GRANT CONNECT ON DATABASE "${database}" TO ${reader};
`;
}

/** The sequences of that database: two of their own, an identity column's and a serial column's. */
const SEQUENCES = 4;

beforeAll(async () => {
  parent = await drillParent();
  db = uniqueName('drill');
  const owner = uniqueName('drill_owner');
  const reader = uniqueName('drill_reader');
  await query(
    'postgres',
    `CREATE ROLE ${owner} NOLOGIN; CREATE ROLE ${reader} NOLOGIN;
     CREATE ROLE ${DRILLER} LOGIN CREATEDB PASSWORD '${DRILLER_PASSWORD}'`,
  );
  await createDatabase(db);
  await query(db, schemaSql(db, owner, reader));
  await Promise.all(
    FORMATS.map(async (format) => {
      const storage = await tempDir();
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await runCli(['backup', '--json'], env(format, storage));
        expect(res.code, res.output).toBe(0);
        ids.push(JSON.parse(res.stdout).backups[0].id);
      }
      base.set(format, { storage, ids: ids as [string, string] });
    }),
  );
});

afterAll(async () => {
  if (parent) await removeDrillParent(parent);
});

function env(format: Format, storage: string, extra: Record<string, string> = {}): Record<string, string> {
  return targetEnv(db, storage, { DATASAVER_FORMAT: format, TMPDIR: parent, ...extra });
}

/** A drill server's user that may create databases and is no superuser, nor a member of the backup's roles. */
const DRILLER = uniqueName('driller');
const DRILLER_PASSWORD = 'drill-pw-4q7';

/** The suite's server as a drill server (a URL without a database), as the superuser or DRILLER. */
function drillServerUrl(user: 'postgres' | 'driller' = 'postgres'): string {
  const s = server();
  const login =
    user === 'postgres' ? `postgres:${encodeURIComponent(s.password)}` : `${DRILLER}:${DRILLER_PASSWORD}`;
  return `postgres://${login}@127.0.0.1:${s.port}`;
}

/** A copy of the format's storage (its two backups), for a test to drill or tamper with. */
async function copyOf(format: Format): Promise<{ storage: string; older: string; newer: string }> {
  const { storage, ids } = base.get(format)!;
  const copy = await tempDir();
  await cp(storage, copy, { recursive: true });
  return { storage: copy, older: ids[0], newer: ids[1] };
}

async function drillRecord(storage: string, id: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(storage, db, `${id}.drill.json`), 'utf8'));
}

/** The drill scratch databases on the suite's server that process `pid` created. */
async function scratchDatabasesOf(pid: number): Promise<string[]> {
  const rows = await query<{ datname: string }>(
    'postgres',
    "SELECT datname FROM pg_database WHERE datname LIKE 'datasaver\\_drill\\_%'",
  );
  return rows.map((r) => r.datname).filter((name) => scratchDatabaseOwner(name) === pid);
}

/**
 * Nothing of the drill run by `pid` is left: no temp dir of its own (its server's, a spooled dump's), no
 * process in the drills' parent, no scratch database.
 */
async function expectNothingLeft(pid: number): Promise<void> {
  expect(await tempDirsOf(parent, pid)).toEqual([]);
  expect(await processesWithin(parent)).toEqual([]);
  expect(await scratchDatabasesOf(pid)).toEqual([]);
}

/** The JSON result of a one-backup drill. */
function drillJson(stdout: string) {
  const { drills } = JSON.parse(stdout);
  expect(drills).toHaveLength(1);
  return drills[0];
}

describe.each(FORMATS)('a %s backup', (format) => {
  it('drills clean on a throwaway server without its roles, records it, and leaves nothing', async () => {
    const { storage, newer } = await copyOf(format);
    // What is compared: the empty table and the sequence never called among it.
    const { facts } = (await storedFiles(storage, db, newer)).manifest;
    expect(facts.tables).toContainEqual({ name: 'public.empty_log', rows: 0 });
    expect(facts.sequences).toContainEqual({ name: 'public.never_called', value: null });
    // Custom: parallel workers, from a spooled archive (a temp dir of its own, gone afterwards too).
    const jobs = format === 'custom' ? ['--jobs', '2'] : [];
    const res = await runCliWithPid(['drill', ...jobs, '--json'], env(format, storage));
    expect(res.code, res.output).toBe(0);
    const result = drillJson(res.stdout);
    expect(result).toMatchObject({ id: newer, ok: true, reason: null, differences: [], note: null });
    expect(result.place).toMatch(/^throwaway PostgreSQL [\d.]+ server$/);
    // Every table, object kind and sequence is an item compared.
    expect(result.compared).toBe(
      facts.tables.length + (facts.objects?.length ?? 0) + (facts.sequences?.length ?? 0),
    );
    expect(facts.sequences).toHaveLength(SEQUENCES);
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(await drillRecord(storage, newer)).toMatchObject({
      id: newer,
      ok: true,
      differenceCount: 0,
      compared: result.compared,
    });
    await expectNothingLeft(res.pid);
  });

  it('with rows removed and its manifest recomputed, passes verify but fails its drill naming the table; then it is not good', async () => {
    const { storage, older, newer } = await copyOf(format);
    const raw = await storedDump(storage, db, newer);
    await replaceStoredDump(
      storage,
      db,
      newer,
      format === 'plain' ? withoutCopyLine(raw, 'public.orders') : await withoutRowsArchive(raw),
    );
    const verify = await runCli(['verify', newer], env(format, storage));
    expect(verify.code, verify.output).toBe(0);

    const expected = { item: 'table public.orders', expected: '50', found: format === 'plain' ? '49' : '45' };
    // One run shows what people read, the other the JSON; both record the same.
    const json = format === 'custom';
    const res = await runCliWithPid(['drill', newer, ...(json ? ['--json'] : [])], env(format, storage));
    expect(res.code, res.output).toBe(5);
    const line = `${expected.item}: expected ${expected.expected}, found ${expected.found}`;
    if (json) {
      const result = drillJson(res.stdout);
      expect(result).toMatchObject({ id: newer, ok: false, reason: 'drill', differences: [expected] });
      expect(result.message).toContain(line);
      expect(result.restoreMs).toBeGreaterThan(0);
    } else {
      expect(res.stdout).toContain(`FAILED  ${newer} (drill) after restoring in`);
      expect(res.stdout).toContain(`\n        ${line}\n`);
    }
    expect(await drillRecord(storage, newer)).toMatchObject({
      ok: false,
      reason: 'drill',
      differences: [expected],
      differenceCount: 1,
    });
    await expectNothingLeft(res.pid);

    // `latest` passes over it to the older backup, which restores all 50 rows.
    const copy = uniqueName('after_drill');
    const restore = await runCli(['restore', 'latest', '--target-db', copy], env(format, storage));
    expect(restore.code, restore.output).toBe(0);
    expect(restore.stderr).toMatch(new RegExp(`passed over ${newer} .*drill`));
    expect(restore.stderr).toContain(`latest is ${older}`);
    expect(await query(copy, 'SELECT count(*)::int AS n FROM public.orders')).toEqual([{ n: 50 }]);

    const prune = await runCli(['prune', '--dry-run', '--json'], env(format, storage));
    expect(prune.code, prune.output).toBe(0);
    const items: { id?: string; good?: boolean }[] = JSON.parse(prune.stdout).results[0].items;
    expect(items.find((i) => i.id === newer)?.good).toBe(false);
    expect(items.find((i) => i.id === older)?.good).toBe(true);
  });
});

/** A plain dump without the third row of the COPY block of `table`. */
function withoutCopyLine(raw: Buffer, table: string): Buffer {
  const lines = raw.toString('utf8').split('\n');
  const copy = lines.findIndex((l) => l.startsWith(`COPY ${table} (`));
  expect(copy).toBeGreaterThan(0);
  expect(lines[copy + 3]).toMatch(/^\d+\t/);
  lines.splice(copy + 3, 1);
  return Buffer.from(lines.join('\n'));
}

/**
 * A custom-format archive of the database with 5 rows of public.orders deleted: `raw` restored into a
 * database of its own on the suite's server, the rows deleted there, and dumped again.
 */
async function withoutRowsArchive(raw: Buffer): Promise<Buffer> {
  const s = server();
  const dir = await tempDir();
  const scratch = uniqueName('tamper');
  const pgEnv = {
    PATH: process.env.PATH,
    PGHOST: s.host,
    PGPORT: String(s.port),
    PGUSER: s.user,
    PGPASSWORD: s.password,
    PGDATABASE: scratch,
  };
  await writeFile(join(dir, 'in.dump'), raw);
  await createDatabase(scratch);
  try {
    await execFile(
      join(s.binDir, 'pg_restore'),
      ['--no-password', '--exit-on-error', '-d', scratch, join(dir, 'in.dump')],
      {
        env: pgEnv,
      },
    );
    await query(scratch, 'DELETE FROM public.orders WHERE id % 10 = 0');
    await execFile(join(s.binDir, 'pg_dump'), ['--no-password', '-Fc', '-f', join(dir, 'out.dump')], {
      env: pgEnv,
    });
    return await readFile(join(dir, 'out.dump'));
  } finally {
    await query('postgres', `DROP DATABASE "${scratch}"`);
    await rm(dir, { recursive: true, force: true });
  }
}

describe('a plain backup with a sequence value changed', () => {
  it('fails its drill naming the sequence', async () => {
    const { storage, newer } = await copyOf('plain');
    const text = (await storedDump(storage, db, newer)).toString('utf8');
    const setval = "SELECT pg_catalog.setval('public.counter', 3, true);";
    expect(text).toContain(setval);
    await replaceStoredDump(
      storage,
      db,
      newer,
      Buffer.from(text.replace(setval, "SELECT pg_catalog.setval('public.counter', 7, true);")),
    );
    const verify = await runCli(['verify', newer], env('plain', storage));
    expect(verify.code, verify.output).toBe(0);
    const res = await runCliWithPid(['drill', newer, '--json'], env('plain', storage));
    expect(res.code, res.output).toBe(5);
    expect(drillJson(res.stdout)).toMatchObject({
      ok: false,
      reason: 'drill',
      differences: [{ item: 'sequence public.counter', expected: '3', found: '7' }],
    });
    await expectNothingLeft(res.pid);
  });
});

describe('a drill killed -9 while it holds its restored copy', () => {
  it('leaves a throwaway server that the next command stops, and a dir it removes; the next drill passes', async () => {
    const { storage } = await copyOf('custom');
    const { child, done } = await startPausedAt('drill.restored', ['drill'], env('custom', storage));
    const pid = child.pid!;
    const [dir, ...more] = await drillDirsOf(parent, pid);
    expect(more).toEqual([]);
    // The postmaster names the dir; its helpers (and any autovacuum worker) work in it.
    const postmaster = await processesUsing(dir!);
    const running = await processesWithin(dir!);
    expect(postmaster.length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await done;
    // The server outlives its datasaver: that is what the next command's sweep is for.
    for (const p of postmaster) expect(processRunning(p), `process ${p}`).toBe(true);

    const list = await runCli(['list'], env('custom', storage));
    expect(list.code, list.output).toBe(0);
    expect(list.stderr).toContain(
      `note: removed ${dir}, a temporary directory (drill) of datasaver process ${pid}`,
    );
    expect(list.stderr).toContain(`stopped the tool process(es) it left running: ${postmaster.join(', ')}`);
    await expect(stat(dir!)).rejects.toMatchObject({ code: 'ENOENT' });
    // The postmaster was stopped by the sweep; its helpers end on their own once it is gone.
    await vi.waitFor(() => expect(running.filter(processRunning)).toEqual([]), {
      timeout: 30_000,
      interval: 50,
    });

    const again = await runCliWithPid(['drill', '--json'], env('custom', storage));
    expect(again.code, again.output).toBe(0);
    expect(drillJson(again.stdout).ok).toBe(true);
    await expectNothingLeft(again.pid);
  });

  it('leaves a scratch database on the drill server, which the next drill drops', async () => {
    const { storage } = await copyOf('custom');
    const withServer = env('custom', storage, { DATASAVER_DRILL_URL: drillServerUrl() });
    const { child, done } = await startPausedAt('drill.restored', ['drill'], withServer);
    const pid = child.pid!;
    const [scratch, ...more] = await scratchDatabasesOf(pid);
    expect(more).toEqual([]);
    expect(await query(scratch!, 'SELECT count(*)::int AS n FROM public.orders')).toEqual([{ n: 50 }]);
    child.kill('SIGKILL');
    await done;
    expect(await scratchDatabasesOf(pid)).toEqual([scratch]);

    const next = await runCliWithPid(['drill', '--json'], withServer);
    expect(next.code, next.output).toBe(0);
    expect(next.stderr).toContain(`dropped ${scratch} on 127.0.0.1:${server().port}`);
    expect(drillJson(next.stdout).ok).toBe(true);
    expect(await scratchDatabasesOf(pid)).toEqual([]);
    await expectNothingLeft(next.pid);
  });
});

describe('SIGTERM during a drill', () => {
  /**
   * Starts a drill paused at failpoint `at`, SIGTERMs it, lets it go on, and returns its pid once it has
   * exited (interrupted).
   */
  async function terminated(
    at: 'drill.restored' | 'restore.streaming',
    runEnv: Record<string, string>,
    onPaused: (pid: number) => Promise<void>,
  ): Promise<number> {
    const { child, done } = await startPausedAt(at, ['drill'], runEnv);
    await onPaused(child.pid!);
    const stopping = stderrSays(child, 'SIGTERM: stopping');
    child.kill('SIGTERM');
    await stopping;
    // The failpoint holds until SIGCONT; then the drill finds its signal aborted.
    child.kill('SIGCONT');
    const res = await done;
    expect(res.signal).toBeNull();
    expect(res.code, res.output).toBe(1);
    expect(res.stderr).toContain('Error: interrupted');
    return child.pid!;
  }

  it.each(['drill.restored', 'restore.streaming'] as const)(
    'at %s: stops the throwaway server and removes its dir before exiting, and records nothing',
    async (at) => {
      const { storage, newer } = await copyOf('plain');
      let held: number[] = [];
      const pid = await terminated(at, env('plain', storage), async (p) => {
        const [dir] = await drillDirsOf(parent, p);
        held = await processesWithin(dir!);
        expect(held.length).toBeGreaterThan(0);
        // A drill streams into the restore tool: no spool, whatever the point.
        expect(await tempDirsOf(parent, p, 'restore')).toHaveLength(0);
      });
      await expectNothingLeft(pid);
      for (const p of held) expect(processRunning(p), `process ${p}`).toBe(false);
      await expect(stat(join(storage, db, `${newer}.drill.json`))).rejects.toMatchObject({
        code: 'ENOENT',
      });
    },
  );

  it.each(['drill.restored', 'restore.streaming'] as const)(
    'at %s: drops the scratch database on the drill server before exiting',
    async (at) => {
      const { storage } = await copyOf('plain');
      const withServer = env('plain', storage, { DATASAVER_DRILL_URL: drillServerUrl() });
      const pid = await terminated(at, withServer, async (p) => {
        expect(await scratchDatabasesOf(p)).toHaveLength(1);
        expect(await tempDirsOf(parent, p, 'restore')).toHaveLength(0);
      });
      await expectNothingLeft(pid);
    },
  );
});

describe('a drill server (DATASAVER_DRILL_URL)', () => {
  /** This file's databases and the server's own, by name with their oids: a database re-created differs. */
  async function ownDatabases(): Promise<Record<string, number>> {
    const rows = await query<{ datname: string; oid: number }>(
      'postgres',
      'SELECT datname, oid::int AS oid FROM pg_database ORDER BY datname',
    );
    const mine = (name: string) =>
      ['postgres', 'template0', 'template1'].includes(name) || name.includes(`_${process.pid}_`);
    return Object.fromEntries(rows.filter((r) => mine(r.datname)).map((r) => [r.datname, r.oid]));
  }

  // As a user that is no superuser: the backup's roles exist there (its database's owner among them),
  // and the drill restores without them all the same.
  it.each(
    FORMATS.flatMap(
      (f) =>
        [
          [f, 'postgres'],
          [f, 'driller'],
        ] as const,
    ),
  )(
    'drills a %s backup in a scratch database of its own, touching no other database (as %s)',
    async (format, user) => {
      const { storage, newer } = await copyOf(format);
      const before = { databases: await ownDatabases(), target: await comparableDump(db) };
      const res = await runCliWithPid(
        ['drill', '--json'],
        env(format, storage, { DATASAVER_DRILL_URL: drillServerUrl(user) }),
      );
      expect(res.code, res.output).toBe(0);
      const result = drillJson(res.stdout);
      expect(result).toMatchObject({ id: newer, ok: true, differences: [] });
      expect(result.compared).toBeGreaterThanOrEqual(SEQUENCES + 4);
      expect(result.place).toMatch(
        new RegExp(`^scratch database datasaver_drill_\\w+ on 127\\.0\\.0\\.1:${server().port}$`),
      );
      expect(await ownDatabases()).toEqual(before.databases);
      expect(await comparableDump(db)).toBe(before.target);
      await expectNothingLeft(res.pid);
    },
  );

  it('with a database in its path is a configuration error naming DATASAVER_DRILL_URL', async () => {
    const { storage, newer } = await copyOf('custom');
    const url = `${drillServerUrl()}/${db}`;
    const res = await runCli(['drill'], env('custom', storage, { DATASAVER_DRILL_URL: url }));
    expect(res.code, res.output).toBe(2);
    expect(res.stderr).toContain('DATASAVER_DRILL_URL');
    expect(res.stderr).toContain(`names database ${db}`);
    expect(res.output).not.toContain(server().password);
    await expect(stat(join(storage, db, `${newer}.drill.json`))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
