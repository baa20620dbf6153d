/** Reading manifests back from storage, validated: anything malformed is reported, never trusted. */
import { z } from 'zod';
import { COMPRESSION_ALGORITHMS } from './config/types.ts';
import type { Manifest } from './manifest.ts';

const tableFacts = z.object({ name: z.string(), rows: z.number() });

/** Unknown fields are kept (manifests written by newer datasaver versions). */
const manifestSchema = z.looseObject({
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
}) satisfies z.ZodType<Manifest>;

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
