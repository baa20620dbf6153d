/**
 * Storage is untrusted: a plain SQL backup that someone who can write the
 * storage replaced, with the manifest's size and checksum updated to match, cannot run a command on the
 * restore host, however it tries to get psql out of restricted mode. A genuine plain dump whose data looks
 * like restrict lines restores identically.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import {
  comparableDump,
  createDatabase,
  databaseExists,
  query,
  server,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';

let source: string;

beforeAll(async () => {
  source = uniqueName('untrusted');
  await createDatabase(source);
  // One text column, so a COPY line is the value itself: E'\r' || 'estrict KEY' is written `\restrict KEY`.
  await query(
    source,
    `CREATE TABLE notes (body text);
     INSERT INTO notes VALUES
       (E'\\r' || 'estrict ' || repeat('Ab1', 21) || 'z'),
       (E'\\r' || 'estrict'),
       ('\\restrict abc'),
       ('back\\slash \\\\ two \\.'),
       (E'tab\\there\\nnewline'),
       ('\\.'),
       ('\\! touch /never');
     CREATE TABLE kv (k int PRIMARY KEY, v text);
     INSERT INTO kv SELECT g, repeat('\\', g % 5) || g FROM generate_series(1, 200) g;
     CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '\\restrict x \\\\ y' $$;`,
  );
});

interface Stored {
  env: Record<string, string>;
  manifestPath: string;
  objectPath: string;
  dump: string;
}

async function plainBackup(): Promise<Stored> {
  const storage = await tempDir();
  const env = targetEnv(source, storage, { DATASAVER_FORMAT: 'plain', DATASAVER_COMPRESSION: 'none' });
  const res = await runCli(['backup', '--json'], env);
  expect(res.code, res.output).toBe(0);
  const m = JSON.parse(res.stdout).backups[0];
  const objectPath = join(storage, m.object);
  const manifestPath = join(storage, source, `${m.id}.manifest.json`);
  return { env, manifestPath, objectPath, dump: await readFile(objectPath, 'utf8') };
}

/** What an attacker with write access does: a new object, and the manifest's size and checksum to match. */
async function forge(s: Stored, bytes: Buffer): Promise<void> {
  await writeFile(s.objectPath, bytes);
  const manifest = JSON.parse(await readFile(s.manifestPath, 'utf8'));
  Object.assign(manifest, {
    sizeBytes: bytes.length,
    storedBytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  });
  await writeFile(s.manifestPath, JSON.stringify(manifest));
}

/** Refusals of datasaver's own byte screen, made while the dump is spooled (postgres-script.ts). */
const SCREENED = /holds a psql \\unrestrict|NUL byte/;

describe('restoring a plain SQL backup from untrusted storage', () => {
  it('a genuine dump whose data looks like restrict lines restores identically', async () => {
    const s = await plainBackup();
    expect(s.dump).toMatch(/^\\restrict [A-Za-z0-9]+$/m);
    expect(s.dump).toMatch(/^\\unrestrict [A-Za-z0-9]+$/m);
    // COPY lines that psql would read as `\restrict ...` outside COPY data.
    expect(s.dump).toContain(`\n\\restrict ${'Ab1'.repeat(21)}z\n`);
    expect(s.dump).toContain('\n\\restrict\n');
    const copy = uniqueName('untrusted_copy');
    const res = await runCli(['restore', 'latest', '--target-db', copy], s.env);
    expect(res.code, res.output).toBe(0);
    expect(await comparableDump(copy)).toBe(await comparableDump(source));
    expect(await query(copy, 'SELECT f() AS f')).toEqual([{ f: '\\restrict x \\\\ y' }]);
  });

  const attacks: [string, (dump: string, marker: string) => Buffer, RegExp][] = [
    [
      'a \\! line among the statements',
      (d, m) => Buffer.from(d.replace('SET statement_timeout', `\\! touch ${m}\nSET statement_timeout`)),
      /backslash commands are restricted/,
    ],
    // Before the header, so the dump's own \restrict line is not among header comments and is not
    // dropped: its \unrestrict at the end is foreign then.
    [
      'a \\! line before everything',
      (d, m) => Buffer.from(`\\! touch ${m}\n${d}`),
      /holds a psql \\unrestrict/,
    ],
    [
      "\\unrestrict with the dump's own key, then \\!",
      (d, m) => {
        const key = /^\\restrict ([A-Za-z0-9]+)$/m.exec(d)![1];
        return Buffer.from(
          d.replace('SET statement_timeout', `\\unrestrict ${key}\n\\! touch ${m}\nSET statement_timeout`),
        );
      },
      /backslash commands are restricted/,
    ],
    [
      '\\unrestrict with a command in backquotes (psql before 15.19 runs it)',
      (d, m) =>
        Buffer.from(
          d.replace('SET statement_timeout', `SELECT 1 \\unrestrict \`touch ${m}\`\nSET statement_timeout`),
        ),
      /holds a psql \\unrestrict command/,
    ],
    [
      '\\unrestrict assembled by psql across a NUL byte',
      (d, m) => {
        const [head, tail] = d.split('SET statement_timeout');
        return Buffer.concat([
          Buffer.from(`${head}SELECT 1 \\`),
          Buffer.from([0]),
          Buffer.from(`x\nunrestrict \`touch ${m}\`\nSET statement_timeout${tail}`),
        ]);
      },
      /NUL byte/,
    ],
    [
      "\\unrestrict in COPY data's place after a forged end of data",
      (d, m) => Buffer.from(d.replace('\\.\n', `\\.\n\\unrestrict \`touch ${m}\`\n`)),
      /holds a psql \\unrestrict command/,
    ],
  ];

  for (const [name, attack, message] of attacks) {
    it(`a forged dump with ${name} runs nothing on the restore host`, async () => {
      const s = await plainBackup();
      const marker = join(await tempDir('marker-'), 'ran');
      await forge(s, attack(s.dump, marker));
      const into = uniqueName('forged');
      const res = await runCli(['restore', 'latest', '--target-db', into], s.env);
      expect(res.code, res.output).toBe(1);
      expect(res.stderr).toMatch(message);
      expect(existsSync(marker)).toBe(false);
      if (SCREENED.test(res.stderr)) {
        // Refused while the dump was spooled, before anything was created.
        expect(res.stderr).toMatch(new RegExp(`Nothing was restored: ${into} was not touched`));
        expect(await databaseExists(into)).toBe(false);
      } else {
        // psql refused it: one transaction, so nothing of the forged script stayed.
        expect(res.stderr).toMatch(new RegExp(`the new database ${into} was left empty`));
        expect(await query(into, "SELECT to_regclass('public.notes') AS t")).toEqual([{ t: null }]);
      }
    });
  }

  it('a refused dump restored with --drop-existing leaves the existing database as it was', async () => {
    const s = await plainBackup();
    const marker = join(await tempDir('marker-'), 'ran');
    await forge(s, attacks[1]![1](s.dump, marker));
    const live = uniqueName('live');
    await createDatabase(live);
    await query(
      live,
      'CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 5)',
    );
    const res = await runCli(['restore', 'latest', '--target-db', live, '--drop-existing'], s.env);
    expect(res.code, res.output).toBe(1);
    expect(res.stderr).toMatch(/holds a psql \\unrestrict/);
    expect(res.stderr).toMatch(new RegExp(`Nothing was restored: ${live} was not touched`));
    expect(existsSync(marker)).toBe(false);
    expect(await query(live, 'SELECT count(*)::int AS n FROM orders')).toEqual([{ n: 5 }]);
  });

  it('a psql without \\restrict is refused (exit 4) before any database is created', async () => {
    const s = await plainBackup();
    const real = server().binDir;
    const tools = await fakeToolDir({
      psql: `if [ "$1" = "--version" ]; then echo "psql (PostgreSQL) 15.13"; exit 0; fi\nexec "${real}/psql" "$@"`,
    });
    const copy = uniqueName('old_psql');
    const res = await runCli(['restore', 'latest', '--target-db', copy], {
      ...s.env,
      DATASAVER_TOOL_DIR: tools,
    });
    expect(res.code).toBe(4);
    expect(res.stderr).toMatch(/psql 15\.13 cannot restore plain SQL backups safely: it lacks \\restrict/);
    expect(res.stderr).toMatch(/Try: install postgresql-client-15 15\.14 or newer/);
    expect(await databaseExists(copy)).toBe(false);
  });
});
