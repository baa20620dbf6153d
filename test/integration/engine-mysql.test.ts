/**
 * The MySQL/MariaDB engine against real MariaDB servers started for this file: the shared engine
 * conformance suite, then what only MySQL has (database lists, all databases, multi-database restores,
 * how the password travels, TLS, failure messages).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import type { ConnectionConfig } from '../../src/engines/engine.ts';
import { createEngine } from '../../src/engines/index.ts';
import { MysqlEngine } from '../../src/engines/mysql/engine.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { compareFacts } from '../../src/jobs/facts-compare.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { rawDumpStream } from '../../src/pipeline/read.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { BackupError, ConnectionError, RestoreError, UsageError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
import { engineConformance } from '../support/engine-conformance.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import { ident, type MariadbServer, startMariadb } from '../support/mariadb-server.ts';
import { tempDir, uniqueName } from '../support/pg.ts';
import { selfSignedCert } from '../support/tls.ts';

let server: MariadbServer;

beforeAll(async () => {
  server = await startMariadb({ tls: true });
});

afterAll(async () => {
  await server?.stop();
});

function target(
  s: MariadbServer,
  database: string | undefined,
  connection: Partial<ConnectionConfig> = {},
): TargetConfig {
  const t = offlineTarget('shop-mysql', undefined, 'mysql');
  return {
    ...t,
    connection: {
      ...t.connection,
      host: s.host,
      port: s.port,
      user: s.user,
      password: new Secret(s.password),
      database,
      ...connection,
    },
  };
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex');
const ALL_BYTES_REVERSED = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i)).toString('hex');

/**
 * A database with utf8mb4 text (emoji, accents, tabs, newlines, quotes, backslashes), every byte value in
 * binary columns, DECIMAL(20,6), DATETIME(6), a foreign key, a view, a trigger, a procedure, a function
 * and an event, in a non-default collation.
 */
async function seedDatabase(s: MariadbServer, name: string): Promise<void> {
  await s.exec(`
CREATE DATABASE ${ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
USE ${ident(name)};
CREATE TABLE customers (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  note TEXT,
  balance DECIMAL(20,6) NOT NULL,
  created DATETIME(6) NOT NULL,
  KEY by_name (name)
) ENGINE=InnoDB;
CREATE TABLE audit (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  action VARCHAR(20) NOT NULL,
  at DATETIME(6) NOT NULL,
  CONSTRAINT audit_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB;
CREATE TABLE blobs (id INT PRIMARY KEY, data BLOB, fixed BINARY(4), bits BIT(8), raw VARBINARY(300)) ENGINE=InnoDB;
DELIMITER //
CREATE TRIGGER customers_audit AFTER INSERT ON customers FOR EACH ROW
  INSERT INTO audit (customer_id, action, at) VALUES (NEW.id, 'insert', NEW.created)//
CREATE PROCEDURE add_customer(IN p_name VARCHAR(100), IN p_balance DECIMAL(20,6))
BEGIN
  INSERT INTO customers (name, note, balance, created) VALUES (p_name, 'added by procedure ✓', p_balance, NOW(6));
END//
CREATE FUNCTION balance_band(b DECIMAL(20,6)) RETURNS VARCHAR(10) DETERMINISTIC
  RETURN IF(b >= 0, 'crédit', 'débit')//
DELIMITER ;
INSERT INTO customers (name, note, balance, created)
  SELECT CONCAT('Zoë 😀 Ñandú #', n),
         IF(n % 10 = 0, NULL, CONCAT('Ünïcödé — ', REPEAT('ß', n % 7), ' 🐘\ttab\nnewline ''quote'' \\\\ backslash')),
         n * 1234567.123456 - 99999999.5,
         TIMESTAMP('2024-02-29 23:59:59.123456') + INTERVAL n MINUTE
    FROM (WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 200) SELECT n FROM seq) s;
INSERT INTO blobs VALUES
  (1, X'${ALL_BYTES}', X'00FF0A0D', b'10100101', X'${ALL_BYTES_REVERSED}'),
  (2, NULL, NULL, NULL, NULL),
  (3, '', X'00000000', b'0', '');
CREATE VIEW rich_customers AS SELECT id, name, balance_band(balance) AS band FROM customers WHERE balance > 0;
CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00'
  DO DELETE FROM audit WHERE at < NOW() - INTERVAL 90 DAY;
`);
}

/**
 * Everything a round trip must keep: the database's defaults, every table's definition and rows (ordered,
 * binary columns in hex), and the definitions of views, triggers, routines and events, with DEFINER
 * clauses and the database's own name taken out.
 */
async function snapshot(s: MariadbServer, database: string): Promise<unknown> {
  const q = (sql: string) => s.query(sql, database);
  const norm = (text: string) =>
    text.replace(/DEFINER=`[^`]*`@`[^`]*`\s*/g, '').replaceAll(ident(database), '`DB`');
  const db = `'${database.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const defaults = await q(
    `SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${db}`,
  );
  const tables: Record<string, unknown> = {};
  for (const [name, type] of await q(
    `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${db} ORDER BY TABLE_NAME`,
  )) {
    if (type === 'VIEW') {
      tables[name!] = { view: norm((await q(`SHOW CREATE VIEW ${ident(name!)}`))[0]![1]!) };
      continue;
    }
    const columns = await q(
      `SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ${db} AND TABLE_NAME = '${name}' ORDER BY ORDINAL_POSITION`,
    );
    const select = columns
      .map(([c, t]) => (/blob|binary|bit/.test(t!) ? `HEX(${ident(c!)})` : ident(c!)))
      .join(', ');
    tables[name!] = {
      create: norm((await q(`SHOW CREATE TABLE ${ident(name!)}`))[0]![1]!),
      rows: await q(`SELECT ${select} FROM ${ident(name!)} ORDER BY 1`),
    };
  }
  const triggers: Record<string, unknown> = {};
  for (const [name] of await q(
    `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ${db}`,
  )) {
    const row = (await q(`SHOW CREATE TRIGGER ${ident(name!)}`))[0]!;
    triggers[name!] = { sqlMode: row[1], create: norm(row[2]!), charset: row.slice(3, 6) };
  }
  const routines: Record<string, unknown> = {};
  for (const [type, name] of await q(
    `SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ${db}`,
  )) {
    const row = (await q(`SHOW CREATE ${type} ${ident(name!)}`))[0]!;
    routines[`${type} ${name}`] = { sqlMode: row[1], create: norm(row[2]!), charset: row.slice(3, 6) };
  }
  const events: Record<string, unknown> = {};
  for (const [name] of await q(
    `SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ${db}`,
  )) {
    const row = (await q(`SHOW CREATE EVENT ${ident(name!)}`))[0]!;
    events[name!] = { sqlMode: row[1], timeZone: row[2], create: norm(row[3]!), charset: row.slice(4, 7) };
  }
  return { defaults, tables, triggers, routines, events };
}

async function databaseExists(s: MariadbServer, name: string): Promise<boolean> {
  const rows = await s.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA');
  return rows.some((r) => r[0] === name);
}

async function backUp(t: TargetConfig) {
  const storage = new LocalStorage(await tempDir('mysql-store-'));
  const { manifest } = await runBackup(
    { target: t, labels: [], verify: false },
    { engine: createEngine(t), destinations: [storage] },
  );
  return { storage, manifest };
}

async function restore(
  t: TargetConfig,
  storage: LocalStorage,
  manifest: Manifest,
  options: { targetDatabase?: string; force?: boolean; dropExisting?: boolean } = {},
) {
  return runRestore(
    {
      manifest,
      targetDatabase: options.targetDatabase,
      dryRun: false,
      force: options.force ?? false,
      dropExisting: options.dropExisting ?? false,
      jobs: 1,
    },
    { engine: createEngine(t), storage },
  );
}

async function entriesOf(t: TargetConfig, storage: LocalStorage, manifest: Manifest) {
  const raw = rawDumpStream(await storage.get(manifest.object), manifest.compression);
  return (await createEngine(t).inspect(raw, manifest.format)).entries;
}

async function failure(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

let lastSeeded = '';

/** Facts' objects by kind, in the order the engine lists them. */
function objectCounts(counts: Record<string, number>) {
  return ['databases', 'tables', 'views', 'routines', 'triggers', 'events'].map((kind) => ({
    kind,
    count: counts[kind] ?? 0,
  }));
}

/** The exact table facts of a database made by seedDatabase. */
function seededTables(database: string) {
  return [
    { name: `${database}.audit`, rows: 200 },
    { name: `${database}.blobs`, rows: 3 },
    { name: `${database}.customers`, rows: 200 },
  ];
}

engineConformance('mysql', {
  seed: async () => {
    lastSeeded = uniqueName('conf');
    await seedDatabase(server, lastSeeded);
    return target(server, lastSeeded);
  },
  snapshot: (t, where) => snapshot(server, where ?? t.connection.database!),
  restoreDestination: async (source) => ({ targetDatabase: uniqueName('conf_restored'), target: source }),
  extension: 'mysql.sql',
  // Facts name tables `database.table`, and every seed makes a new database.
  get facts() {
    return [
      { name: `${lastSeeded}.customers`, rows: 200 },
      { name: `${lastSeeded}.audit`, rows: 200 },
    ];
  },
  wrongPassword: (t) => ({ ...t, connection: { ...t.connection, password: new Secret('not-the-password') } }),
  serverDown: (t) => ({ ...t, connection: { ...t.connection, port: 1 } }),
  tool: { name: 'mariadb-dump', package: /mariadb-client/ },
});

describe('mysql engine', () => {
  it('records versions, live row counts (not exact: counted before the dump) and the exact facts of the dump, and verify lists every kind of object', async () => {
    const db = uniqueName('objects');
    await seedDatabase(server, db);
    const t = target(server, db);
    const engine = new MysqlEngine(t);
    const facts = await engine.facts();
    // Counted outside the dump's snapshot: never marked as the backup's exact counts.
    expect(facts.exact).toBe(false);
    expect(facts.tables).toEqual([
      { name: `${db}.audit`, rows: 200 },
      { name: `${db}.blobs`, rows: 3 },
      { name: `${db}.customers`, rows: 200 },
    ]);
    const info = await engine.preflight();
    expect(info.serverVersion).toBe(server.version);
    expect(info.toolVersion).toMatch(/^mariadb-dump \d+\.\d+ \(MariaDB \d+\.\d+\.\d+\)$/);

    const { storage, manifest } = await backUp(t);
    // The backup's own facts: counted from its script, the same names as the live ones.
    expect(manifest.facts).toEqual({
      exact: true,
      tables: facts.tables,
      objects: objectCounts({ databases: 1, tables: 3, views: 1, routines: 2, triggers: 1, events: 1 }),
    });
    const entries = await entriesOf(t, storage, manifest);
    for (const [type, name] of [
      ['TABLE', 'customers'],
      ['TABLE DATA', 'customers'],
      ['TABLE', 'blobs'],
      ['VIEW', 'rich_customers'],
      ['TRIGGER', 'customers_audit'],
      ['PROCEDURE', 'add_customer'],
      ['FUNCTION', 'balance_band'],
      ['EVENT', 'purge_audit'],
    ]) {
      expect(entries).toContainEqual({ type, schema: db, name });
    }
    // A one-database dump names no database, so it restores under any name.
    expect(entries.filter((e) => e.type === 'DATABASE')).toEqual([]);
  });

  it('passes the password through a private option file only, never argv or the environment; no other secret reaches the tools', async () => {
    const db = uniqueName('secret');
    await seedDatabase(server, db);
    const logDir = await tempDir('mysql-argv-');
    const wrapper = (tool: string) => `
if [ "$1" = "--version" ]; then exec /usr/bin/${tool} --version; fi
d="${logDir}/${tool}.$$.$(date +%s%N)"; mkdir -p "$d"
tr '\\0' '\\n' < /proc/$$/cmdline > "$d/cmdline"
tr '\\0' '\\n' < /proc/$$/environ > "$d/environ"
f="\${1#--defaults-extra-file=}"
if [ "$f" != "$1" ]; then
  echo "$f" > "$d/file"; stat -c %a "$f" > "$d/mode"; stat -c %a "$(dirname "$f")" > "$d/dirmode"
fi
exec /usr/bin/${tool} "$@"`;
    const toolDir = await fakeToolDir({
      'mariadb-dump': wrapper('mariadb-dump'),
      mariadb: wrapper('mariadb'),
    });
    const t = { ...target(server, db), toolDir };
    // Secrets of datasaver's own and of the parent process: no tool may see them.
    const parentSecrets = {
      AWS_SECRET_ACCESS_KEY: 'aws-secret-0002',
      DATASAVER_S3_SECRET_KEY: 's3-secret-0002',
      DATASAVER_WEBHOOK_URL: 'http://127.0.0.1:9/hooks/token-0002',
      SECRET_X: 'unrelated-0002',
      MYSQL_PWD: 'parent-mysql-password-0002',
    };
    Object.assign(process.env, parentSecrets);
    let storage: LocalStorage;
    let manifest: Manifest;
    const to = uniqueName('secret_restored');
    try {
      ({ storage, manifest } = await backUp(t));
      await restore(t, storage, manifest, { targetDatabase: to });
    } finally {
      for (const name of Object.keys(parentSecrets)) delete process.env[name];
    }
    expect(await snapshot(server, to)).toEqual(await snapshot(server, db));

    const runs = await readdir(logDir);
    expect(runs.some((r) => r.startsWith('mariadb-dump.'))).toBe(true);
    expect(runs.filter((r) => r.startsWith('mariadb.')).length).toBeGreaterThan(3);
    const secretPart = server.password.slice(-8); // the random tail: shows up even if the rest were escaped
    for (const run of runs) {
      const dir = join(logDir, run);
      const argv = (await readFile(join(dir, 'cmdline'), 'utf8')).split('\n');
      const environ = await readFile(join(dir, 'environ'), 'utf8');
      expect(argv.join(' ')).not.toContain(secretPart);
      expect(environ).not.toContain(secretPart);
      expect(environ).not.toMatch(/^MYSQL_PWD=/m);
      for (const value of Object.values(parentSecrets)) expect(environ).not.toContain(value);
      expect(environ).not.toMatch(/^(AWS_|DATASAVER_|SECRET_)/m);
      // argv[0] is the shell, argv[1] this wrapper: the tool's own first argument is the option file.
      expect(argv[2]).toMatch(/^--defaults-extra-file=\//);
      expect((await readFile(join(dir, 'mode'), 'utf8')).trim()).toBe('600');
      expect((await readFile(join(dir, 'dirmode'), 'utf8')).trim()).toBe('700');
      const file = (await readFile(join(dir, 'file'), 'utf8')).trim();
      expect(existsSync(file), `${file} is left behind`).toBe(false);
    }
  });

  it('backs up a list of two databases and restores them where they were, also with --drop-existing', async () => {
    const a = uniqueName('list_a');
    // A space and a backtick in a database name (not a quote: mariadb-dump --events fails on those).
    const b = `${uniqueName('list b')} \`x`;
    await seedDatabase(server, a);
    await seedDatabase(server, b);
    const t = target(server, `${a},${b}`);
    const { storage, manifest } = await backUp(t);
    expect(manifest.facts).toEqual({
      exact: true,
      // By name: `list b...` sorts before `list_a...`.
      tables: [...seededTables(b), ...seededTables(a)],
      objects: objectCounts({ databases: 2, tables: 6, views: 2, routines: 4, triggers: 2, events: 2 }),
    });
    const entries = await entriesOf(t, storage, manifest);
    expect(entries.filter((e) => e.type === 'DATABASE').map((e) => e.name)).toEqual([a, b]);
    expect(entries).toContainEqual({ type: 'TABLE', schema: b, name: 'customers' });
    expect(entries).toContainEqual({ type: 'PROCEDURE', schema: b, name: 'add_customer' });

    const before = [await snapshot(server, a), await snapshot(server, b)];
    await server.query(`DROP DATABASE ${ident(a)}; DROP DATABASE ${ident(b)}`);
    const plan = await restore(t, storage, manifest);
    expect(plan.action).toBe('create');
    expect([await snapshot(server, a), await snapshot(server, b)]).toEqual(before);

    // --drop-existing drops each database of the backup before recreating it: extra objects go.
    await server.query('CREATE TABLE extra (id INT); DELETE FROM audit WHERE id > 100', a);
    const again = await restore(t, storage, manifest, { dropExisting: true });
    expect(again.action).toBe('drop-and-recreate');
    expect([await snapshot(server, a), await snapshot(server, b)]).toEqual(before);
  });

  it('refuses to restore a multi-database backup under another name, before changing anything', async () => {
    const a = uniqueName('multi_a');
    const b = uniqueName('multi_b');
    await seedDatabase(server, a);
    await seedDatabase(server, b);
    const { storage, manifest } = await backUp(target(server, `${a},${b}`));
    const elsewhere = uniqueName('multi_elsewhere');
    const err = await failure(() =>
      restore(target(server, `${a},${b}`), storage, manifest, { targetDatabase: elsewhere }),
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/several databases/);
    expect((err as UsageError).hint).toMatch(/without --target-db/);
    expect(await databaseExists(server, elsewhere)).toBe(false);

    // Through a target configured for one database, the script would write into others: refused too.
    const single = uniqueName('multi_single');
    const viaSingle = await failure(() => restore(target(server, single), storage, manifest));
    expect(viaSingle).toBeInstanceOf(UsageError);
    expect(viaSingle.message).toMatch(/several databases/);
    expect(await databaseExists(server, single)).toBe(false);
  });

  it('restores over a database with --force (objects of the backup replaced) or --drop-existing', async () => {
    const db = uniqueName('over');
    await seedDatabase(server, db);
    const t = target(server, db);
    const { storage, manifest } = await backUp(t);
    const before = await snapshot(server, db);

    await server.query(
      "UPDATE customers SET name = 'changed' WHERE id < 50; CREATE TABLE extra (id INT); DROP VIEW rich_customers",
      db,
    );
    const forced = await restore(t, storage, manifest, { force: true });
    expect(forced.action).toBe('overwrite');
    const after = (await snapshot(server, db)) as { tables: Record<string, unknown> };
    expect(after.tables.extra).toBeDefined(); // not in the backup: left alone
    delete after.tables.extra;
    expect(after).toEqual(before);

    const dropped = await restore(t, storage, manifest, { dropExisting: true });
    expect(dropped.action).toBe('drop-and-recreate');
    expect(await snapshot(server, db)).toEqual(before);
  });

  it('says whether a restore destination exists and holds anything', async () => {
    const engine = new MysqlEngine(target(server, undefined));
    const missing = uniqueName('state_missing');
    expect(await engine.restoreTargetState(missing)).toEqual({
      description: `database ${missing} on 127.0.0.1:${server.port}`,
      exists: false,
      empty: true,
    });
    const empty = uniqueName('state_empty');
    await server.query(`CREATE DATABASE ${ident(empty)}`);
    expect(await engine.restoreTargetState(empty)).toMatchObject({ exists: true, empty: true });
    await server.query('CREATE PROCEDURE p() SELECT 1', empty);
    expect(await engine.restoreTargetState(empty)).toMatchObject({ exists: true, empty: false });
    const full = uniqueName('state_full');
    await seedDatabase(server, full);
    expect(await new MysqlEngine(target(server, full)).restoreTargetState()).toMatchObject({
      exists: true,
      empty: false,
    });
  });

  it("reads a restored copy's facts as the dump counted them; under another name its tables carry that name", async () => {
    const db = uniqueName('drill');
    await seedDatabase(server, db);
    // Beside the seed: a table without rows, a MERGE table (its rows are its underlying table's, the dump
    // holds none for it) and a sequence (counted by neither side).
    await server.exec(
      `CREATE TABLE empty_one (id INT);
CREATE TABLE part (a INT) ENGINE=MyISAM;
INSERT INTO part VALUES (1), (2);
CREATE TABLE merged (a INT) ENGINE=MRG_MyISAM UNION=(part);
CREATE SEQUENCE seq;`,
      db,
    );
    const t = target(server, db);
    const { storage, manifest } = await backUp(t);
    expect(manifest.facts).toEqual({
      exact: true,
      tables: [
        ...seededTables(db),
        { name: `${db}.empty_one`, rows: 0 },
        { name: `${db}.merged`, rows: 0 },
        { name: `${db}.part`, rows: 2 },
      ],
      objects: objectCounts({ databases: 1, tables: 6, views: 1, routines: 2, triggers: 1, events: 1 }),
    });
    const engine = new MysqlEngine(t);
    expect(await engine.restoredFacts()).toEqual(manifest.facts);

    const copy = uniqueName('drill_copy');
    await restore(t, storage, manifest, { targetDatabase: copy });
    const restored = await engine.restoredFacts(copy);
    const renamed = manifest.facts.tables.map((x) => ({ ...x, name: `${copy}${x.name.slice(db.length)}` }));
    expect(restored).toEqual({ ...manifest.facts, tables: renamed });
    // As recorded, every table is named after the source database: a drill into another name maps it.
    const asRecorded = compareFacts(manifest.facts, restored).differences;
    expect(asRecorded).toHaveLength(12);
    expect(asRecorded).toContainEqual({ item: `table ${db}.customers`, expected: '200', found: 'absent' });
    expect(asRecorded).toContainEqual({ item: `table ${copy}.customers`, expected: 'absent', found: '200' });
    expect(compareFacts({ ...manifest.facts, tables: renamed }, restored).differences).toEqual([]);

    // A database that is not there holds nothing; a server that cannot be reached is a ConnectionError.
    expect(await engine.restoredFacts(uniqueName('drill_missing'))).toEqual({
      exact: true,
      tables: [],
      objects: objectCounts({}),
    });
    await expect(new MysqlEngine(target(server, db, { port: 1 })).restoredFacts()).rejects.toBeInstanceOf(
      ConnectionError,
    );
    // A table that cannot be counted (its tablespace discarded) fails the reading, naming the cause.
    await server.query('ALTER TABLE blobs DISCARD TABLESPACE', copy);
    const err = await failure(() => engine.restoredFacts(copy));
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.message).toMatch(/blobs/);
  });

  it('a failed restore is a RestoreError with the server message, the password hidden, the state in the hint', async () => {
    const t = target(server, undefined);
    const into = uniqueName('failed_restore');
    const script = [
      '-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)',
      'CREATE TABLE reached (id INT);',
      'INSERT INTO reached VALUES (1);',
      `SELECT * FROM \`${server.password}\`;`,
      'CREATE TABLE never (id INT);',
      '-- Dump completed on 2026-01-01  0:00:00',
      '',
    ].join('\n');
    const err = await failure(() =>
      new MysqlEngine(t).restore(Readable.from([Buffer.from(script)]), {
        format: 'sql',
        targetDatabase: into,
        create: true,
        dropExisting: false,
        overwrite: false,
        jobs: 1,
      }),
    );
    expect(err).toBeInstanceOf(RestoreError);
    expect(err.message).toMatch(/ERROR 1146 .* at line 4: Table '.*\*\*\*' doesn't exist/);
    expect(err.message).not.toContain(server.password);
    expect((err as RestoreError).hint).toMatch(
      new RegExp(`new database ${into} was left partially restored`),
    );
    // What the hint says is so: the statements before the failure are in, the rest are not.
    const tables = await server.query(
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${into}'`,
    );
    expect(tables).toEqual([['reached']]);
  });

  it('a forged script cannot run client commands (\\!, system, source): binary mode refuses them', async () => {
    const t = target(server, undefined);
    const dir = await tempDir('mysql-forged-');
    const forged: string[] = [
      `\\! touch ${dir}/bang`,
      `system touch ${dir}/system`,
      `SELECT 1;\n\\! touch ${dir}/after`,
      `/*M!999999\\- enable the sandbox mode */\n\\! touch ${dir}/sandboxline`,
      `\\. ${dir}/sourced.sql`,
    ];
    await writeFile(join(dir, 'sourced.sql'), `\\! touch ${dir}/via-source\n`);
    for (const line of forged) {
      const script = `-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n${line}\n-- Dump completed on 2026-01-01  0:00:00\n`;
      const err = await failure(() =>
        new MysqlEngine(t).restore(Readable.from([Buffer.from(script)]), {
          format: 'sql',
          targetDatabase: uniqueName('forged'),
          create: true,
          dropExisting: false,
          overwrite: false,
          jobs: 1,
        }),
      );
      expect(err, line).toBeInstanceOf(RestoreError);
      // The client refuses a command it knows (`Unknown command '\!'`); the server rejects the rest as SQL.
      expect(err.message, line).toMatch(/Unknown command '\\[!.]'|ERROR 1064/);
    }
    expect(await readdir(dir)).toEqual(['sourced.sql']);
  });

  it('connection failures: wrong password and missing database are permanent, a closed port is not', async () => {
    const db = uniqueName('conn');
    await seedDatabase(server, db);
    const wrong = await failure(() =>
      new MysqlEngine(target(server, db, { password: new Secret('wrong-password-123') })).preflight(),
    );
    expect(wrong).toBeInstanceOf(ConnectionError);
    expect(wrong).toMatchObject({ transient: false });
    expect(wrong.message).toMatch(/authentication failed for user datasaver/);
    expect(wrong.message).not.toContain('wrong-password-123');
    expect((wrong as ConnectionError).hint).toMatch(/DATASAVER_DB_PASSWORD/);

    const missing = uniqueName('conn_missing');
    const unknown = await failure(() => new MysqlEngine(target(server, `${db},${missing}`)).preflight());
    expect(unknown).toBeInstanceOf(ConnectionError);
    expect(unknown).toMatchObject({ transient: false });
    expect(unknown.message).toMatch(new RegExp(`database ${missing} does not exist`));

    const down = await failure(() => new MysqlEngine(target(server, db, { port: 1 })).preflight());
    expect(down).toBeInstanceOf(ConnectionError);
    expect(down).toMatchObject({ transient: true });
    expect(down.message).toMatch(/cannot connect/);
  });

  it('a dump tool failing half-way fails the stream before it ends, its message redacted', async () => {
    const db = uniqueName('halfway');
    await seedDatabase(server, db);
    const pwFile = join(await tempDir('mysql-pw-'), 'pw');
    await writeFile(pwFile, server.password);
    const toolDir = await fakeToolDir({
      'mariadb-dump': `if [ "$1" = "--version" ]; then exec /usr/bin/mariadb-dump --version; fi
printf -- '-- MariaDB dump 10.19\\n-- Table structure for table \`customers\`\\n'
printf 'mariadb-dump: Error 2013: Lost connection to server during query (password %s)\\n' "$(cat ${pwFile})" >&2
exit 2`,
      mariadb: 'exec /usr/bin/mariadb "$@"',
    });
    const engine = new MysqlEngine({ ...target(server, db), toolDir });
    const chunks: Buffer[] = [];
    const reported: unknown[] = [];
    const err = await failure(async () => {
      const dump = engine.dump({ format: 'sql', schemaOnly: false, onFacts: (f) => reported.push(f) });
      for await (const c of dump) chunks.push(c);
    });
    expect(Buffer.concat(chunks).toString()).toContain('-- Table structure'); // output came, then the error
    // A failed dump's counts describe no backup: none are reported.
    expect(reported).toEqual([]);
    expect(err).toBeInstanceOf(BackupError);
    expect(err.message).toMatch(/mariadb-dump exited with code 2: .*Lost connection/);
    expect(err.message).toContain('***');
    expect(err.message).not.toContain(server.password);
  });

  it('aborting a dump kills the dump tool', async () => {
    const db = uniqueName('abort');
    await seedDatabase(server, db);
    const pidFile = join(await tempDir('mysql-pid-'), 'pid');
    const toolDir = await fakeToolDir({
      'mariadb-dump': `if [ "$1" = "--version" ]; then exec /usr/bin/mariadb-dump --version; fi
echo $$ > ${pidFile}
printf -- '-- MariaDB dump 10.19\\n'
exec sleep 60`,
      mariadb: 'exec /usr/bin/mariadb "$@"',
    });
    const abort = new AbortController();
    const it = new MysqlEngine({ ...target(server, db), toolDir })
      .dump({ format: 'sql', schemaOnly: false, signal: abort.signal })
      [Symbol.asyncIterator]();
    let text = '';
    while (!text.includes('MariaDB dump')) text += String((await it.next()).value);
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow(); // running
    abort.abort();
    await expect(it.next()).rejects.toMatchObject({ name: 'AbortError' });
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
  });

  describe('on servers of their own', () => {
    let source: MariadbServer;
    let fresh: MariadbServer;

    beforeAll(async () => {
      // The same password: an all-databases restore brings the source's accounts along.
      source = await startMariadb();
      fresh = await startMariadb({ password: source.password });
    });

    afterAll(async () => {
      await Promise.all([source?.stop(), fresh?.stop()]);
    });

    it('routines whose collation differs from their database restore under another name, with that collation', async () => {
      // mysqldump names the source database in ALTER DATABASE lines around such routines.
      await source.exec(`CREATE DATABASE legacy CHARACTER SET latin1 COLLATE latin1_swedish_ci;
USE legacy;
CREATE TABLE t (a VARCHAR(10));
DELIMITER //
CREATE PROCEDURE p() BEGIN SELECT 1; END//
DELIMITER ;
ALTER DATABASE legacy CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;`);
      try {
        const { storage, manifest } = await backUp(target(source, 'legacy'));
        const routine = `SELECT DATABASE_COLLATION FROM information_schema.ROUTINES WHERE ROUTINE_NAME = 'p' AND ROUTINE_SCHEMA =`;
        const defaults = `SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME =`;
        for (const [s, name] of [
          [fresh, 'renamed'], // another server, where no database is called legacy
          [source, 'legacy_copy'], // the same server: legacy itself must not be touched
        ] as const) {
          await restore(target(s, name), storage, manifest);
          expect(await s.query(`${routine} '${name}'`)).toEqual([['latin1_swedish_ci']]);
          expect(await s.query(`${defaults} '${name}'`)).toEqual([['utf8mb4_unicode_ci']]);
        }
        expect(await databaseExists(fresh, 'legacy')).toBe(false);
        expect(await source.query(`${defaults} 'legacy'`)).toEqual([['utf8mb4_unicode_ci']]);
      } finally {
        // The other tests here need both servers as they were.
        await source.query('DROP DATABASE IF EXISTS legacy; DROP DATABASE IF EXISTS legacy_copy');
        await fresh.query('DROP DATABASE IF EXISTS renamed');
      }
    });

    it('a one-database backup restored under its own name into a fresh server reads back the facts it recorded', async () => {
      const db = uniqueName('drill_same');
      await seedDatabase(source, db);
      try {
        const { storage, manifest } = await backUp(target(source, db));
        const to = target(fresh, db);
        await restore(to, storage, manifest);
        const restored = await new MysqlEngine(to).restoredFacts();
        expect(restored).toEqual(manifest.facts);
        expect(compareFacts(manifest.facts, restored).differences).toEqual([]);
      } finally {
        // The next test backs up every database of one and restores into the other, empty.
        await source.query(`DROP DATABASE IF EXISTS ${ident(db)}`);
        await fresh.query(`DROP DATABASE IF EXISTS ${ident(db)}`);
      }
    });

    it('backs up all databases and restores them into a fresh server', async () => {
      await seedDatabase(source, 'shop');
      await seedDatabase(source, 'billing 2');
      const t = target(source, undefined);
      const { storage, manifest } = await backUp(t);
      expect(manifest.database).toBeNull();
      // Exactly the user databases' tables and objects: never the mysql system schema.
      expect(manifest.facts).toEqual({
        exact: true,
        tables: [...seededTables('billing 2'), ...seededTables('shop')],
        objects: objectCounts({ databases: 2, tables: 6, views: 2, routines: 4, triggers: 2, events: 2 }),
      });
      const entries = await entriesOf(t, storage, manifest);
      // Every user database, named; never the mysql system schema (accounts and grants).
      expect(entries.filter((e) => e.type === 'DATABASE').map((e) => e.name)).toEqual(['billing 2', 'shop']);

      const to = target(fresh, undefined);
      expect(await new MysqlEngine(to).restoreTargetState()).toEqual({
        description: `all databases on 127.0.0.1:${fresh.port}`,
        exists: true,
        empty: true,
      });
      const plan = await restore(to, storage, manifest);
      expect(plan.action).toBe('restore-into-empty');
      // What a drill reads back: the facts the backup recorded, item by item.
      const restored = await new MysqlEngine(to).restoredFacts();
      expect(restored).toEqual(manifest.facts);
      expect(compareFacts(manifest.facts, restored).differences).toEqual([]);
      expect(await snapshot(fresh, 'shop')).toEqual(await snapshot(source, 'shop'));
      expect(await snapshot(fresh, 'billing 2')).toEqual(await snapshot(source, 'billing 2'));
      expect(await new MysqlEngine(to).restoreTargetState()).toMatchObject({ empty: false });

      // Again, now over what it restored: refused, and the hint offers only what works for such a
      // backup (--target-db is refused for it), each of which then does.
      const refused = await failure(() => restore(to, storage, manifest));
      expect(refused).toBeInstanceOf(UsageError);
      expect(refused.message).toMatch(/not empty/);
      const hint = (refused as UsageError).hint ?? '';
      expect(hint).not.toMatch(/--target-db/);
      expect(hint).toMatch(/--force/);
      expect(hint).toMatch(/--drop-existing/);
      await fresh.query('DELETE FROM shop.audit WHERE id > 1');
      expect((await restore(to, storage, manifest, { force: true })).action).toBe('overwrite');
      expect(await snapshot(fresh, 'shop')).toEqual(await snapshot(source, 'shop'));
      expect((await restore(to, storage, manifest, { dropExisting: true })).action).toBe('drop-and-recreate');
      expect(await snapshot(fresh, 'billing 2')).toEqual(await snapshot(source, 'billing 2'));
    });

    it('TLS: required, it works with a server that has it and fails with one that has not', async () => {
      const db = uniqueName('tls_check');
      await seedDatabase(source, 'tls_check');
      await seedDatabase(server, db);
      await expect(new MysqlEngine(target(server, db, { tls: true })).preflight()).resolves.toMatchObject({
        serverVersion: server.version,
      });
      const err = await failure(() =>
        new MysqlEngine(target(source, 'tls_check', { tls: true })).preflight(),
      );
      expect(err).toBeInstanceOf(ConnectionError);
      expect(err).toMatchObject({ transient: false });
      expect(err.message).toMatch(/did not encrypt the connection/);
    });

    it('TLS with a CA: the certificate and host name are verified; another CA is refused', async () => {
      const db = uniqueName('tls_ca');
      await seedDatabase(server, db);
      const verified = target(server, db, { tls: true, tlsCa: server.caFile });
      await expect(new MysqlEngine(verified).preflight()).resolves.toMatchObject({
        serverVersion: server.version,
      });
      const { storage, manifest } = await backUp(verified);
      expect(manifest.facts.tables.length).toBeGreaterThan(0);
      await restore(verified, storage, manifest, { targetDatabase: `${db}_back` });
      expect(await snapshot(server, `${db}_back`)).toEqual(await snapshot(server, db));

      const otherCa = (await selfSignedCert(await tempDir('mysql-ca-'), 'other-ca')).cert;
      const err = await failure(() =>
        new MysqlEngine(target(server, db, { tls: true, tlsCa: otherCa })).preflight(),
      );
      expect(err).toBeInstanceOf(ConnectionError);
      expect(err).toMatchObject({ transient: false });
      expect(err.message).toMatch(/TLS connection to 127\.0\.0\.1:\d+ failed/);
      expect((err as ConnectionError).hint).toMatch(/DATASAVER_DB_TLS_CA/);
    });
  });
});
