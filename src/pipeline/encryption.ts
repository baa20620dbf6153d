/**
 * Client-side encryption as a pipeline stage, in the age format (age-encryption.org/v1), so any machine
 * with the stock `age` tool and the right key opens a stored object.
 *
 * An age file is a text header (one stanza per recipient, each wrapping the same random file key) and a
 * payload of 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a key derived from the file key; the
 * last chunk is flagged as last. Recipients are X25519 public keys (`age1…`): whoever holds them can
 * encrypt but not decrypt, which is what a sidecar should hold. The alternative is a passphrase (age's
 * scrypt recipient), which both encrypts and decrypts.
 *
 * The header (recipients' stanzas, its MAC) is the age-encryption library's work; the payload, every byte
 * of the backup, is sealed natively (age-payload.ts), and the passphrase stanza uses native scrypt
 * (age-scrypt.ts).
 *
 * Streaming: both directions hold about one chunk at a time (plus the stream queues around them), whatever
 * the size of the input; nothing touches disk.
 *
 * Failure modes while decrypting, all raised as a DecryptError from the returned iterable: no identity (or
 * passphrase) opens the header (`wrongKey`), the header or any chunk fails authentication (a flipped byte), the file
 * ends early or has bytes after its last chunk (truncation, concatenation). Such an error is raised before
 * the chunk it concerns is yielded, so no unauthenticated plaintext reaches the caller; a caller that
 * already consumed earlier chunks must still discard what it wrote. Errors of the source itself (a storage
 * read failing) pass through unchanged. Passphrases and identities never appear in any error.
 */
import { randomBytes } from 'node:crypto';
import { Decrypter, Encrypter } from 'age-encryption';
import { ConfigError, errorMessage } from '../util/errors.ts';
import type { Secret } from '../util/secret.ts';
import { ByteQueue, openPayload, PAYLOAD_NONCE_BYTES, payloadKey, sealPayload } from './age-payload.ts';
import { ScryptIdentity, ScryptRecipient } from './age-scrypt.ts';

/** age's default scrypt work factor (log2 N) for passphrase encryption. */
const DEFAULT_SCRYPT_WORK_FACTOR = 18;

/** `age1` and the bech32 of a 32-byte key: 52 data characters and a 6-character checksum. */
const X25519_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** How much of a malformed entry an error shows: enough to find it, not a whole pasted secret. */
const SHOWN_CHARS = 12;

export type EncryptionKey =
  /** X25519 public keys (`age1…`), as returned by parseRecipients. */
  | { recipients: readonly string[] }
  /**
   * A passphrase (age's scrypt recipient). `scryptWorkFactor` (log2 N, default 18 as age's) exists for
   * tests; a lower value makes the passphrase easier to brute-force.
   */
  | { passphrase: Secret; scryptWorkFactor?: number };

export type DecryptionKey =
  /** The content of an age identity file: `AGE-SECRET-KEY-1…` lines, `#` comments, blank lines. */
  { identities: Secret | string } | { passphrase: Secret };

/**
 * The ciphertext cannot be decrypted: wrong key, tampered or truncated. It does not know which backup it
 * concerns, so it is no DatasaverError: the job that reads a backup catches it and throws
 * `new VerifyError(backupId, 'decrypt', err.message)` (exit 5).
 */
export class DecryptError extends Error {
  /**
   * No identity or passphrase given opens the file: the key is wrong, which says nothing about the
   * backup once its checksum has passed. Otherwise the file is damaged, truncated or forged.
   */
  readonly wrongKey: boolean;

  constructor(message: string, options?: { cause?: unknown; wrongKey?: boolean }) {
    super(message, options);
    this.name = 'DecryptError';
    this.wrongKey = options?.wrongKey ?? false;
  }
}

function shown(entry: string): string {
  return entry.length > SHOWN_CHARS ? `${entry.slice(0, SHOWN_CHARS)}…` : entry;
}

/**
 * Parses recipients from a setting (comma or whitespace separated) or from an age recipients file (one a
 * line, `#` comments, blank lines), and checks each is a well-formed X25519 recipient. Throws ConfigError
 * (exit 2: recipients are configuration, and the sidecar must refuse to start rather than write clear or
 * unreadable backups) naming the first malformed entry, or when none is given.
 */
export function parseRecipients(text: string): string[] {
  const entries = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter((entry) => entry !== '');
  if (entries.length === 0) {
    throw new ConfigError('no encryption recipient given', {
      hint: 'give one or more age1… public keys (age-keygen -y key.txt prints the one of a key)',
    });
  }
  entries.forEach((entry, index) => {
    if (!isX25519Recipient(entry)) {
      throw new ConfigError(
        `encryption recipient ${index + 1} ("${shown(entry)}") is not an age X25519 recipient`,
        {
          hint: 'recipients are public keys of the form age1… (58 characters after age1), as printed by age-keygen',
        },
      );
    }
  });
  return entries;
}

function isX25519Recipient(entry: string): boolean {
  if (!X25519_RECIPIENT.test(entry)) return false;
  try {
    new Encrypter().addRecipient(entry); // decodes the bech32 and checks its checksum
    return true;
  } catch {
    return false;
  }
}

/**
 * Identity lines of an identity file's content. Throws ConfigError naming the line of a malformed or
 * unsupported entry (never its content: it is a secret key), or when there is none.
 */
function parseIdentities(text: string): string[] {
  const identities: string[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (!/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/.test(line)) {
      throw new ConfigError(`line ${index + 1} of the encryption identity is not an age X25519 identity`, {
        hint: 'an identity file holds AGE-SECRET-KEY-1… lines, as written by age-keygen',
      });
    }
    identities.push(line);
  });
  if (identities.length === 0) {
    throw new ConfigError('the encryption identity holds no key', {
      hint: 'give an age identity file with an AGE-SECRET-KEY-1… line, as written by age-keygen',
    });
  }
  return identities;
}

/**
 * Encrypts a stream into an age file. The output is the complete age file, header first; memory stays at
 * about one 64 KiB chunk. Errors of the source pass through. Throws ConfigError for a malformed recipient.
 */
export async function* encryptStream(
  source: AsyncIterable<Buffer>,
  key: EncryptionKey,
): AsyncIterable<Buffer> {
  const { header, fileKey } = await sealHeader(key);
  const nonce = randomBytes(PAYLOAD_NONCE_BYTES);
  yield Buffer.concat([header, nonce]);
  yield* sealPayload(source, payloadKey(fileKey, nonce));
}

/**
 * The header of a new age file and its file key. The library writes the header (stanzas, MAC) by
 * encrypting an empty file: its output is the header, a 16-byte nonce and the 16-byte tag of the empty
 * last chunk. The file key reaches this module through one more recipient that adds no stanza (X25519)
 * or through the scrypt recipient (passphrase).
 */
async function sealHeader(key: EncryptionKey): Promise<{ header: Buffer; fileKey: Uint8Array }> {
  const encrypter = new Encrypter();
  let fileKey: Uint8Array | undefined;
  const capture = (k: Uint8Array) => {
    fileKey = k;
  };
  if ('passphrase' in key) {
    const logN = key.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR;
    encrypter.addRecipient(new ScryptRecipient(key.passphrase.reveal(), logN, capture));
  } else {
    for (const recipient of parseRecipients(key.recipients.join('\n'))) encrypter.addRecipient(recipient);
    encrypter.addRecipient({
      wrapFileKey: (k: Uint8Array) => {
        capture(k);
        return [];
      },
    });
  }
  const empty = Buffer.from(await encrypter.encrypt(new Uint8Array(0)));
  const header = empty.subarray(0, empty.length - PAYLOAD_NONCE_BYTES - 16);
  if (!fileKey || !HEADER_END.test(header.subarray(-64).toString('latin1'))) {
    throw new Error('age header could not be written'); // the library changed what encrypt returns
  }
  return { header, fileKey };
}

/** How an age header ends: the MAC line. */
const HEADER_END = /\n--- [A-Za-z0-9+/]{43}\n$/;
/** The longest header read: a few hundred bytes a recipient; anything longer is not datasaver's. */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * Decrypts an age file. Yields the plaintext chunk by chunk, each authenticated before it is yielded.
 * Throws ConfigError for a malformed identity; DecryptError when the file cannot be opened or fails
 * authentication anywhere (see the module comment); errors of the source pass through unchanged.
 */
export async function* decryptStream(
  source: AsyncIterable<Buffer>,
  key: DecryptionKey,
): AsyncIterable<Buffer> {
  const decrypter = new Decrypter();
  if ('passphrase' in key) {
    decrypter.addIdentity(new ScryptIdentity(key.passphrase.reveal()));
  } else {
    const text = typeof key.identities === 'string' ? key.identities : key.identities.reveal();
    for (const identity of parseIdentities(text)) decrypter.addIdentity(identity);
  }
  const input = source[Symbol.asyncIterator]();
  const pending = new ByteQueue();
  const header = await readHeader(input, pending);
  let fileKey: Uint8Array;
  try {
    fileKey = await decrypter.decryptHeader(header);
  } catch (err) {
    const message = errorMessage(err);
    throw new DecryptError(`cannot decrypt: ${message}`, { cause: err, wrongKey: NO_MATCH.test(message) });
  }
  while (pending.length < PAYLOAD_NONCE_BYTES) {
    if (!(await fill(input, pending))) throw new DecryptError('cannot decrypt: the file ends in its nonce');
  }
  const nonce = pending.take(PAYLOAD_NONCE_BYTES);
  async function* rest(): AsyncIterable<Buffer> {
    if (pending.length > 0) yield pending.take(pending.length);
    for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
  }
  yield* openPayload(
    rest(),
    payloadKey(fileKey, nonce),
    (reason) => new DecryptError(`cannot decrypt: ${reason}`),
  );
}

/** What the library says when no identity (or passphrase) opens the header. */
const NO_MATCH = /no identity matched/;

/** Reads one more chunk of the source into `pending`; false at its end. */
async function fill(input: AsyncIterator<Buffer>, pending: ByteQueue): Promise<boolean> {
  const next = await input.next();
  if (next.done) return false;
  pending.push(next.value);
  return true;
}

/** Takes the header (through its MAC line) off the front of the file, reading no more than it may hold. */
async function readHeader(input: AsyncIterator<Buffer>, pending: ByteQueue): Promise<Buffer> {
  const macLine = Buffer.from('\n--- ');
  for (;;) {
    const mac = pending.indexOf(macLine);
    const end = mac === -1 ? -1 : pending.indexOf(Buffer.from('\n'), mac + 1);
    if (end !== -1 && end < MAX_HEADER_BYTES) return pending.take(end + 1);
    if (pending.length >= MAX_HEADER_BYTES) {
      throw new DecryptError(`cannot decrypt: no age header in the first ${MAX_HEADER_BYTES} bytes`);
    }
    if (!(await fill(input, pending))) {
      throw new DecryptError('cannot decrypt: the file ends before its age header does (not an age file)');
    }
  }
}
