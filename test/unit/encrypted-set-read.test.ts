/**
 * Encrypted whole-server sets read back: verify checks every part's ciphertext without the key (naming
 * a damaged part by its place, its database's name being sealed) and everything with it; restore opens
 * the sealed names and decrypts each part on its way to the engine.
 */
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { backupParts } from '../../src/catalog/parts.ts';
import { openManifest, sealManifest } from '../../src/catalog/sealed.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import type { Engine } from '../../src/engines/engine.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { restoreBackup, type SetRestorePlan } from '../../src/jobs/restore-set.ts';
import { CIPHERTEXT_ONLY, partLabel, verifyBackup } from '../../src/jobs/verify.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { fakeServerEngine } from '../support/fake-engine.ts';

async function* data(text: string): AsyncGenerator<Buffer> {
  yield Buffer.from(text);
}

const server = () =>
  fakeServerEngine({
    globals: () => data('CREATE ROLE app;\n-- PostgreSQL database cluster dump complete\n'),
    databases: { app: () => data('PGDMP app '.repeat(500)), shop: () => data('PGDMP shop '.repeat(500)) },
  });

async function encryptedSet() {
  const identity = await generateX25519Identity();
  const encryption = {
    encrypt: { recipients: [await identityToRecipient(identity)] },
    decrypt: { identities: new Secret(identity) },
  };
  const target: TargetConfig = { ...offlineTarget('srv', undefined), encryption };
  const storage = new MemoryStorage();
  const { manifest } = await runBackup(
    { target, labels: [], verify: false },
    { engine: server(), destinations: [storage] },
  );
  return { storage, manifest, encrypt: encryption.encrypt, decrypt: encryption.decrypt };
}

describe('an encrypted set read back', () => {
  it('verifies every part: the ciphertext alone without the key, everything with it', async () => {
    const { storage, manifest, decrypt } = await encryptedSet();
    const engine = server();
    expect(await verifyBackup(manifest, { storage, engine })).toMatchObject({
      ok: true,
      note: CIPHERTEXT_ONLY,
    });
    expect(await verifyBackup(manifest, { storage, engine, decrypt })).toMatchObject({
      ok: true,
      note: null,
      entries: 3,
    });
    const shop = storage.objects.get(manifest.set!.databases[1]!.object)!.data;
    shop[shop.length - 1] = shop[shop.length - 1]! ^ 1;
    const damaged = await verifyBackup(manifest, { storage, engine });
    expect(damaged).toMatchObject({ ok: false, reason: 'checksum' });
    // The sealed manifest does not say what the part's database is called.
    expect(damaged.message).toContain('part db2: ');
    expect(damaged.message).not.toContain('shop');
    // Nor once opened with the key (verify's structure pass, drills): their messages go into records
    // stored in clear.
    const opened = backupParts(await openManifest(manifest, decrypt));
    expect(opened[2]!.manifest.database).toBe('shop');
    expect(opened.map(partLabel)).toEqual(['globals', 'part db1', 'part db2']);
  });

  it('refuses a sealed part naming one database twice (forged with the public recipient alone)', async () => {
    const { manifest, encrypt, decrypt } = await encryptedSet();
    const opened = await openManifest(manifest, decrypt);
    const [first, second] = opened.set!.databases;
    const twice = {
      ...opened,
      set: { ...opened.set!, databases: [first!, { ...second!, database: first!.database }] },
    };
    const forged = await sealManifest({ ...twice, encryption: null }, encrypt);
    await expect(openManifest(forged, decrypt)).rejects.toThrow(/a database is named twice/);
  });

  it('restores every database under its sealed name, decrypted; without the key, nothing', async () => {
    const { storage, manifest, decrypt } = await encryptedSet();
    const fed: string[] = [];
    const base = server();
    const engine: Engine = {
      ...base,
      restore: async (source, options) => {
        const chunks: Buffer[] = [];
        for await (const c of source) chunks.push(c);
        fed.push(`${options.targetDatabase}: ${Buffer.concat(chunks).toString().slice(0, 10)}`);
      },
    };
    const request = { manifest, dryRun: false, force: false, dropExisting: false, jobs: 1 };
    await expect(restoreBackup(request, { engine, storage })).rejects.toThrow(ConfigError);
    expect(fed).toEqual([]);
    const plan = (await restoreBackup(request, { engine, storage, decrypt })) as SetRestorePlan;
    expect(plan.databases.map((d) => d.database)).toEqual(['app', 'shop']);
    expect(fed).toEqual(['app: PGDMP app ', 'shop: PGDMP shop']);
    await restoreBackup(
      { ...request, database: 'shop', targetDatabase: 'copy' },
      { engine, storage, decrypt },
    );
    expect(fed.at(-1)).toBe('copy: PGDMP shop');
  });
});
