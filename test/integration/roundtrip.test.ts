/**
 * Restores are proven: back up a rich database through the real CLI, restore it
 * into a new database, and compare pg_dump of source and copy.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, databaseExists, query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let source: string;
let sourceDump: string;

beforeAll(async () => {
  source = uniqueName('rich');
  await createRichDatabase(source);
  sourceDump = await comparableDump(source);
});

async function backupAndRestore(
  storage: string,
  backupArgs: string[],
  restoreArgs: string[] = [],
  env: Record<string, string> = {},
) {
  const e = targetEnv(source, storage, env);
  const backup = await runCli(['backup', '--json', ...backupArgs], e);
  expect(backup.code, backup.output).toBe(0);
  const manifest = JSON.parse(backup.stdout).backups[0];
  const copy = uniqueName('copy');
  const restore = await runCli(['restore', manifest.id, '--target-db', copy, ...restoreArgs], e);
  expect(restore.code, restore.output).toBe(0);
  return { manifest, copy };
}

describe('round trip through backup and restore', () => {
  it('custom format with zstd: restored database dumps identically, manifest is complete', async () => {
    const storage = await tempDir();
    const { manifest, copy } = await backupAndRestore(storage, ['--label', 'manual']);
    expect(await comparableDump(copy)).toBe(sourceDump);

    expect(manifest).toMatchObject({
      version: 1,
      target: source,
      engine: 'postgres',
      status: 'success',
      format: 'custom',
      compression: 'zstd',
      labels: ['manual'],
      schemaOnly: false,
      encryption: null,
      database: source,
      object: `${source}/${manifest.id}.dump.zst`,
    });
    expect(manifest.id).toMatch(new RegExp(`^${source}-\\d{8}T\\d{6}Z$`));
    expect(manifest.sizeBytes).toBeGreaterThan(manifest.storedBytes);
    expect(manifest.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.serverVersion).toMatch(/^\d+\.\d+/);
    expect(manifest.toolVersion).toMatch(/^pg_dump \d+/);
    expect(Date.parse(manifest.finishedAt)).toBeGreaterThanOrEqual(Date.parse(manifest.createdAt));
    expect(manifest.facts.tables.map((t: { name: string }) => t.name)).toContain('sales.orders');

    // The storage layout the README documents, with private permissions.
    const dir = join(storage, source);
    expect((await readdir(dir)).sort()).toEqual([`${manifest.id}.dump.zst`, `${manifest.id}.manifest.json`]);
    expect((await stat(join(dir, `${manifest.id}.dump.zst`))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const onDisk = JSON.parse(await readFile(join(dir, `${manifest.id}.manifest.json`), 'utf8'));
    expect(onDisk.sha256).toBe(manifest.sha256);
    expect((await stat(join(dir, `${manifest.id}.dump.zst`))).size).toBe(manifest.storedBytes);
  });

  it('plain SQL format restores identically', async () => {
    const storage = await tempDir();
    const { manifest, copy } = await backupAndRestore(storage, ['--format', 'plain']);
    expect(manifest.format).toBe('plain');
    expect(manifest.object).toMatch(/\.sql\.zst$/);
    expect(await comparableDump(copy)).toBe(sourceDump);
  });

  it('DATASAVER_FORMAT=plain with gzip, and no compression, restore identically', async () => {
    const gz = await backupAndRestore(await tempDir(), [], [], {
      DATASAVER_FORMAT: 'plain',
      DATASAVER_COMPRESSION: 'gzip',
    });
    expect(gz.manifest.object).toMatch(/\.sql\.gz$/);
    expect(await comparableDump(gz.copy)).toBe(sourceDump);
    const none = await backupAndRestore(await tempDir(), [], [], { DATASAVER_COMPRESSION: 'none' });
    expect(none.manifest.object).toMatch(/\.dump$/);
    expect(none.manifest.storedBytes).toBe(none.manifest.sizeBytes);
    expect(await comparableDump(none.copy)).toBe(sourceDump);
  });

  it('schema-only backups restore the schema and no rows', async () => {
    const { manifest, copy } = await backupAndRestore(await tempDir(), ['--schema-only']);
    expect(manifest.schemaOnly).toBe(true);
    expect(await comparableDump(copy, ['--schema-only'])).toBe(
      await comparableDump(source, ['--schema-only']),
    );
    const [row] = await query<{ n: string }>(copy, 'SELECT count(*) AS n FROM sales.orders');
    expect(row?.n).toBe('0');
  });

  it('plain schema-only backups restore the schema', async () => {
    const { copy } = await backupAndRestore(await tempDir(), ['--schema-only', '--format', 'plain']);
    expect(await comparableDump(copy, ['--schema-only'])).toBe(
      await comparableDump(source, ['--schema-only']),
    );
  });

  it('parallel restore with --jobs restores identically', async () => {
    const { copy } = await backupAndRestore(await tempDir(), [], ['--jobs', '3']);
    expect(await comparableDump(copy)).toBe(sourceDump);
  });

  it('backup --verify verifies, and verify latest passes', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    const backup = await runCli(['backup', '--verify'], env);
    expect(backup.code, backup.output).toBe(0);
    expect(backup.stdout).toMatch(/committed: .* verified/);
    const verify = await runCli(['verify', 'latest', '--json'], env);
    expect(verify.code, verify.output).toBe(0);
    const [result] = JSON.parse(verify.stdout).results;
    expect(result).toMatchObject({ ok: true, reason: null });
    expect(result.entries).toBeGreaterThan(20);
    const record = JSON.parse(await readFile(join(storage, source, `${result.id}.verify.json`), 'utf8'));
    expect(record).toMatchObject({ id: result.id, ok: true });
  });

  it('restore --drop-existing replaces a database that has other data', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const copy = uniqueName('copy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    await query(copy, 'CREATE TABLE stray (x int); DELETE FROM sales.orders WHERE id < 100');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--drop-existing'], env);
    expect(res.code, res.output).toBe(0);
    expect(await comparableDump(copy)).toBe(sourceDump);
  });

  it('restore --force restores over an existing copy (custom format)', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const copy = uniqueName('copy');
    expect((await runCli(['restore', 'latest', '--target-db', copy], env)).code).toBe(0);
    await query(copy, 'DELETE FROM public.audit');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--force'], env);
    expect(res.code, res.output).toBe(0);
    expect(await comparableDump(copy)).toBe(sourceDump);
  });

  it('restore refuses a non-empty database without --force and leaves it untouched', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const res = await runCli(['restore', 'latest'], env); // into the source database itself
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/refusing to restore into database .* it is not empty/);
    expect(res.stderr).toMatch(/--force/);
    expect(await comparableDump(source)).toBe(sourceDump);
  });

  it('restore --dry-run lists the contents and changes nothing', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    expect((await runCli(['backup'], env)).code).toBe(0);
    const copy = uniqueName('copy');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--dry-run'], env);
    expect(res.code, res.output).toBe(0);
    expect(res.stdout).toMatch(/would create it and restore/);
    expect(res.stdout).toMatch(/TABLE\s+sales\.orders/);
    expect(res.stdout).toMatch(/MATERIALIZED VIEW\s+sales\.daily/);
    expect(await databaseExists(copy)).toBe(false);
  });

  it('lists backups newest last with ids that sort by time', async () => {
    const storage = await tempDir();
    const env = targetEnv(source, storage);
    for (let i = 0; i < 3; i++) expect((await runCli(['backup', '--schema-only'], env)).code).toBe(0);
    const res = await runCli(['list', '--json'], env);
    const ids: string[] = JSON.parse(res.stdout).backups.map((b: { id: string }) => b.id);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    expect([...ids].sort()).toEqual(ids);
    const human = await runCli(['list'], env);
    expect(human.stdout).toMatch(/^TARGET\s+ID\s+CREATED/);
    for (const id of ids) expect(human.stdout).toContain(id);
  });
});
