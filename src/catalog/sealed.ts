/**
 * Sealed manifests: with encryption on, what a manifest says about the backup's contents (database
 * name, database settings, facts: table names, row counts) is encrypted to the same key as the data, so
 * storage learns nothing about the database from it. The clear part keeps what list, prune and health
 * need (id, target, times, sizes, hashes, format, labels) and the recipients the backup is encrypted to.
 *
 * `sealManifest` is the backup's last step before signing and committing; `openManifest` is the first
 * step of everything that reads what a backup holds (restore and its dry run, verify's structure pass,
 * drills). Opening proves the key: the data object is encrypted to the same recipients or passphrase,
 * so a key that opens the sealed part opens the data too, unless the data was damaged or swapped.
 */
import {
  DecryptError,
  type DecryptionKey,
  decryptStream,
  type EncryptionKey,
  encryptStream,
} from '../pipeline/encryption.ts';
import { ConfigError, VerifyError } from '../util/errors.ts';
import {
  type Manifest,
  type ManifestEncryption,
  SEALED_PLACEHOLDERS,
  type SealedFields,
} from './manifest.ts';
import { parseSealedFields } from './manifest-read.ts';
import { setProblem } from './parts.ts';

/** The settings that give datasaver a key to open encrypted backups, for messages. */
export const DECRYPTION_SETTINGS =
  'DATASAVER_ENCRYPTION_IDENTITY_FILE (an age identity file) or DATASAVER_ENCRYPTION_PASSPHRASE';

/**
 * The manifest with its sealed fields encrypted with `key` into `encryption.contents`, and placeholders
 * in their place. Throws ConfigError for a malformed recipient (configuration checks them first).
 */
export async function sealManifest(manifest: Manifest, key: EncryptionKey): Promise<Manifest> {
  const { set } = manifest;
  const fields: SealedFields = {
    database: manifest.database,
    facts: manifest.facts,
    ...(manifest.databaseSettings ? { databaseSettings: manifest.databaseSettings } : {}),
    ...(set
      ? {
          set: {
            databases: set.databases.map(({ database, databaseSettings, facts }) => ({
              database,
              ...(databaseSettings ? { databaseSettings } : {}),
              facts,
            })),
            excluded: set.excluded,
            unreadable: set.unreadable,
          },
        }
      : {}),
  };
  // Compact JSON: sealed and base64-encoded, it still takes about the room the fields took in clear.
  const contents = await collect(encryptStream(once(Buffer.from(JSON.stringify(fields))), key));
  const encryption: ManifestEncryption = {
    format: 'age',
    recipients: 'recipients' in key ? [...key.recipients] : [],
    passphrase: 'passphrase' in key,
    contents: contents.toString('base64'),
  };
  const { databaseSettings: _sealed, ...clear } = manifest;
  const sealed: Manifest = { ...clear, ...SEALED_PLACEHOLDERS, encryption };
  if (!set) return sealed;
  // A set keeps each object's key, sizes and sha256 in clear (verify without the key checks them all),
  // never what its databases are called or hold.
  const databases = set.databases.map(({ database: _name, databaseSettings: _settings, ...object }) => ({
    ...object,
    ...SEALED_PLACEHOLDERS,
  }));
  return { ...sealed, set: { ...set, databases, excluded: [], unreadable: [] } };
}

/**
 * The manifest with its sealed fields put back; a manifest in clear as it is. Throws ConfigError when
 * the backup is encrypted and `key` is undefined (naming the settings that give one) or opens nothing
 * (naming the recipients the backup is encrypted to); VerifyError (`decrypt`, or `manifest` for sealed
 * fields of the wrong shape) when the sealed part is damaged.
 */
export async function openManifest(manifest: Manifest, key: DecryptionKey | undefined): Promise<Manifest> {
  const { encryption } = manifest;
  if (encryption === null) return manifest;
  if (key === undefined) {
    throw new ConfigError(
      `backup ${manifest.id} is encrypted ${encryptedTo(encryption)}, and no key to open it is configured`,
      {
        hint: `set ${DECRYPTION_SETTINGS}`,
      },
    );
  }
  let plain: Buffer;
  try {
    plain = await collect(decryptStream(once(Buffer.from(encryption.contents, 'base64')), key));
  } catch (err) {
    if (!(err instanceof DecryptError)) throw err;
    if (err.noKeyMatched) throw wrongKeyError(manifest.id, encryption);
    throw new VerifyError(manifest.id, 'decrypt', `its manifest's sealed part: ${err.message}`, {
      cause: err,
    });
  }
  const parsed = parseSealedFields(plain.toString('utf8'));
  if ('error' in parsed) {
    throw new VerifyError(
      manifest.id,
      'manifest',
      `its manifest's sealed part does not read: ${parsed.error}`,
    );
  }
  const { set: sealedSet, ...fields } = parsed.fields;
  const opened: Manifest = { ...manifest, ...fields };
  if (manifest.set === undefined && sealedSet === undefined) return opened;
  if (manifest.set === undefined || sealedSet?.databases.length !== manifest.set.databases.length) {
    throw new VerifyError(
      manifest.id,
      'manifest',
      "its manifest's sealed part does not match its set of databases",
    );
  }
  const databases = manifest.set.databases.map((db, i) => ({ ...db, ...sealedSet.databases[i]! }));
  const set = { ...manifest.set, databases, excluded: sealedSet.excluded, unreadable: sealedSet.unreadable };
  // The names were placeholders when the manifest was checked as read: checked again, now they are in.
  const problem = setProblem({ ...opened, set });
  if (problem !== undefined) {
    throw new VerifyError(manifest.id, 'manifest', `its manifest's sealed part does not read: ${problem}`);
  }
  return { ...opened, set };
}

/**
 * The error for a key that opens none of a backup's recipients: a key problem, not damage (exit 2), so
 * nothing records the backup as failed.
 */
export function wrongKeyError(id: string, encryption: ManifestEncryption): ConfigError {
  return new ConfigError(
    `the configured key does not open backup ${id}: it is encrypted ${encryptedTo(encryption)}`,
    {
      hint: encryption.passphrase
        ? 'set DATASAVER_ENCRYPTION_PASSPHRASE to the passphrase the backup was made with'
        : "set DATASAVER_ENCRYPTION_IDENTITY_FILE to an age identity file holding the key of one of those recipients (age-keygen -y KEYFILE prints a key's recipient)",
    },
  );
}

/** `to age1abc…, age1def…` or `with a passphrase`, for messages. */
export function encryptedTo(encryption: ManifestEncryption): string {
  if (encryption.passphrase) return 'with a passphrase';
  return `to ${encryption.recipients.join(', ') || 'no recipient it names'}`;
}

async function* once(data: Buffer): AsyncIterable<Buffer> {
  yield data;
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}
