/**
 * The manifest's facts are marked exact only when they are the backup's own counts. A writer commits
 * between the facts and the dump (the engine's `dump` writes first, then dumps: deterministic): SQLite
 * counts the copy it streams, so its exact counts equal the restored file's; PostgreSQL counts in the
 * snapshot pg_dump reads, so a writer that commits while pg_dump runs changes neither; Redis counts the
 * RDB and MySQL the script as they stream, so their exact counts include the late rows and keys.
 * PostgreSQL's sequence values are read from the dump's own bytes (custom and plain format): a sequence
 * advanced once pg_dump has written its first bytes keeps, in the facts and in the restored copy, the
 * value the dump holds. PostgreSQL's planner estimates (for `facts()` and schema-only dumps) are not
 * doubled for a table analysed in the session that filled it.
 */
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import type { Engine } from '../../src/engines/engine.ts';
import { createEngine } from '../../src/engines/index.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { compareFacts } from '../../src/jobs/facts-compare.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { Secret } from '../../src/util/secret.ts';
import { type MariadbServer, startMariadb } from '../support/mariadb-server.ts';
import { createDatabase, pgTarget, server, tempDir, uniqueName } from '../support/pg.ts';
import { type RedisServer, startRedis } from '../support/redis-server.ts';

/** The real engine, with `write` run once the dump has produced its first bytes (its snapshot is taken). */
function writerDuringDump(engine: Engine, write: () => Promise<void>): Engine {
  const dump = engine.dump.bind(engine);
  engine.dump = (options) =>
    (async function* () {
      let first = true;
      for await (const chunk of dump(options)) {
        yield chunk;
        if (first) await write();
        first = false;
      }
    })();
  return engine;
}

/** The real engine, with `write` run after its facts are taken and before its dump starts. */
function writerBeforeDump(engine: Engine, write: () => Promise<void>): Engine {
  const dump = engine.dump.bind(engine);
  engine.dump = (options) =>
    (async function* () {
      await write();
      yield* dump(options);
    })();
  return engine;
}

/** A client of the suite's PostgreSQL server, connected to `database`. */
async function connect(database: string): Promise<pg.Client> {
  const s = server();
  const c = new pg.Client({ host: s.host, port: s.port, user: s.user, password: s.password, database });
  await c.connect();
  return c;
}

async function backUp(target: TargetConfig, engine: Engine) {
  const storage = new LocalStorage(await tempDir('facts-store-'));
  const { manifest } = await runBackup(
    { target, labels: [], verify: false },
    { engine, destinations: [storage] },
  );
  return { storage, manifest };
}

describe('facts marked exact are the backup’s', () => {
  it('sqlite: counts come from the copy that is streamed, and equal the restored file’s', async () => {
    const path = join(await tempDir('facts-sqlite-'), 'live.db');
    const live = new DatabaseSync(path);
    live.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (i INTEGER)');
    const insert = (n: number) => {
      live.exec('BEGIN');
      for (let i = 0; i < n; i++) live.prepare('INSERT INTO t VALUES (?)').run(i);
      live.exec('COMMIT');
    };
    insert(100);
    const base = offlineTarget('facts', undefined, 'sqlite');
    const target = { ...base, connection: { ...base.connection, database: path } };
    const engine = createEngine(target);
    try {
      expect(await engine.facts()).toEqual({ exact: false, tables: [{ name: 't', rows: 100 }] });
      const { storage, manifest } = await backUp(
        target,
        writerBeforeDump(engine, async () => insert(7)),
      );
      const restored = join(await tempDir('facts-sqlite-copy-'), 'copy.db');
      await runRestore(
        { manifest, targetDatabase: restored, dryRun: false, force: false, dropExisting: false, jobs: 1 },
        { engine, storage },
      );
      const copy = new DatabaseSync(restored, { readOnly: true });
      const held = Number((copy.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n);
      copy.close();
      expect(held).toBe(107);
      expect(manifest.facts).toEqual({ exact: true, tables: [{ name: 't', rows: held }] });
      expect(await engine.restoredFacts(restored)).toEqual(manifest.facts);
    } finally {
      live.close();
    }
  });

  describe('redis', () => {
    let redis: RedisServer;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('keys are counted from the RDB as it streams: exact, with the keys written after the live count', async () => {
      const client = await redis.client(0);
      try {
        for (let i = 0; i < 20; i++) await client.set(`k${i}`, 'v');
        const target = redis.target('facts_redis');
        const engine = createEngine(target);
        expect(await engine.facts()).toEqual({ exact: false, tables: [{ name: 'db0', rows: 20 }] });
        const { manifest } = await backUp(
          target,
          writerBeforeDump(engine, async () => {
            for (let i = 20; i < 25; i++) await client.set(`k${i}`, 'v');
          }),
        );
        // The live count was taken at 20; the snapshot, and so the facts, hold 25 keys.
        expect(manifest.facts).toEqual({
          exact: true,
          tables: [{ name: 'db0', rows: 25 }],
          objects: [{ kind: 'string', count: 25 }],
        });
      } finally {
        client.disconnect();
      }
    });
  });

  describe('mysql', () => {
    let mariadb: MariadbServer;
    beforeAll(async () => {
      mariadb = await startMariadb();
    });
    afterAll(async () => {
      await mariadb?.stop();
    });

    it('rows are counted from the dump’s script: exact, and equal to the restored copy’s', async () => {
      const db = uniqueName('facts_my');
      await mariadb.query(`CREATE DATABASE ${db}`);
      await mariadb.query(
        'CREATE TABLE t (i INT) ENGINE=InnoDB; INSERT INTO t SELECT seq FROM seq_1_to_50',
        db,
      );
      const base = offlineTarget('facts-mysql', undefined, 'mysql');
      const target: TargetConfig = {
        ...base,
        connection: {
          ...base.connection,
          host: mariadb.host,
          port: mariadb.port,
          user: mariadb.user,
          password: new Secret(mariadb.password),
          database: db,
        },
      };
      const engine = createEngine(target);
      const { storage, manifest } = await backUp(
        target,
        writerBeforeDump(engine, async () => {
          await mariadb.query('INSERT INTO t SELECT seq FROM seq_51_to_55', db);
        }),
      );
      const copy = `${db}_copy`;
      await runRestore(
        { manifest, targetDatabase: copy, dryRun: false, force: false, dropExisting: false, jobs: 1 },
        { engine, storage },
      );
      // The live count was taken at 50; the backup holds 55, and its facts say so.
      expect(await mariadb.query(`SELECT count(*) FROM ${copy}.t`)).toEqual([['55']]);
      expect(manifest.facts.exact).toBe(true);
      expect(manifest.facts.tables).toEqual([{ name: `${db}.t`, rows: 55 }]);
    });
  });

  it('postgres: rows, schemas, tables, views and functions counted in the dump’s own snapshot', async () => {
    const db = uniqueName('facts_pg_exact');
    await createDatabase(db);
    const live = await connect(db);
    try {
      await live.query(`
        CREATE SCHEMA app;
        CREATE TABLE app.parent (i int);
        CREATE TABLE app.child () INHERITS (app.parent);
        CREATE TABLE "Odd ""name""" (i int);
        CREATE VIEW app.v AS SELECT i FROM app.parent;
        CREATE MATERIALIZED VIEW app.mv AS SELECT count(*) AS n FROM app.parent;
        CREATE SEQUENCE app.s;
        CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
        INSERT INTO app.parent SELECT generate_series(1, 30);
        INSERT INTO app.child SELECT generate_series(1, 12);
        INSERT INTO "Odd ""name""" SELECT generate_series(1, 5);`);
      const target = pgTarget(db);
      // Rows committed while pg_dump runs are in neither the dump nor its facts.
      const { storage, manifest } = await backUp(
        target,
        writerDuringDump(createEngine(target), async () => {
          await live.query('INSERT INTO app.parent SELECT generate_series(1, 1000)');
        }),
      );
      expect(manifest.facts.exact).toBe(true);
      expect(manifest.facts.tables).toEqual([
        { name: 'app.child', rows: 12 },
        { name: 'app.parent', rows: 30 },
        { name: 'public.Odd "name"', rows: 5 },
      ]);
      expect(manifest.facts.objects).toEqual([
        { kind: 'schemas', count: 2 },
        { kind: 'tables', count: 3 },
        { kind: 'views', count: 1 },
        { kind: 'materialized views', count: 1 },
        { kind: 'sequences', count: 1 },
        { kind: 'functions', count: 1 },
      ]);

      // What a drill does: restore, then count the copy the same way.
      const copyName = uniqueName('facts_pg_copy');
      await runRestore(
        { manifest, targetDatabase: copyName, dryRun: false, force: false, dropExisting: false, jobs: 1 },
        { engine: createEngine(target), storage },
      );
      const restored = await createEngine(target).restoredFacts(copyName);
      expect(restored).toEqual(manifest.facts);
      expect(compareFacts(manifest.facts, restored).differences).toEqual([]);
    } finally {
      await live.end();
    }
  });

  for (const format of ['custom', 'plain']) {
    it(`postgres (${format}): sequence values are the ones the dump holds, read from its bytes`, async () => {
      const db = uniqueName(`facts_pg_seq_${format}`);
      await createDatabase(db);
      const live = await connect(db);
      try {
        await live.query(`
          CREATE SEQUENCE called;
          SELECT nextval('called'), nextval('called'), nextval('called');
          CREATE SEQUENCE never START 40;
          CREATE SEQUENCE "Mixed" START 100;
          SELECT nextval('"Mixed"');
          CREATE SEQUENCE big;
          SELECT setval('big', 9007199254740993);
          CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY, v text);
          INSERT INTO t (v) VALUES ('SELECT pg_catalog.setval(''public.called'', 99, true);'), ('x');`);
        const target = { ...pgTarget(db), format };
        // Once the dump's first bytes are out, pg_dump has read every sequence: a value taken later is
        // not the backup's, though it is the live one.
        const { storage, manifest } = await backUp(
          target,
          writerDuringDump(createEngine(target), async () => {
            await live.query("SELECT nextval('called'), nextval('never')");
          }),
        );
        const held = [
          { name: 'public.Mixed', value: '100' },
          { name: 'public.big', value: '9007199254740993' },
          { name: 'public.called', value: '3' },
          { name: 'public.never', value: null },
          { name: 'public.t_id_seq', value: '2' },
        ];
        expect(manifest.facts.exact).toBe(true);
        expect(manifest.facts.sequences).toEqual(held);
        expect(manifest.facts.objects).toContainEqual({ kind: 'sequences', count: held.length });
        const now = await live.query(
          'SELECT last_value, is_called FROM called UNION ALL SELECT last_value, is_called FROM never',
        );
        expect(now.rows).toEqual([
          { last_value: '4', is_called: true },
          { last_value: '40', is_called: true },
        ]);

        const copyName = uniqueName(`facts_pg_seq_copy_${format}`);
        await runRestore(
          { manifest, targetDatabase: copyName, dryRun: false, force: false, dropExisting: false, jobs: 1 },
          { engine: createEngine(target), storage },
        );
        const restored = await createEngine(target).restoredFacts(copyName);
        expect(restored.sequences).toEqual(held);
        expect(compareFacts(manifest.facts, restored).differences).toEqual([]);

        // A restored sequence that does not hold the backup's value is named by the comparison.
        const copy = await connect(copyName);
        await copy.query("SELECT nextval('never')").finally(() => copy.end());
        expect(
          compareFacts(manifest.facts, await createEngine(target).restoredFacts(copyName)).differences,
        ).toEqual([{ item: 'sequence public.never', expected: 'not started', found: '40' }]);
      } finally {
        await live.end();
      }
    });
  }

  it('postgres: a table analysed in the session that filled it is estimated once, not twice', async () => {
    const db = uniqueName('facts_pg');
    await createDatabase(db);
    const s = server();
    const client = new pg.Client({
      host: s.host,
      port: s.port,
      user: s.user,
      password: s.password,
      database: db,
    });
    await client.connect();
    try {
      // Separate statements (each its own transaction), so the inserts' statistics are still pending
      // in this session when ANALYZE reports its own count.
      await client.query('CREATE TABLE t (i int)');
      await client.query('INSERT INTO t SELECT generate_series(1, 500)');
      await client.query('ANALYZE t');
      await client.query('CREATE TABLE never_analysed (i int)');
      await client.query('INSERT INTO never_analysed SELECT generate_series(1, 30)');
    } finally {
      await client.end();
    }
    const facts = await createEngine(pgTarget(db)).facts();
    expect(facts.exact).toBe(false);
    expect(facts.tables).toContainEqual({ name: 'public.t', rows: 500 });
    // Never analysed (reltuples -1): the statistics' live tuples, never a negative count.
    const never = facts.tables.find((t) => t.name === 'public.never_analysed');
    expect(never?.rows).toBeGreaterThanOrEqual(0);
  });
});
