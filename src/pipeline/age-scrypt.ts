/**
 * age's passphrase recipient (the `scrypt` stanza), with node:crypto's native scrypt, as a Recipient and
 * an Identity of the age-encryption library. Native, because the library's own runs in JavaScript on the
 * event loop for a second or more per file, and because the work factor of a stanza read from storage
 * must be capped before any memory is committed to it: a forged header asking for 2^20 would take 1 GiB.
 *
 * The stanza: `-> scrypt <salt, 16 bytes, base64 without padding> <log2 N>`, its body the 16-byte file key
 * sealed with ChaCha20-Poly1305 (zero nonce) under scrypt(passphrase, "age-encryption.org/v1/scrypt" +
 * salt, N, r=8, p=1, 32 bytes). It must be the only stanza of its header.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { type Identity, type Recipient, Stanza } from 'age-encryption';

const LABEL = 'age-encryption.org/v1/scrypt';
/** The highest work factor a stanza may ask for: age's default, 256 MiB of scrypt memory. */
export const MAX_SCRYPT_WORK_FACTOR = 18;
const SALT = /^[A-Za-z0-9+/]{22}$/;

function deriveKey(passphrase: string, salt: Buffer, logN: number): Promise<Buffer> {
  const N = 2 ** logN;
  return new Promise((resolve, reject) =>
    scrypt(
      passphrase,
      Buffer.concat([Buffer.from(LABEL), salt]),
      32,
      { N, r: 8, p: 1, maxmem: 128 * 8 * N + 4 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

function sealFileKey(key: Buffer, fileKey: Uint8Array): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  return Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
}

function openFileKey(key: Buffer, body: Uint8Array): Uint8Array | null {
  if (body.length !== 32) throw new Error('invalid scrypt stanza');
  const decipher = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  decipher.setAuthTag(body.subarray(16));
  const fileKey = decipher.update(body.subarray(0, 16));
  try {
    decipher.final();
  } catch {
    return null; // another passphrase
  }
  return fileKey;
}

/** Wraps the file key under a passphrase; `onFileKey` receives the file key (for the payload). */
export class ScryptRecipient implements Recipient {
  readonly #passphrase: string;
  readonly #logN: number;
  readonly #onFileKey: (fileKey: Uint8Array) => void;

  constructor(passphrase: string, logN: number, onFileKey: (fileKey: Uint8Array) => void) {
    this.#passphrase = passphrase;
    this.#logN = logN;
    this.#onFileKey = onFileKey;
  }

  async wrapFileKey(fileKey: Uint8Array): Promise<Stanza[]> {
    this.#onFileKey(fileKey);
    const salt = randomBytes(16);
    const key = await deriveKey(this.#passphrase, salt, this.#logN);
    const args = ['scrypt', salt.toString('base64').replace(/=+$/, ''), String(this.#logN)];
    return [new Stanza(args, sealFileKey(key, fileKey))];
  }
}

/** Unwraps a file key sealed under a passphrase; null when the header has no scrypt stanza or another passphrase. */
export class ScryptIdentity implements Identity {
  readonly #passphrase: string;

  constructor(passphrase: string) {
    this.#passphrase = passphrase;
  }

  async unwrapFileKey(stanzas: Stanza[]): Promise<Uint8Array | null> {
    const stanza = stanzas.find((s) => s.args[0] === 'scrypt');
    if (!stanza) return null;
    if (stanzas.length !== 1) throw new Error('a scrypt stanza is not the only one in the header');
    const [, salt, logN] = stanza.args;
    if (stanza.args.length !== 3 || !SALT.test(salt ?? '') || !/^[1-9]\d?$/.test(logN ?? '')) {
      throw new Error('invalid scrypt stanza');
    }
    if (Number(logN) > MAX_SCRYPT_WORK_FACTOR) {
      throw new Error(
        `the scrypt work factor ${logN} is higher than the ${MAX_SCRYPT_WORK_FACTOR} datasaver accepts`,
      );
    }
    const key = await deriveKey(this.#passphrase, Buffer.from(salt!, 'base64'), Number(logN));
    return openFileKey(key, stanza.body);
  }
}
