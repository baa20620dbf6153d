/**
 * One conformance suite for every engine, against real servers: a backup verifies and restores with the
 * data equal, the manifest carries versions and facts, the file name shows the kind, a dump broken inside
 * a valid checksum fails verify as `structure`, and the failure paths (wrong password, server down, dump
 * tool missing) fail with the right error and no secret. Each engine's test file supplies a fixture.
 */
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { backupId, dataKey, manifestKey } from '../../src/catalog/layout.ts';
import { type Manifest, serializeManifest } from '../../src/catalog/manifest.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { createEngine } from '../../src/engines/index.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { verifyBackup } from '../../src/jobs/verify.ts';
import { rawDumpStream } from '../../src/pipeline/read.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { ConnectionError, ExitCode, ToolMissingError } from '../../src/util/errors.ts';
import { fakeToolDir } from './fake-tools.ts';
import { tempDir } from './pg.ts';

export interface RestoreDestination {
  /** `--target-db`: a database name, or a file path for SQLite; undefined for the target's own. */
  targetDatabase: string | undefined;
  /** The target whose engine restores, and through which the restored data is read back. */
  target: TargetConfig;
}

export interface EngineFixture {
  /** Creates a fresh source holding the sample data and returns its target. */
  seed(): Promise<TargetConfig>;
  /** Everything a round trip must keep, compared with toEqual; `where` as in RestoreDestination. */
  snapshot(target: TargetConfig, where?: string): Promise<unknown>;
  /** A fresh, empty place to restore a backup of `source` into. */
  restoreDestination(source: TargetConfig): Promise<RestoreDestination>;
  /** File extension of the data object before compression (`mysql.sql`, `rdb`...). */
  extension: string;
  /** Facts the manifest must hold for the seeded data (a subset; names as the engine reports them). */
  facts: { name: string; rows: number }[];
  /** Runs while the backup runs (a writer process); returns a function that stops it. */
  duringBackup?(target: TargetConfig): Promise<() => Promise<void>>;
  /** Failure paths. `wrongPassword` is absent for engines without passwords (SQLite). */
  wrongPassword?(target: TargetConfig): TargetConfig;
  serverDown(target: TargetConfig): TargetConfig;
  /** The dump tool's name and the package the error must name; absent when the engine needs no tool. */
  tool?: { name: string; package: RegExp };
}

export function engineConformance(name: string, fixture: EngineFixture): void {
  describe(`engine conformance: ${name}`, () => {
    async function backUp(target: TargetConfig) {
      const storage = new LocalStorage(await tempDir(`${name}-store-`));
      const engine = createEngine(target);
      const stop = await fixture.duringBackup?.(target);
      try {
        const result = await runBackup(
          { target, labels: [], verify: false },
          { engine, destinations: [storage] },
        );
        return { storage, engine, manifest: result.manifest };
      } finally {
        await stop?.();
      }
    }

    it('backs up, verifies and restores with the data equal', async () => {
      const source = await fixture.seed();
      const { storage, engine, manifest } = await backUp(source);
      const verified = await verifyBackup(manifest, { storage, engine });
      expect(verified, verified.message ?? '').toMatchObject({ ok: true, reason: null });
      expect(verified.entries).toBeGreaterThan(0);

      const to = await fixture.restoreDestination(source);
      await runRestore(
        {
          manifest,
          targetDatabase: to.targetDatabase,
          dryRun: false,
          force: false,
          dropExisting: false,
          jobs: 1,
        },
        { engine: createEngine(to.target), storage },
      );
      expect(await fixture.snapshot(to.target, to.targetDatabase)).toEqual(await fixture.snapshot(source));
    });

    it('records engine, format, versions and facts; the file name shows the kind', async () => {
      const source = await fixture.seed();
      const { manifest } = await backUp(source);
      expect(manifest.engine).toBe(source.engine);
      expect(manifest.format).toBe(source.format);
      expect(manifest.object).toMatch(new RegExp(`\\.${fixture.extension.replace('.', '\\.')}\\.zst$`));
      expect(manifest.serverVersion).toMatch(/\d+\.\d+/);
      expect(manifest.toolVersion).toMatch(/\d+\.\d+/);
      expect(manifest.facts.tables).toEqual(expect.arrayContaining(fixture.facts));
    });

    it('a dump broken inside a valid checksum fails verify as structure', async () => {
      const source = await fixture.seed();
      const { storage, engine, manifest } = await backUp(source);
      const raw = await buffer(rawDumpStream(await storage.get(manifest.object), manifest.compression));
      const broken = await storeRaw(storage, manifest, raw.subarray(0, Math.floor(raw.length * 0.6)));
      const result = await verifyBackup(broken, { storage, engine });
      expect(result).toMatchObject({ ok: false, reason: 'structure' });
    });

    // Engines without passwords (SQLite) or without a dump tool do not have these tests at all.
    const { wrongPassword, tool } = fixture;
    if (wrongPassword)
      it('a wrong password is a connection error that never shows the password', async () => {
        const target = wrongPassword(await fixture.seed());
        const err = await failure(target);
        expect(err).toBeInstanceOf(ConnectionError);
        expect((err as ConnectionError).exitCode).toBe(ExitCode.connection);
        expect(String((err as Error).message)).not.toContain(
          target.connection.password?.reveal() ?? '\u0000',
        );
      });

    it('a server that is down is a connection error', async () => {
      const err = await failure(fixture.serverDown(await fixture.seed()));
      expect(err).toBeInstanceOf(ConnectionError);
    });

    if (tool)
      it('a dump tool missing from PATH names the package to install', async () => {
        // Engines look for their tools in DATASAVER_TOOL_DIR when it is set: an empty one has none.
        const target = { ...(await fixture.seed()), toolDir: await fakeToolDir({}) };
        const err = await failure(target);
        expect(err).toBeInstanceOf(ToolMissingError);
        expect((err as Error).message).toMatch(new RegExp(tool.name));
        expect(`${(err as Error).message} ${(err as ToolMissingError).hint}`).toMatch(tool.package);
      });

    async function failure(target: TargetConfig): Promise<unknown> {
      try {
        await backUp(target);
      } catch (err) {
        return err;
      }
      throw new Error('expected the backup to fail');
    }
  });
}

/**
 * Stores `raw` (uncompressed) as a new committed backup like `like`, `offset` seconds later, with a
 * matching checksum: a damaged dump that only its structure check can catch.
 */
export async function storeRaw(
  storage: LocalStorage,
  like: Manifest,
  raw: Buffer,
  offset = 1,
): Promise<Manifest> {
  const at = new Date(Date.parse(like.createdAt) + offset * 1000);
  const id = backupId(like.target, at);
  const ext = like.object.slice(like.object.indexOf('.') + 1).replace(/\.zst$/, '');
  const manifest: Manifest = {
    ...like,
    id,
    // Dated like its id, as the backup job dates it: anything else is a suspect manifest.
    createdAt: at.toISOString(),
    finishedAt: new Date(Date.parse(like.finishedAt) + offset * 1000).toISOString(),
    compression: 'none',
    compressionLevel: null,
    sizeBytes: raw.length,
    storedBytes: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'),
    object: dataKey(like.target, id, ext),
  };
  await storage.put(manifest.object, [raw]);
  await storage.put(manifestKey(like.target, id), [serializeManifest(manifest)]);
  return manifest;
}
