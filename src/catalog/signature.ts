/**
 * Signed manifests: an Ed25519 signature over a manifest as stored, so that whoever can write storage but
 * lacks the signing key cannot forge or alter a backup that readers holding the public key believe. The
 * sidecar holds the private key; restore machines hold only public keys (several, for rotation).
 *
 * What is signed: `datasaver-manifest-v1\n` followed by the canonical JSON (keys sorted recursively by UTF-16
 * code unit, no whitespace) of the manifest as stored, every field but `signature` itself, including
 * fields this version does not know. So the data object's key, size and sha256, the times, labels, format
 * and everything else list, prune and restore rely on are covered, and a field added later cannot be
 * slipped into an old signed manifest.
 *
 * Keys as accepted (the formats openssl and `datasaver keygen` write):
 *   - private: PEM PKCS#8 (`openssl genpkey -algorithm ed25519`), or the base64 of its DER on one line;
 *   - public: base64 of the SPKI DER (`openssl pkey -pubout -outform DER | base64`), base64 of the raw 32
 *     bytes, or a PEM block of either; several, separated by commas or whitespace.
 * A key id is the first 16 hex digits of the sha256 of the raw 32-byte public key: what a signature names
 * and what `config check` shows. Parse errors name the entry (by position) and never show a private key.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError } from '../util/errors.ts';
import type { Manifest, ManifestSignature } from './manifest.ts';

/** What the signed bytes start with: a signature over anything else can never pass for a manifest's. */
const SIGNED_PREFIX = 'datasaver-manifest-v1\n';

/** An Ed25519 public key that signatures are checked against. */
export class VerifyKey {
  /** First 16 hex digits of the sha256 of the raw public key. */
  readonly keyId: string;
  /** The key as configuration takes it back: base64 of its SPKI DER (what openssl prints). */
  readonly text: string;
  readonly #key: KeyObject;

  constructor(key: KeyObject) {
    this.#key = key;
    this.keyId = keyIdOf(key);
    this.text = key.export({ format: 'der', type: 'spki' }).toString('base64');
  }

  /** Whether `signature` is this key's over `data`; false for a signature of the wrong length. */
  verifies(data: Buffer, signature: Buffer): boolean {
    return verify(null, data, this.#key, signature);
  }

  /** `config check` shows the id: enough to tell keys apart. */
  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }
}

/** An Ed25519 private key. It prints as its key id only, through every path that turns objects into text. */
export class SigningKey {
  /** The id of its public key, which signatures name. */
  readonly keyId: string;
  /** Its public key, for readers (`DATASAVER_VERIFY_KEYS`). */
  readonly verifyKey: VerifyKey;
  readonly #key: KeyObject;

  constructor(key: KeyObject) {
    this.#key = key;
    this.verifyKey = new VerifyKey(createPublicKey(key));
    this.keyId = this.verifyKey.keyId;
  }

  /** The Ed25519 signature of `data`. */
  sign(data: Buffer): Buffer {
    return sign(null, data, this.#key);
  }

  /** The private key itself as `datasaver keygen` writes it (PEM PKCS#8): for a key file, nowhere else. */
  pem(): string {
    return this.#key.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }

  toString(): string {
    return `SigningKey(${this.keyId})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** How a manifest's signature checks out against the verify keys. */
export type SignatureCheck =
  | { status: 'ok'; keyId: string }
  /** No `signature` field. */
  | { status: 'unsigned'; reason: string }
  /** Signed by a key that is not among the verify keys (an old key no longer configured, or a forger's). */
  | { status: 'unknown-key'; keyId: string; reason: string }
  /** The signature does not match the content, or is malformed: the manifest was altered or forged. */
  | { status: 'bad-signature'; reason: string };

/** A new Ed25519 key pair, for `datasaver keygen`. */
export function generateSigningKey(): SigningKey {
  return new SigningKey(generateKeyPairSync('ed25519').privateKey);
}

/**
 * Parses an Ed25519 private key: PEM PKCS#8 or one line of base64 DER. Throws ConfigError saying what is
 * wrong with it (never showing it), or when it is a key of another kind.
 */
export function parseSigningKey(text: string): SigningKey {
  const trimmed = text.trim();
  const hint =
    'make one with `datasaver keygen --out signing.pem` or `openssl genpkey -algorithm ed25519 -out signing.pem`';
  if (trimmed === '') throw new ConfigError('the signing key is empty', { hint });
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(trimmed)) {
    throw new ConfigError('the signing key is protected by a passphrase, which datasaver cannot enter', {
      hint: 'store it without one (`openssl pkey -in key.pem -out plain.pem`) and protect the file instead',
    });
  }
  let key: KeyObject;
  try {
    key = trimmed.startsWith('-----BEGIN')
      ? createPrivateKey({ key: trimmed, format: 'pem' })
      : createPrivateKey({ key: strictBase64(trimmed), format: 'der', type: 'pkcs8' });
  } catch {
    throw new ConfigError(
      'the signing key is not an Ed25519 private key (expected PEM PKCS#8, or the base64 of its DER on one line)',
      { hint },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`the signing key is a ${key.asymmetricKeyType} key; datasaver signs with Ed25519`, {
      hint,
    });
  }
  return new SigningKey(key);
}

/**
 * Parses verify keys, separated by commas or whitespace (`#` starts a comment to the end of its line), each
 * the base64 of an SPKI DER or of the raw 32 bytes, or a PEM block of one. The same key given twice counts
 * once. Throws ConfigError naming the first
 * entry that is not an Ed25519 public key (by position; a private key pasted by mistake is never shown),
 * or when none is given.
 */
export function parseVerifyKeys(text: string): VerifyKey[] {
  const withoutComments = text.replace(/#.*$/gm, '');
  const entries = pemBodies(withoutComments)
    .split(/[\s,]+/)
    .filter((e) => e !== '');
  if (entries.length === 0) {
    throw new ConfigError('no verify key given', {
      hint: 'give one or more Ed25519 public keys; `datasaver keygen` prints the one of a key it makes',
    });
  }
  const keys = new Map<string, VerifyKey>();
  entries.forEach((entry, i) => {
    const key = parseVerifyKey(entry, `entry ${i + 1} of ${entries.length}`);
    keys.set(key.keyId, key);
  });
  return [...keys.values()];
}

function parseVerifyKey(entry: string, where: string): VerifyKey {
  const hint =
    'give the base64 of the public key: `openssl pkey -in signing.pem -pubout -outform DER | base64`, or the line `datasaver keygen` printed';
  let der: Buffer;
  try {
    der = strictBase64(entry);
  } catch {
    throw new ConfigError(`verify key ${where} is not base64`, { hint });
  }
  let key: KeyObject;
  try {
    key =
      der.length === 32
        ? createPublicKey({
            key: { kty: 'OKP', crv: 'Ed25519', x: der.toString('base64url') },
            format: 'jwk',
          })
        : createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw new ConfigError(
      `verify key ${where} is not a public key${isPrivateKey(der) ? ' (it is a private key: never give that to a reader)' : ''}`,
      { hint },
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(`verify key ${where} is a ${key.asymmetricKeyType} key, not Ed25519`, { hint });
  }
  return new VerifyKey(key);
}

/** The text with each PEM block replaced by its base64 body on one line (markers and line breaks gone). */
function pemBodies(text: string): string {
  return text.replace(
    /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g,
    (_m, _label, body: string) =>
      // Headers such as `Proc-Type:` never occur in an unencrypted key; whatever is not base64 fails later.
      ` ${body.replace(/\s+/g, '')} `,
  );
}

function isPrivateKey(der: Buffer): boolean {
  try {
    createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    return true;
  } catch {
    return false;
  }
}

/** Standard base64 with padding, refused when it holds anything else (Buffer.from skips such characters). */
function strictBase64(text: string): Buffer {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new Error('not base64');
  return Buffer.from(text, 'base64');
}

function keyIdOf(publicKey: KeyObject): string {
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/**
 * JSON with object keys sorted recursively (by UTF-16 code unit) and no whitespace: one text for one value,
 * whatever order its keys were written in. Only JSON values are expected (what JSON.parse returns).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The bytes a manifest's signature covers: every field as stored but `signature`. */
function signedBytes(stored: Record<string, unknown>): Buffer {
  const { signature: _signature, ...rest } = stored;
  return Buffer.from(SIGNED_PREFIX + canonicalJson(rest));
}

/**
 * The manifest with its signature, made over the manifest as it will be stored (serialized and parsed
 * back, so an undefined field signs as the absent field it becomes). Any signature it had is replaced.
 */
export function signManifest(manifest: Manifest, key: SigningKey): Manifest {
  const { signature: _old, ...unsigned } = manifest;
  const stored = JSON.parse(JSON.stringify(unsigned)) as Record<string, unknown>;
  const signature: ManifestSignature = {
    algorithm: 'ed25519',
    keyId: key.keyId,
    value: key.sign(signedBytes(stored)).toString('base64'),
  };
  return { ...unsigned, signature };
}

/**
 * Checks the signature of a manifest as parsed from storage (the raw JSON, before validation, so fields
 * this version does not know are covered too) against `keys`. Never throws: a reason is returned for the
 * reader to report.
 */
export function verifyManifestSignature(stored: unknown, keys: readonly VerifyKey[]): SignatureCheck {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) {
    return { status: 'bad-signature', reason: 'it is not a JSON object' };
  }
  const record = stored as Record<string, unknown>;
  const signature = record.signature;
  if (signature === undefined) return { status: 'unsigned', reason: 'unsigned' };
  const shape = signatureShape(signature);
  if (typeof shape === 'string') return { status: 'bad-signature', reason: `malformed signature (${shape})` };
  const key = keys.find((k) => k.keyId === shape.keyId);
  if (!key) {
    return { status: 'unknown-key', keyId: shape.keyId, reason: `signed by unknown key ${shape.keyId}` };
  }
  const value = Buffer.from(shape.value, 'base64');
  if (!key.verifies(signedBytes(record), value)) {
    return { status: 'bad-signature', reason: `bad signature (key ${shape.keyId})` };
  }
  return { status: 'ok', keyId: key.keyId };
}

/** Hex key id as signatures carry it. */
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
/** An Ed25519 signature (64 bytes) in base64. */
export const SIGNATURE_VALUE_PATTERN = /^[A-Za-z0-9+/]{86}==$/;

/** The signature if it has the shape datasaver writes, else what is wrong with it. */
function signatureShape(value: unknown): ManifestSignature | string {
  if (value === null || typeof value !== 'object') return 'not an object';
  const s = value as Record<string, unknown>;
  if (s.algorithm !== 'ed25519') return 'algorithm is not ed25519';
  if (typeof s.keyId !== 'string' || !KEY_ID_PATTERN.test(s.keyId)) return 'keyId is not 16 hex digits';
  if (typeof s.value !== 'string' || !SIGNATURE_VALUE_PATTERN.test(s.value)) {
    return 'value is not a base64 Ed25519 signature';
  }
  return { algorithm: 'ed25519', keyId: s.keyId, value: s.value };
}
