import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { parseManifest } from '../../src/catalog/manifest-read.ts';
import {
  canonicalJson,
  generateSigningKey,
  parseSigningKey,
  parseVerifyKeys,
  type SigningKey,
  signManifest,
  verifyManifestSignature,
} from '../../src/catalog/signature.ts';
import { ConfigError } from '../../src/util/errors.ts';

const manifest: Manifest = {
  version: 1,
  id: 'shop-20260111T020015Z',
  target: 'shop',
  engine: 'postgres',
  status: 'success',
  createdAt: '2026-01-11T02:00:15.123Z',
  finishedAt: '2026-01-11T02:00:19.000Z',
  durationMs: 3877,
  labels: ['scheduled'],
  format: 'custom',
  schemaOnly: false,
  compression: 'zstd',
  compressionLevel: 3,
  encryption: null,
  sizeBytes: 1000,
  storedBytes: 400,
  sha256: 'a'.repeat(64),
  object: 'shop/shop-20260111T020015Z.dump.zst',
  database: 'shop',
  databaseSettings: undefined,
  serverVersion: '16.4',
  toolVersion: 'pg_dump 16.4',
  datasaverVersion: '0.1.0',
  facts: { exact: true, tables: [{ name: 'public.orders', rows: 12 }] },
};

/** The manifest as a reader gets it: serialized, then parsed. */
function stored(m: Manifest): Record<string, unknown> {
  return JSON.parse(JSON.stringify(m, null, 2)) as Record<string, unknown>;
}

const key = generateSigningKey();

describe('signed manifests', () => {
  it('a signed manifest verifies with its public key, and still reads back', () => {
    const signed = signManifest(manifest, key);
    expect(signed.signature).toMatchObject({ algorithm: 'ed25519', keyId: key.keyId });
    expect(verifyManifestSignature(stored(signed), [key.verifyKey])).toEqual({
      status: 'ok',
      keyId: key.keyId,
    });
    const read = parseManifest(JSON.stringify(signed));
    expect('manifest' in read && read.manifest.signature).toEqual(signed.signature);
  });

  it('key order and whitespace of the stored JSON do not matter; canonical JSON sorts keys', () => {
    const signed = stored(signManifest(manifest, key));
    const reordered = Object.fromEntries(Object.entries(signed).reverse());
    expect(verifyManifestSignature(reordered, [key.verifyKey]).status).toBe('ok');
    expect(canonicalJson({ b: [1, { d: 'x', c: null }], a: true })).toBe(
      '{"a":true,"b":[1,{"c":null,"d":"x"}]}',
    );
  });

  it.each<[string, (m: Record<string, unknown>) => void]>([
    ['sha256', (m) => (m.sha256 = 'b'.repeat(64))],
    ['storedBytes', (m) => (m.storedBytes = 401)],
    ['object', (m) => (m.object = 'shop/shop-20260111T020015Z.sql.zst')],
    ['createdAt', (m) => (m.createdAt = '2027-01-11T02:00:15.123Z')],
    ['labels', (m) => (m.labels = ['manual'])],
    ['an unknown field', (m) => (m.keepForever = true)],
    ['a nested fact', (m) => ((m.facts as { tables: { rows: number }[] }).tables[0]!.rows = 13)],
  ])('changing %s breaks the signature', (_name, change) => {
    const m = stored(signManifest(manifest, key));
    change(m);
    expect(verifyManifestSignature(m, [key.verifyKey])).toMatchObject({
      status: 'bad-signature',
      reason: `bad signature (key ${key.keyId})`,
    });
  });

  it('rotation: a manifest verifies when its key is one of several, and names an unknown key otherwise', () => {
    const oldKey = generateSigningKey();
    const newKey = generateSigningKey();
    const old = stored(signManifest(manifest, oldKey));
    expect(verifyManifestSignature(old, [newKey.verifyKey, oldKey.verifyKey]).status).toBe('ok');
    expect(verifyManifestSignature(old, [newKey.verifyKey])).toEqual({
      status: 'unknown-key',
      keyId: oldKey.keyId,
      reason: `signed by unknown key ${oldKey.keyId}`,
    });
  });

  it('an unsigned manifest, a signature copied onto another manifest, and a malformed one are refused', () => {
    expect(verifyManifestSignature(stored(manifest), [key.verifyKey])).toEqual({
      status: 'unsigned',
      reason: 'unsigned',
    });
    const other = stored({ ...manifest, id: 'shop-20260112T020015Z' });
    other.signature = signManifest(manifest, key).signature;
    expect(verifyManifestSignature(other, [key.verifyKey]).status).toBe('bad-signature');
    const malformed = stored(manifest);
    malformed.signature = { algorithm: 'rsa', keyId: key.keyId, value: 'x' };
    expect(verifyManifestSignature(malformed, [key.verifyKey])).toMatchObject({ status: 'bad-signature' });
    expect(verifyManifestSignature([], [key.verifyKey]).status).toBe('bad-signature');
  });

  it('re-signing replaces the old signature', () => {
    const other = generateSigningKey();
    const twice = stored(signManifest(signManifest(manifest, key), other));
    expect(verifyManifestSignature(twice, [other.verifyKey]).status).toBe('ok');
  });
});

describe('keys', () => {
  it('a private key round-trips through PEM and one-line base64 DER, with the same key id', () => {
    const pem = key.pem();
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(parseSigningKey(pem).keyId).toBe(key.keyId);
    const der = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    expect(parseSigningKey(`${der}\n`).keyId).toBe(key.keyId);
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('a signing key never prints its content', () => {
    const pemBody = key.pem().split('\n')[1]!;
    for (const text of [JSON.stringify({ key }), `${key}`, inspect(key), inspect({ key })]) {
      expect(text).not.toContain(pemBody);
      expect(text).toContain(key.keyId);
    }
  });

  it('verify keys: SPKI DER, raw 32 bytes, PEM, separated by commas, whitespace or both; duplicates once', () => {
    const spki = key.verifyKey.text;
    const raw = Buffer.from(spki, 'base64').subarray(-32).toString('base64');
    const pem = `-----BEGIN PUBLIC KEY-----\n${spki}\n-----END PUBLIC KEY-----`;
    const other = generateSigningKey().verifyKey;
    for (const text of [spki, raw, pem, ` ${spki}\n`]) {
      expect(parseVerifyKeys(text).map((k) => k.keyId)).toEqual([key.keyId]);
    }
    expect(parseVerifyKeys(`${pem}\n${other.text}, ${raw}`).map((k) => k.keyId)).toEqual([
      key.keyId,
      other.keyId,
    ]);
  });

  it.each([
    ['', /no verify key given/],
    ['not-base64!', /entry 1 of 1 is not base64/],
    [`${generateSigningKey().verifyKey.text}, AAAA`, /entry 2 of 2 is not a public key/],
  ])('malformed verify keys %j are refused, naming the entry', (text, message) => {
    expect(() => parseVerifyKeys(text)).toThrow(ConfigError);
    expect(() => parseVerifyKeys(text)).toThrow(message);
  });

  it('a private key given as a verify key is refused without being shown', () => {
    const der = key
      .pem()
      .replace(/-----[A-Z ]+-----/g, '')
      .replace(/\s+/g, '');
    const err = (() => {
      try {
        parseVerifyKeys(der);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toMatch(/entry 1 of 1 is not a public key \(it is a private key/);
    expect(err?.message).not.toContain(der.slice(20));
  });

  it.each([
    ['', /empty/],
    ['MC4CAQAwBQYDK2VwBCIEI', /not an Ed25519 private key/],
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', /not an Ed25519 private key/],
    ['-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----', /passphrase/],
  ])('a malformed signing key %j is refused', (text, message) => {
    expect(() => parseSigningKey(text)).toThrow(ConfigError);
    expect(() => parseSigningKey(text)).toThrow(message);
  });
});

describe('openssl interop', () => {
  const dir = mkdtempSync(join(tmpdir(), 'datasaver-sig-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function opensslKey(name: string, algorithm = 'ed25519'): { pem: string; verifyLine: string } {
    const file = join(dir, name);
    execFileSync('openssl', ['genpkey', '-algorithm', algorithm, '-out', file], { stdio: 'ignore' });
    const der = execFileSync('openssl', ['pkey', '-in', file, '-pubout', '-outform', 'DER']);
    return { pem: readFileSync(file, 'utf8'), verifyLine: der.toString('base64') };
  }

  it('a key from `openssl genpkey` signs, and its `openssl pkey -pubout -outform DER | base64` verifies', () => {
    const { pem, verifyLine } = opensslKey('k.pem');
    const signing: SigningKey = parseSigningKey(pem);
    const [verifyKey] = parseVerifyKeys(verifyLine);
    expect(verifyKey!.keyId).toBe(signing.keyId);
    const signed = stored(signManifest(manifest, signing));
    expect(verifyManifestSignature(signed, [verifyKey!]).status).toBe('ok');
  });

  it('openssl verifies what datasaver signed, over the documented bytes', () => {
    const { pem } = opensslKey('k2.pem');
    const signed = signManifest(manifest, parseSigningKey(pem));
    const { signature, ...rest } = stored(signed);
    const message = join(dir, 'message');
    const sig = join(dir, 'sig');
    execFileSync('openssl', ['pkey', '-in', join(dir, 'k2.pem'), '-pubout', '-out', join(dir, 'pub.pem')]);
    writeFileSync(message, `datasaver-manifest-v1\n${canonicalJson(rest)}`);
    writeFileSync(sig, Buffer.from((signature as { value: string }).value, 'base64'));
    const out = execFileSync('openssl', [
      'pkeyutl',
      '-verify',
      '-pubin',
      '-inkey',
      join(dir, 'pub.pem'),
      '-rawin',
      '-in',
      message,
      '-sigfile',
      sig,
    ]).toString();
    expect(out).toMatch(/Signature Verified Successfully/);
  });

  it('an RSA key is refused as a signing key and as a verify key', () => {
    const { pem, verifyLine } = opensslKey('rsa.pem', 'rsa');
    expect(() => parseSigningKey(pem)).toThrow(/rsa key; datasaver signs with Ed25519/);
    expect(() => parseVerifyKeys(verifyLine)).toThrow(/rsa key, not Ed25519/);
  });
});
