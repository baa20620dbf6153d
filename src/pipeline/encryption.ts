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
 * Streaming: both directions hold about one chunk at a time (plus the stream queues around them), whatever
 * the size of the input; nothing touches disk.
 *
 * Failure modes while decrypting, all raised as a DecryptError from the returned iterable: no identity (or
 * passphrase) opens the header, the header or any chunk fails authentication (a flipped byte), the file
 * ends early or has bytes after its last chunk (truncation, concatenation). Such an error is raised before
 * the chunk it concerns is yielded, so no unauthenticated plaintext reaches the caller; a caller that
 * already consumed earlier chunks must still discard what it wrote. Errors of the source itself (a storage
 * read failing) pass through unchanged. Passphrases and identities never appear in any error.
 */
import { Decrypter, Encrypter } from 'age-encryption';
import { ConfigError } from '../util/errors.ts';
import type { Secret } from '../util/secret.ts';
import { ageDecrypt, ageEncrypt, scryptIdentity, scryptRecipient } from './age-stream.ts';

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

export { DecryptError } from './age-stream.ts';

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
export function parseIdentities(text: string): string[] {
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
 * about one 64 KiB chunk beside the source's current block. Errors of the source pass through. Throws
 * ConfigError for a malformed recipient.
 */
export async function* encryptStream(
  source: AsyncIterable<Buffer>,
  key: EncryptionKey,
): AsyncIterable<Buffer> {
  const recipients =
    'passphrase' in key
      ? [scryptRecipient(key.passphrase.reveal(), key.scryptWorkFactor ?? DEFAULT_SCRYPT_WORK_FACTOR)]
      : parseRecipients(key.recipients.join('\n'));
  yield* ageEncrypt(source, recipients);
}

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
    decrypter.addIdentity(scryptIdentity(key.passphrase.reveal()));
  } else {
    const text = typeof key.identities === 'string' ? key.identities : key.identities.reveal();
    for (const identity of parseIdentities(text)) decrypter.addIdentity(identity);
  }
  yield* ageDecrypt(source, decrypter);
}
