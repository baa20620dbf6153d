/**
 * Private temp dirs and the sweep at start (RELIABILITY.md promise 1): against this machine's real /proc,
 * a directory whose owner is gone (a pid that runs no more or is a zombie, or the same pid started again,
 * as PID 1 is after every container restart, or an earlier boot) is removed; every directory of a live
 * process, every name that is not datasaver's, and anything that is not our own directory is kept.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  currentOwner,
  makePrivateTempDir,
  ownerState,
  parseTempDirName,
  processStartTime,
  sweepStaleTempDirs,
  sweepTempFilesBeside,
  type TempOwner,
  tempFileBeside,
} from '../../src/util/private-temp.ts';

let parent: string;
let self: TempOwner;

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

describe('makePrivateTempDir', () => {
  it('makes a 0700 directory whose name records this process as its owner', async () => {
    const dir = await makePrivateTempDir('redis', parent);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const parsed = parseTempDirName(dir.slice(parent.length + 1));
    expect(parsed).toEqual({ kind: 'redis', owner: self });
    expect(self.pid).toBe(process.pid);
    expect(self.start).toBe(await processStartTime(process.pid));
  });

  it('refuses a kind that would break the name', async () => {
    await expect(makePrivateTempDir('Bad-1', parent)).rejects.toThrow(/invalid temp dir kind/);
  });
});

describe('ownerState', () => {
  const owner: TempOwner = { boot: 'abcdef01', pid: 1, start: '500' };
  it('is alive only while that pid runs with the recorded start time', () => {
    const me = { ...owner, pid: 7, start: '900' };
    expect(ownerState(owner, me, '500')).toBe('alive');
    expect(ownerState(owner, me, '600')).toBe('gone'); // PID 1 again, after a restart
    expect(ownerState(owner, me, undefined)).toBe('gone');
    expect(ownerState(owner, { ...me, boot: '12345678' }, '500')).toBe('gone'); // an earlier boot
  });
  it('judges nothing without /proc', () => {
    expect(ownerState(owner, undefined, undefined)).toBe('unknown');
    expect(ownerState({ ...owner, start: '0' }, { ...owner, pid: 7 }, undefined)).toBe('unknown');
  });
});

describe('sweepStaleTempDirs', () => {
  it('removes the dirs of dead or restarted owners and of an earlier boot, keeps live ones', async () => {
    const dead = { ...self, pid: await deadPid() };
    const restarted = { ...self, start: String(Number(self.start) - 1) }; // our pid, another start time
    const earlierBoot = { ...self, boot: self.boot === '00000001' ? '00000002' : '00000001' };
    // A live process that is not us: a child, held running for the test.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      const other = { ...self, pid: child.pid!, start: (await processStartTime(child.pid!))! };
      const mine = await makePrivateTempDir('mysql', parent);
      await writeFile(join(mine, 'client.cnf'), 'x');
      for (const o of [dead, restarted, earlierBoot, other]) {
        await mkdir(join(parent, dirName(o)));
        await writeFile(join(parent, dirName(o), 'dump'), 'spooled');
      }
      const result = await sweepStaleTempDirs(parent);
      expect(result.failed).toEqual([]);
      expect(result.removed.map((r) => r.path).sort()).toEqual(
        [dead, restarted, earlierBoot].map((o) => join(parent, dirName(o))).sort(),
      );
      expect((await readdir(parent)).sort()).toEqual([mine.slice(parent.length + 1), dirName(other)].sort());
    } finally {
      child.kill('SIGKILL');
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
      await mkdir(join(parent, dirName(dead, 'mysql')));
      await chown(join(parent, dirName(dead, 'mysql')), 65534, 65534);
      const result = await sweepStaleTempDirs(parent);
      expect(result.removed).toEqual([]);
      expect((await readdir(parent)).length).toBe(keep.length + 3);
      expect((await stat(target)).isDirectory()).toBe(true);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  });

  it('stops the tools a dead owner left running on its files, and no others', async () => {
    const dead = { ...self, pid: await deadPid() };
    const stale = join(parent, dirName(dead));
    const live = await makePrivateTempDir('restore', parent);
    await mkdir(stale);
    // Stand-ins for a loader or pg_restore: processes whose arguments name a file in each directory.
    const tool = (dir: string) =>
      spawn(process.execPath, [
        '-e',
        'setInterval(() => {}, 1000)',
        '--',
        `--socket=${join(dir, 'redis.sock')}`,
      ]);
    const orphan = tool(stale);
    const running = tool(live);
    const orphanExit = once(orphan, 'exit');
    try {
      await Promise.all([once(orphan, 'spawn'), once(running, 'spawn')]);
      const result = await sweepStaleTempDirs(parent);
      expect(result.removed).toEqual([expect.objectContaining({ path: stale, stopped: [orphan.pid] })]);
      expect(await orphanExit).toEqual([null, 'SIGKILL']);
      expect(running.exitCode).toBeNull();
      expect(running.signalCode).toBeNull();
    } finally {
      orphan.kill('SIGKILL');
      running.kill('SIGKILL');
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
    expect(await sweepStaleTempDirs(join(parent, 'missing'))).toEqual({ removed: [], failed: [] });
  });
});

describe('temp files beside a destination', () => {
  it('removes the temp file a killed write to that path left, and nothing else', async () => {
    const path = join(parent, 'app.db');
    const mine = await tempFileBeside(path);
    expect(mine.slice(parent.length + 1)).toMatch(
      new RegExp(`^\\.app\\.db\\.datasaver-${tag(self)}-[0-9a-f]{6}$`),
    );
    const dead = { ...self, pid: await deadPid() };
    const stale = join(parent, `.app.db.datasaver-${tag(dead)}-a1b2c3`);
    const kept = [
      mine,
      `${stale}-wal.old`, // a SQLite restore's WAL moved aside: not a temp file to remove
      join(parent, `.other.db.datasaver-${tag(dead)}-a1b2c3`), // another path
      join(parent, 'app.db'),
    ];
    for (const f of [stale, ...kept]) await writeFile(f, 'x');
    expect(await sweepTempFilesBeside(path)).toEqual([stale]);
    expect((await readdir(parent)).sort()).toEqual(kept.map((f) => f.slice(parent.length + 1)).sort());
  });
});
