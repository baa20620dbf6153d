/**
 * Encryption in integration tests: keys made with Debian's `age-keygen`, stored objects opened with the
 * stock `age` and `zstd` tools (never with datasaver's code), and a scan of every stored byte.
 */
import { execFile as execFileCb } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './pg.ts';

const execFile = promisify(execFileCb);

export interface AgeKey {
  /** The identity file (`AGE-SECRET-KEY-1…`), as age-keygen writes it. */
  identityFile: string;
  /** Its public key, `age1…`. */
  recipient: string;
}

/** A new X25519 key pair from age-keygen, its identity in a file of a new temp dir. */
export async function ageKeygen(): Promise<AgeKey> {
  const identityFile = join(await tempDir('age-key-'), 'key.txt');
  await execFile('age-keygen', ['-o', identityFile]);
  const { stdout } = await execFile('age-keygen', ['-y', identityFile]);
  return { identityFile, recipient: stdout.trim() };
}

/**
 * What `age -d -i identity object | zstd -d` gives, as a file: the stock tools' decryption and
 * decompression of a stored object. Rejects when either tool fails.
 */
export async function stockDecrypt(object: string, identityFile: string): Promise<string> {
  const dir = await tempDir('age-out-');
  const compressed = join(dir, 'dump.zst');
  const raw = join(dir, 'dump');
  await execFile('age', ['-d', '-i', identityFile, '-o', compressed, object]);
  await execFile('zstd', ['-q', '-d', '-o', raw, compressed]);
  return raw;
}

/** Every file under `dir` (recursively) whose bytes contain `marker`, as paths relative to `dir`. */
export async function filesContaining(
  dir: string,
  marker: string,
): Promise<{ files: number; found: string[] }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const found: string[] = [];
  for (const file of files) {
    if ((await readFile(file)).includes(marker)) found.push(file.slice(dir.length + 1));
  }
  return { files: files.length, found };
}

/** Flips one bit of the file at `offset` bytes from its end. */
export async function flipByte(path: string, fromEnd: number): Promise<Buffer> {
  const data = await readFile(path);
  data[data.length - fromEnd]! ^= 0x01;
  await writeFile(path, data);
  return data;
}
