/** Helpers for test files: the suite's PostgreSQL server (from global setup), databases and dumps. */
import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { inject } from 'vitest';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { Secret } from '../../src/util/secret.ts';

const execFile = promisify(execFileCb);

export function server() {
  const info = inject('postgres');
  return { ...info, host: '127.0.0.1', user: 'postgres' };
}

export function dbUrl(database: string, password = server().password): string {
  const s = server();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${s.port}/${encodeURIComponent(database)}`;
}

let counter = 0;
/** A database name unique to this test process. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${++counter}`;
}

export async function query<T extends Record<string, unknown> = Record<string, unknown>>(
  database: string,
  sql: string,
): Promise<T[]> {
  const s = server();
  const client = new pg.Client({ host: s.host, port: s.port, user: s.user, password: s.password, database });
  await client.connect();
  try {
    const res = (await client.query(sql)) as unknown as pg.QueryResult<T> | pg.QueryResult<T>[];
    return (Array.isArray(res) ? res.at(-1)?.rows : res.rows) ?? [];
  } finally {
    await client.end();
  }
}

export async function createDatabase(name: string): Promise<void> {
  await query('postgres', `CREATE DATABASE "${name}"`);
}

export async function databaseExists(name: string): Promise<boolean> {
  return (await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${name}'`)).length > 0;
}

/**
 * A plain-SQL dump for comparing two databases: pg_dump's per-run `\restrict` keys are removed, the rest
 * must match byte for byte.
 */
export async function comparableDump(database: string, extra: string[] = []): Promise<string> {
  const s = server();
  const { stdout } = await execFile(join(s.binDir, 'pg_dump'), ['--no-password', ...extra], {
    env: {
      ...process.env,
      PGHOST: s.host,
      PGPORT: String(s.port),
      PGUSER: s.user,
      PGPASSWORD: s.password,
      PGDATABASE: database,
    },
    maxBuffer: 512 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .filter((l) => !l.startsWith('\\restrict ') && !l.startsWith('\\unrestrict '))
    .join('\n');
}

/** A fresh directory under the run's scratch root (removed when the run ends). */
export async function tempDir(prefix = 'datasaver-test-'): Promise<string> {
  return mkdtemp(join(inject('scratchDir'), prefix));
}

/**
 * A YAML config file for the test server, storing under `storage`: `defaults` and `targets` are YAML lines
 * added to those sections (indented as they appear there). The password comes from PGTEST_PASSWORD.
 */
export async function yamlConfig(storage: string, targets: string, defaults = ''): Promise<string> {
  const file = join(await tempDir(), 'datasaver.yaml');
  await writeFile(
    file,
    `defaults:
  host: 127.0.0.1
  port: ${server().port}
  user: postgres
  password: \${PGTEST_PASSWORD}
${defaults}  storage:
    path: ${storage}
targets:
${targets}`,
  );
  return file;
}

/** Environment for the CLI: one target (the given database) stored under `storage`. */
export function targetEnv(
  database: string,
  storage: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { DATASAVER_DATABASE_URL: dbUrl(database), DATASAVER_STORAGE_PATH: storage, ...extra };
}

/** A PostgreSQL target on the suite's server, for jobs and engines run in-process. */
export function pgTarget(database: string, password = server().password): TargetConfig {
  const s = server();
  const t = offlineTarget(database, undefined, 'postgres');
  return {
    ...t,
    connection: {
      ...t.connection,
      host: s.host,
      port: s.port,
      user: s.user,
      password: new Secret(password),
      database,
    },
  };
}
