/**
 * The age file format (age-encryption.org/v1) as streams, with the payload sealed by node:crypto.
 *
 * An age file is a header (one stanza per recipient, each wrapping the same random 16-byte file key, and
 * an HMAC over them) followed by a 16-byte nonce and the payload: 64 KiB chunks of plaintext, each sealed
 * with ChaCha20-Poly1305 under HKDF-SHA256(file key, nonce, "payload"), whose 12-byte nonce is an 11-byte
 * big-endian chunk counter and a last-chunk flag. The age-encryption package writes and opens headers
 * (recipient types, scrypt, the MAC); its payload cipher is plain JavaScript, several times slower than
 * node:crypto's native one, and the payload is every byte of a backup, so the chunks are sealed here.
 * The scrypt that wraps a file key for a passphrase runs in node:crypto too, off the main thread.
 *
 * Every failure to open a file is a DecryptError, raised before the chunk it concerns is handed on; errors
 * of the source pass through unchanged.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { type Decrypter, Encrypter, type Identity, type Recipient, Stanza } from 'age-encryption';

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** Plaintext bytes per payload chunk. */
const CHUNK = 64 * 1024;
/** The Poly1305 tag after each sealed chunk. */
const TAG = 16;
const SEALED_CHUNK = CHUNK + TAG;
/** The random nonce between the header and the payload. */
const NONCE = 16;
/** No header of a file datasaver opens is larger (a few hundred bytes per recipient). */
const MAX_HEADER = 1024 * 1024;
/**
 * The highest scrypt work factor (log2 N) a passphrase file may ask for: datasaver writes 18, as age does,
 * and each step up doubles the memory (256 MiB at 18) and time an opener spends; storage is untrusted.
 */
const MAX_SCRYPT_WORK_FACTOR = 18;
/** age's message when no identity unwraps the file key (wrong identity, wrong passphrase). */
const NO_IDENTITY_MATCHED = "no identity matched any of the file's recipients";

/**
 * The ciphertext cannot be decrypted: wrong key, tampered or truncated. It does not know which backup it
 * concerns, so it is no DatasaverError: the job that reads a backup catches it and throws
 * `new VerifyError(backupId, 'decrypt', err.message)` (exit 5).
 */
export class DecryptError extends Error {
  /**
   * No identity (or passphrase) given opens the file's header: the wrong key, or a header damaged where
   * the key is wrapped (the two look alike in age). After the stored bytes passed their checksum, the
   * header is the one the backup wrote, and this means the key is wrong.
   */
  readonly noKeyMatched: boolean;

  constructor(message: string, options?: { cause?: unknown; noKeyMatched?: boolean }) {
    super(message, options);
    this.name = 'DecryptError';
    this.noKeyMatched = options?.noKeyMatched ?? false;
  }
}

/**
 * A recipient for a passphrase: age's scrypt stanza, `-> scrypt <salt> <log2 N>` over the file key sealed
 * with the scrypt-derived key (r = 8, p = 1, as age). It must be the only recipient of a file.
 */
export function scryptRecipient(passphrase: string, workFactor: number): Recipient {
  return {
    async wrapFileKey(fileKey) {
      const salt = randomBytes(16);
      const key = await scryptKey(passphrase, salt, workFactor);
      const body = seal(key, Buffer.alloc(12), Buffer.from(fileKey));
      return [new Stanza(['scrypt', salt.toString('base64').replace(/=+$/, ''), String(workFactor)], body)];
    },
  };
}

/**
 * The identity for a passphrase: opens age's scrypt stanza with node:crypto's scrypt, off the main thread
 * (the package's own runs in JavaScript on it, over a second per file). Returns null for another
 * passphrase or a header without a scrypt stanza, as the package's does; throws for a malformed stanza,
 * a scrypt stanza beside others, or a work factor above MAX_SCRYPT_WORK_FACTOR, before deriving anything.
 */
export function scryptIdentity(passphrase: string): Identity {
  return {
    async unwrapFileKey(stanzas) {
      const stanza = stanzas.find((s) => s.args[0] === 'scrypt');
      if (stanza === undefined) return null;
      if (stanzas.length !== 1) throw new Error('a scrypt stanza is not the only one in the header');
      const [, salt = '', workFactor = ''] = stanza.args;
      if (stanza.args.length !== 3 || !/^[A-Za-z0-9+/]{22}$/.test(salt) || !/^[1-9]\d?$/.test(workFactor)) {
        throw new Error('invalid scrypt stanza');
      }
      if (Number(workFactor) > MAX_SCRYPT_WORK_FACTOR) {
        throw new Error(
          `the scrypt work factor ${workFactor} is above the ${MAX_SCRYPT_WORK_FACTOR} datasaver writes`,
        );
      }
      if (stanza.body.length !== 32) throw new Error('invalid scrypt stanza');
      const key = await scryptKey(passphrase, Buffer.from(salt, 'base64'), Number(workFactor));
      const decipher = createDecipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: TAG });
      decipher.setAuthTag(stanza.body.subarray(16));
      const fileKey = decipher.update(stanza.body.subarray(0, 16));
      try {
        decipher.final();
      } catch {
        return null; // another passphrase
      }
      return fileKey;
    },
  };
}

/** age's scrypt: the passphrase with the label and salt, r = 8, p = 1, 32 bytes. */
function scryptKey(passphrase: string, salt: Buffer, workFactor: number): Promise<Buffer> {
  const N = 2 ** workFactor;
  const label = Buffer.from('age-encryption.org/v1/scrypt');
  return scryptAsync(passphrase, Buffer.concat([label, salt]), 32, {
    N,
    r: 8,
    p: 1,
    maxmem: 129 * N * 8 + 1024 * 1024,
  });
}

/**
 * Encrypts `source` into an age file for `recipients` (`age1…` strings or Recipient objects): the header,
 * then the nonce and the sealed chunks. Holds at most one chunk plus the source's current block.
 */
export async function* ageEncrypt(
  source: AsyncIterable<Buffer>,
  recipients: readonly (string | Recipient)[],
): AsyncIterable<Buffer> {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  let fileKey: Uint8Array | undefined;
  // Called with the file key like every recipient; wraps nothing, so the header is age's own.
  encrypter.addRecipient({
    wrapFileKey: (key) => {
      fileKey = key;
      return [];
    },
  });
  const emptyFile = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const header = emptyFile.subarray(0, headerLength(emptyFile) ?? 0);
  const nonce = randomBytes(NONCE);
  const stream = new Stream(streamKey(fileKey!, nonce));
  yield Buffer.concat([header, nonce]);
  // At most one chunk's bytes wait here: a full chunk is sealed as not the last only once a byte after it
  // is known to exist. The source's blocks are sealed where they lie, not copied together.
  let pending: Buffer = Buffer.alloc(0);
  for await (const block of source) {
    const sealed: Buffer[] = [];
    let at = 0;
    if (pending.length + block.length <= CHUNK) {
      pending = Buffer.concat([pending, block]);
      continue;
    }
    if (pending.length > 0) {
      at = CHUNK - pending.length;
      sealed.push(stream.seal(Buffer.concat([pending, block.subarray(0, at)]), false));
    }
    while (block.length - at > CHUNK) {
      sealed.push(stream.seal(block.subarray(at, at + CHUNK), false));
      at += CHUNK;
    }
    pending = block.subarray(at);
    yield* sealed;
  }
  yield stream.seal(pending, true);
}

/**
 * Decrypts an age file with `decrypter` (its identities or passphrase added). Yields the plaintext,
 * each chunk authenticated before it is yielded; throws DecryptError when the header does not open or
 * any chunk fails (tampered, truncated, bytes after the last chunk).
 */
export async function* ageDecrypt(
  source: AsyncIterable<Buffer>,
  decrypter: Decrypter,
): AsyncIterable<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  let stream: Stream | undefined;
  let first = true;
  for await (const block of source) {
    pending = pending.length === 0 ? block : Buffer.concat([pending, block]);
    if (stream === undefined) {
      const opened = await openHeader(pending, decrypter);
      if (opened === undefined) continue;
      stream = opened.stream;
      pending = pending.subarray(opened.length);
    }
    const plain: Buffer[] = [];
    let at = 0;
    while (pending.length - at > SEALED_CHUNK) {
      plain.push(stream.open(pending.subarray(at, at + SEALED_CHUNK), false));
      at += SEALED_CHUNK;
      first = false;
    }
    pending = pending.subarray(at);
    if (plain.length > 0) yield Buffer.concat(plain);
  }
  if (stream === undefined) throw new DecryptError('cannot decrypt: the file ends inside its age header');
  if (pending.length < TAG) throw new DecryptError('cannot decrypt: the file is truncated');
  const last = stream.open(pending, true);
  if (last.length === 0 && !first) throw new DecryptError('cannot decrypt: the last chunk is empty');
  yield last;
}

/**
 * The payload stream once `data` holds the header and the nonce: the file key unwrapped from the header,
 * and how many bytes the two take. Undefined while more bytes are needed.
 */
async function openHeader(
  data: Buffer,
  decrypter: Decrypter,
): Promise<{ stream: Stream; length: number } | undefined> {
  const length = headerLength(data);
  if (length === undefined) {
    if (data.length > MAX_HEADER)
      throw new DecryptError('cannot decrypt: no age header ends in the first 1 MiB');
    return undefined;
  }
  if (data.length < length + NONCE) return undefined;
  // A passphrase's work factor is capped by scryptIdentity before anything is derived.
  let fileKey: Uint8Array;
  try {
    fileKey = await decrypter.decryptHeader(data.subarray(0, length));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new DecryptError(`cannot decrypt: ${message}`, {
      cause: err,
      noKeyMatched: message.includes(NO_IDENTITY_MATCHED),
    });
  }
  const nonce = data.subarray(length, length + NONCE);
  return { stream: new Stream(streamKey(fileKey, nonce)), length: length + NONCE };
}

/** Length of the header at the start of `data` (through its `--- <MAC>` line), or undefined if not all there. */
function headerLength(data: Buffer): number | undefined {
  const mac = data.indexOf('\n--- ');
  if (mac === -1) return undefined;
  const end = data.indexOf('\n', mac + 1);
  return end === -1 ? undefined : end + 1;
}

function streamKey(fileKey: Uint8Array, nonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

/** The payload's chunks in order: each sealed or opened with the next counter value. */
class Stream {
  readonly #key: Buffer;
  #counter = 0n;

  constructor(key: Buffer) {
    this.#key = key;
  }

  seal(plaintext: Buffer, last: boolean): Buffer {
    return seal(this.#key, this.#nonce(last), plaintext);
  }

  open(sealed: Buffer, last: boolean): Buffer {
    const decipher = createDecipheriv('chacha20-poly1305', this.#key, this.#nonce(last), {
      authTagLength: TAG,
    });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG));
    try {
      decipher.final();
    } catch (err) {
      throw new DecryptError(
        last
          ? 'cannot decrypt: the last chunk fails authentication (tampered or truncated)'
          : 'cannot decrypt: a chunk fails authentication (tampered)',
        { cause: err },
      );
    }
    return plaintext;
  }

  /** The counter (11 bytes, big-endian) and the last-chunk flag; then the counter moves on. */
  #nonce(last: boolean): Buffer {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64BE(this.#counter, 3);
    nonce[11] = last ? 1 : 0;
    this.#counter += 1n;
    return nonce;
  }
}

function seal(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}
