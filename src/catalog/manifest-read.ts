/**
 * Reading manifests back from storage, validated: anything malformed is reported, never trusted. Storage
 * is untrusted, so the fields datasaver prints are held to what datasaver writes: labels and formats to
 * their known shapes, and every other printed string to text without control characters, so no manifest
 * can send a terminal escape or fake a row of `list`. (Table, object kind and sequence names in the facts
 * may be any identifier the database allows; they are made printable where they are shown.)
 */
import { z } from 'zod';
import { DATABASE_PRIVILEGES, SETTING_NAME } from '../engines/postgres/dbsettings.ts';
import { COMPRESSION_ALGORITHMS } from '../pipeline/compression.ts';
import { isPrintable } from '../util/printable.ts';
import { LABEL_PATTERN, type Manifest, type SealedFields } from './manifest.ts';
import { MAX_SET_DATABASES, setProblem } from './parts.ts';
import { KEY_ID_PATTERN, SIGNATURE_VALUE_PATTERN } from './signature.ts';

const tableFacts = z.looseObject({ name: z.string(), rows: z.number() });
const facts = z.looseObject({
  exact: z.boolean(),
  tables: z.array(tableFacts),
  objects: z.array(z.looseObject({ kind: z.string(), count: z.number().int().nonnegative() })).optional(),
  sequences: z
    .array(
      z.looseObject({
        name: z.string(),
        value: z
          .string()
          .regex(/^-?\d{1,20}$/)
          .nullable(),
      }),
    )
    .optional(),
});

/** Engine names and dump formats: short lowercase words (`postgres`, `custom`, `rdb`). */
const WORD = /^[a-z][a-z0-9_-]{0,31}$/;
const printableText = z.string().refine(isPrintable, { message: 'holds control characters' });

/** Role names are printed (restore's output) and quoted as identifiers when applied. */
const roleName = printableText.pipe(z.string().min(1));
const databaseSettings = z.looseObject({
  owner: roleName,
  settings: z.array(
    z.looseObject({
      role: roleName.nullable(),
      name: z.string().regex(SETTING_NAME, 'is not a configuration parameter name'),
      // Any text: it reaches the server only as a query parameter, and is escaped wherever it is printed.
      value: z.string(),
    }),
  ),
  grants: z
    .array(
      z.looseObject({
        grantee: roleName.nullable(),
        privilege: z.enum(DATABASE_PRIVILEGES),
        grantable: z.boolean(),
      }),
    )
    .nullable(),
  comment: z.string().nullable(),
});

/**
 * Sealed contents: base64 of an age file. Never longer than a whole record may be (catalog.ts
 * MAX_RECORD_BYTES), so a forged manifest cannot make an opener decrypt more than that.
 */
const MAX_SEALED_CHARS = 1_000_000;
const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const manifestEncryption = z.looseObject({
  format: z.literal('age'),
  recipients: z.array(z.string().regex(AGE_RECIPIENT, 'is not an age X25519 recipient')).max(1000),
  passphrase: z.boolean(),
  contents: z
    .string()
    .max(MAX_SEALED_CHARS)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'is not base64'),
});

const setObject = {
  object: z.string().min(1),
  sizeBytes: z.number().int().positive(),
  storedBytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
};
const unreadableDatabases = z
  .array(z.looseObject({ database: printableText, reason: printableText }))
  .max(MAX_SET_DATABASES);
/** What a set says a database holds, and what it left out: in clear, or in a sealed manifest's sealed part. */
const databaseContents = {
  database: printableText.nullable(),
  databaseSettings: databaseSettings.optional(),
  facts,
};
const leftOut = {
  excluded: z.array(printableText).max(MAX_SET_DATABASES),
  unreadable: unreadableDatabases,
};
const backupSet = z.looseObject({
  globals: z.looseObject({
    ...setObject,
    format: z.string().regex(WORD, 'is not a format name'),
    rolePasswords: z.boolean(),
  }),
  databases: z.array(z.looseObject({ ...setObject, ...databaseContents })).max(MAX_SET_DATABASES),
  ...leftOut,
});

/**
 * Unknown fields are kept, nested ones too (manifests written by newer datasaver versions): a manifest
 * copied to another destination (resume.ts) is written from what was read, and its signature covers
 * every field.
 */
const manifestSchema = z.looseObject({
  version: z.number().int().min(1),
  id: z.string().min(1),
  target: z.string().min(1),
  engine: z.string().regex(WORD, 'is not an engine name'),
  status: z.literal('success'),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  labels: z.array(z.string().regex(LABEL_PATTERN, 'is not a label (lowercase letters, digits, _ and -)')),
  format: z.string().regex(WORD, 'is not a format name'),
  schemaOnly: z.boolean(),
  compression: z.enum(COMPRESSION_ALGORITHMS),
  compressionLevel: z.number().int().nullable(),
  encryption: manifestEncryption.nullable(),
  sizeBytes: z.number().int().positive(),
  storedBytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  object: z.string().min(1),
  database: printableText.nullable(),
  serverVersion: printableText,
  toolVersion: printableText,
  datasaverVersion: printableText,
  facts,
  databaseSettings: databaseSettings.optional(),
  set: backupSet.optional(),
  // Shape only: whether it checks out is the reader's question (catalog.ts, with the verify keys).
  signature: z
    .looseObject({
      algorithm: z.literal('ed25519'),
      keyId: z.string().regex(KEY_ID_PATTERN, 'is not a key id'),
      value: z.string().regex(SIGNATURE_VALUE_PATTERN, 'is not an Ed25519 signature'),
    })
    .optional(),
}) satisfies z.ZodType<Manifest>;

/** The sealed fields of an encrypted manifest (catalog/sealed.ts), held to the same shapes as in clear. */
const sealedSchema = z.object({
  database: printableText.nullable(),
  facts,
  databaseSettings: databaseSettings.optional(),
  set: z
    .object({ databases: z.array(z.object(databaseContents)).max(MAX_SET_DATABASES), ...leftOut })
    .optional(),
}) satisfies z.ZodType<SealedFields>;

/** Parses the JSON of a manifest's sealed fields, returning a reason instead of throwing. */
export function parseSealedFields(text: string): { fields: SealedFields } | { error: string } {
  const parsed = parseJson(text, sealedSchema);
  return 'error' in parsed ? parsed : { fields: parsed.value };
}

/**
 * Parses manifest JSON, returning a reason instead of throwing, for `list` to skip bad files with a warning.
 * `json` is the document as parsed, before validation: what a signature is checked against.
 */
export function parseManifest(text: string): { manifest: Manifest; json: unknown } | { error: string } {
  const parsed = parseJson(text, manifestSchema);
  if ('error' in parsed) return parsed;
  const problem = setProblem(parsed.value);
  return problem === undefined ? { manifest: parsed.value, json: parsed.json } : { error: problem };
}

/** JSON held to `schema` (and the document as parsed), or the first reason it is not. */
function parseJson<T>(text: string, schema: z.ZodType<T>): { value: T; json: unknown } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { error: `not JSON (${(err as Error).message})` };
  }
  const res = schema.safeParse(json);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    return { error: `field ${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  return { value: res.data, json };
}
