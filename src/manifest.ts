/**
 * The manifest: a small JSON document beside each data object that describes the backup completely, so
 * storage alone is enough to list, verify and restore. Writing it is the commit: a data object without
 * a manifest is an incomplete backup and is never listed, restored or counted by retention.
 */
import { z } from 'zod';
import { COMPRESSION_ALGORITHMS } from './config/types.ts';

export const MANIFEST_VERSION = 1;

const tableFacts = z.object({ name: z.string(), rows: z.number() });

/** Schema used when reading manifests back; unknown fields are kept (newer datasaver versions). */
export const manifestSchema = z.looseObject({
  version: z.number().int().min(1),
  id: z.string().min(1),
  target: z.string().min(1),
  engine: z.string().min(1),
  status: z.literal('success'),
  createdAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  labels: z.array(z.string()),
  format: z.string().min(1),
  schemaOnly: z.boolean(),
  compression: z.enum(COMPRESSION_ALGORITHMS),
  compressionLevel: z.number().int().nullable(),
  encryption: z.null(),
  sizeBytes: z.number().int().positive(),
  storedBytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  object: z.string().min(1),
  database: z.string().nullable(),
  serverVersion: z.string(),
  toolVersion: z.string(),
  datasaverVersion: z.string(),
  facts: z.object({ exact: z.boolean(), tables: z.array(tableFacts) }),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** Parses manifest JSON, returning a reason instead of throwing, for `list` to skip bad files with a warning. */
export function parseManifest(text: string): { manifest: Manifest } | { error: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { error: `not JSON (${(err as Error).message})` };
  }
  const res = manifestSchema.safeParse(json);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    return { error: `field ${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  return { manifest: res.data };
}

export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
}

/** Result of one `verify`, stored as `<id>.verify.json` beside the manifest. */
export interface VerifyRecord {
  id: string;
  ok: boolean;
  reason: string | null;
  message: string | null;
  checkedAt: string;
  datasaverVersion: string;
}
