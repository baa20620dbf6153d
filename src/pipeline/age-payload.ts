/**
 * The payload of an age file (age-encryption.org/v1, "STREAM"), sealed and opened with node:crypto's
 * native ChaCha20-Poly1305: several times faster than a pure-JavaScript cipher, which matters because
 * every byte of every backup passes here. The header, where the keys are, stays with the age-encryption
 * library (encryption.ts); this module only sees the payload key derived from the file key.
 *
 * Layout: a 16-byte nonce (written by the caller), then the plaintext in 64 KiB chunks, each sealed with
 * ChaCha20-Poly1305 under the payload key. A chunk's 12-byte nonce is its index (11 bytes, big endian)
 * and a last-chunk flag; only the last chunk may be shorter than 64 KiB, and it is empty only when the
 * whole plaintext is. So truncation, reordering and appended bytes all fail authentication.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

const CHUNK = 64 * 1024;
const TAG = 16;
export const PAYLOAD_NONCE_BYTES = 16;

/** The payload key: HKDF-SHA256 of the file key, salted with the payload nonce. */
export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

/** A chunk's nonce: its index in 11 big-endian bytes, then 1 for the last chunk. */
function chunkNonce(index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(index, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Bytes queued in arrival order, taken from the front in any size, copying only what is taken. */
export class ByteQueue {
  #parts: Buffer[] = [];
  length = 0;

  push(data: Buffer): void {
    if (data.length === 0) return;
    this.#parts.push(data);
    this.length += data.length;
  }

  /** The first `n` bytes (n <= length), removed from the queue; no copy when one part holds them. */
  take(n: number): Buffer {
    const first = this.#parts[0];
    if (first && first.length >= n) {
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
      this.length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const part = this.#parts[0]!;
      const k = Math.min(part.length, n - at);
      part.copy(out, at, 0, k);
      at += k;
      if (k === part.length) this.#parts.shift();
      else this.#parts[0] = part.subarray(k);
    }
    this.length -= n;
    return out;
  }

  /** The index of `needle` in the queued bytes from `from` on, or -1; joins what it searches. */
  indexOf(needle: Buffer, from = 0): number {
    if (this.#parts.length > 1) this.#parts = [Buffer.concat(this.#parts)];
    return this.#parts[0]?.indexOf(needle, from) ?? -1;
  }
}

/**
 * Seals `source` as an age payload (without its nonce). Yields what each input completes, so memory
 * stays at one chunk plus the input in hand. Errors of the source pass through.
 */
export async function* sealPayload(source: AsyncIterable<Buffer>, key: Buffer): AsyncIterable<Buffer> {
  const pending = new ByteQueue();
  let index = 0;
  for await (const data of source) {
    pending.push(data);
    // A full chunk is sealed as "not last" only once a byte after it has arrived.
    while (pending.length > CHUNK) yield sealChunk(key, index++, false, pending.take(CHUNK));
  }
  yield sealChunk(key, index, true, pending.take(pending.length));
}

function sealChunk(key: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, chunkNonce(index, last), { authTagLength: TAG });
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Opens an age payload (after its nonce), yielding each chunk once it is authenticated. Throws
 * `damaged(reason)` when a chunk fails authentication, the payload ends early or has bytes after its last
 * chunk; errors of the source pass through.
 */
export async function* openPayload(
  source: AsyncIterable<Buffer>,
  key: Buffer,
  damaged: (reason: string) => Error,
): AsyncIterable<Buffer> {
  const pending = new ByteQueue();
  let index = 0;
  for await (const data of source) {
    pending.push(data);
    while (pending.length > CHUNK + TAG) {
      yield openChunk(key, index, false, pending.take(CHUNK + TAG), damaged);
      index++;
    }
  }
  if (pending.length < TAG) throw damaged('the payload ends before its last chunk (truncated)');
  if (pending.length === TAG && index > 0) throw damaged('the last chunk is empty');
  yield openChunk(key, index, true, pending.take(pending.length), damaged);
}

function openChunk(
  key: Buffer,
  index: number,
  last: boolean,
  sealed: Buffer,
  damaged: (reason: string) => Error,
): Buffer {
  const decipher = createDecipheriv('chacha20-poly1305', key, chunkNonce(index, last), {
    authTagLength: TAG,
  });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG));
  try {
    decipher.final();
  } catch {
    throw damaged(`chunk ${index + 1} of the payload fails authentication (damaged, truncated or forged)`);
  }
  return plain;
}
