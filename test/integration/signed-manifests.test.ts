/**
 * Signed manifests through the real command line: a sidecar that signs, readers that hold the verify keys,
 * and someone who can write storage but lacks the signing key. Forged manifests (valid JSON, dated newest,
 * unsigned or with a wrong signature) are ignored by prune, list, `restore latest` and the daemon's
 * health, and refused by `restore <id>` unless --allow-unsigned; rotation keeps old backups readable
 * while their key is configured; without verify keys nothing changes.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readRecord } from '../../src/catalog/catalog.ts';
import { backupId, manifestKey } from '../../src/catalog/layout.ts';
import { generateSigningKey, signManifest } from '../../src/catalog/signature.ts';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { runCli } from '../support/cli.ts';
import { startDaemon, waitFor } from '../support/daemon.ts';
import { createDatabase, dbUrl, query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';
import { s3Config, s3Env, s3Prefix } from '../support/s3.ts';

let db: string;
let keys: string;

beforeAll(async () => {
  db = uniqueName('signed');
  await createDatabase(db);
  await query(db, 'CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50);');
  keys = await tempDir();
});

/** `datasaver keygen`: the key file and the verify key it printed. */
async function keygen(name: string): Promise<{ file: string; verifyKey: string; keyId: string }> {
  const file = join(keys, name);
  const res = await runCli(['keygen', '--out', file, '--json'], {});
  expect(res.code, res.output).toBe(0);
  return JSON.parse(res.stdout);
}

/** Keeps the newest two and nothing else: two newer forgeries would push both real backups out. */
const RETENTION = {
  DATASAVER_KEEP_LAST: '2',
  DATASAVER_KEEP_DAILY: '0',
  DATASAVER_KEEP_WEEKLY: '0',
  DATASAVER_KEEP_MONTHLY: '0',
  DATASAVER_MIN_KEEP: '0',
};

async function backup(env: Record<string, string>): Promise<{ id: string; object: string }> {
  const res = await runCli(['backup', '--json', '--no-prune'], env);
  expect(res.code, res.output).toBe(0);
  return JSON.parse(res.stdout).backups[0];
}

/**
 * What someone who can write storage plants: a copy of a real backup under a newer id (a minute or two
 * ahead, inside the clock tolerance, so the newest), its manifest unsigned, with the real one's signature
 * copied, or signed by a key of their own.
 */
async function forge(
  storage: string,
  real: { id: string; object: string },
  minutesAhead: number,
  signature: 'none' | 'copied' | 'own key',
): Promise<{ id: string; object: string }> {
  const manifest = JSON.parse(await readFile(join(storage, db, `${real.id}.manifest.json`), 'utf8'));
  const time = new Date(Math.floor(Date.now() / 1000) * 1000 + minutesAhead * 60_000);
  const id = backupId(db, time);
  const object = real.object.replace(real.id, id);
  await copyFile(join(storage, real.object), join(storage, object));
  let forged = { ...manifest, id, object, createdAt: time.toISOString(), finishedAt: time.toISOString() };
  if (signature === 'none') delete forged.signature;
  if (signature === 'own key') forged = signManifest(forged, generateSigningKey());
  await writeFile(join(storage, db, `${id}.manifest.json`), JSON.stringify(forged));
  return { id, object };
}

describe('signed manifests', () => {
  it('forgeries are ignored by prune, list, restore latest and health, and refused by restore <id>', async () => {
    const key = await keygen('sidecar.pem');
    const storage = await tempDir();
    const env = targetEnv(db, storage, {
      ...RETENTION,
      DATASAVER_SIGNING_KEY_FILE: key.file,
      DATASAVER_VERIFY_KEYS: key.verifyKey,
    });
    const real = [await backup(env), await backup(env)];
    const manifest = JSON.parse(await readFile(join(storage, db, `${real[1]!.id}.manifest.json`), 'utf8'));
    expect(manifest.signature).toMatchObject({ algorithm: 'ed25519', keyId: key.keyId });
    const planted = [
      await forge(storage, real[0]!, 1, 'none'),
      await forge(storage, real[1]!, 2, 'copied'),
      await forge(storage, real[1]!, 3, 'own key'),
    ];
    const [forged, third] = [planted.slice(0, 2).map((p) => p.id), planted[2]!.id];

    // Without verify keys (as before signing), the forgeries would push both real backups out.
    const blindEnv = targetEnv(db, storage, RETENTION);
    const blind = await runCli(['prune', '--dry-run', '--json'], blindEnv);
    const blindRemoved = JSON.parse(blind.stdout)
      .results[0].items.filter((i: { action: string }) => i.action === 'remove')
      .map((i: { id: string }) => i.id);
    expect(blindRemoved).toEqual(expect.arrayContaining(real.map((r) => r.id)));

    // list: the real backups only; each forgery reported with why.
    const list = await runCli(['list', '--json'], env);
    expect(list.code, list.output).toBe(0);
    const listed = JSON.parse(list.stdout);
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual(real.map((r) => r.id));
    expect(listed.untrusted.map((u: { id: string; reason: string }) => [u.id, u.reason])).toEqual([
      [forged[0], 'unsigned'],
      [forged[1], `bad signature (key ${key.keyId})`],
      [third, expect.stringMatching(/^signed by unknown key [0-9a-f]{16}$/)],
    ]);
    expect(list.stderr).toContain(`ignoring backup ${forged[0]}: unsigned`);

    // prune: nothing real removed, and the forgeries' data is not deleted as incomplete either.
    const pruned = await runCli(['prune', '--json'], env);
    expect(pruned.code, pruned.output).toBe(0);
    const items = JSON.parse(pruned.stdout).results[0].items as { id: string; action: string }[];
    expect(items.filter((i) => i.action === 'remove')).toEqual([]);
    for (const { object } of [...real, ...planted]) {
      await expect(readFile(join(storage, object))).resolves.toBeInstanceOf(Buffer);
    }

    // restore latest: the newest signed backup, never a forgery.
    const latest = await runCli(
      ['restore', 'latest', '--target-db', uniqueName('x'), '--dry-run', '--json'],
      env,
    );
    expect(latest.code, latest.output).toBe(0);
    expect(JSON.parse(latest.stdout).backup).toBe(real[1]!.id);

    // restore <forged id>: refused (exit 5) unless --allow-unsigned, then used with a warning.
    const refused = await runCli(['restore', forged[1]!, '--target-db', uniqueName('x')], env);
    expect(refused.code, refused.output).toBe(5);
    expect(refused.stderr).toContain(`its manifest is not believed (bad signature (key ${key.keyId}))`);
    expect(refused.stderr).toContain('was changed after it was signed');
    // A bad signature is never admitted; `latest` never takes the flag.
    const altered = await runCli(
      ['restore', forged[1]!, '--target-db', uniqueName('x'), '--dry-run', '--allow-unsigned'],
      env,
    );
    expect(altered.code, altered.output).toBe(5);
    const latestAllowed = await runCli(
      ['restore', 'latest', '--target-db', uniqueName('x'), '--dry-run', '--allow-unsigned'],
      env,
    );
    expect(latestAllowed.code, latestAllowed.output).toBe(1);
    expect(latestAllowed.stderr).toContain('never `latest`');
    const allowed = await runCli(
      ['restore', forged[0]!, '--target-db', uniqueName('x'), '--dry-run', '--json', '--allow-unsigned'],
      env,
    );
    expect(allowed.code, allowed.output).toBe(0);
    expect(JSON.parse(allowed.stdout).backup).toBe(forged[0]);
    expect(allowed.stderr).toContain(
      `backup ${forged[0]} is not signed by one of the verify keys (unsigned)`,
    );

    // The daemon at start: the newest signed backup is the last success, not the forgery dated later.
    const daemon = await startDaemon({ ...env, DATASAVER_SCHEDULE: '0 0 1 1 *' });
    try {
      const t = await waitFor('the usage read at start', async () => {
        const target = (await daemon.health()).body.targets[0]!;
        return target.destinations[0]?.backups === 2 ? target : undefined;
      });
      expect(t.lastSuccess?.backupId).toBe(real[1]!.id);
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
  });

  it('rotation: old backups verify while the old key is configured, and are refused once it is gone', async () => {
    const oldKey = await keygen('old.pem');
    const newKey = await keygen('new.pem');
    const storage = await tempDir();
    const old = await backup(
      targetEnv(db, storage, {
        DATASAVER_SIGNING_KEY_FILE: oldKey.file,
        DATASAVER_VERIFY_KEYS: oldKey.verifyKey,
      }),
    );
    const rotated = targetEnv(db, storage, {
      DATASAVER_SIGNING_KEY_FILE: newKey.file,
      DATASAVER_VERIFY_KEYS: `${newKey.verifyKey},${oldKey.verifyKey}`,
    });
    const fresh = await backup(rotated);
    const both = await runCli(['list', '--json'], rotated);
    expect(JSON.parse(both.stdout).backups.map((b: { id: string }) => b.id)).toEqual([old.id, fresh.id]);
    const verified = await runCli(['verify', old.id], rotated);
    expect(verified.code, verified.output).toBe(0);

    const newOnly = targetEnv(db, storage, { DATASAVER_VERIFY_KEYS: newKey.verifyKey });
    const listed = JSON.parse((await runCli(['list', '--json'], newOnly)).stdout);
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual([fresh.id]);
    expect(listed.untrusted).toMatchObject([{ id: old.id, reason: `signed by unknown key ${oldKey.keyId}` }]);
    const refused = await runCli(['restore', old.id, '--target-db', uniqueName('x')], newOnly);
    expect(refused.code, refused.output).toBe(5);

    // No verify keys: every readable manifest, signed or not, as before signing.
    const unverified = JSON.parse((await runCli(['list', '--json'], targetEnv(db, storage))).stdout);
    expect(unverified.backups).toHaveLength(2);
    expect(unverified.untrusted).toEqual([]);
  });

  it('S3, on a machine with only the bucket settings and the verify key: a forgery in the bucket is ignored', async () => {
    const key = await keygen('s3.pem');
    const prefix = s3Prefix('signed');
    const real = await backup({
      DATASAVER_DATABASE_URL: dbUrl(db),
      ...s3Env(prefix),
      DATASAVER_SIGNING_KEY_FILE: key.file,
      DATASAVER_VERIFY_KEYS: key.verifyKey,
    });
    // Planted straight into the bucket: the real manifest under a newer id, its signature left as it was.
    const s3 = new S3Storage(s3Config(prefix));
    const manifest = JSON.parse(await readRecord(s3, manifestKey(db, real.id)));
    const time = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
    const id = backupId(db, time);
    const object = real.object.replace(real.id, id);
    await s3.put(object, [Buffer.from('not a dump')]);
    const forged = { ...manifest, id, object, createdAt: time.toISOString(), finishedAt: time.toISOString() };
    await s3.put(manifestKey(db, id), [Buffer.from(JSON.stringify(forged))]);

    // No target configured: the shared verify key applies to every backup in the bucket.
    const onlyS3 = { ...s3Env(prefix), DATASAVER_VERIFY_KEYS: key.verifyKey };
    const listed = JSON.parse((await runCli(['list', '--json'], onlyS3)).stdout);
    expect(listed.backups.map((b: { id: string }) => b.id)).toEqual([real.id]);
    expect(listed.untrusted).toMatchObject([{ id, reason: `bad signature (key ${key.keyId})` }]);
    const latest = await runCli(
      ['restore', 'latest', '--target', db, '--to-file', join(keys, 'x.dump'), '--dry-run', '--json'],
      onlyS3,
    );
    expect(latest.code, latest.output).toBe(0);
    expect(JSON.parse(latest.stdout).backup).toBe(real.id);
    const refused = await runCli(['restore', id, '--to-file', join(keys, 'y.dump')], onlyS3);
    expect(refused.code, refused.output).toBe(5);
  });

  it('config check shows key ids, never the signing key', async () => {
    const key = await keygen('shown.pem');
    const env = targetEnv(db, await tempDir(), {
      DATASAVER_SIGNING_KEY_FILE: key.file,
      DATASAVER_VERIFY_KEYS: key.verifyKey,
    });
    const res = await runCli(['config', 'check', '--json'], env);
    expect(res.code, res.output).toBe(0);
    expect(JSON.parse(res.stdout).targets[0].signing).toEqual({
      signingKey: { keyId: key.keyId },
      verifyKeys: [{ keyId: key.keyId }],
    });
    const pem = await readFile(key.file, 'utf8');
    expect(res.output).not.toContain(pem.split('\n')[1]);
  });

  it('a malformed verify key stops every command before it reads anything (exit 2)', async () => {
    const storage = await tempDir();
    const res = await runCli(['list'], targetEnv(db, storage, { DATASAVER_VERIFY_KEYS: 'AAAA' }));
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('DATASAVER_VERIFY_KEYS: verify key entry 1 of 1 is not a public key');
  });
});
