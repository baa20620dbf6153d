/**
 * Encrypted backups with a fake engine and in-memory storage: what storage holds (ciphertext, a sealed
 * manifest), and how verify, restore and drills open them, or refuse to.
 */
import { createHash } from 'node:crypto';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import { verifyKey } from '../../src/catalog/layout.ts';
import { type Manifest, serializeManifest } from '../../src/catalog/manifest.ts';
import { parseManifest } from '../../src/catalog/manifest-read.ts';
import { openManifest } from '../../src/catalog/sealed.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { drillBackup } from '../../src/jobs/drill.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { CIPHERTEXT_ONLY, verifyBackup } from '../../src/jobs/verify.ts';
import type { DecryptionKey, EncryptionKey } from '../../src/pipeline/encryption.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { ConfigError, VerifyError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { fakeEngine } from '../support/fake-engine.ts';

const MARKER = 'marker-7f3a9c-secret';

async function keypair(): Promise<{ decrypt: DecryptionKey; recipient: string }> {
  const identity = await generateX25519Identity();
  return { decrypt: { identities: new Secret(identity) }, recipient: await identityToRecipient(identity) };
}

function target(encrypt: EncryptionKey, decrypt?: DecryptionKey): TargetConfig {
  const base = offlineTarget('shop', undefined);
  return {
    ...base,
    connection: { ...base.connection, database: `db_${MARKER}` },
    encryption: { encrypt, decrypt },
  };
}

const engine = () => {
  const e = fakeEngine(async function* () {
    yield Buffer.from(`PGDMP ${MARKER} `.repeat(20_000));
  });
  return { ...e, facts: async () => ({ exact: true, tables: [{ name: `public.${MARKER}`, rows: 3 }] }) };
};

async function backup(encrypt: EncryptionKey, decrypt?: DecryptionKey) {
  const storage = new MemoryStorage();
  const { manifest } = await runBackup(
    { target: target(encrypt, decrypt), labels: [], verify: false },
    { engine: engine(), destinations: [storage] },
  );
  return { storage, manifest };
}

function storedBytes(storage: MemoryStorage): Buffer {
  return Buffer.concat([...storage.objects.values()].map((o) => o.data));
}

/** The manifest forged to match `data` (its sha256 and size), as one who can write storage could. */
async function replaceObject(storage: MemoryStorage, manifest: Manifest, data: Buffer): Promise<Manifest> {
  const forged = {
    ...manifest,
    storedBytes: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  await storage.put(manifest.object, [data]);
  await storage.put(`shop/${manifest.id}.manifest.json`, [serializeManifest(forged)]);
  return forged;
}

describe('encrypted backups', () => {
  it('store an age file and a sealed manifest: no plaintext byte in storage', async () => {
    const { recipient } = await keypair();
    const { storage, manifest } = await backup({ recipients: [recipient] });
    expect(manifest.object).toMatch(/\.dump\.zst\.age$/);
    expect(storage.objects.get(manifest.object)!.data.subarray(0, 21).toString()).toBe(
      'age-encryption.org/v1',
    );
    expect(manifest.encryption).toMatchObject({ format: 'age', recipients: [recipient], passphrase: false });
    expect(manifest.database).toBeNull();
    expect(manifest.facts).toEqual({ exact: false, tables: [] });
    expect(storedBytes(storage).includes(MARKER)).toBe(false);
    const catalog = await readCatalog(storage, {});
    expect(catalog.backups.map((m) => m.id)).toEqual([manifest.id]);
    expect(catalog.warnings).toEqual([]);
  });

  it('open with the key: the sealed fields come back; without it or with another, a ConfigError', async () => {
    const { decrypt, recipient } = await keypair();
    const { manifest } = await backup({ recipients: [recipient] });
    const opened = await openManifest(manifest, decrypt);
    expect(opened.database).toBe(`db_${MARKER}`);
    expect(opened.facts.tables).toEqual([{ name: `public.${MARKER}`, rows: 3 }]);
    await expect(openManifest(manifest, undefined)).rejects.toThrow(
      expect.objectContaining({ hint: expect.stringMatching(/DATASAVER_ENCRYPTION_IDENTITY_FILE/) }),
    );
    const other = await keypair();
    const wrong = await openManifest(manifest, other.decrypt).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ConfigError);
    expect((wrong as ConfigError).message).toContain(recipient);
  });

  it('verify: ciphertext only without a key (with a note), everything with it; a wrong key records nothing', async () => {
    const { decrypt, recipient } = await keypair();
    const { storage, manifest } = await backup({ recipients: [recipient] });
    const bare = await verifyBackup(manifest, { storage, engine: engine() });
    expect(bare).toMatchObject({ ok: true, entries: 0, note: CIPHERTEXT_ONLY });
    const full = await verifyBackup(manifest, { storage, engine: engine(), decrypt });
    expect(full).toMatchObject({ ok: true, entries: 1, note: null });
    await storage.delete(verifyKey('shop', manifest.id));
    const other = await keypair();
    await expect(
      verifyBackup(manifest, { storage, engine: engine(), decrypt: other.decrypt }),
    ).rejects.toThrow(ConfigError);
    expect(await storage.stat(verifyKey('shop', manifest.id))).toBeUndefined();
  });

  it('tampered ciphertext under a forged manifest fails as decrypt; the end of the dump never reaches the engine', async () => {
    const { decrypt, recipient } = await keypair();
    const { storage, manifest } = await backup({ recipients: [recipient] });
    const data = Buffer.from(storage.objects.get(manifest.object)!.data);
    data[data.length - 100]! ^= 0x01;
    const forged = await replaceObject(storage, manifest, data);
    const result = await verifyBackup(forged, { storage, engine: engine(), decrypt });
    expect(result).toMatchObject({ ok: false, reason: 'decrypt' });
    let restored = 0;
    const e = engine();
    const err = await runRestore(
      { manifest: forged, dryRun: false, force: false, dropExisting: false, jobs: 1 },
      {
        engine: {
          ...e,
          restore: async (source) => {
            for await (const chunk of source) restored += chunk.length;
          },
        },
        storage,
        decrypt,
      },
    ).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).reason).toBe('decrypt');
    expect(restored).toBeLessThan(manifest.sizeBytes);
  });

  it('a passphrase encrypts and decrypts; a drill compares the sealed facts', async () => {
    const passphrase = new Secret('correct horse battery staple');
    const { storage, manifest } = await backup({ passphrase, scryptWorkFactor: 10 });
    expect(manifest.encryption).toMatchObject({ recipients: [], passphrase: true });
    const e = engine();
    const result = await drillBackup(manifest, {
      storage,
      decrypt: { passphrase },
      openPlace: async () => ({
        engine: {
          ...e,
          restoredFacts: async () => ({ exact: true, tables: [{ name: `public.${MARKER}`, rows: 3 }] }),
        },
        database: undefined,
        description: 'fake place',
        release: async () => {},
      }),
    });
    expect(result).toMatchObject({ ok: true, compared: 1 });
    await expect(drillBackup(manifest, { storage, openPlace: async () => ({}) as never })).rejects.toThrow(
      /no key to open it/,
    );
  });

  it('backups in clear still verify and restore where a key is configured (encryption turned on later)', async () => {
    const { decrypt } = await keypair();
    const storage = new MemoryStorage();
    const { manifest } = await runBackup(
      {
        target: { ...target({ recipients: [] }), encryption: { encrypt: undefined, decrypt } },
        labels: [],
        verify: false,
      },
      { engine: engine(), destinations: [storage] },
    );
    expect(manifest.encryption).toBeNull();
    expect(await verifyBackup(manifest, { storage, engine: engine(), decrypt })).toMatchObject({
      ok: true,
      entries: 1,
    });
    let restored = 0;
    await runRestore(
      { manifest, dryRun: false, force: false, dropExisting: false, jobs: 1 },
      {
        engine: {
          ...engine(),
          restore: async (source) => {
            for await (const chunk of source) restored += chunk.length;
          },
        },
        storage,
        decrypt,
      },
    );
    expect(restored).toBe(manifest.sizeBytes);
  });

  it('manifest schema: encryption null or a well-formed object, nothing else', () => {
    const m = (encryption: unknown) =>
      parseManifest(
        JSON.stringify({
          ...JSON.parse(
            serializeManifest({
              version: 1,
              id: 'shop-20260111T020015Z',
              target: 'shop',
              engine: 'postgres',
              status: 'success',
              createdAt: '2026-01-11T02:00:15.000Z',
              finishedAt: '2026-01-11T02:00:16.000Z',
              durationMs: 1,
              labels: [],
              format: 'custom',
              schemaOnly: false,
              compression: 'zstd',
              compressionLevel: 3,
              encryption: null,
              sizeBytes: 1,
              storedBytes: 1,
              sha256: 'a'.repeat(64),
              object: 'shop/shop-20260111T020015Z.dump.zst.age',
              database: null,
              serverVersion: '15',
              toolVersion: '15',
              datasaverVersion: 't',
              facts: { exact: false, tables: [] },
            }).toString(),
          ),
          encryption,
        }),
      );
    const good = { format: 'age', recipients: [], passphrase: true, contents: 'YWdl' };
    expect('manifest' in m(null)).toBe(true);
    expect('manifest' in m(good)).toBe(true);
    expect(m({ ...good, contents: 'not base64!' })).toEqual({ error: expect.stringMatching(/contents/) });
    expect(m({ ...good, recipients: ['age1short'] })).toEqual({ error: expect.stringMatching(/recipients/) });
    expect(m({ ...good, format: 'gpg' })).toEqual({ error: expect.stringMatching(/format/) });
  });
});
