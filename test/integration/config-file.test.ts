/** A YAML config with several targets, through the real CLI. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createDatabase, query, server, tempDir, uniqueName } from '../support/pg.ts';

let a: string;
let b: string;

beforeAll(async () => {
  a = uniqueName('cfga');
  b = uniqueName('cfgb');
  for (const db of [a, b]) {
    await createDatabase(db);
    await query(db, `CREATE TABLE t (name text); INSERT INTO t VALUES ('${db}')`);
  }
});

async function writeConfig(storage: string): Promise<string> {
  const file = join(await tempDir(), 'datasaver.yaml');
  await writeFile(
    file,
    `defaults:
  host: 127.0.0.1
  port: ${server().port}
  user: postgres
  password: \${PGTEST_PASSWORD}
  storage:
    path: ${storage}
targets:
  alpha:
    database: ${a}
  beta:
    database: ${b}
    format: plain
    compression: gzip
`,
  );
  return file;
}

describe('YAML config with several targets', () => {
  it('backs up every target with --all and lists them by target', async () => {
    const storage = await tempDir();
    const file = await writeConfig(storage);
    const env = { PGTEST_PASSWORD: server().password };

    const ambiguous = await runCli(['backup', '--config', file], env);
    expect(ambiguous.code).toBe(1);
    expect(ambiguous.stderr).toMatch(/2 targets are configured/);
    expect(ambiguous.stderr).toMatch(/--target NAME \(one of alpha, beta\) or --all/);

    const all = await runCli(['--config', file, 'backup', '--all', '--json'], env);
    expect(all.code, all.output).toBe(0);
    const backups = JSON.parse(all.stdout).backups;
    expect(
      backups.map((m: { target: string; object: string }) => [
        m.target,
        m.object.replace(/-\d{8}T\d{6}Z/, ''),
      ]),
    ).toEqual([
      ['alpha', 'alpha/alpha.dump.zst'],
      ['beta', 'beta/beta.sql.gz'],
    ]);

    const list = await runCli(['list', '--config', file, '--target', 'beta', '--json'], env);
    expect(JSON.parse(list.stdout).backups.map((m: { target: string }) => m.target)).toEqual(['beta']);

    const copy = uniqueName('cfgcopy');
    const restore = await runCli(
      ['restore', 'latest', '--config', file, '--target', 'beta', '--target-db', copy],
      env,
    );
    expect(restore.code, restore.output).toBe(0);
    expect(await query(copy, 'SELECT name FROM t')).toEqual([{ name: b }]);

    const check = await runCli(['config', 'check', '--config', file], env);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('name: alpha');
    expect(check.output).not.toContain(server().password);
  });

  it('a missing config file exits 2 naming it', async () => {
    const res = await runCli(['list', '--config', '/nonexistent/datasaver.yaml'], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/cannot read config file \/nonexistent\/datasaver\.yaml/);
  });
});
