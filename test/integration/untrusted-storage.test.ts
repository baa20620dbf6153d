/**
 * Storage is untrusted, through the real CLI and a real PostgreSQL: forged
 * future-dated manifests are marked by `list`, explained and kept inert by `prune`, and never `latest`;
 * an object swapped between restore's checksum pass and its restore commits nothing; a storage that
 * cannot be read is never reported as empty.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCatalog } from '../../src/catalog/catalog.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { createEngine } from '../../src/engines/index.ts';
import { runRestore } from '../../src/jobs/restore.ts';
import type { GetOptions } from '../../src/storage/backend.ts';
import { LocalStorage } from '../../src/storage/local.ts';
import { VerifyError } from '../../src/util/errors.ts';
import { runCli } from '../support/cli.ts';
import { storeBackup } from '../support/manifests.ts';
import {
  createDatabase,
  databaseExists,
  pgTarget,
  query,
  targetEnv,
  tempDir,
  uniqueName,
} from '../support/pg.ts';
import { s3Env } from '../support/s3.ts';

const DAY = 86_400_000;
const POLICY = {
  DATASAVER_KEEP_LAST: '1',
  DATASAVER_KEEP_DAILY: '2',
  DATASAVER_KEEP_WEEKLY: '1',
  DATASAVER_KEEP_MONTHLY: '1',
  DATASAVER_MIN_KEEP: '2',
};

describe('forged future-dated manifests, through the CLI', () => {
  let dir: string;
  let real: Manifest[];
  let forged: Manifest[];
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await tempDir();
    const storage = new LocalStorage(dir);
    const now = Date.now();
    real = [
      await storeBackup(storage, new Date(now - 2 * DAY)),
      await storeBackup(storage, new Date(now - DAY)),
    ];
    // Enough forgeries to fill every keep rule and min-keep, were they believed.
    forged = [];
    for (const days of [1, 2, 3, 40, 400])
      forged.push(await storeBackup(storage, new Date(now + days * DAY)));
    // Prune needs the target configured, never its database.
    env = { ...targetEnv('shop', dir, POLICY) };
  });

  it('list marks them, in text and JSON, with a warning', async () => {
    const json = await runCli(['list', '--json'], env);
    expect(json.code, json.output).toBe(0);
    const backups = JSON.parse(json.stdout).backups as { id: string; suspect: string | null }[];
    expect(backups.filter((b) => b.suspect === null).map((b) => b.id)).toEqual(real.map((m) => m.id));
    expect(backups.filter((b) => b.suspect !== null).map((b) => b.id)).toEqual(forged.map((m) => m.id));
    for (const b of backups.filter((x) => x.suspect !== null))
      expect(b.suspect).toMatch(/^created in the future/);

    const text = await runCli(['list'], env);
    expect(text.code, text.output).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/STATUS$/);
    for (const m of real) expect(lines.find((l) => l.includes(m.id))).toMatch(/committed$/);
    for (const m of forged)
      expect(lines.find((l) => l.includes(m.id))).toMatch(/suspect: created in the future/);
    expect(text.stderr).toContain(`warning: local:${dir}: backup ${forged[0]!.id} is suspect`);
  });

  it('prune --dry-run says why they are kept; prune deletes no real backup', async () => {
    const dry = await runCli(['prune', '--dry-run', '--json'], env);
    expect(dry.code, dry.output).toBe(0);
    const items = JSON.parse(dry.stdout).results[0].items as {
      id: string;
      action: string;
      reasons: string[];
    }[];
    for (const m of forged) {
      expect(items.find((i) => i.id === m.id)?.reasons).toEqual([
        expect.stringMatching(/^suspect: created in the future/),
        'inside the retention window',
      ]);
    }
    const text = await runCli(['prune', '--dry-run'], env);
    expect(text.stdout).toMatch(new RegExp(`${forged[0]!.id} .* keep +suspect: created in the future`));

    const res = await runCli(['prune'], env);
    expect(res.code, res.output).toBe(0);
    const after = JSON.parse((await runCli(['list', '--json'], env)).stdout).backups as { id: string }[];
    expect(after.map((b) => b.id)).toEqual([...real, ...forged].map((m) => m.id));
  });

  it('restore latest picks the real newest; a forgery restores only by its id, with a warning', async () => {
    const file = join(await tempDir(), 'latest.dump');
    const res = await runCli(['restore', 'latest', '--target', 'shop', '--to-file', file], env);
    expect(res.code, res.output).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(`dump of ${real.at(-1)!.id}`);
    expect(res.stderr).not.toMatch(/suspect/);

    const named = join(await tempDir(), 'named.dump');
    const byId = await runCli(['restore', forged[0]!.id, '--to-file', named], env);
    expect(byId.code, byId.output).toBe(0);
    expect(byId.stderr).toMatch(
      new RegExp(
        `warning: backup ${forged[0]!.id} is suspect: created in the future .*; using it only because it was named by its id`,
      ),
    );
  });
});

describe('hostile bytes, through the CLI', () => {
  it('a decompression bomb fails verify with exit 5 and a size reason, read only to sizeBytes + 1', async () => {
    const dir = await tempDir();
    const bomb = await storeBackup(new LocalStorage(dir), new Date(), {
      data: gzipSync(Buffer.alloc(32 * 1024 * 1024)),
      overrides: { compression: 'gzip', compressionLevel: 6, sizeBytes: 1000 },
    });
    const res = await runCli(['verify', bomb.id], targetEnv('shop', dir));
    expect(res.code, res.output).toBe(5);
    expect(res.stdout).toMatch(
      /failed verification \(size\): .* decompresses past the 1000 bytes its manifest records/,
    );
  });

  it('terminal escapes in storage never reach the terminal: a forged label is refused, a key is escaped', async () => {
    const dir = await tempDir();
    const storage = new LocalStorage(dir);
    const real = await storeBackup(storage, new Date(Date.now() - DAY));
    const forged = await storeBackup(storage, new Date(), { overrides: { labels: ['x\u001b[2J\u001b[H'] } });
    await writeFile(join(dir, 'shop', 'notes-\u001b]0;pwned\u0007.txt'), 'x');
    const res = await runCli(['list'], { DATASAVER_STORAGE_PATH: dir });
    expect(res.code, res.output).toBe(0);
    expect(res.output).not.toContain('\u001b');
    expect(res.output).not.toContain('\u0007');
    expect(res.stdout).toContain(real.id);
    expect(res.stdout).not.toContain(forged.id);
    expect(res.stderr).toContain(
      `skipping shop/${forged.id}.manifest.json: unreadable manifest: field labels.0`,
    );
    expect(res.stderr).toContain('skipping shop/notes-\\x1b]0;pwned\\x07.txt: not a datasaver backup file');
  });
});

describe('a storage that cannot be read', () => {
  it('is an error, never "no backups found": a path that is a file', async () => {
    const file = join(await tempDir(), 'not-a-directory');
    await writeFile(file, 'x');
    const res = await runCli(['list'], { DATASAVER_STORAGE_PATH: file });
    expect(res.code).toBe(6);
    expect(res.output).not.toMatch(/no backups/i);
    expect(res.stderr).toMatch(/cannot list local:.*ENOTDIR/);
    expect(res.stdout).toBe('cannot tell which backups exist: 1 of 1 storage(s) could not be read\n');
  });

  it('is an error, never "no backups found": an S3 bucket that does not exist', async () => {
    const res = await runCli(['list'], { ...s3Env('untrusted'), DATASAVER_S3_BUCKET: 'no-such-bucket-here' });
    expect(res.code).toBe(6);
    expect(res.output).not.toMatch(/no backups/i);
    expect(res.stdout).toMatch(/^cannot tell which backups exist/);
  });
});

/** `data` in 64 KB pieces, as a file is read. */
function* inChunks(data: Buffer): Generator<Buffer> {
  for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
}

/** Local storage whose data object is swapped for another file after its first read (the checksum pass). */
class SwappedAfterCheck extends LocalStorage {
  readonly #reads = new Map<string, number>();
  swaps = new Map<string, () => Promise<Buffer>>();
  override async get(key: string, options: GetOptions = {}) {
    const n = this.#reads.get(key) ?? 0;
    this.#reads.set(key, n + 1);
    const swap = this.swaps.get(key);
    if (n > 0 && swap) return Readable.from(inChunks(await swap())) as Readable & AsyncIterable<Buffer>;
    return super.get(key, options);
  }
}

describe('restore hashes the bytes it restores (real PostgreSQL)', () => {
  /** Backs `database` up uncompressed, in `format`, and returns its storage dir and manifest. */
  async function backup(database: string, format: string) {
    const dir = await tempDir();
    const res = await runCli(
      ['backup'],
      targetEnv(database, dir, { DATASAVER_FORMAT: format, DATASAVER_COMPRESSION: 'none' }),
    );
    expect(res.code, res.output).toBe(0);
    const { backups } = await readCatalog(new LocalStorage(dir));
    return { dir, manifest: backups[0]! };
  }

  /** A database with table t holding `rows` rows. */
  async function seeded(prefix: string, rows: number) {
    const name = uniqueName(prefix);
    await createDatabase(name);
    await query(
      name,
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, ${rows}) g`,
    );
    return name;
  }

  it('a valid archive planted after the checksum pass (padded to size) commits nothing: the database stays as it was', async () => {
    const good = uniqueName('swap_good');
    await createDatabase(good);
    await query(
      good,
      'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g',
    );
    const evil = await seeded('swap_evil', 10);
    await query(evil, "UPDATE t SET v = 'pwned'");
    const original = await backup(good, 'custom');
    const planted = await backup(evil, 'custom');
    expect(planted.manifest.storedBytes + 256 * 1024).toBeLessThan(original.manifest.storedBytes);
    const storage = new SwappedAfterCheck(original.dir);
    // pg_restore never reads past the archive it needs, so the padding (where the hash fails) comes
    // after it has everything: only restoring from a checked spool keeps it from committing.
    storage.swaps.set(original.manifest.object, async () => {
      const out = Buffer.alloc(original.manifest.storedBytes);
      (await readFile(join(planted.dir, planted.manifest.object))).copy(out);
      return out;
    });
    // Restore over the live database, as an operator recovering it would (--force: one transaction).
    const err = await runRestore(
      { manifest: original.manifest, dryRun: false, force: true, dropExisting: false, jobs: 1 },
      { engine: createEngine(pgTarget(good)), storage },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).reason).toBe('checksum');
    expect(
      await query(good, "SELECT count(*)::int AS n, count(*) FILTER (WHERE v = 'pwned')::int AS bad FROM t"),
    ).toEqual([{ n: 20000, bad: 0 }]);
  });

  it('a plain SQL dump with one byte flipped after the checksum pass never creates the new database', async () => {
    const good = await seeded('swap_plain', 50);
    const original = await backup(good, 'plain');
    const storage = new SwappedAfterCheck(original.dir);
    storage.swaps.set(original.manifest.object, async () => {
      const bytes = await readFile(join(original.dir, original.manifest.object));
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      return bytes;
    });
    const copy = uniqueName('swap_plain_copy');
    const err = await runRestore(
      {
        manifest: original.manifest,
        targetDatabase: copy,
        dryRun: false,
        force: false,
        dropExisting: false,
        jobs: 1,
      },
      { engine: createEngine(pgTarget(good)), storage },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VerifyError);
    expect((err as VerifyError).reason).toBe('checksum');
    // The dump is spooled and proven before anything is created: the new database never existed.
    expect(await databaseExists(copy)).toBe(false);
  });
});
