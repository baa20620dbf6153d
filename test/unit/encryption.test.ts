import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DecryptError,
  decryptStream,
  encryptStream,
  parseRecipients,
} from '../../src/pipeline/encryption.ts';
import { ConfigError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';

/** Cuts a buffer into chunks of awkward, varying sizes (never aligned with age's 64 KiB). */
async function* oddChunks(data: Buffer): AsyncIterable<Buffer> {
  const sizes = [1, 7, 65_537, 3, 100_003, 4_095, 65_535];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    yield data.subarray(at, at + size);
    at += size;
  }
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function* once(data: Buffer): AsyncIterable<Buffer> {
  yield data;
}

async function keypair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

const input = randomBytes(3 * 1024 * 1024 + 12_345);
const fastPassphrase = { passphrase: new Secret('correct horse battery staple'), scryptWorkFactor: 10 };

describe('age encryption stage', () => {
  it('round-trips a multi-MB stream through an X25519 recipient', async () => {
    const { identity, recipient } = await keypair();
    const encrypted = await collect(encryptStream(oddChunks(input), { recipients: [recipient] }));
    expect(encrypted.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(encrypted.includes(input.subarray(1000, 1064))).toBe(false);
    const decrypted = await collect(
      decryptStream(oddChunks(encrypted), { identities: `# key\n\n${identity}\n` }),
    );
    expect(decrypted.equals(input)).toBe(true);
  });

  it('round-trips with a passphrase', async () => {
    const encrypted = await collect(encryptStream(oddChunks(input), fastPassphrase));
    const decrypted = await collect(
      decryptStream(once(encrypted), { passphrase: fastPassphrase.passphrase }),
    );
    expect(decrypted.equals(input)).toBe(true);
    await expect(
      collect(decryptStream(once(encrypted), { passphrase: new Secret('wrong horse') })),
    ).rejects.toThrow(DecryptError);
  });

  it('encrypts to several recipients, each of which decrypts', async () => {
    const a = await keypair();
    const b = await keypair();
    const encrypted = await collect(encryptStream(once(input), { recipients: [a.recipient, b.recipient] }));
    for (const identity of [a.identity, b.identity]) {
      expect((await collect(decryptStream(once(encrypted), { identities: identity }))).equals(input)).toBe(
        true,
      );
    }
  });

  it('fails with a DecryptError for a wrong identity, and never shows the identity', async () => {
    const right = await keypair();
    const wrong = await keypair();
    const encrypted = await collect(encryptStream(once(input), { recipients: [right.recipient] }));
    const err = await collect(
      decryptStream(once(encrypted), { identities: new Secret(wrong.identity) }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DecryptError);
    expect(String((err as Error).message)).not.toContain(wrong.identity.slice(16));
  });

  it('fails on a flipped payload byte and on a truncated file, yielding nothing past the damage', async () => {
    const { identity, recipient } = await keypair();
    const encrypted = await collect(encryptStream(once(input), { recipients: [recipient] }));
    const flipped = Buffer.from(encrypted);
    const at = encrypted.length - 100_000;
    flipped[at] = (flipped[at] ?? 0) ^ 0x01;
    let yielded = 0;
    const flippedErr = await (async () => {
      for await (const chunk of decryptStream(oddChunks(flipped), { identities: identity }))
        yielded += chunk.length;
    })().catch((e: unknown) => e);
    expect(flippedErr).toBeInstanceOf(DecryptError);
    expect(yielded).toBeLessThan(input.length - 65_536);

    // Cut exactly on a chunk boundary (the payload starts after the header and a 16-byte nonce): the case a
    // careless reader would take for a complete file.
    const chunkWithTag = 65_536 + 16;
    const payloadStart = encrypted.length - Math.ceil(input.length / 65_536) * 16 - input.length;
    const truncated = encrypted.subarray(0, payloadStart + 10 * chunkWithTag);
    await expect(collect(decryptStream(once(truncated), { identities: identity }))).rejects.toThrow(
      DecryptError,
    );
    await expect(
      collect(decryptStream(once(encrypted.subarray(0, -1)), { identities: identity })),
    ).rejects.toThrow(DecryptError);
  });

  it('passes errors of the source through unchanged', async () => {
    const { identity, recipient } = await keypair();
    const encrypted = await collect(encryptStream(once(input), { recipients: [recipient] }));
    const failure = new Error('storage read failed');
    async function* failing(): AsyncIterable<Buffer> {
      yield encrypted.subarray(0, 200_000);
      throw failure;
    }
    await expect(collect(decryptStream(failing(), { identities: identity }))).rejects.toBe(failure);
  });
});

describe('parseRecipients', () => {
  it('reads settings and recipients files', async () => {
    const a = (await keypair()).recipient;
    const b = (await keypair()).recipient;
    expect(parseRecipients(`${a}, ${b}`)).toEqual([a, b]);
    expect(parseRecipients(`# ops team\n${a}\n\n  ${b}  # backup key\n`)).toEqual([a, b]);
  });

  it('refuses malformed entries, naming the entry by its first characters only', async () => {
    const good = (await keypair()).recipient;
    const badChecksum = `${good.slice(0, -1)}${good.endsWith('q') ? 'p' : 'q'}`;
    for (const [text, named] of [
      [`${good},ssh-ed25519AAAAC3NzaC1lZDI1NTE5`, 'recipient 2 ("ssh-ed25519A…")'],
      [badChecksum, `recipient 1 ("${good.slice(0, 12)}…")`],
      [`${good} AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQ`, 'recipient 2 ("AGE-SECRET-K…")'],
      [`${good}\nage1pq1abc`, 'recipient 2 ("age1pq1abc")'],
    ] as const) {
      const err = (() => {
        try {
          parseRecipients(text);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(named);
      expect((err as Error).message).not.toContain('QQQQQQQQQQQQQQQQ');
    }
    expect(() => parseRecipients('# nobody\n\n')).toThrow(/no encryption recipient/);
    await expect(collect(encryptStream(once(input), { recipients: ['age1nope'] }))).rejects.toThrow(
      ConfigError,
    );
  });

  it('refuses a malformed identity without showing it', async () => {
    const err = await collect(
      decryptStream(once(input), { identities: '# k\nAGE-SECRET-KEY-1SECRETSECRET\n' }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('line 2');
    expect((err as Error).message).not.toContain('SECRETSECRET');
  });
});

describe('memory', () => {
  // Bounded buffering, measured as how far the stage reads ahead of what it has handed on: deterministic,
  // unlike RSS, whose growth over a run is mostly garbage-collector slack (a cold process grows by ~60 MB
  // on 64 MB and ~75 MB on 256 MB: bounded, but not under a tight figure).
  async function maxReadAhead(
    stage: (source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>,
    data: Buffer[],
  ) {
    let read = 0;
    let handedOn = 0;
    let maxAhead = 0;
    async function* counted(): AsyncIterable<Buffer> {
      for (const block of data) {
        read += block.length;
        yield block;
      }
    }
    for await (const chunk of stage(counted())) {
      handedOn += chunk.length;
      maxAhead = Math.max(maxAhead, read - handedOn);
    }
    return { maxAhead, handedOn };
  }

  it('encrypts and decrypts 64 MB reading at most a few chunks ahead', async () => {
    const { identity, recipient } = await keypair();
    const block = randomBytes(1024 * 1024);
    const blocks = Array.from({ length: 64 }, () => block);
    const encrypted: Buffer[] = [];
    const enc = await maxReadAhead(async function* (source) {
      for await (const chunk of encryptStream(source, { recipients: [recipient] })) {
        encrypted.push(chunk);
        yield chunk;
      }
    }, blocks);
    expect(enc.handedOn).toBeGreaterThan(64 * 1024 * 1024);
    expect(enc.maxAhead).toBeLessThan(4 * 1024 * 1024);
    const dec = await maxReadAhead((source) => decryptStream(source, { identities: identity }), encrypted);
    expect(dec.handedOn).toBe(64 * 1024 * 1024);
    expect(dec.maxAhead).toBeLessThan(4 * 1024 * 1024);
  });
});

describe('interoperability with the stock age tool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'datasaver-age-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function age(args: string[], stdin?: Buffer): Buffer {
    try {
      return execFileSync('age', args, { input: stdin, maxBuffer: 64 * 1024 * 1024 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error('the age tool is not installed: apt-get install age (scripts/setup.sh does it)');
      }
      throw err;
    }
  }

  it('age -d opens what datasaver encrypts', async () => {
    const { identity, recipient } = await keypair();
    const keyFile = join(dir, 'key.txt');
    writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
    const encrypted = await collect(encryptStream(oddChunks(input), { recipients: [recipient] }));
    expect(age(['-d', '-i', keyFile], encrypted).equals(input)).toBe(true);
  });

  it('datasaver opens what age -r encrypts', async () => {
    const { identity, recipient } = await keypair();
    const encrypted = age(['-r', recipient], input);
    const decrypted = await collect(decryptStream(oddChunks(encrypted), { identities: identity }));
    expect(decrypted.equals(input)).toBe(true);
  });
});

describe('age decryption failures', () => {
  it('tells a wrong key from a damaged file', async () => {
    const right = await keypair();
    const other = await keypair();
    const encrypted = await collect(encryptStream(once(input), { recipients: [right.recipient] }));
    const err = await collect(decryptStream(once(encrypted), { identities: other.identity })).catch((e) => e);
    expect((err as DecryptError).noKeyMatched).toBe(true);
    const wrongPassphrase = await collect(
      decryptStream(once(await collect(encryptStream(once(input), fastPassphrase))), {
        passphrase: new Secret('not it'),
      }),
    ).catch((e) => e);
    expect((wrongPassphrase as DecryptError).noKeyMatched).toBe(true);
  });

  it('refuses input that is not an age file without reading it all', async () => {
    let read = 0;
    async function* endless(): AsyncIterable<Buffer> {
      for (;;) {
        read += 4096;
        yield Buffer.alloc(4096, 0x41);
      }
    }
    const err = await collect(decryptStream(endless(), { identities: (await keypair()).identity })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(DecryptError);
    expect(read).toBeLessThanOrEqual(1024 * 1024 + 4096); // the longest header datasaver reads
  });
});
