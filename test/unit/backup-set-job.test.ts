/**
 * Whole-server backup sets with a fake server and in-memory storage: one manifest after every part, and
 * nothing committed (no part left) when any part fails; bounded parallelism; sealing.
 */
import { createHash } from 'node:crypto';
import { zstdDecompressSync } from 'node:zlib';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import { storedObjects } from '../../src/catalog/parts.ts';
import { openManifest } from '../../src/catalog/sealed.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import type { Body, PutOptions } from '../../src/storage/backend.ts';
import { MemoryStorage } from '../../src/storage/memory.ts';
import { BackupError, StorageError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { type FakeServer, fakeServerEngine } from '../support/fake-engine.ts';

const target: TargetConfig = { ...offlineTarget('srv', undefined), excludeDatabases: ['tmp'] };

async function* data(...parts: (string | Error)[]): AsyncGenerator<Buffer> {
  for (const p of parts) {
    if (p instanceof Error) throw p;
    yield Buffer.from(p);
  }
}

const server = (overrides: Partial<FakeServer> = {}): FakeServer => ({
  globals: () => data('CREATE ROLE app;\n-- PostgreSQL database cluster dump complete\n'),
  databases: {
    shop: () => data('PGDMP shop '.repeat(1000)),
    app: () => data('PGDMP app '.repeat(1000)),
    tmp: () => data('PGDMP tmp'),
  },
  ...overrides,
});

const at = (iso: string) => {
  const times = [new Date(iso), new Date(iso)];
  return () => times.shift() ?? new Date(iso);
};

const manifests = (s: MemoryStorage) => [...s.objects.keys()].filter((k) => k.endsWith('.manifest.json'));

describe('backup set job', () => {
  it('stores the globals and every database as its own object, under one manifest', async () => {
    const storage = new MemoryStorage();
    const { manifest } = await runBackup(
      { target, labels: [], verify: false },
      {
        engine: fakeServerEngine(server({ unreadable: ['locked'], rolePasswords: false })),
        destinations: [storage],
        now: at('2026-01-11T02:00:15Z'),
      },
    );
    const id = 'srv-20260111T020015Z';
    expect([...storage.objects.keys()].sort()).toEqual([
      `srv/${id}.db1.dump.zst`,
      `srv/${id}.db2.dump.zst`,
      `srv/${id}.globals.sql.zst`,
      `srv/${id}.manifest.json`,
    ]);
    const db1 = storage.objects.get(`srv/${id}.db1.dump.zst`)!.data;
    expect(zstdDecompressSync(db1).toString()).toBe('PGDMP app '.repeat(1000));
    expect(manifest).toMatchObject({
      version: 2,
      database: null,
      object: `srv/${id}.globals.sql.zst`,
      facts: { exact: false, tables: [] },
      set: {
        globals: { format: 'globals', rolePasswords: false },
        databases: [
          { database: 'app', object: `srv/${id}.db1.dump.zst`, facts: { tables: [{ name: 'public.t' }] } },
          { database: 'shop', object: `srv/${id}.db2.dump.zst` },
        ],
        excluded: ['tmp'],
        unreadable: [{ database: 'locked', reason: 'no CONNECT privilege' }],
      },
    });
    for (const o of storedObjects(manifest)) {
      const stored = storage.objects.get(o.object)!.data;
      expect(o.storedBytes).toBe(stored.length);
      expect(o.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    }
    expect(manifest.sizeBytes).toBe(storedObjects(manifest).reduce((n, o) => n + o.sizeBytes, 0));
    const catalog = await readCatalog(storage);
    expect(catalog.backups.map((m) => m.id)).toEqual([id]);
    expect(catalog.incomplete).toEqual([]);
  });

  it('a database whose dump fails commits nothing, and every part written is deleted', async () => {
    const storage = new MemoryStorage();
    const failure = new BackupError('pg_dump exited with code 1: boom');
    const err = await runBackup(
      { target, labels: [], verify: false },
      {
        engine: fakeServerEngine(
          server({ databases: { app: () => data('ok'), shop: () => data('x', failure) } }),
        ),
        destinations: [storage],
      },
    ).catch((e: unknown) => e);
    expect(err).toBe(failure);
    expect(storage.objects.size).toBe(0);
  });

  it('an empty database dump fails the set, naming the database', async () => {
    const storage = new MemoryStorage();
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeServerEngine(server({ databases: { shop: () => data() } })), destinations: [storage] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupError);
    expect((err as Error).message).toMatch(/srv, database shop produced no data/);
    expect(storage.objects.size).toBe(0);
  });

  it('a destination failing one part gets no manifest and keeps no part; the other commits', async () => {
    const [good, bad] = [new MemoryStorage(), new MemoryStorage()];
    const put = bad.put.bind(bad);
    bad.put = async (key: string, body: Body, options?: PutOptions) => {
      if (key.includes('.db1.')) throw new StorageError('memory: connection reset by peer');
      return put(key, body, options);
    };
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeServerEngine(server()), destinations: [good, bad] },
    );
    expect(result.committed).toEqual([good]);
    expect(result.failures.map((f) => f.destination)).toEqual([bad]);
    expect((result.failures[0]!.error as Error).message).toMatch(/connection reset/);
    expect(manifests(good)).toHaveLength(1);
    expect(bad.objects.size).toBe(0);
  });

  it('the commit checks every part: one of the wrong size leaves no manifest and no part there', async () => {
    const [good, short] = [new MemoryStorage(), new MemoryStorage()];
    const stat = short.stat.bind(short);
    short.stat = async (key: string) => {
      const info = await stat(key);
      return info && key.includes('.db2.') ? { ...info, size: info.size - 1 } : info;
    };
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine: fakeServerEngine(server()), destinations: [good, short] },
    );
    expect(result.committed).toEqual([good]);
    expect((result.failures[0]!.error as Error).message).toMatch(
      /\.db2\.dump\.zst holds \d+ bytes after writing/,
    );
    expect(short.objects.size).toBe(0);
    expect(manifests(good)).toHaveLength(1);
  });

  it('dumps at most dumpJobs databases at once', async () => {
    const started: string[] = [];
    const releases = new Map<string, () => void>();
    let twoStarted!: () => void;
    const bothRunning = new Promise<void>((resolve) => (twoStarted = resolve));
    const blocked = (name: string) =>
      async function* () {
        started.push(name);
        if (started.length === 2) twoStarted();
        await new Promise<void>((resolve) => releases.set(name, resolve));
        yield Buffer.from(`PGDMP ${name}`);
      };
    const run = runBackup(
      { target: { ...target, dumpJobs: 2 }, labels: [], verify: false },
      {
        engine: fakeServerEngine(
          server({ databases: { a: blocked('a'), b: blocked('b'), c: blocked('c') } }),
        ),
        destinations: [new MemoryStorage()],
      },
    );
    await bothRunning;
    expect(started).toEqual(['a', 'b']);
    releases.get('b')!();
    releases.get('a')!();
    // c starts only once a or b has finished; it is released as soon as it waits.
    await new Promise<void>((resolve) => {
      const poll = () => (releases.has('c') ? resolve() : setImmediate(poll));
      poll();
    });
    releases.get('c')!();
    const { manifest } = await run;
    expect(manifest.set?.databases.map((d) => d.database)).toEqual(['a', 'b', 'c']);
  });

  it('a database dropped before its turn is left out and said so; the set goes on', async () => {
    const storage = new MemoryStorage();
    const fake = server();
    const engine = fakeServerEngine(fake);
    const bind = engine.serverSet.database;
    // `app` is dumped first; while it is, `shop` goes away, and connecting to it then fails.
    fake.databases.app = async function* () {
      delete fake.databases.shop;
      yield Buffer.from('PGDMP app');
    };
    engine.serverSet.database = (name) =>
      name in fake.databases
        ? bind(name)
        : { ...bind('app'), preflight: () => Promise.reject(new Error(`database "${name}" does not exist`)) };
    const result = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage] },
    );
    const { set } = result.manifest;
    expect(set?.databases.map((d) => [d.database, d.object.split('.')[1]])).toEqual([['app', 'db1']]);
    expect(set?.unreadable).toEqual([{ database: 'shop', reason: 'dropped while the set was taken' }]);
    expect(result.members?.databases).toEqual(['app']);
    expect((await readCatalog(storage)).backups).toHaveLength(1);
  });

  it('parts are numbered in name order whichever database is ready first', async () => {
    const engine = fakeServerEngine(
      server({ databases: { a: () => data('PGDMP a'), b: () => data('PGDMP b') } }),
    );
    const bind = engine.serverSet.database;
    let bReady!: () => void;
    const bPreflighted = new Promise<void>((resolve) => (bReady = resolve));
    engine.serverSet.database = (name) => {
      const db = bind(name);
      const preflight = db.preflight;
      return name === 'a'
        ? { ...db, preflight: (o) => bPreflighted.then(() => preflight(o)) }
        : { ...db, preflight: async (o) => preflight(o).finally(bReady) };
    };
    const { manifest } = await runBackup(
      { target: { ...target, dumpJobs: 2 }, labels: [], verify: false },
      { engine, destinations: [new MemoryStorage()] },
    );
    expect(manifest.set?.databases.map((d) => [d.database, d.object.split('.')[1]])).toEqual([
      ['a', 'db1'],
      ['b', 'db2'],
    ]);
  });

  it('a database that fails to connect and is still there fails the set', async () => {
    const storage = new MemoryStorage();
    const engine = fakeServerEngine(server());
    const bind = engine.serverSet.database;
    const refused = new Error('connection refused');
    engine.serverSet.database = (name) =>
      name === 'shop' ? { ...bind(name), preflight: () => Promise.reject(refused) } : bind(name);
    const err = await runBackup(
      { target, labels: [], verify: false },
      { engine, destinations: [storage] },
    ).catch((e: unknown) => e);
    expect(err).toBe(refused);
    expect(storage.objects.size).toBe(0);
  });

  it('an encrypted set keeps its database names and facts sealed; the key opens them', async () => {
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const storage = new MemoryStorage();
    const encryption = {
      encrypt: { recipients: [recipient] },
      decrypt: { identities: new Secret(identity) },
    };
    const { manifest } = await runBackup(
      { target: { ...target, encryption }, labels: [], verify: false },
      { engine: fakeServerEngine(server()), destinations: [storage] },
    );
    const stored = storage.objects.get(`srv/${manifest.id}.manifest.json`)!.data.toString();
    expect(stored).not.toMatch(/shop|public\.t|tmp/);
    expect(manifest.set?.globals.object).toMatch(/\.globals\.sql\.zst\.age$/);
    for (const o of storedObjects(manifest))
      expect(storage.objects.get(o.object)!.data.length).toBe(o.storedBytes);
    const opened = await openManifest(manifest, encryption.decrypt);
    expect(opened.set?.databases.map((d) => d.database)).toEqual(['app', 'shop']);
    expect(opened.set?.excluded).toEqual(['tmp']);
  });
});
