/**
 * `datasaver keygen --out FILE`: a new Ed25519 key for signing manifests, written as PEM PKCS#8 (what
 * `openssl genpkey -algorithm ed25519` writes), and its verify key printed for DATASAVER_VERIFY_KEYS.
 * `datasaver keygen --age --out FILE`: a new age X25519 identity in age-keygen's format, and its recipient
 * printed for DATASAVER_ENCRYPTION_RECIPIENTS, for machines without `age-keygen`.
 *
 * A key file is written once: mode 0600, crash-atomically (temp file, fsync, link), and never over an
 * existing file, so a key that protects backups cannot be lost to a mistyped path.
 */
import { resolve } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { generateSigningKey } from '../catalog/signature.ts';
import { writeFileDurably } from '../util/durable-file.ts';
import { UsageError } from '../util/errors.ts';
import { tempFileBeside } from '../util/private-temp.ts';
import type { CliContext } from './context.ts';
import { printJson } from './output.ts';

export interface KeygenOptions {
  out?: string;
  age?: boolean;
  json?: boolean;
}

export async function keygenCommand(ctx: CliContext, opts: KeygenOptions): Promise<number> {
  if (opts.out === undefined || opts.out === '') {
    throw new UsageError('keygen needs --out FILE', {
      hint: 'name a file that does not exist yet, e.g. `datasaver keygen --out signing.pem`',
    });
  }
  const file = resolve(opts.out);
  if (opts.age) {
    const { identityFile, recipient } = await ageIdentity(new Date());
    await writeKeyFile(ctx, file, identityFile);
    if (opts.json) printJson(ctx.stdout, { file, recipient });
    else {
      ctx.stderr.write(
        `wrote an age identity to ${file}: keep it where backups are restored (DATASAVER_ENCRYPTION_IDENTITY_FILE), never on the sidecar; its recipient below goes in DATASAVER_ENCRYPTION_RECIPIENTS\n`,
      );
      ctx.stdout.write(`${recipient}\n`);
    }
    return 0;
  }
  const key = generateSigningKey();
  await writeKeyFile(ctx, file, key.pem());
  const verifyKey = key.verifyKey.text;
  if (opts.json) printJson(ctx.stdout, { file, keyId: key.keyId, verifyKey });
  else {
    ctx.stderr.write(
      `wrote signing key ${key.keyId} to ${file}: give it to the sidecar as DATASAVER_SIGNING_KEY_FILE; the verify key below goes in DATASAVER_VERIFY_KEYS wherever backups are read (the sidecar included)\n`,
    );
    ctx.stdout.write(`${verifyKey}\n`);
  }
  return 0;
}

/** A new age X25519 identity as age-keygen writes it (`# created`, `# public key`, the secret key line). */
export async function ageIdentity(now: Date): Promise<{ identityFile: string; recipient: string }> {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  const created = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { identityFile: `# created: ${created}\n# public key: ${recipient}\n${identity}\n`, recipient };
}

/** Writes a new key file (mode 0600), refusing to replace anything at `file`. */
async function writeKeyFile(ctx: CliContext, file: string, content: string): Promise<void> {
  try {
    await writeFileDurably(file, [Buffer.from(content)], {
      temp: await tempFileBeside(file),
      ifAbsent: true,
      signal: ctx.signal,
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new UsageError(
        `${file} exists; keygen never overwrites a file (it may hold a key backups need)`,
        {
          hint: 'choose another --out file, or move the old one away first if you are sure it is not needed',
        },
      );
    }
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`cannot write ${file}: its directory does not exist`, {
        hint: 'create the directory first, or choose another --out file',
      });
    }
    throw err;
  }
}
