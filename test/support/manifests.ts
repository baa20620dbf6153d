/** Committed backups written straight into storage, for tests of jobs that read storage. */
import { createHash } from 'node:crypto';
import { backupId, dataKey, drillKey, manifestKey, verifyKey } from '../../src/catalog/layout.ts';
import { type Manifest, serializeManifest } from '../../src/catalog/manifest.ts';
import { type SigningKey, signManifest } from '../../src/catalog/signature.ts';
import type { StorageBackend } from '../../src/storage/backend.ts';

/**
 * Stores a committed backup of target `shop` taken at `time`, as the backup job would; `data` replaces
 * the stored bytes, and `overrides` forge manifest fields (its keys follow the forged id); `signWith` signs
 * the manifest as the backup job does.
 */
export async function storeBackup(
  storage: StorageBackend,
  time: Date,
  options: {
    schemaOnly?: boolean;
    verified?: boolean;
    drilled?: boolean;
    data?: Buffer;
    overrides?: Partial<Manifest>;
    signWith?: SigningKey;
  } = {},
): Promise<Manifest> {
  const id = options.overrides?.id ?? backupId('shop', time);
  const data = options.data ?? Buffer.from(`dump of ${id}`);
  const built: Manifest = {
    version: 1,
    id,
    target: 'shop',
    engine: 'postgres',
    status: 'success',
    createdAt: time.toISOString(),
    finishedAt: time.toISOString(),
    durationMs: 1,
    labels: [],
    format: 'custom',
    schemaOnly: options.schemaOnly ?? false,
    compression: 'none',
    compressionLevel: null,
    encryption: null,
    sizeBytes: data.length,
    storedBytes: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
    object: dataKey('shop', id, 'dump'),
    database: 'shop',
    serverVersion: '15',
    toolVersion: 'pg_dump 15',
    datasaverVersion: 'test',
    facts: { exact: true, tables: [] },
    ...options.overrides,
  };
  const manifest = options.signWith ? signManifest(built, options.signWith) : built;
  await storage.put(manifest.object, [data]);
  await storage.put(manifestKey('shop', id), [serializeManifest(manifest)]);
  if (options.verified !== undefined) {
    const record = { id, ok: options.verified, reason: options.verified ? null : 'checksum' };
    await storage.put(verifyKey('shop', id), [Buffer.from(JSON.stringify(record))]);
  }
  if (options.drilled !== undefined) {
    const record = {
      id,
      ok: options.drilled,
      reason: options.drilled ? null : 'drill',
      message: options.drilled ? null : 'table public.t: expected 3, found 2',
      drilledAt: time.toISOString(),
      restoreMs: 1200,
      compared: 5,
      differenceCount: options.drilled ? 0 : 1,
    };
    await storage.put(drillKey('shop', id), [Buffer.from(JSON.stringify(record))]);
  }
  return manifest;
}
