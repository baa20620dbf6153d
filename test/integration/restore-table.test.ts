/**
 * `restore --table`: some tables of a PostgreSQL custom-format backup, into a new database or one that
 * lacks them, everything else untouched; names checked against the backup, existing tables never replaced.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let source: string;
let env: Record<string, string>;

/** Every row of `table`, in a stable order, as text. */
async function rows(database: string, table: string): Promise<string[]> {
  const out = await query<{ r: string }>(database, `SELECT t::text AS r FROM ${table} t ORDER BY 1`);
  return out.map((x) => x.r);
}

async function tablesOf(database: string): Promise<string[]> {
  const out = await query<{ t: string }>(
    database,
    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE' ORDER BY 1",
  );
  return out.map((x) => x.t);
}

beforeAll(async () => {
  source = uniqueName('tables');
  await createRichDatabase(source);
  env = targetEnv(source, await tempDir());
  const res = await runCli(['backup'], env);
  expect(res.code, res.output).toBe(0);
});

describe('restore --table', () => {
  it('restores the named tables alone into a new database, rows equal', async () => {
    const fresh = uniqueName('onetable');
    const res = await runCli(['restore', 'latest', '--target-db', fresh, '--table', 'customers'], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toMatch(/restored table sales\.customers of /);
    expect(await tablesOf(fresh)).toEqual(['sales.customers']);
    expect(await rows(fresh, 'sales.customers')).toEqual(await rows(source, 'sales.customers'));
  });

  it('adds tables a database lacks and leaves everything else alone; an existing table is refused', async () => {
    const copy = uniqueName('tablecopy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    await query(copy, 'DROP TABLE public.audit; DELETE FROM sales.orders WHERE id > 1');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--table', 'audit'], env);
    expect(res.code, res.output).toBe(0);
    expect(await rows(copy, 'public.audit')).toEqual(await rows(source, 'public.audit'));
    expect(await rows(copy, 'sales.orders')).toHaveLength(1); // not named, not touched

    const again = await runCli(['restore', 'latest', '--target-db', copy, '--table', 'sales.orders'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/table sales\.orders already exists in /);
    expect(await rows(copy, 'sales.orders')).toHaveLength(1);
  });

  it('a table whose type is missing from the destination fails and says why', async () => {
    const res = await runCli(
      ['restore', 'latest', '--target-db', uniqueName('notype'), '--table', 'sales.orders'],
      env,
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/type "sales\.status" does not exist/);
    expect(res.stderr).toMatch(/types, sequences and functions they use must already exist/);
  });

  it('refuses names the backup does not have, several schemas at once, --force and --drop-existing', async () => {
    const target = uniqueName('nothere');
    const cases: [string[], RegExp][] = [
      [
        ['--table', 'nosuch'],
        /has no table nosuch[\s\S]*Try: name it as schema\.table; the backup's tables: .*public\.audit/,
      ],
      [
        ['--table', 'audit', '--table', 'sales.orders'],
        /--table names tables of several schemas \(public, sales\)/,
      ],
      [['--table', 'audit', '--drop-existing'], /--table and --drop-existing are exclusive/],
      [['--table', 'audit', '--force'], /--table and --force are exclusive/],
    ];
    for (const [args, why] of cases) {
      const res = await runCli(['restore', 'latest', '--target-db', target, ...args], env);
      expect(res.code, args.join(' ')).toBe(1);
      expect(res.stderr, args.join(' ')).toMatch(why);
    }
    expect(await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${target}'`)).toEqual([]);
  });

  it('a plain SQL backup restores whole: --table is refused', async () => {
    const plainEnv = targetEnv(source, await tempDir(), { DATASAVER_FORMAT: 'plain' });
    expect((await runCli(['backup'], plainEnv)).code).toBe(0);
    const res = await runCli(
      ['restore', 'latest', '--target-db', uniqueName('plain'), '--table', 'audit'],
      plainEnv,
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /--table cannot be used with backup .* \(postgres plain format\): it restores whole/,
    );
  });
});
