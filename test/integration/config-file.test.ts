/** A YAML config with several targets, through the real CLI. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createDatabase, query, server, tempDir, uniqueName, yamlConfig } from '../support/pg.ts';

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

function writeConfig(storage: string): Promise<string> {
  return yamlConfig(
    storage,
    `  alpha:
    database: ${a}
  beta:
    database: ${b}
    format: plain
    compression: gzip
`,
  );
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

  it('hostile config files exit 2 at once, naming the file and the field', async () => {
    const dir = await tempDir();
    const write = async (name: string, text: string) => {
      const file = join(dir, name);
      await writeFile(file, text);
      return file;
    };
    // Nine levels of nine aliases: 387 million strings if expanded.
    const levels = ['l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `l${i}: &l${i} [${Array(9)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    const bomb = await write('bomb.yaml', `${levels.join('\n')}\ntargets: {x: {password: *l8}}\n`);
    const res = await runCli(['config', 'check', '--config', bomb], {});
    expect(res.code, res.output).toBe(2);
    expect(res.stderr).toContain(`${bomb} cannot be read as configuration`);

    const shapes = await write(
      'shapes.yaml',
      'targets:\n  shop:\n    host: {x: 1}\n    password: [a]\n    schedule: 5\n    database: shop\n    storage: {path: /b}\n',
    );
    const bad = await runCli(['backup', '--config', shapes], {});
    expect(bad.code, bad.output).toBe(2);
    expect(bad.stderr).toContain(`invalid configuration in ${shapes}`);
    expect(bad.stderr).toContain('targets.shop.host: is a mapping; expected a single value');
    expect(bad.stderr).toContain('targets.shop.password: is a list; expected a single value');
    expect(bad.stderr).toContain('targets.shop.schedule: is a number (5); expected text');

    const huge = await write('huge.yaml', `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const big = await runCli(['list', '--config', huge], {});
    expect(big.code, big.output).toBe(2);
    expect(big.stderr).toContain(`${huge} is larger than 1 MiB; it is not read`);
  });

  it('a missing config file exits 2 naming it', async () => {
    const res = await runCli(['list', '--config', '/nonexistent/datasaver.yaml'], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/cannot read config file \/nonexistent\/datasaver\.yaml/);
  });
});
