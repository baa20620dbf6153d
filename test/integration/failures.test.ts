/**
 * A failed dump is never a success, bad input gets a clear error, secrets stay secret, through the real
 * CLI against the real server.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { fakePgDump, fakeToolDir } from '../support/fake-tools.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { dbUrl, server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;

beforeAll(async () => {
  db = uniqueName('fail');
  await createRichDatabase(db);
});

async function expectNoBackups(storage: string, env: Record<string, string>) {
  const list = await runCli(['list', '--all', '--json'], env);
  expect(list.code, list.output).toBe(0);
  const parsed = JSON.parse(list.stdout);
  expect(parsed.backups).toEqual([]);
  expect(parsed.incomplete).toEqual([]);
  const files = await readdir(join(storage, db)).catch(() => [] as string[]);
  expect(files.filter((f) => !f.startsWith('.'))).toEqual([]);
}

describe('database connection failures exit 3 without leaking the password', () => {
  it('wrong password', async () => {
    const storage = await tempDir();
    const secret = 'Wr0ng-S3cret-Passw0rd';
    const res = await runCli(['backup'], {
      DATASAVER_DATABASE_URL: dbUrl(db, secret),
      DATASAVER_STORAGE_PATH: storage,
    });
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/authentication failed for user postgres/);
    expect(res.output).not.toContain(secret);
  });

  it('password given through DATASAVER_DB_PASSWORD is not printed either', async () => {
    const secret = 'An0ther-S3cret';
    const s = server();
    const res = await runCli(['backup'], {
      DATASAVER_DB_HOST: '127.0.0.1',
      DATASAVER_DB_PORT: String(s.port),
      DATASAVER_DB_NAME: db,
      DATASAVER_DB_USER: 'postgres',
      DATASAVER_DB_PASSWORD: secret,
      DATASAVER_STORAGE_PATH: await tempDir(),
    });
    expect(res.code).toBe(3);
    expect(res.output).not.toContain(secret);
  });

  it('unknown database', async () => {
    const res = await runCli(['backup'], targetEnv('no_such_database', await tempDir()));
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/database no_such_database does not exist/);
    expect(res.output).not.toContain(server().password);
  });

  it('unreachable host', async () => {
    const url = `postgres://postgres:${server().password}@127.0.0.1:1/${db}`;
    const res = await runCli(['backup'], {
      DATASAVER_DATABASE_URL: url,
      DATASAVER_STORAGE_PATH: await tempDir(),
    });
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/cannot connect to PostgreSQL at 127\.0\.0\.1:1/);
    expect(res.output).not.toContain(server().password);
  });
});

describe('dump failures exit 4 and commit nothing', () => {
  it('pg_dump older than the server is refused before dumping', async () => {
    const tools = await fakeToolDir({
      pg_dump: 'echo "pg_dump (PostgreSQL) 9.6.24"; [ "$1" = "--version" ] || exit 99',
    });
    const storage = await tempDir();
    const env = targetEnv(db, storage, { DATASAVER_TOOL_DIR: tools });
    const res = await runCli(['backup'], env);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_dump 9\.6 cannot dump .* the server runs PostgreSQL \d+/);
    expect(res.stderr).toMatch(/Try: install postgresql-client-\d+/);
    await expectNoBackups(storage, env);
  });

  it('missing pg_dump names the package to install', async () => {
    const tools = await fakeToolDir({});
    const res = await runCli(['backup'], targetEnv(db, await tempDir(), { DATASAVER_TOOL_DIR: tools }));
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_dump not found/);
    expect(res.stderr).toMatch(/apt-get install postgresql-client/);
  });

  it('pg_dump failing half-way: its stderr is shown, redacted, and nothing is committed', async () => {
    const tools = await fakeToolDir({
      pg_dump: fakePgDump(
        server().binDir,
        'head -c 300000 /dev/urandom; echo "pg_dump: error: connection lost (password=$PGPASSWORD)" >&2; exit 1',
      ),
    });
    const storage = await tempDir();
    const env = targetEnv(db, storage, { DATASAVER_TOOL_DIR: tools });
    const res = await runCli(['backup'], env);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(
      /pg_dump exited with code 1: pg_dump: error: connection lost \(password=\*\*\*\)/,
    );
    expect(res.output).not.toContain(server().password);
    await expectNoBackups(storage, env);
    // Not even a hidden temporary file is left behind by a failure datasaver saw.
    expect(await readdir(join(storage, db)).catch(() => [])).toEqual([]);
  });

  it('pg_dump exiting 0 with no output is a failure', async () => {
    const tools = await fakeToolDir({ pg_dump: fakePgDump(server().binDir, 'exit 0') });
    const storage = await tempDir();
    const env = targetEnv(db, storage, { DATASAVER_TOOL_DIR: tools });
    const res = await runCli(['backup'], env);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/produced no data/);
    await expectNoBackups(storage, env);
  });

  it('pg_dump killed by a signal is a failure', async () => {
    const tools = await fakeToolDir({
      pg_dump: fakePgDump(server().binDir, 'head -c 100000 /dev/urandom; kill -9 $$'),
    });
    const storage = await tempDir();
    const env = targetEnv(db, storage, { DATASAVER_TOOL_DIR: tools });
    const res = await runCli(['backup'], env);
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/pg_dump was killed by SIGKILL/);
    await expectNoBackups(storage, env);
  });
});

describe('configuration errors exit 2 naming the field', () => {
  it('names each bad variable, the value and what is expected', async () => {
    const res = await runCli(['backup'], {
      DATASAVER_DATABASE_URL: dbUrl(db),
      DATASAVER_STORAGE_PATH: await tempDir(),
      DATASAVER_COMPRESSION: 'lz4',
      DATASAVER_FORMAT: 'tar',
      DATASAVER_COMPRESSION_LEVEL: '99',
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      "DATASAVER_COMPRESSION: 'lz4' is not valid; expected one of zstd, gzip, none",
    );
    expect(res.stderr).toContain("DATASAVER_FORMAT: 'tar' is not valid; expected one of custom, plain");
    expect(res.output).not.toContain(server().password);
  });

  it('a malformed URL is shown without its password', async () => {
    const res = await runCli(['backup'], {
      DATASAVER_DATABASE_URL: 'postgres://app:Sup3rSecret@db:notaport/x',
      DATASAVER_STORAGE_PATH: await tempDir(),
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/DATASAVER_DATABASE_URL: .* is not a URL/);
    expect(res.output).not.toContain('Sup3rSecret');
  });

  it('missing storage path', async () => {
    const res = await runCli(['backup'], { DATASAVER_DATABASE_URL: dbUrl(db) });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /DATASAVER_STORAGE_PATH: no storage is set; set DATASAVER_STORAGE_PATH \(a directory\) and\/or DATASAVER_S3_BUCKET/,
    );
  });

  it('no target at all', async () => {
    const res = await runCli(['backup'], { DATASAVER_STORAGE_PATH: await tempDir() });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/no target is configured/);
    expect(res.stderr).toMatch(/Try: set DATASAVER_DATABASE_URL/);
  });

  it('config check shows the effective config with secrets redacted', async () => {
    const res = await runCli(['config', 'check', '--json'], targetEnv(db, '/var/backups/x'));
    expect(res.code, res.output).toBe(0);
    const cfg = JSON.parse(res.stdout);
    expect(cfg.targets[0]).toMatchObject({
      name: db,
      engine: 'postgres',
      connection: { host: '127.0.0.1', port: server().port, database: db, user: 'postgres', password: '***' },
      destinations: [{ backend: 'local', path: '/var/backups/x' }],
      compression: { algorithm: 'zstd' },
    });
    expect(res.output).not.toContain(server().password);
  });
});
