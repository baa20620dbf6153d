/**
 * Restoring whole-server backup sets with a fake whole-server engine that logs what it is asked to do:
 * every destination judged before anything changes, roles before databases, each database under its
 * own name; `--database` restores one alone; what a whole set refuses.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Engine, RestoreOptions, RestoreTargetState } from '../../src/engines/engine.ts';
import { restoreToFile } from '../../src/jobs/restore.ts';
import { restoreBackup, type SetRestorePlan } from '../../src/jobs/restore-set.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { DatasaverError, RestoreError, UsageError, VerifyError } from '../../src/util/errors.ts';
import { fakeServerEngine } from '../support/fake-engine.ts';
import { storeSet } from '../support/set-manifests.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const none = async function* (): AsyncIterable<Buffer> {};

async function text(source: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of source) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

/**
 * A whole-server engine whose databases are in `states` (absent: missing), logging every state read,
 * the globals restore and each database restore with what it was fed.
 */
function loggingEngine(states: Record<string, Omit<RestoreTargetState, 'description'>> = {}) {
  const log: string[] = [];
  const restored: RestoreOptions[] = [];
  const base = fakeServerEngine({ globals: none, databases: {} });
  const engine: Engine = {
    ...base,
    restoreTargetState: async (name) => {
      log.push(`state ${name}`);
      return { description: `database ${name} on db:5432`, exists: false, empty: true, ...states[name!] };
    },
    restore: async (source, options) => {
      log.push(`restore ${options.targetDatabase}: ${await text(source)}`);
      restored.push(options);
      return { applied: [`owner ${options.targetDatabase}_owner`], skipped: [] };
    },
    serverSet: {
      ...base.serverSet,
      restoreGlobals: async (source) => {
        log.push(`globals: ${await text(source)}`);
        return {
          created: ['app'],
          existing: ['postgres'],
          tablespacesCreated: [],
          tablespacesExisting: [],
          skipped: [],
        };
      },
    },
  };
  return { engine, log, restored };
}

const request = { dryRun: false, force: false, dropExisting: false, jobs: 1 };
const settings = { owner: 'shop_owner', settings: [], grants: null, comment: null };

async function stored() {
  const storage = new MemoryStorage();
  const manifest = await storeSet(storage, NOW, {
    app: { facts: { exact: true, tables: [{ name: 'public.users', rows: 2 }] } },
    postgres: { databaseSettings: { ...settings, owner: 'postgres' } },
    shop: { databaseSettings: settings },
  });
  return { storage, manifest };
}

describe('restore of a whole set', () => {
  it('judges every database, then restores the roles, then each database under its own name', async () => {
    const { storage, manifest } = await stored();
    const { engine, log, restored } = loggingEngine({ postgres: { exists: true, empty: true } });
    const plan = (await restoreBackup({ manifest, ...request }, { engine, storage })) as SetRestorePlan;
    expect(log).toEqual([
      'state app',
      'state postgres',
      'state shop',
      'globals: globals script',
      'state app',
      'restore app: dump of app',
      'state postgres',
      'restore postgres: dump of postgres',
      'state shop',
      'restore shop: dump of shop',
    ]);
    expect(plan).toMatchObject({
      backup: manifest.id,
      set: true,
      rolePasswords: true,
      globals: { created: ['app'], existing: ['postgres'] },
    });
    expect(plan.databases.map((d) => [d.database, d.action])).toEqual([
      ['app', 'create'],
      ['postgres', 'restore-into-empty'],
      ['shop', 'create'],
    ]);
    // Each database gets its own settings, and is created only where missing; the empty one that exists
    // gets its settings as a created one does.
    expect(
      restored.map((o) => [o.targetDatabase, o.create, o.databaseSettings?.owner, o.settingsToExisting]),
    ).toEqual([
      ['app', true, undefined, false],
      ['postgres', false, 'postgres', true],
      ['shop', true, 'shop_owner', false],
    ]);
  });

  it('refuses a database that holds objects before anything is changed, naming it', async () => {
    const { storage, manifest } = await stored();
    const { engine, log } = loggingEngine({ shop: { exists: true, empty: false } });
    const err = await restoreBackup({ manifest, ...request }, { engine, storage }).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('database shop on db:5432');
    expect(err.message).toContain('nothing was changed');
    expect(log).toEqual(['state app', 'state postgres', 'state shop']);
  });

  it('restores over it with --force, and recreates it (and only it) with --drop-existing', async () => {
    const { storage, manifest } = await stored();
    const forced = loggingEngine({ shop: { exists: true, empty: false } });
    await restoreBackup({ manifest, ...request, force: true }, { engine: forced.engine, storage });
    expect(forced.restored.at(-1)).toMatchObject({ targetDatabase: 'shop', overwrite: true });
    // An empty database is restored into, never dropped: it may be the one the engine connects to.
    const dropped = loggingEngine({
      postgres: { exists: true, empty: true },
      shop: { exists: true, empty: false },
    });
    await restoreBackup({ manifest, ...request, dropExisting: true }, { engine: dropped.engine, storage });
    expect(dropped.restored.map((o) => [o.targetDatabase, o.dropExisting, o.create])).toEqual([
      ['app', false, true],
      ['postgres', false, false],
      ['shop', true, false],
    ]);
  });

  it('asks before restoring over a database when it can, and refuses when the answer is no', async () => {
    const { storage, manifest } = await stored();
    const asked: string[] = [];
    const yes = loggingEngine({ shop: { exists: true, empty: false } });
    await restoreBackup(
      { manifest, ...request },
      {
        engine: yes.engine,
        storage,
        confirmOverwrite: async (s) => {
          asked.push(s.description);
          return true;
        },
      },
    );
    expect(asked).toEqual(['database shop on db:5432']);
    expect(yes.restored.at(-1)).toMatchObject({ targetDatabase: 'shop', overwrite: true });
    const no = loggingEngine({ shop: { exists: true, empty: false } });
    await expect(
      restoreBackup(
        { manifest, ...request },
        { engine: no.engine, storage, confirmOverwrite: async () => false },
      ),
    ).rejects.toThrow(UsageError);
    expect(no.log.some((l) => l.startsWith('globals'))).toBe(false);
  });

  it('checks every part before anything changes: a damaged database fails the restore untouched', async () => {
    const { storage, manifest } = await stored();
    const bytes = storage.objects.get(manifest.set!.databases[2]!.object)!.data;
    bytes[0] = bytes[0]! ^ 1;
    const { engine, log } = loggingEngine();
    const err = await restoreBackup({ manifest, ...request }, { engine, storage }).catch((e) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect(err.reason).toBe('checksum');
    expect(err.detail).toMatch(/^database shop: /);
    expect(log).toEqual([]);
  });

  it('names the database a restore failed on, and those restored before it', async () => {
    const { storage, manifest } = await stored();
    const { engine } = loggingEngine();
    const failing: Engine = {
      ...engine,
      restore: async (source, options) => {
        await text(source);
        if (options.targetDatabase === 'shop') throw new RestoreError('pg_restore failed: disk full');
        return undefined;
      },
    };
    const err = await restoreBackup({ manifest, ...request }, { engine: failing, storage }).catch((e) => e);
    expect(err).toBeInstanceOf(DatasaverError);
    expect(err.message).toBe('database shop: pg_restore failed: disk full');
    expect(err.hint).toContain('the roles and the databases before it (app, postgres) are restored');
  });

  it('refuses --target-db and --table without --database', async () => {
    const { storage, manifest } = await stored();
    const { engine, log } = loggingEngine();
    for (const asked of [{ targetDatabase: 'other' }, { tables: ['users'] }]) {
      const err = await restoreBackup({ manifest, ...request, ...asked }, { engine, storage }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(UsageError);
      expect(err.hint).toContain('--database NAME');
      expect(err.hint).toContain('app, postgres, shop');
    }
    expect(log).toEqual([]);
  });

  it('dry run: lists the roles and each database with its action, changing nothing', async () => {
    const { storage, manifest } = await stored();
    const { engine, log } = loggingEngine({ postgres: { exists: true, empty: true } });
    const plan = (await restoreBackup(
      { manifest, ...request, dryRun: true },
      { engine, storage },
    )) as SetRestorePlan;
    expect(plan.globalsEntries).toEqual([{ type: 'ROLE', schema: '', name: 'app' }]);
    expect(plan.globals).toBeUndefined();
    expect(plan.databases.map((d) => [d.database, d.action, d.entries?.length])).toEqual([
      ['app', 'create', 1],
      ['postgres', 'restore-into-empty', 1],
      ['shop', 'create', 1],
    ]);
    expect(log.filter((l) => !l.startsWith('state'))).toEqual([]);
  });

  it('counts progress over the whole set, and over the one part with --database', async () => {
    const { storage, manifest } = await stored();
    const seen: [string, number, number][] = [];
    const onProgress = (phase: string, n: number, total: number) => seen.push([phase, n, total]);
    await restoreBackup({ manifest, ...request }, { engine: loggingEngine().engine, storage, onProgress });
    expect(seen.at(-1)).toEqual(['restore', manifest.storedBytes, manifest.storedBytes]);
    expect(seen.filter(([phase]) => phase === 'checksum').at(-1)).toEqual([
      'checksum',
      manifest.storedBytes,
      manifest.storedBytes,
    ]);
    seen.length = 0;
    const shop = manifest.set!.databases[2]!.storedBytes;
    await restoreBackup(
      { manifest, ...request, database: 'shop' },
      { engine: loggingEngine().engine, storage, onProgress },
    );
    expect(seen.at(-1)).toEqual(['restore', shop, shop]);
  });

  it('says when the backup holds no role passwords', async () => {
    const storage = new MemoryStorage();
    const manifest = await storeSet(storage, NOW, { app: {} }, { rolePasswords: false });
    const { engine } = loggingEngine();
    const plan = (await restoreBackup({ manifest, ...request }, { engine, storage })) as SetRestorePlan;
    expect(plan.rolePasswords).toBe(false);
  });
});

describe('restore --database', () => {
  it('restores that database alone, under another name with --target-db, without the roles', async () => {
    const { storage, manifest } = await stored();
    const { engine, log, restored } = loggingEngine();
    const plan = await restoreBackup(
      { manifest, ...request, database: 'shop', targetDatabase: 'shop_copy' },
      { engine, storage },
    );
    expect(log).toEqual(['state shop_copy', 'restore shop_copy: dump of shop']);
    expect(plan).toMatchObject({
      action: 'create',
      destination: { description: 'database shop_copy on db:5432' },
    });
    expect(restored[0]).toMatchObject({ create: true, databaseSettings: settings });
  });

  it('restores it under its own name without --target-db, never into the target database', async () => {
    const { storage, manifest } = await stored();
    const { engine, log } = loggingEngine();
    await restoreBackup({ manifest, ...request, database: 'shop' }, { engine, storage });
    expect(log).toEqual(['state shop', 'restore shop: dump of shop']);
  });

  it('refuses a database the set does not hold, listing those it does', async () => {
    const { storage, manifest } = await stored();
    const { engine } = loggingEngine();
    const err = await restoreBackup({ manifest, ...request, database: 'nope' }, { engine, storage }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('holds no database nope');
    expect(err.hint).toBe('its databases: app, postgres, shop');
  });

  it('with --to-file writes that database raw dump, and needs --database for a set', async () => {
    const { storage, manifest } = await stored();
    const dir = await mkdtemp(join(tmpdir(), 'datasaver-set-'));
    cleanup.push(dir);
    const path = join(dir, 'shop.dump');
    await expect(restoreToFile({ manifest, path, force: false }, { storage })).rejects.toThrow(
      /needs --database NAME/,
    );
    const result = await restoreToFile({ manifest, database: 'shop', path, force: false }, { storage });
    expect(result).toMatchObject({ backup: manifest.id, database: 'shop', bytes: 'dump of shop'.length });
    expect(await readFile(path, 'utf8')).toBe('dump of shop');
  });
});

const cleanup: string[] = [];
afterEach(async () => {
  for (const dir of cleanup.splice(0)) await rm(dir, { recursive: true, force: true });
});
