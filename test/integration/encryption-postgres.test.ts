/**
 * Client-side encryption through the real command line against PostgreSQL: backups encrypted to an age
 * recipient (or with a passphrase) restore to the same data; the stock `age` and `zstd` tools open a
 * stored object; no byte of storage holds a marker the database holds; verify without the identity checks
 * the ciphertext and says so; a wrong key, or no key, is a clear configuration error; tampered
 * ciphertext fails verify and restore (exit 5) and restores nothing; a drill with the identity compares
 * the sealed facts.
 */
import { execFile as execFileCb } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { serializeManifest } from '../../src/catalog/manifest.ts';
import { openManifest, sealManifest } from '../../src/catalog/sealed.ts';
import { Secret } from '../../src/util/secret.ts';
import { type AgeKey, ageKeygen, filesContaining, flipByte, stockDecrypt } from '../support/age.ts';
import { runCli } from '../support/cli.ts';
import { drillParent, removeDrillParent } from '../support/drill.ts';
import {
  createDatabase,
  databaseExists,
  query,
  server,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';

const execFile = promisify(execFileCb);

const MARKER = 'zq7marker';

let source: string;
let key: AgeKey;
let other: AgeKey;
let parent: string | undefined;

beforeAll(async () => {
  [key, other] = await Promise.all([ageKeygen(), ageKeygen()]);
  source = uniqueName('enc');
  await createDatabase(source);
  await query(
    source,
    `CREATE TABLE ${MARKER}_orders (id int PRIMARY KEY, note text);
     INSERT INTO ${MARKER}_orders SELECT g, 'row ${MARKER} ' || g FROM generate_series(1, 500) g;
     COMMENT ON TABLE ${MARKER}_orders IS 'comment ${MARKER}';
     CREATE TABLE plain_items (id int);
     INSERT INTO plain_items SELECT generate_series(1, 42);`,
  );
});

/** The CLI's environment: the source database, storage in `storage`, and `extra` settings. */
function env(storage: string, extra: Record<string, string> = {}) {
  return targetEnv(source, storage, extra);
}

async function encryptedBackup(
  extra: Record<string, string> = { DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient },
) {
  const storage = await tempDir('enc-store-');
  const res = await runCli(['backup', '--json'], env(storage, extra));
  expect(res.code, res.output).toBe(0);
  const manifest = JSON.parse(res.stdout).backups[0] as Manifest;
  return { storage, manifest, objectPath: join(storage, manifest.object) };
}

async function rows(database: string, table: string): Promise<number> {
  return Number((await query<{ n: string }>(database, `SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

const withKey = (storage: string, identity = key.identityFile) =>
  env(storage, {
    DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient,
    DATASAVER_ENCRYPTION_IDENTITY_FILE: identity,
  });

afterAll(async () => {
  await removeDrillParent(parent);
});

describe('encrypted PostgreSQL backups', () => {
  it('store only ciphertext: the marker is in no stored byte, manifests included', async () => {
    const { storage, manifest } = await encryptedBackup();
    expect(manifest.object).toMatch(/\.dump\.zst\.age$/);
    expect(manifest.encryption).toMatchObject({
      format: 'age',
      recipients: [key.recipient],
      passphrase: false,
    });
    expect(manifest.database).toBeNull();
    // A second backup verified right away, without the identity: its ciphertext, and it says so.
    const second = await runCli(
      ['backup', '--verify', '--json'],
      env(storage, { DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient }),
    );
    expect(second.code, second.output).toBe(0);
    expect(JSON.parse(second.stdout).backups[0]).toMatchObject({
      verified: true,
      verifyNote: expect.stringMatching(/ciphertext only/),
    });
    // verify records its result in storage too: scanned as well.
    const verify = await runCli(['verify', manifest.id], env(storage));
    expect(verify.code, verify.output).toBe(0);
    const scan = await filesContaining(storage, MARKER);
    expect(scan.files).toBe(6); // two data objects, two manifests, two verify records
    expect(scan.found).toEqual([]);
  });

  it('fails closed: unusable encryption settings stop backup and daemon with exit 2, nothing written', async () => {
    const storage = await tempDir('enc-closed-');
    const emptyFile = join(await tempDir(), 'recipients.txt');
    await writeFile(emptyFile, '# no recipient yet\n');
    const unusable: Record<string, string>[] = [
      { DATASAVER_ENCRYPTION_RECIPIENTS: 'age1notarecipient' },
      { DATASAVER_ENCRYPTION_RECIPIENTS_FILE: join(storage, 'missing.txt') },
      { DATASAVER_ENCRYPTION_RECIPIENTS_FILE: emptyFile },
      { DATASAVER_ENCRYPTION_RECIPIENTS: key.recipient, DATASAVER_ENCRYPTION_PASSPHRASE: 'both' },
    ];
    for (const settings of unusable) {
      for (const command of [['backup'], ['daemon', '--run-now']]) {
        const res = await runCli(command, env(storage, settings));
        expect(res.code, `${command[0]} ${JSON.stringify(settings)}: ${res.output}`).toBe(2);
        expect(res.stderr).toMatch(/DATASAVER_ENCRYPTION_(RECIPIENTS|PASSPHRASE)/);
      }
    }
    expect(await readdir(storage)).toEqual([]);
  });

  it('round trip with the identity; the stock tools list the dump', async () => {
    const { storage, manifest, objectPath } = await encryptedBackup();
    const copy = uniqueName('enc_copy');
    const res = await runCli(['restore', manifest.id, '--target-db', copy], withKey(storage));
    expect(res.code, res.output).toBe(0);
    expect(await rows(copy, `${MARKER}_orders`)).toBe(500);
    expect(await rows(copy, 'plain_items')).toBe(42);

    const raw = await stockDecrypt(objectPath, key.identityFile);
    const { stdout } = await execFile(join(server().binDir, 'pg_restore'), ['-l', raw]);
    expect(stdout).toContain(`TABLE public ${MARKER}_orders`);

    // The manifest's sealed part is an age file too (the README's jq | base64 -d | age -d).
    const sealed = join(await tempDir(), 'sealed.age');
    await writeFile(sealed, Buffer.from(manifest.encryption!.contents, 'base64'));
    const opened = await execFile('age', ['-d', '-i', key.identityFile, sealed]);
    expect(JSON.parse(opened.stdout)).toMatchObject({ database: source, facts: { exact: true } });
  });

  it('verify: the ciphertext only without the identity (with a note), everything with it', async () => {
    const { storage, manifest } = await encryptedBackup();
    const bare = await runCli(['verify', manifest.id], env(storage));
    expect(bare.code, bare.output).toBe(0);
    expect(bare.stdout).toMatch(
      /ok .*sha256 of the stored ciphertext only.*DATASAVER_ENCRYPTION_IDENTITY_FILE/,
    );
    const json = await runCli(['verify', manifest.id, '--json'], env(storage));
    expect(JSON.parse(json.stdout).results[0]).toMatchObject({
      ok: true,
      note: expect.stringMatching(/not checked/),
    });
    const full = await runCli(['verify', manifest.id, '--json'], withKey(storage));
    expect(full.code, full.output).toBe(0);
    const result = JSON.parse(full.stdout).results[0];
    expect(result).toMatchObject({ ok: true, note: null });
    expect(result.entries).toBeGreaterThan(3);

    // A backup encrypted to a key this machine lacks (an older identity after a rotation) is skipped by
    // `verify all`, which checks the others and exits 2; nothing is recorded for it.
    const rotated = await runCli(
      ['backup', '--json'],
      env(storage, { DATASAVER_ENCRYPTION_RECIPIENTS: other.recipient }),
    );
    expect(rotated.code, rotated.output).toBe(0);
    const rotatedId = JSON.parse(rotated.stdout).backups[0].id as string;
    const all = await runCli(['verify', 'all', '--json'], withKey(storage));
    expect(all.code, all.output).toBe(2);
    const report = JSON.parse(all.stdout);
    expect(report.results).toMatchObject([{ id: manifest.id, ok: true, note: null }]);
    expect(report.skipped).toMatchObject([{ id: rotatedId }]);
    expect(report.skipped[0].message).toContain(other.recipient);
    await expect(stat(join(storage, `${manifest.target}/${rotatedId}.verify.json`))).rejects.toThrow();
  });

  it('no key, or a key of another recipient: exit 2 naming the settings or the recipients; nothing recorded', async () => {
    const { storage, manifest } = await encryptedBackup();
    const copy = uniqueName('enc_nokey');
    const none = await runCli(['restore', manifest.id, '--target-db', copy], env(storage));
    expect(none.code, none.output).toBe(2);
    expect(none.stderr).toMatch(/is encrypted to age1.*no key to open it/);
    expect(none.stderr).toMatch(/DATASAVER_ENCRYPTION_IDENTITY_FILE/);

    const wrongEnv = withKey(storage, other.identityFile);
    for (const args of [
      ['restore', manifest.id, '--target-db', copy],
      ['restore', manifest.id, '--target-db', copy, '--dry-run'],
      ['restore', manifest.id, '--to-file', join(await tempDir(), 'out.dump')],
      ['verify', manifest.id],
    ]) {
      const wrong = await runCli(args, wrongEnv);
      expect(wrong.code, wrong.output).toBe(2);
      expect(wrong.stderr).toContain(
        `does not open backup ${manifest.id}: it is encrypted to ${key.recipient}`,
      );
    }
    expect(await databaseExists(copy)).toBe(false);
    // A sidecar whose identity opens none of its recipients could verify or drill none of its backups:
    // it does not start.
    const sidecar = await runCli(['backup'], wrongEnv);
    expect(sidecar.code, sidecar.output).toBe(2);
    expect(sidecar.stderr).toMatch(/opens none of the recipients in DATASAVER_ENCRYPTION_RECIPIENTS/);
    // A key problem is no finding about the backup: no verify record says it failed.
    expect(
      await stat(join(storage, manifest.target, `${manifest.id}.verify.json`)).catch(() => undefined),
    ).toBeUndefined();
  });

  it('restore --dry-run and --to-file decrypt', async () => {
    const { storage, manifest } = await encryptedBackup();
    const dry = await runCli(
      ['restore', manifest.id, '--target-db', uniqueName('dry'), '--dry-run'],
      withKey(storage),
    );
    expect(dry.code, dry.output).toBe(0);
    expect(dry.stdout).toContain(`${MARKER}_orders`);
    const file = join(await tempDir(), 'copy.dump');
    const toFile = await runCli(['restore', manifest.id, '--to-file', file], withKey(storage));
    expect(toFile.code, toFile.output).toBe(0);
    expect((await readFile(file)).subarray(0, 5).toString()).toBe('PGDMP');
  });

  it('a flipped ciphertext byte fails verify and restore: checksum, and decrypt under a forged manifest', async () => {
    const { storage, manifest, objectPath } = await encryptedBackup();
    const data = await flipByte(objectPath, 200);
    const copy = uniqueName('enc_flip');
    for (const args of [
      ['verify', manifest.id],
      ['restore', manifest.id, '--target-db', copy],
    ]) {
      const res = await runCli(args, withKey(storage));
      expect(res.code, res.output).toBe(5);
      expect(res.output).toMatch(/checksum/);
    }
    // Forged: the manifest's sha256 and size rewritten to match the tampered object.
    const manifestPath = join(storage, manifest.target, `${manifest.id}.manifest.json`);
    const stored = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    stored.sha256 = createHash('sha256').update(data).digest('hex');
    stored.storedBytes = data.length;
    await writeFile(manifestPath, JSON.stringify(stored));
    const verify = await runCli(['verify', manifest.id, '--json'], withKey(storage));
    expect(verify.code, verify.output).toBe(5);
    expect(JSON.parse(verify.stdout).results[0]).toMatchObject({ ok: false, reason: 'decrypt' });
    const restore = await runCli(['restore', manifest.id, '--target-db', copy], withKey(storage));
    expect(restore.code, restore.output).toBe(5);
    expect(restore.stderr).toMatch(/\(decrypt\)/);
    expect(await databaseExists(copy)).toBe(false);
  });

  it('a drill with the identity restores and compares the sealed facts', async () => {
    const { storage, manifest } = await encryptedBackup();
    const opened = await openManifest(manifest, {
      identities: new Secret(await readFile(key.identityFile, 'utf8')),
    });
    expect(opened.facts.exact).toBe(true);
    expect(opened.facts.tables.map((t) => t.name).sort()).toEqual([
      'public.plain_items',
      `public.${MARKER}_orders`,
    ]);
    parent = await drillParent();
    const res = await runCli(['drill', manifest.id, '--json'], { ...withKey(storage), TMPDIR: parent });
    expect(res.code, res.output).toBe(0);
    const result = JSON.parse(res.stdout).drills[0];
    expect(result).toMatchObject({ ok: true, differences: [] });
    expect(result.compared).toBeGreaterThanOrEqual(2);
    const bare = await runCli(['drill', manifest.id], env(storage));
    expect(bare.code, bare.output).toBe(2);
    expect(bare.stderr).toMatch(/DATASAVER_ENCRYPTION_IDENTITY_FILE/);
  });

  it('a failed drill names the table on the terminal, and its record in storage names nothing sealed', async () => {
    const { storage, manifest } = await encryptedBackup();
    // The sealed facts made to say 499 rows (the key holder can; a forger without the key cannot).
    const identity = { identities: new Secret(await readFile(key.identityFile, 'utf8')) };
    const opened = await openManifest(manifest, identity);
    const facts = {
      ...opened.facts,
      tables: opened.facts.tables.map((t) => (t.name.endsWith(`${MARKER}_orders`) ? { ...t, rows: 499 } : t)),
    };
    const resealed = await sealManifest({ ...opened, facts }, { recipients: [key.recipient] });
    await writeFile(
      join(storage, `${manifest.target}/${manifest.id}.manifest.json`),
      serializeManifest(resealed),
    );

    parent ??= await drillParent();
    const res = await runCli(['drill', manifest.id, '--json'], { ...withKey(storage), TMPDIR: parent });
    expect(res.code, res.output).toBe(5);
    const result = JSON.parse(res.stdout).drills[0];
    expect(result).toMatchObject({ ok: false, reason: 'drill' });
    expect(JSON.stringify(result.differences)).toContain(`${MARKER}_orders`);
    const record = JSON.parse(
      await readFile(join(storage, `${manifest.target}/${manifest.id}.drill.json`), 'utf8'),
    );
    expect(record).toMatchObject({ ok: false, reason: 'drill', differenceCount: 1, differences: [] });
    const scan = await filesContaining(storage, MARKER);
    expect(scan.found).toEqual([]);
  });

  it('a passphrase round trip', async () => {
    const passphrase = { DATASAVER_ENCRYPTION_PASSPHRASE: 'correct horse battery staple' };
    const { storage, manifest } = await encryptedBackup(passphrase);
    expect(manifest.encryption).toMatchObject({ recipients: [], passphrase: true });
    const copy = uniqueName('enc_pw');
    const res = await runCli(['restore', manifest.id, '--target-db', copy], env(storage, passphrase));
    expect(res.code, res.output).toBe(0);
    expect(await rows(copy, `${MARKER}_orders`)).toBe(500);
    expect((await filesContaining(storage, MARKER)).found).toEqual([]);
  });
});
