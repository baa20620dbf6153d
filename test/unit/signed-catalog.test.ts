/**
 * Readers with verify keys believe only manifests signed by one of them: forged manifests (unsigned,
 * signed by another key, or real ones altered) never steer retention, `latest`, the daemon's last success
 * or copies between destinations, and their data is never deleted as incomplete.
 */
import { describe, expect, it } from 'vitest';
import {
  findBackup,
  type ManifestTrust,
  readCatalog,
  readTargetUsage,
  trustedBackups,
} from '../../src/catalog/catalog.ts';
import { manifestKey } from '../../src/catalog/layout.ts';
import { type Manifest, serializeManifest } from '../../src/catalog/manifest.ts';
import { generateSigningKey, signManifest } from '../../src/catalog/signature.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { type PruneTarget, prune } from '../../src/jobs/prune.ts';
import { resumeUploads } from '../../src/jobs/resume.ts';
import { DEFAULT_RULES } from '../../src/retention/policy.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { ConfigError, VerifyError } from '../../src/util/errors.ts';
import { fakeEngine } from '../support/fake-engine.ts';
import { storeBackup } from '../support/manifests.ts';

const DAY = 86_400_000;
const NOW = new Date('2026-06-15T12:00:00.000Z');
const at = (days: number) => new Date(NOW.getTime() + days * DAY);

const key = generateSigningKey();
const forger = generateSigningKey();
const trust: ManifestTrust = { verifyKeys: [key.verifyKey] };

/** keepLast 3 and nothing else: three newer forgeries would push every real backup out. */
const target: PruneTarget = {
  name: 'shop',
  timeZone: 'UTC',
  retention: {
    ...DEFAULT_RULES,
    keepLast: 3,
    keepDaily: 0,
    keepWeekly: 0,
    keepMonthly: 0,
    minKeep: 0,
    incompleteGraceHours: 24,
  },
  signing: trust,
};

/** Three real signed backups, and three newer forgeries: unsigned, signed by another key, altered. */
async function forgedStorage() {
  const storage = new MemoryStorage();
  const real: Manifest[] = [];
  for (const d of [-5, -4, -3]) real.push(await storeBackup(storage, at(d), { signWith: key }));
  const unsigned = await storeBackup(storage, at(-0.5));
  const otherKey = await storeBackup(storage, at(-1), { signWith: forger });
  const altered = await storeBackup(storage, at(-2), { signWith: key });
  await storage.put(
    manifestKey('shop', altered.id),
    [serializeManifest({ ...altered, labels: ['keep'] })],
    {},
  );
  return { storage, real, forged: [unsigned, otherKey, altered] };
}

describe('readers with verify keys', () => {
  it('list: forged manifests are not backups, each is reported with why, and their data is not incomplete', async () => {
    const { storage, real, forged } = await forgedStorage();
    const catalog = await readCatalog(storage, { trust });
    expect(catalog.backups.map((m) => m.id)).toEqual(real.map((m) => m.id));
    expect(catalog.incomplete).toEqual([]);
    expect(catalog.untrusted).toEqual([
      {
        target: 'shop',
        id: forged[2]!.id,
        reason: `bad signature (key ${key.keyId})`,
        kept: false,
        altered: true,
      },
      {
        target: 'shop',
        id: forged[1]!.id,
        reason: `signed by unknown key ${forger.keyId}`,
        kept: false,
        altered: false,
      },
      { target: 'shop', id: forged[0]!.id, reason: 'unsigned', kept: false, altered: false },
    ]);
    for (const m of forged) {
      expect(catalog.warnings.some((w) => w.includes(`ignoring backup ${m.id}`))).toBe(true);
    }
    // Without verify keys: as before signing, every readable manifest.
    expect((await readCatalog(storage)).backups).toHaveLength(6);
  });

  it('prune: forgeries neither push real backups out nor get their data deleted', async () => {
    const { storage, real, forged } = await forgedStorage();
    const before = [...storage.objects.keys()].sort();
    const result = await prune(target, { storage, now: NOW });
    expect(result.items.filter((i) => i.action === 'remove')).toEqual([]);
    expect(result.items.map((i) => i.id).sort()).toEqual(real.map((m) => m.id).sort());
    expect([...storage.objects.keys()].sort()).toEqual(before);
    for (const m of forged) expect(storage.objects.has(m.object)).toBe(true);
    // The same storage read without keys: the forgeries would fill keepLast and remove every real one.
    const blind = await prune({ ...target, signing: undefined }, { storage, now: NOW }, { dryRun: true });
    expect(blind.items.filter((i) => i.action === 'remove').map((i) => i.id)).toEqual(
      real.map((m) => m.id).reverse(),
    );
  });

  it('latest is the newest signed backup; a forgery named by its id is refused, or kept when allowed', async () => {
    const { storage, real, forged } = await forgedStorage();
    expect((await findBackup([storage], 'latest', 'shop', { now: NOW, trust })).manifest.id).toBe(
      real[2]!.id,
    );
    for (const m of forged) {
      const err = await findBackup([storage], m.id, 'shop', { now: NOW, trust }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VerifyError);
      expect((err as VerifyError).reason).toBe('manifest');
      // Unsigned or signed by another key: --allow-unsigned is offered; altered: never.
      expect((err as VerifyError).hint).toMatch(
        m === forged[2] ? /changed after it was signed/ : /--allow-unsigned/,
      );
    }
    const allowed = await findBackup([storage], forged[0]!.id, 'shop', {
      now: NOW,
      trust: { ...trust, allowUnsigned: true },
    });
    expect(allowed).toMatchObject({ manifest: { id: forged[0]!.id }, untrusted: 'unsigned' });
    const latest = await findBackup([storage], 'latest', 'shop', {
      now: NOW,
      trust: { ...trust, allowUnsigned: true },
    });
    expect(latest).toMatchObject({ manifest: { id: forged[0]!.id }, untrusted: 'unsigned' });
    // An altered manifest (its signature does not match) is never kept, whatever the trust allows.
    const altered = await findBackup([storage], forged[2]!.id, 'shop', {
      now: NOW,
      trust: { ...trust, allowUnsigned: true },
    }).catch((e: unknown) => e);
    expect((altered as VerifyError).reason).toBe('manifest');
    expect((altered as VerifyError).hint).toMatch(/changed after it was signed/);
  });

  it('a forgery in one storage does not hide a signed copy in the next', async () => {
    const { storage, real } = await forgedStorage();
    const second = new MemoryStorage();
    const tampered = real[2]!;
    await storeBackup(second, at(-3), { signWith: key });
    await storage.put(
      manifestKey('shop', tampered.id),
      [serializeManifest({ ...tampered, storedBytes: 1 })],
      {},
    );
    const found = await findBackup([storage, second], tampered.id, 'shop', { now: NOW, trust });
    expect(found.storage).toBe(second);
    // Even where unsigned copies are allowed, a signed copy is preferred.
    const allowed = await findBackup([storage, second], tampered.id, 'shop', {
      now: NOW,
      trust: { ...trust, allowUnsigned: true },
    });
    expect(allowed.storage).toBe(second);
    expect(allowed.untrusted).toBeUndefined();
  });

  it('rotation: a backup signed with the old key is believed while both keys are configured', async () => {
    const storage = new MemoryStorage();
    const oldKey = generateSigningKey();
    const old = await storeBackup(storage, at(-1), { signWith: oldKey });
    const both = { verifyKeys: [key.verifyKey, oldKey.verifyKey] };
    expect((await trustedBackups([storage], 'shop', { now: NOW, trust: both }))[0]!.manifest.id).toBe(old.id);
    const err = await trustedBackups([storage], 'shop', { now: NOW, trust }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /no backups of target shop .* \(1 backup\(s\) ignored: their manifests are not signed by one of the verify keys\)/,
    );
  });

  it('the daemon: an unsigned newest backup is never the last success, even if unsigned ones were allowed', async () => {
    const { storage, real } = await forgedStorage();
    for (const t of [trust, { ...trust, allowUnsigned: true }]) {
      const usage = await readTargetUsage(storage, 'shop', { now: NOW, trust: t });
      expect(usage.newest?.id).toBe(real[2]!.id);
      expect(usage.backups).toBe(3);
    }
  });

  it('resume copies no forgery to another destination', async () => {
    const { storage, real } = await forgedStorage();
    const other = new MemoryStorage();
    const copies = await resumeUploads(target, { destinations: [storage, other], now: NOW });
    expect(copies.map((c) => c.id).sort()).toEqual(real.map((m) => m.id).sort());
    expect((await readCatalog(other, { trust })).backups.map((m) => m.id)).toEqual(real.map((m) => m.id));
  });
});

describe('copies keep what a newer datasaver signed', () => {
  it('a manifest with fields this version does not know, nested ones too, still verifies after resume copies it', async () => {
    const from = new MemoryStorage();
    const to = new MemoryStorage();
    const plain = await storeBackup(from, at(-1));
    // What a newer writer might add: a field at the top, in the facts, and in a table's entry.
    const newer = {
      ...plain,
      futureField: 'x',
      facts: { ...plain.facts, futureFact: 1, tables: [{ name: 'public.t', rows: 3, newField: true }] },
    } as unknown as Manifest;
    const signed = signManifest(newer, key);
    await from.put(manifestKey('shop', plain.id), [serializeManifest(signed)], {});
    const copies = await resumeUploads(target, { destinations: [from, to], now: NOW });
    expect(copies.map((c) => c.id)).toEqual([plain.id]);
    const copied = await readCatalog(to, { trust });
    expect(copied.untrusted).toEqual([]);
    expect(copied.backups.map((m) => m.id)).toEqual([plain.id]);
  });
});

describe('the backup job signs', () => {
  it("with the target's signing key: the stored manifest verifies, and readers with the key believe it", async () => {
    const storage = new MemoryStorage();
    const signed: TargetConfig = {
      ...offlineTarget('shop', undefined),
      signing: { signingKey: key, verifyKeys: [key.verifyKey] },
    };
    const { manifest } = await runBackup(
      { target: signed, labels: ['daily'], verify: false },
      {
        engine: fakeEngine(async function* () {
          yield Buffer.from('PGDMP data');
        }),
        destinations: [storage],
      },
    );
    expect(manifest.signature?.keyId).toBe(key.keyId);
    expect((await readCatalog(storage, { trust })).backups.map((m) => m.id)).toEqual([manifest.id]);
    // Another machine's verify key does not believe it.
    const catalog = await readCatalog(storage, { trust: { verifyKeys: [forger.verifyKey] } });
    expect(catalog.backups).toEqual([]);
    expect(catalog.untrusted[0]!.reason).toBe(`signed by unknown key ${key.keyId}`);
  });

  it('verify keys without a signing key: refused before anything is dumped (its backups would be ignored)', async () => {
    const storage = new MemoryStorage();
    let dumped = false;
    const err = await runBackup(
      {
        target: {
          ...offlineTarget('shop', undefined),
          signing: { signingKey: undefined, verifyKeys: [key.verifyKey] },
        },
        labels: [],
        verify: false,
      },
      {
        engine: fakeEngine(async function* () {
          dumped = true;
          yield Buffer.from('PGDMP data');
        }),
        destinations: [storage],
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(
      'has verify keys (DATASAVER_VERIFY_KEYS) but no signing key',
    );
    expect(dumped).toBe(false);
    expect(storage.objects.size).toBe(0);
  });

  it('without a signing key the manifest is unsigned, as before', async () => {
    const storage = new MemoryStorage();
    const { manifest } = await runBackup(
      { target: offlineTarget('shop', undefined), labels: [], verify: false },
      {
        engine: fakeEngine(async function* () {
          yield Buffer.from('PGDMP data');
        }),
        destinations: [storage],
      },
    );
    expect(manifest.signature).toBeUndefined();
    expect(storage.objects.get(manifestKey('shop', manifest.id))!.data.toString()).not.toContain('signature');
  });
});
