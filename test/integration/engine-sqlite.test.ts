/**
 * The engine conformance suite on SQLite, plus what only SQLite has: a consistent copy while another
 * process writes (WAL mode), and a restore that refuses a file another process has open for writing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, describe, expect, it } from 'vitest';
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { createEngine } from '../../src/engines/index.ts';
import { runBackup } from '../../src/jobs/backup.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { UsageError } from '../../src/util/errors.ts';
import { runCli } from '../support/cli.ts';
import { engineConformance } from '../support/engine-conformance.ts';
import { tempDir } from '../support/pg.ts';

function target(path: string): TargetConfig {
  const t = offlineTarget('notes', undefined, 'sqlite');
  return { ...t, connection: { ...t.connection, database: path } };
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

async function seed(): Promise<TargetConfig> {
  const path = join(await tempDir('sqlite-'), 'notes.db');
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = WAL;
    CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, score REAL, data BLOB);
    CREATE TABLE tags (note_id INTEGER REFERENCES notes(id), tag TEXT);
    CREATE INDEX tags_by_tag ON tags(tag);
    CREATE VIEW tagged AS SELECT n.title, t.tag FROM notes n JOIN tags t ON t.note_id = n.id;
    CREATE TABLE audit (note_id INTEGER, at TEXT);
    CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (new.id, 'now'); END;`);
  const insert = db.prepare('INSERT INTO notes (title, score, data) VALUES (?, ?, ?)');
  const tag = db.prepare('INSERT INTO tags VALUES (?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= 120; i++) {
    insert.run(`note ${i} — ünïcödé 🐘`, i / 7, i === 1 ? ALL_BYTES : Buffer.from(`blob ${i}`));
    tag.run(i, i % 2 ? 'odd' : 'even');
  }
  db.exec('COMMIT');
  db.close(); // the WAL is checkpointed on close; the next tests write while it is open
  return target(path);
}

function snapshot(t: TargetConfig, where?: string): unknown {
  const db = new DatabaseSync(where ?? t.connection.database!, { readOnly: true });
  try {
    const schema = db
      .prepare("SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
      .all();
    const tables = (schema as { type: string; name: string }[]).filter((s) => s.type === 'table');
    const rows = Object.fromEntries(
      tables.map(({ name }) => [
        name,
        db
          .prepare(`SELECT * FROM "${name}" ORDER BY rowid`)
          .all()
          .map((r) =>
            Object.fromEntries(
              Object.entries(r).map(([k, v]) => [
                k,
                v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
              ]),
            ),
          ),
      ]),
    );
    return { schema, rows };
  } finally {
    db.close();
  }
}

engineConformance('sqlite', {
  seed,
  snapshot: async (t, where) => snapshot(t, where),
  restoreDestination: async (source) => ({
    targetDatabase: join(await tempDir('sqlite-restored-'), 'restored.db'),
    target: source,
  }),
  extension: 'sqlite',
  facts: [
    { name: 'notes', rows: 120 },
    { name: 'tags', rows: 120 },
  ],
  serverDown: (t) => target(join(t.connection.database!, '..', 'missing.db')),
});

/** A child process writing into `path`: each transaction adds one row to `a` and one to `b`. */
function startWriter(path: string, mode: 'write' | 'hold'): Promise<ChildProcess> {
  const script = `
    const { DatabaseSync } = require('node:sqlite');
    const db = new DatabaseSync(${JSON.stringify(path)}, { timeout: 30000 });
    db.exec('PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS a (i INTEGER); CREATE TABLE IF NOT EXISTS b (i INTEGER);');
    let i = 0;
    const tick = () => {
      db.exec('BEGIN IMMEDIATE'); db.prepare('INSERT INTO a VALUES (?)').run(++i); db.prepare('INSERT INTO b VALUES (?)').run(i); db.exec('COMMIT');
      if (i === 1) process.stdout.write('ready\\n');
    };
    if (${JSON.stringify(mode)} === 'write') setInterval(() => { for (let k = 0; k < 50; k++) tick(); }, 1);
    else { tick(); setInterval(() => {}, 1000); }
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
  });
}

describe('sqlite hot copies and safe restores', () => {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
  });

  it('copies a consistent state while another process keeps writing (WAL mode)', async () => {
    const source = await seed();
    children.push(await startWriter(source.connection.database!, 'write'));
    const storage = new LocalStorage(await tempDir('sqlite-store-'));
    const engine = createEngine(source);
    const { manifest } = await runBackup(
      { target: source, labels: [], verify: true },
      { engine, destinations: [storage] },
    );
    const restored = join(await tempDir('sqlite-copy-'), 'copy.db');
    await runRestore(
      { manifest, targetDatabase: restored, dryRun: false, force: false, dropExisting: false, jobs: 1 },
      { engine, storage },
    );
    const db = new DatabaseSync(restored, { readOnly: true });
    const count = (t: string) =>
      Number((db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n);
    // Every transaction wrote one row to each table: a torn copy would show different counts.
    expect(count('a')).toBeGreaterThan(0);
    expect(count('a')).toBe(count('b'));
    expect(count('notes')).toBe(120);
    expect(db.prepare('PRAGMA integrity_check').get()).toEqual({ integrity_check: 'ok' });
    db.close();
  });

  it('refuses to replace a file another process has open for writing, unless forced; removes stale WAL files', async () => {
    const source = await seed();
    const storage = new LocalStorage(await tempDir('sqlite-store-'));
    const engine = createEngine(source);
    const { manifest } = await runBackup(
      { target: source, labels: [], verify: false },
      { engine, destinations: [storage] },
    );
    const live = await seed();
    const path = live.connection.database!;
    const holder = await startWriter(path, 'hold');
    children.push(holder);
    const request = {
      manifest,
      targetDatabase: path,
      dryRun: false,
      force: false,
      dropExisting: true,
      jobs: 1,
    };
    const err = await runRestore(request, { engine: createEngine(live), storage }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(
      new RegExp(`refusing to replace ${path}: it is open for writing by pid ${holder.pid}`),
    );
    expect(snapshot(live)).not.toEqual(snapshot(source)); // untouched: it has the writer's tables

    // --force replaces it anyway, with the writer still running; its WAL goes with the old file.
    expect(existsSync(`${path}-wal`)).toBe(true);
    await runRestore(
      { ...request, dropExisting: false, force: true },
      { engine: createEngine(live), storage },
    );
    expect(existsSync(`${path}-wal`)).toBe(false);
    expect(snapshot(live)).toEqual(snapshot(source));
    holder.kill('SIGKILL');
  });

  it('through the CLI: backup, verify and restore --to-file, also from storage settings alone', async () => {
    const source = await seed();
    const storage = await tempDir('sqlite-cli-store-');
    const env = {
      DATASAVER_DATABASE_URL: `sqlite://${source.connection.database}`,
      DATASAVER_STORAGE_PATH: storage,
    };
    const backup = await runCli(['backup', '--json'], env);
    expect(backup.code, backup.output).toBe(0);
    const id = JSON.parse(backup.stdout).backups[0].id as string;
    expect(JSON.parse(backup.stdout).backups[0].object).toBe(`notes/${id}.sqlite.zst`);

    const out = join(await tempDir('sqlite-out-'), 'restored.db');
    const restored = await runCli(['restore', 'latest', '--to-file', out], env);
    expect(restored.code, restored.output).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`restored ${id} to file ${out} \\(.*, sqlite sqlite\\)`));
    expect(snapshot(source, out)).toEqual(snapshot(source));
    const again = await runCli(['restore', id, '--to-file', out], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refusing to replace .*restored\.db: the file exists/);
    // Over a database in use (its WAL beside it), --to-file refuses even with --force: the WAL would
    // be applied to the new file.
    await writeFile(`${out}-wal`, '');
    const live = await runCli(['restore', id, '--to-file', out, '--force'], env);
    expect(live.code).toBe(1);
    expect(live.stderr).toMatch(/restored\.db-wal exists, so it is a database in use/);

    // A fresh machine with only the storage setting: verify and --to-file work without the target.
    const bare = { DATASAVER_STORAGE_PATH: storage };
    const verify = await runCli(['verify', id], bare);
    expect(verify.code, verify.output).toBe(0);
    const fresh = join(await tempDir('sqlite-out-'), 'fresh.db');
    const res = await runCli(['restore', id, '--to-file', fresh], bare);
    expect(res.code, res.output).toBe(0);
    expect(snapshot(source, fresh)).toEqual(snapshot(source));
  });

  it('a file that is not a database fails preflight with a clear message', async () => {
    const path = join(await tempDir('sqlite-'), 'junk.db');
    await writeFile(
      path,
      'this is not a database, just text that is long enough to have a header '.repeat(10),
    );
    const err = await createEngine(target(path))
      .preflight()
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/is not a readable SQLite database: file is not a database/);
  });
});
