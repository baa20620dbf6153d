/**
 * `datasaver drill` of MySQL/MariaDB backups through the real command line, against real MariaDB servers:
 * good backups (one database with every kind of object, all databases, a list of two) restore on a
 * throwaway server to their facts and leave nothing behind; a dump with rows removed (checksum and
 * manifest recomputed, so `verify` passes) fails naming the table; a drill server
 * (DATASAVER_DRILL_URL) gets a scratch database and nothing else, refuses backups that name their
 * databases, and a killed drill's scratch database is dropped by the next drill; a killed drill's
 * throwaway server is stopped by the next command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startPausedAt } from '../support/cli.ts';
import {
  backUp,
  type DrillEnv,
  drillEnv,
  drillJson,
  drillLeftovers,
  drillParent,
  drillRecord,
  killedDrillIsSweptByNextCommand,
  recordedFacts,
  removeDrillParent,
  replaceStoredDump,
  type StoredBackup,
  storedDump,
} from '../support/drill.ts';
import { ident, type MariadbServer, startMariadb } from '../support/mariadb-server.ts';
import { uniqueName } from '../support/pg.ts';

let source: MariadbServer;
let tmp: string;
const shop = uniqueName('drill_shop');
const other = uniqueName('drill_other');

/**
 * A database with several tables (one empty), a view, a procedure, a trigger, and a view and a function
 * whose DEFINER is `ghost`, a user only the source server has.
 */
async function seedShop(s: MariadbServer, name: string): Promise<void> {
  await s.exec(`
CREATE USER IF NOT EXISTS 'ghost'@'%';
CREATE DATABASE ${ident(name)};
USE ${ident(name)};
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(10,2));
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT NOT NULL);
CREATE TABLE archive (id INT PRIMARY KEY);
INSERT INTO customers
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) SELECT i, CONCAT('customer ', i) FROM n;
DELIMITER //
CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (order_id) VALUES (NEW.id)//
CREATE PROCEDURE add_order(IN p_id INT) BEGIN INSERT INTO orders VALUES (p_id, 1, 9.99); END//
CREATE DEFINER='ghost'@'%' FUNCTION doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2//
DELIMITER ;
INSERT INTO orders
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25) SELECT i, 1 + i % 40, i * 1.5 FROM n;
CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 10;
CREATE DEFINER='ghost'@'%' SQL SECURITY INVOKER VIEW ghost_view AS SELECT id FROM customers;
`);
}

beforeAll(async () => {
  source = await startMariadb();
  await seedShop(source, shop);
  await source.query(
    `CREATE DATABASE ${ident(other)}; CREATE TABLE ${ident(other)}.notes (id INT PRIMARY KEY, body TEXT); INSERT INTO ${ident(other)}.notes VALUES (1, 'a'), (2, 'b'), (3, 'c')`,
  );
  tmp = await drillParent();
});

afterAll(async () => {
  await source?.stop();
  await removeDrillParent(tmp);
});

/** The CLI's environment for a target on the source server (`databases` undefined: all of them). */
function envFor(databases: string | undefined, extra: Record<string, string> = {}) {
  const target = {
    DATASAVER_ENGINE: 'mysql',
    DATASAVER_DB_HOST: source.host,
    DATASAVER_DB_PORT: String(source.port),
    ...(databases === undefined ? {} : { DATASAVER_DB_NAME: databases }),
    DATASAVER_DB_USER: source.user,
    DATASAVER_DB_PASSWORD: source.password,
  };
  return drillEnv({ ...target, ...extra }, tmp);
}

/** A drill that passes on a throwaway server, records ok, and leaves no dir or process behind. */
async function drillsClean(env: DrillEnv, b: StoredBackup) {
  const { code, result, res } = await drillJson(b.id, env);
  expect(code, res.output).toBe(0);
  expect(result).toMatchObject({ id: b.id, ok: true, reason: null, differences: [] });
  expect(result.compared).toBeGreaterThan(0);
  expect(result.restoreMs).toBeGreaterThan(0);
  expect(result.place).toMatch(/throwaway/i);
  expect(await drillRecord(env.DATASAVER_STORAGE_PATH, b)).toMatchObject({ id: b.id, ok: true });
  expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  return result;
}

describe('drill on a throwaway MariaDB server', () => {
  it('one database with every kind of object, and a DEFINER the throwaway server lacks, drills clean', async () => {
    const env = await envFor(shop);
    const b = await backUp(env);
    const facts = await recordedFacts(env.DATASAVER_STORAGE_PATH, b);
    expect(facts.tables).toContainEqual({ name: `${shop}.archive`, rows: 0 });
    expect(facts.objects).toEqual(
      expect.arrayContaining([
        { kind: 'views', count: 2 },
        { kind: 'routines', count: 2 },
        { kind: 'triggers', count: 1 },
      ]),
    );
    const result = await drillsClean(env, b);
    // Tables, and every kind of object: each compared.
    expect(result.compared).toBeGreaterThanOrEqual(facts.tables.length + 6);

    // As people read it.
    const text = await runCli(['drill', b.id], env);
    expect(text.code, text.output).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^ok +${b.id} restored in .* as recorded`, 'm'));
  });

  it('a backup of all databases drills clean', async () => {
    const env = await envFor(undefined);
    const b = await backUp(env);
    const names = (await recordedFacts(env.DATASAVER_STORAGE_PATH, b)).tables.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([`${shop}.orders`, `${other}.notes`]));
    await drillsClean(env, b);
  });

  it('a backup of a list of two databases drills clean', async () => {
    const env = await envFor(`${shop},${other}`);
    const b = await backUp(env);
    const names = (await recordedFacts(env.DATASAVER_STORAGE_PATH, b)).tables.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining([`${shop}.customers`, `${other}.notes`]));
    await drillsClean(env, b);
  });

  it('rows removed from the dump (checksum recomputed: verify passes) fail the drill naming the table', async () => {
    // Stored with gzip: the dump goes back with the compression its manifest names.
    const env = await envFor(shop, { DATASAVER_COMPRESSION: 'gzip' });
    const b = await backUp(env);
    expect(b.compression).toBe('gzip');
    const script = (await storedDump(env.DATASAVER_STORAGE_PATH, b.target, b.id)).toString('utf8');
    // The last row tuple of the customers INSERT (rows on one line or a line each, as the tool writes
    // them), and the whole INSERT of orders.
    const lastCustomer = /,\s*\(40,'customer 40'\);\n/;
    const ordersInsert = /^INSERT INTO `orders` VALUES[^;]*;\n/m;
    expect(script).toMatch(lastCustomer);
    expect(script).toMatch(ordersInsert);
    const tampered = script.replace(lastCustomer, ';\n').replace(ordersInsert, '');
    await replaceStoredDump(env.DATASAVER_STORAGE_PATH, b.target, b.id, Buffer.from(tampered));

    const verify = await runCli(['verify', b.id], env);
    expect(verify.code, verify.output).toBe(0);

    const res = await runCli(['drill', b.id], env);
    expect(res.code, res.output).toBe(5);
    expect(res.stdout).toContain(`FAILED  ${b.id} (drill)`);
    expect(res.stdout).toContain(`table ${shop}.customers: expected 40, found 39`);
    expect(res.stdout).toContain(`table ${shop}.orders: expected 25, found 0`);
    const record = await drillRecord(env.DATASAVER_STORAGE_PATH, b);
    expect(record).toMatchObject({ id: b.id, ok: false, reason: 'drill', differenceCount: 2 });
    expect(record.differences).toEqual(
      expect.arrayContaining([{ item: `table ${shop}.customers`, expected: '40', found: '39' }]),
    );
    expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  });

  it('a drill killed -9 holding its throwaway server: the next command stops the server and removes its dir', async () => {
    const env = await envFor(shop);
    const b = await backUp(env);
    await killedDrillIsSweptByNextCommand(b.id, env, tmp);
  });
});

describe('drill on a drill server (DATASAVER_DRILL_URL)', () => {
  let drillServer: MariadbServer;
  let drillUrl: string;

  beforeAll(async () => {
    drillServer = await startMariadb();
    drillUrl = `mysql://${drillServer.user}:${encodeURIComponent(drillServer.password)}@${drillServer.host}:${drillServer.port}`;
    // Something of its own that a drill must leave alone.
    await drillServer.query(
      `CREATE DATABASE keep_me; CREATE TABLE keep_me.t (id INT PRIMARY KEY); INSERT INTO keep_me.t VALUES (7)`,
    );
  });
  afterAll(async () => {
    await drillServer?.stop();
  });

  const databases = async () => (await drillServer.query('SHOW DATABASES')).map((r) => r[0]!);

  it('a backup of one database drills in a scratch database, and nothing else there changes', async () => {
    const env = await envFor(shop, { DATASAVER_DRILL_URL: drillUrl });
    const b = await backUp(env);
    const before = await databases();
    const { code, result, res } = await drillJson(b.id, env);
    expect(code, res.output).toBe(0);
    expect(result).toMatchObject({ ok: true, differences: [] });
    expect(result.compared).toBeGreaterThan(0);
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(result.place).toMatch(/^scratch database datasaver_drill_[a-z0-9_]+ on 127\.0\.0\.1:\d+$/);
    expect(await databases()).toEqual(before);
    expect(await drillServer.query('SELECT id FROM keep_me.t')).toEqual([['7']]);
    expect(await drillRecord(env.DATASAVER_STORAGE_PATH, b)).toMatchObject({ ok: true });
    // The throwaway server was not used.
    expect(await drillLeftovers(tmp)).toEqual({ dirs: [], pids: [] });
  });

  it('a backup of all databases is refused there, creating nothing', async () => {
    const env = await envFor(undefined, { DATASAVER_DRILL_URL: drillUrl });
    const b = await backUp(env);
    const before = await databases();
    const res = await runCli(['drill', b.id], env);
    expect(res.code, res.output).toBe(1);
    expect(res.stderr).toMatch(/restores into the databases it names/);
    expect(res.stderr).toMatch(/unset DATASAVER_DRILL_URL/);
    expect(await databases()).toEqual(before);
    expect(res.output).not.toContain(drillServer.password);
  });

  it('a drill killed -9 leaves its scratch database, which the next drill drops', async () => {
    const env = await envFor(shop, { DATASAVER_DRILL_URL: drillUrl });
    const b = await backUp(env);
    const before = await databases();
    const run = await startPausedAt('drill.restored', ['drill', b.id], env);
    let during: string[];
    try {
      during = await databases();
    } finally {
      run.child.kill('SIGKILL');
    }
    expect((await run.done).signal).toBe('SIGKILL');
    const left = during.filter((d) => !before.includes(d));
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(/^datasaver_drill_/);
    expect(await databases()).toEqual(during);

    const next = await runCli(['drill', b.id], env);
    expect(next.code, next.output).toBe(0);
    expect(next.stderr).toContain(`note: dropped ${left[0]} on 127.0.0.1:${drillServer.port}`);
    expect(await databases()).toEqual(before);
  });
});
