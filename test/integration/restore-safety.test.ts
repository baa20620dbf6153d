/** Restore never writes where it should not, and checks its tools before changing anything. */
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import {
  comparableDump,
  createDatabase,
  databaseExists,
  query,
  server,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';

let source: string;

beforeAll(async () => {
  source = uniqueName('safe');
  await createDatabase(source);
  await query(
    source,
    "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g",
  );
});

async function backup(format: string) {
  const storage = await tempDir();
  const env = targetEnv(source, storage, { DATASAVER_FORMAT: format });
  const res = await runCli(['backup'], env);
  expect(res.code, res.output).toBe(0);
  return env;
}

/** Client tools that report an old version, and otherwise behave like the real ones. */
async function oldTools(major: number) {
  const real = server().binDir;
  const fake = (name: string) =>
    `if [ "$1" = "--version" ]; then echo "${name} (PostgreSQL) ${major}.1"; exit 0; fi\nexec "${real}/${name}" "$@"`;
  return fakeToolDir({ pg_restore: fake('pg_restore'), psql: fake('psql') });
}

describe('restore safety', () => {
  it('a database holding only a type counts as not empty', async () => {
    const env = await backup('custom');
    const other = uniqueName('typeonly');
    await createDatabase(other);
    await query(other, "CREATE TYPE public.mood AS ENUM ('ok', 'sad')");
    const res = await runCli(['restore', 'latest', '--target-db', other], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/it is not empty/);
    expect(await query(other, "SELECT to_regclass('public.t') AS t")).toEqual([{ t: null }]);
  });

  it('--force on a plain SQL backup is refused with a pointer to --drop-existing', async () => {
    const env = await backup('plain');
    const copy = uniqueName('plaincopy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    await query(copy, 'DELETE FROM t WHERE id > 50');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--force'], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/cannot restore backup .* \(postgres plain format\) over the objects/);
    expect(res.stderr).toMatch(/--drop-existing/);
    expect(await query(copy, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 50 }]);
    const dropped = await runCli(['restore', 'latest', '--target-db', copy, '--drop-existing'], env);
    expect(dropped.code, dropped.output).toBe(0);
    expect(await comparableDump(copy)).toBe(await comparableDump(source));
  });

  it('a pg_restore older than the backup: restore exits 4 before creating or dropping anything', async () => {
    const env = await backup('custom');
    const tools = await oldTools(9);
    const copy = uniqueName('never');
    const res = await runCli(['restore', 'latest', '--target-db', copy], {
      ...env,
      DATASAVER_TOOL_DIR: tools,
    });
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_restore 9\.1 cannot read this backup: it was written by pg_dump \d+/);
    expect(res.stderr).toMatch(/Try: install postgresql-client-\d+/);
    expect(await databaseExists(copy)).toBe(false);

    const dropTarget = uniqueName('keep');
    expect((await runCli(['restore', 'latest', '--target-db', dropTarget], env)).code).toBe(0);
    const dropping = await runCli(['restore', 'latest', '--target-db', dropTarget, '--drop-existing'], {
      ...env,
      DATASAVER_TOOL_DIR: tools,
    });
    expect(dropping.code).toBe(4);
    expect(await query(dropTarget, 'SELECT count(*)::int AS n FROM t')).toEqual([{ n: 100 }]);
  });

  it('verify with a pg_restore older than the backup is a tool error (exit 4), not a damaged backup', async () => {
    const env = await backup('custom');
    const res = await runCli(['verify', 'latest'], { ...env, DATASAVER_TOOL_DIR: await oldTools(9) });
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_restore 9\.1 cannot read this backup/);
    expect(res.output).not.toMatch(/failed verification/);
  });
});
