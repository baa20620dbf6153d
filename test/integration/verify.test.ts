/**
 * verify finds rot: damage a stored backup and `verify` names exactly that
 * backup and the reason; restore refuses a damaged backup before touching any database.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, databaseExists, query, targetEnv, tempDir, uniqueName } from '../support/pg.ts';

let db: string;

beforeAll(async () => {
  db = uniqueName('rot');
  await createRichDatabase(db);
});

interface Stored {
  env: Record<string, string>;
  storage: string;
  ids: string[];
  object: (id: string) => string;
}

async function twoBackups(format = 'custom'): Promise<Stored> {
  const storage = await tempDir();
  const env = targetEnv(db, storage, { DATASAVER_FORMAT: format });
  const ids: string[] = [];
  const objects = new Map<string, string>();
  for (let i = 0; i < 2; i++) {
    const res = await runCli(['backup', '--json'], env);
    expect(res.code, res.output).toBe(0);
    const m = JSON.parse(res.stdout).backups[0];
    ids.push(m.id);
    objects.set(m.id, join(storage, m.object));
  }
  return { env, storage, ids, object: (id) => objects.get(id)! };
}

/** Stores `raw` as the backup's dump and rewrites its manifest to match, so checksum and size pass. */
async function replaceDump(s: Stored, id: string, raw: Buffer) {
  const manifestPath = join(s.storage, db, `${id}.manifest.json`);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  const stored = zstdCompressSync(raw);
  await writeFile(s.object(id), stored);
  Object.assign(manifest, {
    sizeBytes: raw.length,
    storedBytes: stored.length,
    sha256: createHash('sha256').update(stored).digest('hex'),
  });
  await writeFile(manifestPath, JSON.stringify(manifest));
}

async function flipByte(path: string, offset: number) {
  const fh = await open(path, 'r+');
  try {
    const buf = Buffer.alloc(1);
    await fh.read(buf, 0, 1, offset);
    buf[0] = buf[0]! ^ 0x01;
    await fh.write(buf, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

describe('verify', () => {
  it('one flipped bit: exit 5 naming that backup and "checksum"; the other backup passes', async () => {
    const s = await twoBackups();
    const [bad, good] = s.ids as [string, string];
    await flipByte(s.object(bad), 1000);
    const res = await runCli(['verify', 'all'], s.env);
    expect(res.code).toBe(5);
    expect(res.output).toMatch(new RegExp(`FAILED  backup ${bad} failed verification \\(checksum\\)`));
    expect(res.output).toMatch(new RegExp(`ok\\s+${good}`));

    const one = await runCli(['verify', bad, '--json'], s.env);
    expect(one.code).toBe(5);
    expect(JSON.parse(one.stdout).results[0]).toMatchObject({ id: bad, ok: false, reason: 'checksum' });
    const record = JSON.parse(await readFile(join(s.storage, db, `${bad}.verify.json`), 'utf8'));
    expect(record).toMatchObject({ id: bad, ok: false, reason: 'checksum' });
  });

  it('a dropped last byte is reported as size', async () => {
    const s = await twoBackups();
    const id = s.ids[1]!;
    const path = s.object(id);
    const data = await readFile(path);
    await truncate(path, data.length - 1);
    const res = await runCli(['verify', id], s.env);
    expect(res.code).toBe(5);
    expect(res.output).toContain(`backup ${id} failed verification (size)`);
  });

  it('a deleted data object is reported as missing', async () => {
    const s = await twoBackups();
    const id = s.ids[0]!;
    await rm(s.object(id));
    const res = await runCli(['verify', id], s.env);
    expect(res.code).toBe(5);
    expect(res.output).toContain(`backup ${id} failed verification (missing)`);
  });

  it('a plain dump cut before its completion marker, with a matching checksum, is reported as structure', async () => {
    // What a pg_dump that stopped early but exited 0 would leave: only the structure check can tell.
    const s = await twoBackups('plain');
    const id = s.ids[0]!;
    await replaceDump(s, id, Buffer.from('--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE x (a int);\n'));
    const res = await runCli(['verify', id], s.env);
    expect(res.code).toBe(5);
    expect(res.output).toContain(`backup ${id} failed verification (structure)`);
    expect(res.output).toMatch(/completion marker/);
  });

  it('a custom-format dump truncated in its data, with a matching checksum, is reported as structure', async () => {
    // pg_restore --list only reads the table of contents; the full pass over the archive catches this.
    const s = await twoBackups('custom');
    const id = s.ids[0]!;
    const raw = zstdDecompressSync(await readFile(s.object(id)));
    await replaceDump(s, id, raw.subarray(0, raw.length - 500));
    const res = await runCli(['verify', id], s.env);
    expect(res.code).toBe(5);
    expect(res.output).toContain(`backup ${id} failed verification (structure)`);
    expect(res.output).toMatch(/pg_restore exited with code 1: .*could not read from input file/);
  });

  it('restore of a damaged backup exits 5 and never creates the target database', async () => {
    const s = await twoBackups();
    const id = s.ids[1]!;
    await flipByte(s.object(id), 200);
    const copy = uniqueName('never');
    const res = await runCli(['restore', id, '--target-db', copy], s.env);
    expect(res.code).toBe(5);
    expect(res.stderr).toContain(`backup ${id} failed verification (checksum)`);
    expect(await databaseExists(copy)).toBe(false);
  });

  it('restore latest passes over a damaged newest backup to the newest intact one; its id names that one as a command', async () => {
    const s = await twoBackups();
    const good = s.ids[1]!;
    const atGood = await comparableDump(db);
    // The newest backup holds a row the older ones lack, so the data shows which one was restored.
    await query(db, 'CREATE TABLE after_good (id int); INSERT INTO after_good VALUES (1)');
    let damaged: string;
    try {
      const res = await runCli(['backup', '--json'], s.env);
      expect(res.code, res.output).toBe(0);
      const m = JSON.parse(res.stdout).backups[0];
      damaged = m.id;
      await flipByte(join(s.storage, m.object), 300);
    } finally {
      await query(db, 'DROP TABLE after_good');
    }

    const copy = uniqueName('latestgood');
    const res = await runCli(['restore', 'latest', '--target-db', copy, '--json'], s.env);
    expect(res.code, res.output).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`passed over ${damaged} in .*: checksum: `));
    expect(res.stderr).toContain(`latest is ${good}, the newest intact backup`);
    const plan = JSON.parse(res.stdout);
    expect(plan.backup).toBe(good);
    expect(plan.passedOver).toEqual([
      { id: damaged, storage: expect.any(String), reason: expect.stringMatching(/^checksum: /) },
    ]);
    expect(await comparableDump(copy)).toBe(atGood);

    // Named by its id, the damaged backup is refused before any database is touched, and the error
    // names the newest older intact backup as the command to run, which then works.
    const other = uniqueName('named');
    const named = await runCli(['restore', damaged, '--target-db', other], s.env);
    expect(named.code).toBe(5);
    expect(named.stderr).toContain(`backup ${damaged} failed verification (checksum)`);
    expect(await databaseExists(other)).toBe(false);
    const command = named.stderr.match(/run `(datasaver restore [^`]+)`/)?.[1];
    expect(command).toBe(`datasaver restore ${good} --target-db ${other}`);
    const again = await runCli(command!.split(' ').slice(1), s.env);
    expect(again.code, again.output).toBe(0);
    expect(await comparableDump(other)).toBe(atGood);
  });

  it('restore latest passes over a backup whose recorded verify failed, and fails when none is intact', async () => {
    const s = await twoBackups();
    const [older, newer] = s.ids as [string, string];
    // Intact bytes that are not a valid dump: the checksum passes, the structure check fails.
    await replaceDump(s, newer, Buffer.from('not a pg_dump archive'));
    expect((await runCli(['verify', newer], s.env)).code).toBe(5);
    const res = await runCli(
      ['restore', 'latest', '--target-db', uniqueName('skipverify'), '--dry-run'],
      s.env,
    );
    expect(res.code, res.output).toBe(0);
    expect(res.stderr).toMatch(
      new RegExp(`passed over ${newer} in .*: its verify at \\S+ failed \\(structure\\)`),
    );
    expect(res.stdout).toContain(`backup ${older} `);

    await flipByte(s.object(older), 200);
    const none = uniqueName('nonegood');
    const fail = await runCli(['restore', 'latest', '--target-db', none], s.env);
    expect(fail.code).toBe(5);
    expect(fail.stderr).toMatch(/no intact backup of target .*: all 2 were passed over/);
    expect(fail.stderr).toContain(`passed over ${older}`);
    expect(await databaseExists(none)).toBe(false);
  });

  it('unknown backup id: exit 1 with a pointer to list', async () => {
    const s = await twoBackups();
    const res = await runCli(['verify', `${db}-20200101T000000Z`], s.env);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/no committed backup/);
    expect(res.stderr).toMatch(/datasaver list/);
  });

  it('list and verify work from storage settings alone, skipping foreign and malformed files', async () => {
    const s = await twoBackups();
    await writeFile(join(s.storage, db, 'notes.txt'), 'not a backup');
    await writeFile(join(s.storage, db, `${db}-20200101T000000Z.manifest.json`), '{ broken');
    await writeFile(join(s.storage, 'README'), 'hello');
    const storageOnly = { DATASAVER_STORAGE_PATH: s.storage };
    const list = await runCli(['list', '--json'], storageOnly);
    expect(list.code, list.output).toBe(0);
    expect(JSON.parse(list.stdout).backups.map((b: { id: string }) => b.id)).toEqual(s.ids);
    expect(list.stderr).toMatch(/skipping .*notes\.txt/);
    expect(list.stderr).toMatch(/skipping .*20200101T000000Z\.manifest\.json: unreadable manifest/);
    const verify = await runCli(['verify', s.ids[0]!], storageOnly);
    expect(verify.code, verify.output).toBe(0);
  });
});
