/**
 * Private temp dirs and the sweep at start: against this machine's real /proc,
 * a directory whose owner is gone (a pid that runs no more or is a zombie, or the same pid started again,
 * as PID 1 is after every container restart, or an earlier boot of this machine) is removed; every
 * directory of a live process, of another machine or PID namespace, without a trustworthy owner record,
 * every name that is not datasaver's, and anything that is not our own directory is kept. Only the tools
 * datasaver runs are stopped, never another process that names a leftover file.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEMP_DIR_TOOLS } from '../../src/engines/registry.ts';
import {
  makePrivateTempDir,
  parseTempDirName,
  sweepStaleTempDirs,
  sweepTempFilesBeside,
  tempFileBeside,
  touchRecords,
} from '../../src/util/private-temp.ts';
import {
  currentOwner,
  HEARTBEAT_MS,
  HEARTBEAT_STALE_MS,
  OWNER_RECORD,
  ownerRecord,
  ownerState,
  type PlacedOwner,
  placeTag,
  processStartTime,
  readOwnerRecord,
  type TempOwner,
} from '../../src/util/temp-owner.ts';

let parent: string;
let self: PlacedOwner;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 'private-temp-test-'));
  self = (await currentOwner())!;
});
afterEach(async () => {
  await rm(parent, { recursive: true, force: true });
});

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

/** The owner as a name records it: pid and start time in base 36. */
const tag = (o: TempOwner) => `${o.boot}-${o.pid.toString(36)}-${Number(o.start).toString(36)}`;
const dirName = (o: TempOwner, kind = 'restore') => `datasaver-${kind}-${tag(o)}-aB3dE9`;
/** Another PID namespace (a second container sharing the temp dir) and another machine. */
const otherNs = (o: PlacedOwner) => ({ ...o, pidns: 'pid:[4026500001]' });
const otherHost = (o: PlacedOwner) => ({ ...o, host: 'f'.repeat(32) });
const otherBoot = (o: PlacedOwner) => ({ ...o, boot: o.boot === '00000001' ? '00000002' : '00000001' });

/** A directory as `owner` would have made it, with its owner record and a spooled file. */
async function fakeDir(owner: PlacedOwner, kind = 'restore'): Promise<string> {
  const dir = join(parent, dirName(owner, kind));
  await mkdir(dir);
  await writeFile(join(dir, OWNER_RECORD), ownerRecord(owner));
  await writeFile(join(dir, 'dump'), 'spooled');
  return dir;
}

describe('makePrivateTempDir', () => {
  it('makes a 0700 directory whose name records this process as its owner', async () => {
    const dir = await makePrivateTempDir('redis', parent);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const parsed = parseTempDirName(dir.slice(parent.length + 1));
    expect(parsed).toEqual({ kind: 'redis', owner: { boot: self.boot, pid: self.pid, start: self.start } });
    expect(self.pid).toBe(process.pid);
    expect(self.start).toBe(await processStartTime(process.pid));
    expect(self.pidns).toBe(await readlink('/proc/self/ns/pid'));
    expect(await readOwnerRecord(dir)).toEqual(self);
    expect((await stat(join(dir, OWNER_RECORD))).mode & 0o777).toBe(0o600);
  });

  it('refuses a kind that would break the name', async () => {
    await expect(makePrivateTempDir('Bad-1', parent)).rejects.toThrow(/invalid temp dir kind/);
  });
});

describe('ownerState', () => {
  const owner: PlacedOwner = {
    boot: 'abcdef01',
    pid: 1,
    start: '500',
    host: 'a'.repeat(32),
    pidns: 'pid:[1]',
  };
  const me = { ...owner, pid: 7, start: '900' };
  it('is alive only while that pid runs with the recorded start time', () => {
    expect(ownerState(owner, me, '500')).toBe('alive');
    expect(ownerState(owner, me, '600')).toBe('gone'); // PID 1 again, after a restart
    expect(ownerState(owner, me, undefined)).toBe('gone');
    expect(ownerState(owner, { ...me, boot: '12345678' }, '500')).toBe('gone'); // this machine rebooted
  });
  it('does not judge an owner of another machine, rebooted or not', () => {
    for (const o of [otherHost(owner), otherBoot(otherHost(owner))]) {
      expect(ownerState(o, me, undefined, HEARTBEAT_STALE_MS + 1)).toBe('unknown');
      expect(ownerState(o, me, '600')).toBe('unknown');
    }
    expect(ownerState({ ...owner, pidns: '' }, me, undefined)).toBe('unknown');
  });
  it('judges an owner of another PID namespace of this machine by the heartbeat on its record', () => {
    // Its pids mean nothing here: neither a running nor a missing pid decides.
    expect(ownerState(otherNs(owner), me, '500', 1000)).toBe('unknown');
    expect(ownerState(otherNs(owner), me, undefined, 1000)).toBe('unknown');
    expect(ownerState(otherNs(owner), me, undefined)).toBe('unknown');
    expect(ownerState(otherNs(owner), me, '500', HEARTBEAT_STALE_MS + 1)).toBe('gone');
    // This machine rebooted since: every process of that boot has ended.
    expect(ownerState(otherBoot(otherNs(owner)), me, '500', 1000)).toBe('gone');
  });
  it('judges nothing without /proc', () => {
    expect(ownerState(owner, undefined, undefined)).toBe('unknown');
    expect(ownerState({ ...owner, start: '0' }, { ...owner, pid: 7 }, undefined)).toBe('unknown');
    expect(ownerState(owner, { ...me, pidns: '' }, undefined)).toBe('unknown');
  });
});

describe('sweepStaleTempDirs', () => {
  it('removes the dirs of dead or restarted owners and of an earlier boot, keeps live ones', async () => {
    const dead = { ...self, pid: await deadPid() };
    const restarted = { ...self, start: String(Number(self.start) - 1) }; // our pid, another start time
    const earlierBoot = otherBoot(self); // this machine, this namespace, rebooted since
    // A live process that is not us: a child, held running for the test.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      const other = { ...self, pid: child.pid!, start: (await processStartTime(child.pid!))! };
      const mine = await makePrivateTempDir('mysql', parent);
      await writeFile(join(mine, 'client.cnf'), 'x');
      for (const o of [dead, restarted, earlierBoot, other]) await fakeDir(o);
      const result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent);
      expect(result.failed).toEqual([]);
      expect(result.removed.map((r) => r.path).sort()).toEqual(
        [dead, restarted, earlierBoot].map((o) => join(parent, dirName(o))).sort(),
      );
      expect((await readdir(parent)).sort()).toEqual([mine.slice(parent.length + 1), dirName(other)].sort());
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("keeps another machine's dirs, and another PID namespace's while their heartbeat goes on", async () => {
    const dead = { ...self, pid: await deadPid() };
    // A second container sharing this temp dir: PID 1 there, another start time than any process here.
    const container = otherNs({ ...self, pid: 1, start: String(Number(self.start) + 1) });
    const kept = [otherNs(dead), container, otherHost(dead), otherBoot(otherHost(dead))];
    const keptDirs = [];
    for (const [i, o] of kept.entries()) keptDirs.push(await fakeDir(o, `kind-${'abcde'[i]}`));
    // Another machine's record is not believed however old it is.
    const long = new Date(Date.now() - 2 * HEARTBEAT_STALE_MS);
    await utimes(join(keptDirs[2]!, OWNER_RECORD), long, long);
    // The container this one replaced: its record's heartbeat stopped when it was killed.
    const replaced = await fakeDir(otherNs({ ...self, pid: 1, start: '7' }), 'kind-f');
    await utimes(join(replaced, OWNER_RECORD), long, long);
    const rebooted = await fakeDir(otherBoot(otherNs(dead)), 'kind-g');
    const stale = await fakeDir(dead);
    const result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent);
    expect(result.failed).toEqual([]);
    expect(result.removed.map((r) => r.path).sort()).toEqual([stale, replaced, rebooted].sort());
    expect((await readdir(parent)).sort()).toEqual(keptDirs.map((d) => d.slice(parent.length + 1)).sort());
  });

  it('keeps the records of the dirs it holds fresh, so no other container takes them for abandoned', async () => {
    const dir = await makePrivateTempDir('restore', parent);
    const long = new Date(Date.now() - 2 * HEARTBEAT_STALE_MS);
    await utimes(join(dir, OWNER_RECORD), long, long);
    await touchRecords();
    expect((await stat(join(dir, OWNER_RECORD))).mtimeMs).toBeGreaterThan(Date.now() - HEARTBEAT_MS);
    await rm(dir, { recursive: true });
    await touchRecords(); // a removed dir drops out of the heartbeat without an error
  });

  it('keeps a dead-looking dir without a record it can trust', async () => {
    const dead = { ...self, pid: await deadPid() };
    const target = await mkdtemp(join(tmpdir(), 'private-temp-target-'));
    try {
      await writeFile(join(target, 'record'), ownerRecord(dead));
      const cases: [string, (dir: string) => Promise<void>][] = [
        ['missing', async () => {}], // an older datasaver's, or killed before writing it
        ['symlink', (dir) => symlink(join(target, 'record'), join(dir, OWNER_RECORD))],
        ['oversized', (dir) => writeFile(join(dir, OWNER_RECORD), ownerRecord(dead).padEnd(4096))],
        ['malformed', (dir) => writeFile(join(dir, OWNER_RECORD), '{"v":1,')],
        [
          'disagreeing',
          (dir) => writeFile(join(dir, OWNER_RECORD), ownerRecord({ ...dead, pid: dead.pid + 1 })),
        ],
        ['unreadable', (dir) => mkdir(join(dir, OWNER_RECORD))],
      ];
      for (const [kind, plant] of cases) {
        const dir = join(parent, dirName(dead, kind));
        await mkdir(dir);
        await plant(dir);
      }
      expect(await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent)).toEqual({ removed: [], failed: [] });
      expect((await readdir(parent)).length).toBe(cases.length);
      expect(await readFile(join(target, 'record'), 'utf8')).toBe(ownerRecord(dead));
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });

  it('keeps names that are not its own, files, symlinks and directories of another user', async () => {
    const dead = { ...self, pid: await deadPid() };
    const keep = [
      'datasaver-test-x1',
      `datasaver-restore-${dead.pid}-aB3dE9`, // an older datasaver's name: no owner recorded
      `datasaver-${tag(dead)}-aB3dE9`, // no kind
    ];
    for (const name of keep) await mkdir(join(parent, name));
    await writeFile(join(parent, dirName(dead, 'restore')), 'a file');
    const target = await mkdtemp(join(tmpdir(), 'private-temp-target-'));
    try {
      await symlink(target, join(parent, dirName(dead, 'sqlite')));
      await chown(await fakeDir(dead, 'mysql'), 65534, 65534);
      const result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent);
      expect(result.removed).toEqual([]);
      expect((await readdir(parent)).length).toBe(keep.length + 3);
      expect((await stat(target)).isDirectory()).toBe(true);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });

  it('stops the tools a dead owner left running on its files, and no other process', async () => {
    const dead = { ...self, pid: await deadPid() };
    const stale = await fakeDir(dead);
    const live = await makePrivateTempDir('restore', parent);
    await writeFile(join(live, 'dump'), 'spooled');
    // A stand-in for pg_restore: a script by that name (its command name), reading stdin for ever.
    const bin = await mkdtemp(join(tmpdir(), 'private-temp-bin-'));
    await writeFile(join(bin, 'pg_restore'), '#!/bin/sh\nread line\n');
    await chmod(join(bin, 'pg_restore'), 0o755);
    const tool = (dir: string) => spawn(join(bin, 'pg_restore'), [`--socket=${join(dir, 'redis.sock')}`]);
    const orphan = tool(stale);
    const running = tool(live);
    // An operator looking at the leftover spool: names it, but is no tool of datasaver's.
    const reader = spawn('tail', ['-f', join(stale, 'dump')]);
    const orphanExit = once(orphan, 'exit');
    try {
      await Promise.all([once(orphan, 'spawn'), once(running, 'spawn'), once(reader.stdout, 'data')]);
      const result = await sweepStaleTempDirs(TEMP_DIR_TOOLS, parent);
      expect(result.removed).toEqual([expect.objectContaining({ path: stale, stopped: [orphan.pid] })]);
      expect(await orphanExit).toEqual([null, 'SIGKILL']);
      for (const p of [running, reader]) {
        expect(p.exitCode).toBeNull();
        expect(p.signalCode).toBeNull();
        expect(await processStartTime(p.pid!)).toBeDefined();
      }
    } finally {
      for (const p of [orphan, running, reader]) p.kill('SIGKILL');
      await rm(bin, { recursive: true, force: true });
    }
  });

  it('a killed owner not yet reaped (a zombie) is gone', async () => {
    // `sleep 0` runs in the background of a shell that then becomes `sleep 30`, which never reaps it.
    const holder = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30']);
    try {
      const [line] = (await once(holder.stdout, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      let state = '';
      while (state !== 'Z') {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
        if (state !== 'Z') await new Promise((r) => setImmediate(r));
      }
      expect(await processStartTime(pid)).toBeUndefined();
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('does nothing when the directory does not exist', async () => {
    expect(await sweepStaleTempDirs(TEMP_DIR_TOOLS, join(parent, 'missing'))).toEqual({
      removed: [],
      failed: [],
    });
  });
});

describe('temp files beside a destination', () => {
  it('removes the temp file a killed write to that path left here, and nothing else', async () => {
    const path = join(parent, 'app.db');
    const mine = await tempFileBeside(path);
    expect(mine.slice(parent.length + 1)).toMatch(
      new RegExp(`^\\.app\\.db\\.datasaver-${placeTag(self)}-${tag(self)}-[0-9a-f]{6}$`),
    );
    const dead = { ...self, pid: await deadPid() };
    const here = placeTag(self);
    const stale = join(parent, `.app.db.datasaver-${here}-${tag(dead)}-a1b2c3`);
    const kept = [
      mine,
      `${stale}-wal.old`, // a SQLite restore's WAL moved aside: not a temp file to remove
      join(parent, `.other.db.datasaver-${here}-${tag(dead)}-a1b2c3`), // another path
      join(parent, `.app.db.datasaver-${placeTag(otherNs(self))}-${tag(dead)}-a1b2c3`), // another container
      join(parent, `.app.db.datasaver-${placeTag(otherHost(self))}-${tag(otherBoot(dead))}-a1b2c3`), // machine
      join(parent, `.app.db.datasaver-${tag(dead)}-a1b2c3`), // an older datasaver's: no place recorded
      join(parent, 'app.db'),
    ];
    for (const f of [stale, ...kept]) await writeFile(f, 'x');
    expect(await sweepTempFilesBeside(path)).toEqual([stale]);
    expect((await readdir(parent)).sort()).toEqual(kept.map((f) => f.slice(parent.length + 1)).sort());
  });
});
