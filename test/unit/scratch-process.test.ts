/**
 * What every throwaway drill server shares, without a server: the account read from /etc/passwd, the
 * binary lookup order, the socket path limit, a failed start's error, and the ScratchServer wrapper
 * (stop once, also on abort; unset connection settings).
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkSocketPath,
  findExecutable,
  parsePasswd,
  scratchServer,
  spawnServer,
  waitUntilReady,
} from '../../src/engines/scratch-process.ts';
import { RestoreError } from '../../src/util/errors.ts';
import { tempDir } from '../support/pg.ts';

describe('parsePasswd', () => {
  it('reads name, uid and gid of each account and skips what is not an account line', () => {
    const accounts = parsePasswd(
      'root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n\n# comment\nbroken:x:nope:1::/:/bin/sh\n',
    );
    expect([...accounts.keys()]).toEqual(['root', 'postgres']);
    expect(accounts.get('postgres')).toEqual({ name: 'postgres', uid: 101, gid: 104 });
  });
});

describe('findExecutable', () => {
  it('takes the first directory holding any of the names, and only executable files', async () => {
    const [a, b] = [await tempDir('bin-a-'), await tempDir('bin-b-')];
    await writeFile(join(a, 'mysqld'), '#!/bin/sh\n', { mode: 0o644 }); // not executable
    await writeFile(join(b, 'mysqld'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(b, 'mariadbd'), '#!/bin/sh\n', { mode: 0o755 });
    expect(await findExecutable(['mariadbd', 'mysqld'], [a, b])).toBe(join(b, 'mariadbd'));
    await chmod(join(a, 'mysqld'), 0o755);
    expect(await findExecutable(['mariadbd', 'mysqld'], [a, b])).toBe(join(a, 'mysqld'));
    expect(await findExecutable(['redis-server'], [a, b])).toBeUndefined();
  });
});

describe('checkSocketPath', () => {
  it('takes a path of 107 bytes and refuses a longer one, naming TMPDIR', () => {
    expect(() => checkSocketPath(`/${'s'.repeat(106)}`)).not.toThrow();
    expect(() => checkSocketPath(`/${'s'.repeat(107)}`)).toThrow(RestoreError);
    expect(() => checkSocketPath(`/${'s'.repeat(107)}`)).toThrow(/too long for a Unix socket/);
  });
});

describe('a server that exits while it starts', () => {
  it('fails with the last lines of its log', async () => {
    const dir = await tempDir('server-');
    const server = await spawnServer(
      '/bin/sh',
      ['-c', 'echo starting; echo "FATAL: out of disk" >&2; exit 3'],
      {
        cwd: dir,
        log: join(dir, 'server.log'),
        account: undefined,
      },
    );
    const err = await waitUntilReady('throwaway test server', server, async () => false, undefined).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RestoreError);
    expect((err as RestoreError).message).toBe(
      'throwaway test server did not start; its log ends:\n  starting\n  FATAL: out of disk',
    );
  });

  it('that cannot be spawned says why in its log', async () => {
    const dir = await tempDir('server-');
    const server = await spawnServer(join(dir, 'missing'), [], {
      cwd: dir,
      log: join(dir, 'server.log'),
      account: undefined,
    });
    const err = await waitUntilReady('throwaway test server', server, async () => false, undefined).catch(
      (e: unknown) => e,
    );
    expect((err as RestoreError).message).toContain('ENOENT');
  });
});

describe('scratchServer', () => {
  it('stops once however often it is asked, and when its signal aborts', async () => {
    let stops = 0;
    const abort = new AbortController();
    const server = await scratchServer('x', { host: '/run/x' }, async () => void stops++, abort.signal);
    // Every setting not given is unset, TLS off.
    expect(Object.entries(server.connection).filter(([, v]) => v !== undefined)).toEqual([
      ['host', '/run/x'],
      ['tls', false],
    ]);
    abort.abort();
    await server.stop();
    await server.stop();
    expect(stops).toBe(1);
  });

  it('stops at once, and throws the reason, when its signal aborted before it was handed out', async () => {
    let stops = 0;
    const signal = AbortSignal.abort(new Error('drill cancelled'));
    await expect(scratchServer('x', {}, async () => void stops++, signal)).rejects.toThrow('drill cancelled');
    expect(stops).toBe(1);
  });

  it('never throws from stop', async () => {
    const server = await scratchServer('x', {}, () => Promise.reject(new Error('gone')), undefined);
    await expect(server.stop()).resolves.toBeUndefined();
  });
});
