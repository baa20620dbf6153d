/**
 * Engine tools: finding a tool in the tool dir or on PATH, reading its version, and the version rules
 * (pure) that decide whether a tool may dump a server or read a backup.
 */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dumpToolTooOld,
  lacksRestrict,
  parsePostgresVersion,
  readerTooOld,
} from '../../src/engines/postgres/tools.ts';
import { parseRedisVersion, sanitizesPayloads } from '../../src/engines/redis/tools.ts';
import { atLeast, recordedMajor, toolVersion } from '../../src/engines/tool-version.ts';
import { findTool, readToolVersion, toolIn } from '../../src/engines/tools.ts';
import { BackupError, ToolMissingError } from '../../src/util/errors.ts';

describe('tool versions (pure)', () => {
  it('compares major and minor', () => {
    expect(atLeast(toolVersion('6.2.0'), 6, 2)).toBe(true);
    expect(atLeast(toolVersion('6.0.16'), 6, 2)).toBe(false);
    expect(atLeast(toolVersion('7.0'), 6, 2)).toBe(true);
    expect(atLeast(toolVersion('18'), 18)).toBe(true);
    expect(toolVersion('7.2.4')).toEqual({ version: '7.2.4', major: 7, minor: 2 });
  });

  it('reads the major of a recorded tool version, 0 when none is recorded', () => {
    expect(recordedMajor('pg_dump 15.18')).toBe(15);
    expect(recordedMajor(undefined)).toBe(0);
    expect(recordedMajor('pg_dump')).toBe(0);
  });

  it('parses PostgreSQL and Redis --version output', () => {
    expect(parsePostgresVersion('pg_dump (PostgreSQL) 16.4 (Debian 16.4-1)\n')).toEqual({
      version: '16.4',
      major: 16,
      minor: 4,
    });
    expect(parsePostgresVersion('psql (PostgreSQL) 18\n')).toEqual({ version: '18', major: 18, minor: 0 });
    expect(parsePostgresVersion('something else')).toBeUndefined();
    expect(parseRedisVersion('redis-cli 7.0.15\n')?.version).toBe('7.0.15');
    expect(parseRedisVersion('Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.3.0')?.version).toBe(
      '6.2.14',
    );
    expect(sanitizesPayloads(toolVersion('6.2.14'))).toBe(true);
    expect(sanitizesPayloads(toolVersion('6.0.9'))).toBe(false);
  });
});

describe('PostgreSQL version rules (pure)', () => {
  it('pg_dump must be as new as the server', () => {
    expect(dumpToolTooOld(toolVersion('16.4'), { version: '16.1', major: 16 }, 'db:5432')).toBeUndefined();
    const err = dumpToolTooOld(toolVersion('15.8'), { version: '16.1', major: 16 }, 'db:5432');
    expect(err).toBeInstanceOf(BackupError);
    expect(err?.message).toBe(
      'pg_dump 15.8 cannot dump db:5432: the server runs PostgreSQL 16.1, and pg_dump must be the same major version or newer',
    );
    expect(err?.hint).toMatch(/^install postgresql-client-16 \(or newer\)/);
  });

  it('pg_restore and psql must be as new as the pg_dump that wrote the backup', () => {
    expect(readerTooOld('pg_restore', toolVersion('16.4'), 'pg_dump 16.1')).toBeUndefined();
    expect(readerTooOld('pg_restore', toolVersion('15.4'), undefined)).toBeUndefined();
    const err = readerTooOld('psql', toolVersion('15.4'), 'pg_dump 17.2');
    expect(err).toBeInstanceOf(ToolMissingError);
    expect(err?.message).toBe('psql 15.4 cannot read this backup: it was written by pg_dump 17.2');
  });

  it('plain SQL needs a psql with \\restrict', () => {
    expect(lacksRestrict(toolVersion('15.14'))).toBeUndefined();
    expect(lacksRestrict(toolVersion('18.0'))).toBeUndefined();
    expect(lacksRestrict(toolVersion('15.13'))?.hint).toMatch(
      /^install postgresql-client-15 15\.14 or newer/,
    );
    expect(lacksRestrict(toolVersion('12.20'))?.hint).toMatch(/^install postgresql-client-17 \(or newer\)/);
  });
});

describe('finding tools and reading their versions', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'engine-tools-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function script(name: string, body: string): Promise<void> {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }

  const parse = (name: string, out: string) => {
    const m = /(\d+)\.(\d+)/.exec(out);
    return m ? { name, major: Number(m[1]) } : undefined;
  };

  it('takes the first of the alternatives found in the tool dir, with its version', async () => {
    await script('mysqldump', 'echo "mysqldump 8.0"');
    await script('mariadb-dump', 'echo "mariadb-dump 10.11"');
    const found = await findTool(['mariadb-dump', 'mysqldump'], dir, 'mariadb-client', parse);
    expect(found).toEqual({
      command: join(dir, 'mariadb-dump'),
      packageName: 'mariadb-client',
      name: 'mariadb-dump',
      major: 10,
    });
  });

  it('names the first alternative and its package when none is there', async () => {
    const err = await findTool(['mariadb-dump', 'mysqldump'], dir, 'mariadb-client', parse).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ToolMissingError);
    expect((err as Error).message).toBe(
      `${join(dir, 'mariadb-dump')} not found: it is needed for this operation`,
    );
  });

  it('fails with the output when the version cannot be read', async () => {
    await script('pg_dump', 'echo "no version here" >&2; exit 2');
    const err = await readToolVersion(
      toolIn(dir, 'pg_dump', 'postgresql-client'),
      parsePostgresVersion,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toBe(
      `cannot tell the version of ${join(dir, 'pg_dump')}: no version here`,
    );
  });

  it('a tool outside the tool dir is not installed', async () => {
    const err = await readToolVersion(
      toolIn(dir, 'pg_dump', 'postgresql-client'),
      parsePostgresVersion,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ToolMissingError);
    expect((err as ToolMissingError).hint).toMatch(/apt-get install postgresql-client/);
  });
});
