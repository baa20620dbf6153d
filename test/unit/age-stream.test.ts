/**
 * The age payload sealed by node:crypto (pipeline/age-stream.ts) at the sizes where chunking can go
 * wrong, checked against the stock `age` tool in both directions, and the ways a file can be cut or
 * extended.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, describe, expect, it } from 'vitest';
import { DecryptError, decryptStream, encryptStream } from '../../src/pipeline/encryption.ts';
import { Secret } from '../../src/util/secret.ts';

const dir = mkdtempSync(join(tmpdir(), 'datasaver-age-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `data` in blocks of `size` bytes. */
async function* blocks(data: Buffer, size: number): AsyncIterable<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

const identity = await generateX25519Identity();
const recipient = await identityToRecipient(identity);
const keyFile = join(dir, 'key.txt');
writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
const KiB64 = 64 * 1024;

describe('age payload at chunk boundaries, against the stock age tool', () => {
  for (const size of [0, 1, KiB64 - 1, KiB64, KiB64 + 1, 2 * KiB64, 3 * KiB64 + 17]) {
    it(`${size} bytes, both ways`, async () => {
      const input = randomBytes(size);
      for (const block of [1000, KiB64, 1 << 20]) {
        const encrypted = await collect(encryptStream(blocks(input, block), { recipients: [recipient] }));
        expect(execFileSync('age', ['-d', '-i', keyFile], { input: encrypted }).equals(input)).toBe(true);
      }
      const theirs = execFileSync('age', ['-r', recipient], { input });
      const decrypted = await collect(decryptStream(blocks(theirs, 4099), { identities: identity }));
      expect(decrypted.equals(input)).toBe(true);
    });
  }
});

describe('age files cut, extended or from elsewhere', () => {
  const input = randomBytes(3 * KiB64 + 5);
  const open = (data: Buffer) => collect(decryptStream(blocks(data, 10_000), { identities: identity }));

  it('refuses a file cut at a chunk boundary, bytes after its last chunk, and a cut header', async () => {
    const encrypted = await collect(encryptStream(blocks(input, KiB64), { recipients: [recipient] }));
    const headerEnd = encrypted.indexOf('\n', encrypted.indexOf('\n--- ') + 1) + 1;
    const firstChunkEnd = headerEnd + 16 + KiB64 + 16;
    for (const damaged of [
      encrypted.subarray(0, firstChunkEnd),
      Buffer.concat([encrypted, encrypted.subarray(headerEnd + 16, firstChunkEnd)]),
      encrypted.subarray(0, headerEnd - 5),
      encrypted.subarray(0, headerEnd + 10),
    ]) {
      await expect(open(damaged)).rejects.toThrow(DecryptError);
    }
  });

  it('writes passphrase files age-encryption opens (its scrypt stanza, its payload)', async () => {
    const passphrase = new Secret('right words');
    const encrypted = await collect(encryptStream(blocks(input, 5000), { passphrase, scryptWorkFactor: 10 }));
    expect(encrypted.toString('latin1')).toMatch(
      /^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n/,
    );
    const decrypter = new Decrypter();
    decrypter.addPassphrase('right words');
    expect(Buffer.from(await decrypter.decrypt(encrypted)).equals(input)).toBe(true);
  });

  it('refuses a passphrase file whose scrypt work factor would cost more than datasaver ever asks', async () => {
    const encrypter = new Encrypter();
    encrypter.setScryptWorkFactor(10);
    encrypter.setPassphrase('right words');
    const written = Buffer.from(await encrypter.encrypt(Buffer.from('x'))).toString('latin1');
    // Forged where the work factor is written: refused before any scrypt runs.
    const encrypted = Buffer.from(written.replace(/^(-> scrypt \S+) 10$/m, '$1 19'), 'latin1');
    expect(encrypted.toString('latin1')).toMatch(/ 19\n/);
    const err = await collect(
      decryptStream(blocks(encrypted, 777), { passphrase: new Secret('right words') }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DecryptError);
    expect((err as Error).message).toMatch(/work factor 19 is above the 18/);
  });

  it('opens a passphrase file age-encryption wrote, and refuses a wrong passphrase as no key matched', async () => {
    const encrypter = new Encrypter();
    encrypter.setScryptWorkFactor(10);
    encrypter.setPassphrase('right words');
    const encrypted = Buffer.from(await encrypter.encrypt(input));
    const right = await collect(
      decryptStream(blocks(encrypted, 777), { passphrase: new Secret('right words') }),
    );
    expect(right.equals(input)).toBe(true);
    const wrong = await collect(
      decryptStream(blocks(encrypted, 777), { passphrase: new Secret('wrong') }),
    ).catch((err: unknown) => err);
    expect(wrong).toBeInstanceOf(DecryptError);
    expect((wrong as DecryptError).noKeyMatched).toBe(true);
  });
});
