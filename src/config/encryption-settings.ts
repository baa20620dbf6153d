/**
 * A target's client-side encryption settings (pipeline/encryption.ts): age recipients or a passphrase to
 * encrypt backups with, and an identity file or the passphrase to decrypt them (restore, verify, drill).
 *
 * Fails closed: a setting that is given but unusable (a malformed recipient, an empty recipients list, an
 * identity file that cannot be read or holds no key, a passphrase beside recipients) is a configuration
 * problem, so datasaver refuses to start rather than write backups in clear or to a key no one holds.
 */
import {
  DecryptError,
  type DecryptionKey,
  decryptStream,
  type EncryptionKey,
  encryptStream,
  parseIdentities,
  parseRecipients,
} from '../pipeline/encryption.ts';
import { ConfigError } from '../util/errors.ts';
import { Secret } from '../util/secret.ts';
import { FIELDS } from './fields.ts';
import type { ParseInput, Problems, RawTarget } from './raw.ts';

export interface EncryptionConfig {
  /** How new backups are encrypted; undefined: they are stored in clear. */
  encrypt: EncryptionKey | undefined;
  /** How encrypted backups are opened; undefined: they can be listed and checksum-verified only. */
  decrypt: DecryptionKey | undefined;
  /** The identity file `decrypt` was read from, for `config check` (never its content). */
  identityFile?: string | undefined;
}

export const NO_ENCRYPTION: EncryptionConfig = { encrypt: undefined, decrypt: undefined };

/** The encryption settings of a layer; problems are recorded, and what could be read is returned. */
export function buildEncryption(
  raw: RawTarget,
  readFile: ParseInput['readFile'],
  problems: Problems,
): EncryptionConfig {
  const recipients = raw.encryptionRecipients;
  const passphrase = raw.encryptionPassphrase;
  const identityFile = raw.encryptionIdentityFile;
  if (recipients && passphrase) {
    problems.add(
      passphrase.origin,
      `both ${recipients.origin} and ${passphrase.origin} are set; backups are encrypted to recipients or with a passphrase, not both`,
    );
    return NO_ENCRYPTION;
  }
  if (passphrase && identityFile) {
    problems.add(
      identityFile.origin,
      `both ${passphrase.origin} and ${identityFile.origin} are set; a passphrase decrypts by itself: set one`,
    );
    return NO_ENCRYPTION;
  }
  const config: EncryptionConfig = { encrypt: undefined, decrypt: undefined };
  if (passphrase) {
    const text = String(passphrase.value);
    if (text === '') problems.add(passphrase.origin, 'is empty; give a passphrase, or remove the setting');
    else {
      const secret = new Secret(text);
      config.encrypt = { passphrase: secret };
      config.decrypt = { passphrase: secret };
    }
  }
  if (recipients) {
    const parsed = configured(() => parseRecipients(String(recipients.value)), recipients.origin, problems);
    if (parsed) config.encrypt = { recipients: parsed };
  }
  if (identityFile) {
    const path = String(identityFile.value);
    const decrypt = readIdentity(path, identityFile.origin, readFile, problems);
    if (decrypt) {
      config.decrypt = decrypt;
      config.identityFile = path;
    }
  }
  return config;
}

/** The identity file's content as a decryption key, checked; a problem when unreadable or malformed. */
function readIdentity(
  path: string,
  origin: string,
  readFile: ParseInput['readFile'],
  problems: Problems,
): DecryptionKey | undefined {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    problems.add(origin, `cannot read the identity file ${path}: ${(err as Error).message}`);
    return undefined;
  }
  const ok = configured(() => parseIdentities(text), `${origin} (${path})`, problems);
  return ok ? { identities: new Secret(text) } : undefined;
}

/** `parse()`'s value, or a problem holding its ConfigError's message and hint. */
function configured<T>(parse: () => T, origin: string, problems: Problems): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.add(origin, err.hint ? `${err.message} (${err.hint})` : err.message);
    return undefined;
  }
}

/**
 * A problem when the daemon would drill encrypted backups it cannot open: a drill schedule with
 * encryption on needs the identity file (or the passphrase) beside it.
 */
export function drillKeyProblem(
  raw: RawTarget,
  encryption: EncryptionConfig,
  drillSchedule: string | undefined,
  problems: Problems,
): void {
  if (drillSchedule === undefined || encryption.encrypt === undefined || encryption.decrypt !== undefined)
    return;
  problems.add(
    raw.drillSchedule?.origin ?? FIELDS.drillSchedule.env,
    `scheduled drills of encrypted backups need the key to open them: set ${FIELDS.encryptionIdentityFile.env} (or encryption.identity_file) too, or turn drills off here and run them where the identity is`,
  );
}

/**
 * Where a process writes backups encrypted to recipients and also holds an identity (to verify its
 * backups right away, or to drill them), the identity must open one of those recipients: else every
 * such verify and drill fails with a key error, after each backup is committed. Checked by sealing a few
 * bytes to the recipients and opening them with the identity (no key is derived from the other), before
 * anything runs. Throws ConfigError naming target and settings; a passphrase always opens its own.
 */
export async function assertIdentityOpensRecipients(target: string, config: EncryptionConfig): Promise<void> {
  const { encrypt, decrypt } = config;
  if (!encrypt || !decrypt || !('recipients' in encrypt) || !('identities' in decrypt)) return;
  async function* probe(): AsyncIterable<Buffer> {
    yield Buffer.from('datasaver');
  }
  try {
    for await (const _ of decryptStream(encryptStream(probe(), encrypt), decrypt));
  } catch (err) {
    if (!(err instanceof DecryptError) || !err.noKeyMatched) throw err;
    throw new ConfigError(
      `target ${target}: the identity in ${FIELDS.encryptionIdentityFile.env}${config.identityFile ? ` (${config.identityFile})` : ''} opens none of the recipients in ${FIELDS.encryptionRecipients.env}: its new backups could not be verified or drilled here`,
      {
        hint: "add the identity's recipient (age-keygen -y KEYFILE prints it) to the recipients, or give the identity of one of them",
      },
    );
  }
}

/** What `config check` shows of the encryption settings: what is set, never a secret. */
export function describeEncryption(config: EncryptionConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = {};
  const { encrypt, decrypt } = config;
  if (encrypt === undefined) shown.encrypt = 'off (backups are stored in clear)';
  else if ('passphrase' in encrypt) shown.encrypt = 'passphrase: set';
  else {
    const n = encrypt.recipients.length;
    shown.encrypt = `${n} recipient${n === 1 ? '' : 's'}: ${encrypt.recipients.map((r) => `${r.slice(0, 12)}…`).join(', ')}`;
  }
  if (decrypt === undefined) shown.decrypt = 'no key (encrypted backups are checksum-verified only)';
  else if ('passphrase' in decrypt) shown.decrypt = 'passphrase: set';
  else shown.decrypt = `identity file ${config.identityFile ?? '(set)'}`;
  return shown;
}
