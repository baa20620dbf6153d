/** `datasaver keygen`: a signing key (and its verify key) or an age identity (and its recipient). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import {
  parseSigningKey,
  parseVerifyKeys,
  signManifest,
  verifyManifestSignature,
} from '../../src/catalog/signature.ts';
import { run } from '../../src/cli/program.ts';
import { decryptStream, encryptStream } from '../../src/pipeline/encryption.ts';

const dir = mkdtempSync(join(tmpdir(), 'datasaver-keygen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function keygen(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(['keygen', ...args], {
    env: {},
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    stdin: Readable.from([]),
    signal: new AbortController().signal,
  });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

describe('datasaver keygen', () => {
  it('writes a PEM PKCS#8 Ed25519 key (mode 0600) and prints its verify key, which checks its signatures', async () => {
    const file = join(dir, 'signing.pem');
    const { code, stdout, stderr } = await keygen('--out', file);
    expect(code).toBe(0);
    const pem = readFileSync(file, 'utf8');
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = parseSigningKey(pem);
    const [verifyKey] = parseVerifyKeys(stdout);
    expect(verifyKey!.keyId).toBe(key.keyId);
    expect(stderr).toContain(`wrote signing key ${key.keyId} to ${file}`);
    const signed = signManifest({ id: 'x' } as unknown as Manifest, key);
    expect(verifyManifestSignature(JSON.parse(JSON.stringify(signed)), [verifyKey!]).status).toBe('ok');
    // openssl reads the key and derives the same public key.
    const der = execFileSync('openssl', ['pkey', '-in', file, '-pubout', '-outform', 'DER']);
    expect(der.toString('base64')).toBe(stdout.trim());
  });

  it('--json: the file, key id and verify key', async () => {
    const file = join(dir, 'signing-json.pem');
    const { code, stdout } = await keygen('--out', file, '--json');
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { file: string; keyId: string; verifyKey: string };
    expect(out.file).toBe(file);
    expect(parseSigningKey(readFileSync(file, 'utf8')).keyId).toBe(out.keyId);
    expect(parseVerifyKeys(out.verifyKey)[0]!.keyId).toBe(out.keyId);
  });

  it('never replaces an existing file, and leaves no temp file behind', async () => {
    const file = join(dir, 'existing.pem');
    writeFileSync(file, 'the old key');
    const { code, stderr } = await keygen('--out', file);
    expect(code).toBe(1);
    expect(stderr).toContain(`${file} exists; keygen never overwrites a file`);
    expect(readFileSync(file, 'utf8')).toBe('the old key');
    expect(readdirSync(dir).filter((f) => f.includes('.datasaver-'))).toEqual([]);
  });

  it('needs --out', async () => {
    const { code, stderr } = await keygen();
    expect(code).not.toBe(0);
    expect(stderr).toContain('keygen needs --out FILE');
  });

  it('--age writes an identity in age-keygen format that decrypts what was encrypted to its recipient', async () => {
    const file = join(dir, 'identity.txt');
    const { code, stdout } = await keygen('--age', '--out', file);
    expect(code).toBe(0);
    const recipient = stdout.trim();
    expect(recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(
      new RegExp(
        `^# created: \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\n# public key: ${recipient}\\nAGE-SECRET-KEY-1[0-9A-Z]+\\n$`,
      ),
    );
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const secret = Buffer.from('a dump that only the identity opens');
    const sealed = await collect(encryptStream(Readable.from([secret]), { recipients: [recipient] }));
    expect(await collect(decryptStream(Readable.from([sealed]), { identities: text }))).toEqual(secret);
  });

  it('--age --json: the file and the recipient', async () => {
    const file = join(dir, 'identity-json.txt');
    const { stdout } = await keygen('--age', '--out', file, '--json');
    const out = JSON.parse(stdout) as { file: string; recipient: string };
    expect(out.file).toBe(file);
    expect(readFileSync(file, 'utf8')).toContain(`# public key: ${out.recipient}\n`);
  });
});
