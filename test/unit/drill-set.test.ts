/**
 * Drills of whole-server backup sets with a fake scratch place: every database restored into the one
 * scratch database in turn and compared with its own facts, the globals checked and never applied, one
 * result and one record for the set.
 */
import { describe, expect, it } from 'vitest';
import { drillKey } from '../../src/catalog/layout.ts';
import type { DatabaseFacts, Engine } from '../../src/engines/engine.ts';
import { type DrillPlace, drillBackup } from '../../src/jobs/drill.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { BackupError, RestoreError } from '../../src/util/errors.ts';
import { fakeServerEngine } from '../support/fake-engine.ts';
import { SET_TARGET, storeSet } from '../support/set-manifests.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const none = async function* (): AsyncIterable<Buffer> {};
const facts = (rows: number): DatabaseFacts => ({
  exact: true,
  tables: [{ name: 'public.orders', rows }],
  objects: [{ kind: 'tables', count: 1 }],
});

/**
 * A scratch place whose engine restores by reading its input, and reads back the facts of the database
 * last restored (by its dump's text) from `copies`.
 */
function fakePlace(copies: Record<string, DatabaseFacts>, options: { globalsFail?: boolean } = {}) {
  const log: string[] = [];
  let last = '';
  const base = fakeServerEngine({ globals: none, databases: {} });
  const engine: Engine = {
    ...base,
    restore: async (source, o) => {
      const chunks: Buffer[] = [];
      for await (const c of source) chunks.push(c);
      last = Buffer.concat(chunks).toString();
      log.push(`restore ${last} into ${o.targetDatabase}`);
      if (last === 'dump of broken') throw new RestoreError('pg_restore: error: could not execute query');
    },
    restoredFacts: async (database) => {
      log.push(`facts of ${database}`);
      return copies[last]!;
    },
    dropDatabase: async (name) => {
      log.push(`drop ${name}`);
    },
    serverSet: {
      ...base.serverSet,
      inspectGlobals: async (source) => {
        for await (const _ of source) log.push('globals read');
        if (options.globalsFail) throw new BackupError('the globals script is truncated');
        return { entries: [] };
      },
      restoreGlobals: async () => {
        throw new Error('a drill never applies the globals');
      },
    },
  };
  let released = 0;
  const place: DrillPlace = {
    engine,
    database: 'datasaver_drill_x',
    description: 'throwaway test server',
    release: async () => {
      released++;
    },
  };
  return { place, log, released: () => released };
}

async function drill(copies: Record<string, DatabaseFacts>, options: { globalsFail?: boolean } = {}) {
  const storage = new MemoryStorage();
  const names = Object.keys(copies).map((k) => k.replace('dump of ', ''));
  const manifest = await storeSet(
    storage,
    NOW,
    Object.fromEntries(names.map((n, i) => [n, { facts: facts(10 * (i + 1)) }])),
  );
  const { place, log, released } = fakePlace(copies, options);
  let ms = 0;
  const result = await drillBackup(manifest, {
    storage,
    openPlace: async () => place,
    now: () => NOW,
    clock: () => (ms += 100),
  });
  const record = JSON.parse(storage.objects.get(drillKey(SET_TARGET, manifest.id))!.data.toString());
  return { result, record, log, released: released() };
}

describe('drill of a set', () => {
  it('restores each database into the scratch database in turn, compares each, and passes', async () => {
    const { result, record, log, released } = await drill({
      'dump of app': facts(10),
      'dump of shop': facts(20),
    });
    expect(result).toMatchObject({ ok: true, reason: null, compared: 4, differences: [] });
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(log).toEqual([
      'globals read',
      'restore dump of app into datasaver_drill_x',
      'facts of datasaver_drill_x',
      'drop datasaver_drill_x',
      'restore dump of shop into datasaver_drill_x',
      'facts of datasaver_drill_x',
      'drop datasaver_drill_x',
    ]);
    expect(released).toBe(1);
    expect(record).toMatchObject({ ok: true, compared: 4, differenceCount: 0 });
  });

  it('fails on a changed row count in one database, naming the database in the difference', async () => {
    const { result, record } = await drill({ 'dump of app': facts(10), 'dump of shop': facts(19) });
    expect(result).toMatchObject({ ok: false, reason: 'drill', compared: 4 });
    expect(result.differences).toEqual([{ item: 'shop: table public.orders', expected: '20', found: '19' }]);
    expect(result.message).toContain('shop: table public.orders: expected 20, found 19');
    expect(record).toMatchObject({ ok: false, reason: 'drill', differenceCount: 1 });
  });

  it('fails with the database named when one does not restore', async () => {
    const { result, released } = await drill({ 'dump of app': facts(10), 'dump of broken': facts(20) });
    expect(result).toMatchObject({ ok: false, reason: 'restore' });
    expect(result.message).toMatch(/^database broken: pg_restore: error/);
    expect(released).toBe(1);
  });

  it('fails a set whose globals do not check, restoring nothing', async () => {
    const { result, log } = await drill({ 'dump of app': facts(10) }, { globalsFail: true });
    expect(result).toMatchObject({ ok: false, reason: 'structure', restoreMs: null });
    expect(result.message).toBe('globals: the globals script is truncated');
    expect(log).toEqual(['globals read']);
  });
});
