/**
 * Crash at every stage boundary: datasaver is SIGKILLed at a failpoint
 * (src/util/failpoint.ts) after the data object and before the manifest, between a pruned backup's
 * manifest and its data, in the middle of a copy between destinations and before that copy's manifest,
 * after a parallel restore spooled its dump, and while its pg_restore runs. After each: the run died by
 * SIGKILL, nothing it half-wrote is listed as a backup, every listed backup's data is there with the size
 * its manifest records, the next run succeeds, leftovers in storage are collected by prune after the
 * grace period, leftover temp dirs (and tools left running) go at the next start (a live process's
 * stay), and a restore still round-trips.
 */
import { mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { type CliResult, collect, runCli, startCli, startPausedAt } from '../support/cli.ts';
import { fakeToolDir } from '../support/fake-tools.ts';
import { createBulkDatabase, createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, dbUrl, server, targetEnv, tempDir, uniqueName } from '../support/pg.ts';
import { processesUsing, processRunning } from '../support/processes.ts';
import { s3Env, s3Prefix } from '../support/s3.ts';

let rich: string;
let richDump: string;

beforeAll(async () => {
  rich = uniqueName('crashst');
  await createRichDatabase(rich);
  richDump = await comparableDump(rich);
});

interface Listing {
  backups: (Manifest & { storage: string })[];
  incomplete: { storage: string; id: string; key: string; kind: string }[];
}

/** Runs datasaver with `failpoint=kill` armed and checks that it died there. */
async function killedAt(failpoint: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  const res = await runCli(args, { ...env, DATASAVER_FAILPOINT: `${failpoint}=kill` });
  expect(res.signal, res.output).toBe('SIGKILL');
  return res;
}

/**
 * `list --all --json`, after checking that storage is consistent: every listed backup verifies (its
 * data object is there, with the size and checksum its manifest records) and, in `local`, is a file of
 * exactly `storedBytes`.
 */
async function consistentListing(env: Record<string, string>, local?: string): Promise<Listing> {
  const list = await runCli(['list', '--all', '--json'], env);
  expect(list.code, list.output).toBe(0);
  const listing = JSON.parse(list.stdout) as Listing;
  for (const b of listing.backups.filter((x) => local && x.storage === `local:${local}`)) {
    expect((await stat(join(local!, b.object))).size).toBe(b.storedBytes);
  }
  if (listing.backups.length > 0) {
    const verify = await runCli(['verify', 'all'], env);
    expect(verify.code, verify.output).toBe(0);
  }
  return listing;
}

/**
 * Waits until a process whose arguments name a path in `dir` runs and returns its pid; fails if
 * `run` (the datasaver that should start it) ends first.
 */
async function waitForProcessUsing(dir: string, run: Promise<CliResult>): Promise<number> {
  let ended: CliResult | undefined;
  void run.then((r) => {
    ended = r;
  });
  for (;;) {
    const [pid] = await processesUsing(dir);
    if (pid !== undefined) return pid;
    if (ended) throw new Error(`datasaver ended before starting a tool on ${dir}: ${ended.output}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Makes every file in `dir` two days old: past the grace period after which prune collects leftovers. */
async function age(dir: string): Promise<void> {
  const old = new Date(Date.now() - 48 * 3_600_000);
  for (const f of await readdir(dir)) await utimes(join(dir, f), old, old);
}

async function expectRoundTrip(env: Record<string, string>, ref: string, source: string, sourceDump: string) {
  const copy = uniqueName('crcopy');
  const res = await runCli(['restore', ref, '--target-db', copy], {
    ...env,
    DATASAVER_DATABASE_URL: dbUrl(source),
  });
  expect(res.code, res.output).toBe(0);
  expect(await comparableDump(copy)).toBe(sourceDump);
}

describe('a crash between the data object and the manifest', () => {
  it('leaves data that is never listed as a backup; prune collects it after the grace period', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('crashbm');
    const env = targetEnv(rich, storage, s3Env(prefix));
    const local = `local:${storage}`;
    await killedAt('backup.before-manifest', ['backup'], env);

    // Both destinations hold the data object, neither a manifest.
    const after = await consistentListing(env, storage);
    expect(after.backups).toEqual([]);
    expect(after.incomplete.map((o) => `${o.kind} ${o.storage.split(':')[0]}`).sort()).toEqual([
      'data local',
      'data s3',
    ]);
    const orphan = after.incomplete.find((o) => o.storage === local)!;
    expect(after.incomplete.every((o) => o.key === orphan.key)).toBe(true);
    // Beside it only the killed run's lease, which the next run on this host takes over at once.
    expect((await readdir(join(storage, rich))).sort()).toEqual(
      [orphan.key.slice(rich.length + 1), `${rich}.lease.json`].sort(),
    );

    const next = await runCli(['backup', '--json'], env);
    expect(next.code, next.output).toBe(0);
    const id = JSON.parse(next.stdout).backups[0].id as string;
    // The orphans are young: they may be uploads in flight, so the prune after the backup leaves them.
    const listed = await consistentListing(env, storage);
    expect(listed.backups.map((b) => `${b.id} ${b.storage.split(':')[0]}`).sort()).toEqual([
      `${id} local`,
      `${id} s3`,
    ]);
    expect(listed.incomplete.map((o) => o.id)).toEqual([orphan.id, orphan.id]);

    await age(join(storage, rich));
    const prune = await runCli(['prune'], env);
    expect(prune.code, prune.output).toBe(0);
    const pruned = await consistentListing(env, storage);
    expect(pruned.backups).toHaveLength(2);
    // Local storage's orphan was aged past the grace period; the S3 one (S3 keeps its own clock) stays.
    expect(pruned.incomplete.map((o) => o.storage)).toEqual([expect.stringMatching(/^s3:/)]);
    await expectRoundTrip(env, id, rich, richDump);
    await expectRoundTrip(s3Env(prefix), id, rich, richDump);
  });
});

describe('a crash in prune between a backup manifest and its data', () => {
  it('leaves a whole backup or an orphan, never a manifest without data; the orphan is collected later', async () => {
    const storage = await tempDir();
    const env = targetEnv(rich, storage, { DATASAVER_KEEP_LAST: '1', DATASAVER_MIN_KEEP: '1' });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await runCli(['backup', '--no-prune', '--json'], env);
      expect(res.code, res.output).toBe(0);
      ids.push(JSON.parse(res.stdout).backups[0].id);
    }
    const [older, newer] = ids as [string, string];
    await killedAt('prune.between-manifest-and-data', ['prune'], env);

    const after = await consistentListing(env, storage);
    expect(after.backups.map((b) => b.id)).toEqual([newer]);
    expect(after.incomplete).toEqual([expect.objectContaining({ id: older, kind: 'data' })]);
    const files = await readdir(join(storage, rich));
    // `${older}.`: two backups in one second have ids `X` and `X-1`, so the bare id is a prefix of both.
    expect(files.filter((f) => f.startsWith(`${older}.`))).toEqual([expect.stringMatching(/\.dump\.zst$/)]);

    // The next prune keeps the young orphan, the prune after the grace period removes it.
    const again = await runCli(['prune'], env);
    expect(again.code, again.output).toBe(0);
    expect((await consistentListing(env, storage)).incomplete.map((o) => o.id)).toEqual([older]);
    await age(join(storage, rich));
    const late = await runCli(['prune'], env);
    expect(late.code, late.output).toBe(0);
    const pruned = await consistentListing(env, storage);
    expect(pruned.backups.map((b) => b.id)).toEqual([newer]);
    expect(pruned.incomplete).toEqual([]);
    expect((await readdir(join(storage, rich))).every((f) => f.startsWith(`${newer}.`))).toBe(true);
    await expectRoundTrip(env, 'latest', rich, richDump);
  });
});

describe('a crash while copying a backup between destinations', () => {
  it('backup --resume-uploads and the resume a backup run does: killed mid-copy and before the manifest', async () => {
    const db = uniqueName('crashrs');
    await createBulkDatabase(db, 10);
    const dump = await comparableDump(db);
    const storage = await tempDir();
    const prefix = s3Prefix('crash');
    const env = targetEnv(db, storage, s3Env(prefix));
    const onlyS3 = s3Env(prefix);

    // A backup that reached only the local destination (the bucket is missing).
    const first = await runCli(['backup', '--json'], { ...env, DATASAVER_S3_BUCKET: 'no-such-bucket' });
    expect(first.code, first.output).toBe(6);
    const a = JSON.parse(first.stdout).backups[0].id as string;

    await killedAt('resume.copying', ['backup', '--resume-uploads'], env);
    expect((await consistentListing(onlyS3)).backups).toEqual([]);
    expect((await consistentListing(env, storage)).backups.map((b) => b.id)).toEqual([a]);

    // A backup run: its own backup commits everywhere, then the copy of the old one dies before its
    // manifest is written.
    await killedAt('resume.before-manifest', ['backup', '--no-prune'], env);
    const s3After = await consistentListing(onlyS3);
    expect(s3After.backups).toHaveLength(1);
    const b = s3After.backups[0]!.id;
    expect(b).not.toBe(a);
    expect(s3After.incomplete).toEqual([expect.objectContaining({ id: a, kind: 'data' })]);
    const local = (await consistentListing(env, storage)).backups.filter((x) =>
      x.storage.startsWith('local:'),
    );
    expect(local.map((x) => x.id).sort()).toEqual([a, b].sort());

    // The next resume finds the copied data, checks it is the backup's bytes and commits it.
    const resumed = await runCli(['backup', '--resume-uploads'], env);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`uploaded ${a} to s3://`));
    const s3Final = await consistentListing(onlyS3);
    expect(s3Final.backups.map((x) => x.id).sort()).toEqual([a, b].sort());
    expect(s3Final.incomplete).toEqual([]);
    await expectRoundTrip(onlyS3, a, db, dump);

    // The other way: the local copy of b is lost and the copy back from S3 dies mid-stream, leaving the
    // local write's hidden temporary file, which prune collects after the grace period.
    const dir = join(storage, db);
    for (const f of await readdir(dir)) if (f.startsWith(`${b}.`)) await rm(join(dir, f));
    await killedAt('resume.copying', ['backup', '--resume-uploads'], env);
    const temporary = (await readdir(dir)).filter((f) => f.startsWith(`.${b}`) && f.endsWith('.tmp'));
    expect(temporary).toHaveLength(1);
    const afterKill = await consistentListing(env, storage);
    expect(afterKill.backups.filter((x) => x.storage === `local:${storage}`).map((x) => x.id)).toEqual([a]);
    expect(afterKill.incomplete).toEqual([]);
    await age(dir);
    const prune = await runCli(['prune'], env);
    expect(prune.code, prune.output).toBe(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const back = await runCli(['backup', '--resume-uploads'], env);
    expect(back.code, back.output).toBe(0);
    expect(back.stdout).toMatch(new RegExp(`${b} to local:`));
    const whole = await consistentListing(env, storage);
    expect(whole.backups.map((x) => `${x.id} ${x.storage.split(':')[0]}`).sort()).toEqual(
      [`${a} local`, `${a} s3`, `${b} local`, `${b} s3`].sort(),
    );
  });
});

describe('a crash after a parallel restore spooled its dump', () => {
  it('the spool in --temp-dir goes at the next restore that uses it; a running restore keeps its own', async () => {
    const storage = await tempDir();
    const spool = join(await tempDir(), 'spool');
    await mkdir(spool);
    const env = targetEnv(rich, storage, { DATASAVER_FORMAT: 'custom' });
    const backup = await runCli(['backup'], env);
    expect(backup.code, backup.output).toBe(0);
    const restore = (db: string) => [
      'restore',
      'latest',
      '--jobs',
      '2',
      '--temp-dir',
      spool,
      '--target-db',
      db,
    ];

    await killedAt('restore.spooled', restore(uniqueName('crkilled')), env);
    const left = await readdir(spool);
    expect(left).toEqual([expect.stringMatching(/^datasaver-restore-/)]);
    expect((await readdir(join(spool, left[0]!))).sort()).toEqual(['.datasaver-owner', 'dump']);
    // Not the system temp dir: a command that is not told about --temp-dir leaves it alone.
    expect((await runCli(['list'], env)).code).toBe(0);
    expect(await readdir(spool)).toEqual(left);

    // The next restore told about that directory removes the leftover as it starts, and holds its own
    // spool there while yet another restore starts and leaves that alone.
    const live = await startPausedAt('restore.spooled', restore(uniqueName('crlive')), env);
    let held: string[] = [];
    try {
      held = await readdir(spool);
      expect(held).toEqual([expect.stringMatching(/^datasaver-restore-/)]);
      expect(held).not.toEqual(left);
      const copy = uniqueName('crcopy');
      const next = await runCli(restore(copy), env);
      expect(next.code, next.output).toBe(0);
      expect(next.stderr).not.toMatch(/note: removed/);
      expect(await readdir(spool)).toEqual(held);
      expect(await comparableDump(copy)).toBe(richDump);
    } finally {
      live.child.kill('SIGKILL');
    }
    const liveResult = await live.done;
    expect(liveResult.stderr).toContain(`note: removed ${join(spool, left[0]!)}`);
    expect((await live.done).signal).toBe('SIGKILL');
    const last = await runCli([...restore(uniqueName('crlast')), '--dry-run'], env);
    expect(last.code, last.output).toBe(0);
    expect(last.stderr).toContain(`note: removed ${join(spool, held[0]!)}`);
    expect(await readdir(spool)).toEqual([]);
  });

  it('a pg_restore left running by a killed restore is stopped at the next start', async () => {
    const storage = await tempDir();
    const spool = join(await tempDir(), 'spool');
    await mkdir(spool);
    const env = targetEnv(rich, storage, { DATASAVER_FORMAT: 'custom' });
    expect((await runCli(['backup'], env)).code).toBe(0);
    // A pg_restore that reads the table of contents like the real one but never finishes restoring,
    // so it is surely still running when datasaver dies.
    const real = join(server().binDir, 'pg_restore');
    const tools = await fakeToolDir({
      pg_restore: `for a in "$@"; do case "$a" in --version|--list) exec "${real}" "$@";; esac; done\nwhile :; do sleep 1; done`,
    });
    const restore = startCli(
      ['restore', 'latest', '--jobs', '2', '--temp-dir', spool, '--target-db', uniqueName('crorphan')],
      { ...env, DATASAVER_TOOL_DIR: tools },
    );
    const done = collect(restore);
    const orphan = await waitForProcessUsing(spool, done);
    restore.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    try {
      expect(processRunning(orphan)).toBe(true);
      const next = await runCli(['restore', 'latest', '--dry-run', '--temp-dir', spool], env);
      expect(next.code, next.output).toBe(0);
      expect(next.stderr).toContain(`stopped the tool process(es) it left running: ${orphan}`);
      expect(await readdir(spool)).toEqual([]);
    } finally {
      if (processRunning(orphan)) process.kill(orphan, 'SIGKILL');
    }
  });
});

describe('a mistyped failpoint', () => {
  it('fails the command as it starts, instead of a run where nothing was injected', async () => {
    const storage = await tempDir();
    const res = await runCli(['list'], {
      DATASAVER_STORAGE_PATH: storage,
      DATASAVER_FAILPOINT: 'backup.dumpign=kill',
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("Error: DATASAVER_FAILPOINT: there is no failpoint 'backup.dumpign'");
    expect(res.stdout).toBe('');
  });
});
