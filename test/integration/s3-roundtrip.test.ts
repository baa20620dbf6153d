/**
 * S3 through the real CLI: one dump written to local disk and S3;
 * a fresh process with nothing but the S3 settings lists, verifies and restores; a failed remote copy
 * keeps the local one, exits 6 and is uploaded later; bad credentials and a missing bucket exit 6 with
 * a message that names the bucket and hides the secret. The round trip also runs against an unmodified
 * s3rver, which degrades with warnings and exit 0.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { runCli } from '../support/cli.ts';
import {
  type Fault,
  type FaultProxy,
  flipByte,
  isCompleteUpload,
  isPartUpload,
  opaqueEtag,
  type ProxiedRequest,
  startFaultProxy,
} from '../support/fault-proxy.ts';
import { createBulkDatabase, createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, dbUrl, targetEnv, tempDir, uniqueName } from '../support/pg.ts';
import { S3_SERVERS, s3Config, s3Endpoint, s3EndpointOf, s3Env, s3Prefix } from '../support/s3.ts';

let db: string;
let sourceDump: string;

beforeAll(async () => {
  db = uniqueName('s3rt');
  await createRichDatabase(db);
  sourceDump = await comparableDump(db);
});

function ids(stdout: string): { id: string; storage: string }[] {
  return (JSON.parse(stdout) as { backups: { id: string; storage: string }[] }).backups.map((b) => ({
    id: b.id,
    storage: b.storage,
  }));
}

describe.each(S3_SERVERS)('S3 as a destination (%s server)', (kind) => {
  it('one dump goes to local disk and S3; a fresh process with only S3 settings lists, verifies and restores', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('rt');
    const endpoint = s3EndpointOf(kind);
    const backup = await runCli(['backup', '--json'], targetEnv(db, storage, s3Env(prefix, endpoint)));
    expect(backup.code, backup.output).toBe(0);
    const result = JSON.parse(backup.stdout);
    const id: string = result.backups[0].id;
    expect(result.backups[0].destinations).toEqual([
      `local:${storage}`,
      expect.stringMatching(new RegExp(`^s3://datasaver-test/${prefix} at http://127\\.0\\.0\\.1:\\d+$`)),
    ]);
    expect(result.failures).toEqual([]);

    // A new machine: no local files, no database of the old target, only the bucket.
    const onlyS3 = s3Env(prefix, endpoint);
    const list = await runCli(['list', '--json'], onlyS3);
    expect(list.code, list.output).toBe(0);
    expect(ids(list.stdout)).toEqual([{ id, storage: expect.stringMatching(/^s3:\/\//) }]);
    const verify = await runCli(['verify', id], onlyS3);
    expect(verify.code, verify.output).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`^ok\\s+${id}`));

    const restored = uniqueName('s3restored');
    const restore = await runCli(['restore', id, '--target-db', restored], {
      ...onlyS3,
      DATASAVER_DATABASE_URL: dbUrl('postgres'),
    });
    expect(restore.code, restore.output).toBe(0);
    expect(await comparableDump(restored)).toBe(sourceDump);
  });
});

describe('S3 as a destination', () => {
  it('an unmodified s3rver: backup and prune exit 0; each missing feature is a warning, once, saying what to do', async () => {
    const prefix = s3Prefix('plain');
    const env = targetEnv(db, await tempDir(), {
      ...s3Env(prefix, s3EndpointOf('plain')),
      DATASAVER_STORAGE_BACKEND: 's3',
      DATASAVER_KEEP_DAILY: '0',
      DATASAVER_KEEP_WEEKLY: '0',
      DATASAVER_KEEP_MONTHLY: '0',
      DATASAVER_MIN_KEEP: '1',
    });
    const count = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;
    const noConditional = /^warning: s3:\/\/.* does not enforce conditional writes \(If-None-Match: \*\)/;
    const noListing =
      /^warning: s3:\/\/.* cannot list unfinished multipart uploads \(ListMultipartUploads\).*lifecycle rule AbortIncompleteMultipartUpload/;
    const first = await runCli(['backup'], env);
    expect(first.code, first.output).toBe(0);
    expect(count(first.stderr, noConditional)).toBe(1);
    expect(count(first.stderr, noListing)).toBe(1);
    // The second backup's prune removes the first: prune works, without the upload listing.
    const second = await runCli(['backup'], env);
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).toMatch(/pruned 1 old item\(s\)/);
    const prune = await runCli(['prune'], env);
    expect(prune.code, prune.output).toBe(0);
    expect(count(prune.stderr, noListing)).toBe(1);
    const list = await runCli(['list', '--json'], env);
    expect(ids(list.stdout)).toEqual([
      { id: /^backup (\S+) committed/m.exec(second.stdout)![1], storage: expect.any(String) },
    ]);
    const check = await runCli(['config', 'check'], env);
    expect(check.code, check.output).toBe(0);
    expect(check.stdout).toMatch(/# s3:\/\/.*: conditional writes no, lists unfinished uploads no/);
    const extended = await runCli(['config', 'check', '--json'], { ...env, ...s3Env(prefix) });
    expect(JSON.parse(extended.stdout).storage).toEqual([
      { destination: expect.stringMatching(/^s3:/), conditionalWrites: true, listTemporary: true },
    ]);
  });

  it('a failed remote copy keeps the local one, exits 6, and --resume-uploads uploads it later', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('resume');
    const broken = targetEnv(db, storage, { ...s3Env(prefix), DATASAVER_S3_BUCKET: 'no-such-bucket' });
    const failed = await runCli(['backup'], broken);
    expect(failed.code, failed.output).toBe(6);
    expect(failed.stdout).toMatch(/^backup (\S+) committed to local:/m);
    expect(failed.stderr).toMatch(/bucket no-such-bucket does not exist at http:\/\/127\.0\.0\.1:\d+/);
    expect(failed.stderr).toMatch(/--resume-uploads/);
    const id = /^backup (\S+) committed/m.exec(failed.stdout)![1]!;
    expect((await readdir(join(storage, db))).sort()).toEqual([`${id}.dump.zst`, `${id}.manifest.json`]);

    const good = targetEnv(db, storage, s3Env(prefix));
    const resumed = await runCli(['backup', '--resume-uploads'], good);
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`uploaded ${id} to s3://datasaver-test/${prefix}`));
    const list = await runCli(['list', '--json'], s3Env(prefix));
    expect(ids(list.stdout).map((b) => b.id)).toEqual([id]);
    // Nothing left to do the second time.
    const again = await runCli(['backup', '--resume-uploads'], good);
    expect(again.stdout).toMatch(/every destination holds every backup retention keeps/);
  });

  it('wrong credentials exit 6 naming bucket and endpoint, never the secret', async () => {
    const secret = 'Sup3r-S3cret-Value';
    const env = targetEnv(db, await tempDir(), {
      ...s3Env(s3Prefix()),
      DATASAVER_STORAGE_BACKEND: 's3',
      DATASAVER_S3_ACCESS_KEY: 'WRONG-KEY',
      DATASAVER_S3_SECRET_KEY: secret,
    });
    const res = await runCli(['backup'], env);
    expect(res.code).toBe(6);
    expect(res.stderr).toMatch(
      /access denied \((InvalidAccessKeyId|HTTP 403)\) to bucket datasaver-test at http:\/\/127\.0\.0\.1:\d+/,
    );
    expect(res.output).not.toContain(secret);
    const check = await runCli(['config', 'check'], env);
    expect(check.output).not.toContain(secret);
    expect(check.stdout).toContain('secretKey: "***"');
  });

  it('foreign and malformed objects under the prefix are skipped with a warning', async () => {
    const prefix = s3Prefix('foreign');
    const s3 = new S3Storage(s3Config(prefix));
    await s3.put(`${db}/notes.txt`, [Buffer.from('not a backup')]);
    await s3.put(`${db}/${db}-20200101T000000Z.manifest.json`, [Buffer.from('{ broken')]);
    await s3.put('README', [Buffer.from('hello')]);
    const list = await runCli(['list', '--json'], s3Env(prefix));
    expect(list.code, list.output).toBe(0);
    expect(ids(list.stdout)).toEqual([]);
    expect(list.stderr).toMatch(/skipping .*notes\.txt: not a datasaver backup file/);
    expect(list.stderr).toMatch(/skipping .*manifest\.json: unreadable manifest/);
  });
});

describe('S3 faults during a real backup', () => {
  let proxy: FaultProxy;
  let bulk: string;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
    bulk = uniqueName('s3bulk');
    await createBulkDatabase(bulk, 40); // ~20 MB compressed: several 8 MiB parts
  });
  afterAll(async () => {
    await proxy.stop();
  });

  it('transient faults mid-upload are retried and the backup restores equal', async () => {
    const prefix = s3Prefix('flaky');
    let parts = 0;
    proxy.setRule((req) => (isPartUpload(req) && [1, 3].includes(++parts) ? { status: 503 } : undefined));
    const env = targetEnv(bulk, await tempDir(), {
      ...s3Env(prefix, proxy.endpoint),
      DATASAVER_STORAGE_BACKEND: 's3',
    });
    const res = await runCli(['backup', '--json'], env);
    proxy.setRule(() => undefined);
    expect(res.code, res.output).toBe(0);
    expect(res.stderr.match(/retrying upload part/g)).toHaveLength(2);
    // Downloads cut mid-body (twice) resume where they stopped: verify reads the whole object and passes.
    let cuts = 0;
    proxy.setRule((req) =>
      req.method === 'GET' && req.url.includes('.dump.zst') && ++cuts <= 2
        ? { truncateAfter: 3_000_000 }
        : undefined,
    );
    const verify = await runCli(['verify', 'latest', '--target', bulk], env);
    proxy.setRule(() => undefined);
    expect(verify.code, verify.output).toBe(0);
    expect(verify.stderr).toMatch(/retrying get .*\.dump\.zst from byte \d+/);
  });

  it('with S3 unreadable, list still shows the local backups (exit 6) and restore uses them', async () => {
    const storage = await tempDir();
    const prefix = s3Prefix('down');
    const env = targetEnv(db, storage, s3Env(prefix, proxy.endpoint));
    const backup = await runCli(['backup', '--json'], env);
    expect(backup.code, backup.output).toBe(0);
    const id: string = JSON.parse(backup.stdout).backups[0].id;
    proxy.setRule(() => ({ status: 403, code: 'AccessDenied' }));
    try {
      const list = await runCli(['list', '--json'], env);
      expect(list.code).toBe(6);
      expect(ids(list.stdout)).toEqual([{ id, storage: `local:${storage}` }]);
      expect(list.stderr).toMatch(/cannot list s3:\/\/datasaver-test\/.*access denied/);
      const restored = uniqueName('fromlocal');
      const restore = await runCli(['restore', 'latest', '--target-db', restored], env);
      expect(restore.code, restore.output).toBe(0);
      expect(await comparableDump(restored)).toBe(sourceDump);
    } finally {
      proxy.setRule(() => undefined);
    }
  });

  it('a prune that cannot delete after a good backup exits 7, and the backup stays committed', async () => {
    const prefix = s3Prefix('noprune');
    const env = targetEnv(db, await tempDir(), {
      ...s3Env(prefix, proxy.endpoint),
      DATASAVER_STORAGE_BACKEND: 's3',
      DATASAVER_KEEP_DAILY: '0',
      DATASAVER_KEEP_WEEKLY: '0',
      DATASAVER_KEEP_MONTHLY: '0',
      DATASAVER_MIN_KEEP: '1',
    });
    const first = await runCli(['backup'], env);
    expect(first.code, first.output).toBe(0);
    proxy.setRule((req) => (req.method === 'DELETE' ? { status: 403, code: 'AccessDenied' } : undefined));
    const second = await runCli(['backup', '--json'], env);
    proxy.setRule(() => undefined);
    expect(second.code, second.output).toBe(7);
    const out = JSON.parse(second.stdout);
    expect(out.backups).toHaveLength(1);
    expect(out.failures[0].message).toMatch(/access denied \(AccessDenied\)/);
    expect(second.stderr).toMatch(/Try: .*backup is committed|Try: nothing kept was touched/);
    const list = await runCli(['list', '--json'], s3Env(prefix));
    expect(ids(list.stdout).map((b) => b.id)).toContain(out.backups[0].id);
  });

  /** Backs up through the proxy under `rule` to a fresh prefix: exit 6, and nothing left in S3. */
  async function backupThatFails(name: string, rule: (req: ProxiedRequest) => Fault | undefined) {
    const prefix = s3Prefix(name);
    proxy.setRule(rule);
    const env = targetEnv(bulk, await tempDir(), {
      ...s3Env(prefix, proxy.endpoint),
      DATASAVER_STORAGE_BACKEND: 's3',
    });
    const res = await runCli(['backup'], env).finally(() => proxy.setRule(() => undefined));
    expect(res.code, res.output).toBe(6);
    const s3 = new S3Storage(s3Config(prefix));
    expect(await s3.list('')).toEqual([]);
    expect(await s3.listTemporary('')).toEqual([]);
    return res;
  }

  it('an upload that reads back different from what was sent fails the backup: exit 6, nothing committed', async () => {
    // A service whose ETag is no MD5 (as under SSE-KMS) makes datasaver read the dump back; the bytes
    // that come back differ from those sent.
    const res = await backupThatFails('altered', (req) => {
      if (isCompleteUpload(req)) return { rewrite: opaqueEtag };
      if (req.method === 'GET' && req.url.includes('.dump.zst')) return { rewrite: flipByte };
      return undefined;
    });
    expect(res.stderr).toMatch(/\.dump\.zst does not match what was uploaded/);
  });

  it('a part that never goes through fails the backup cleanly: exit 6, no manifest, no upload left', async () => {
    const res = await backupThatFails('doomed', (req) =>
      isPartUpload(req) && /[?&]partNumber=2(&|$)/.test(req.url) ? { status: 503 } : undefined,
    );
    expect(res.stderr).toMatch(/cannot upload part 2 of .*ServiceUnavailable \(HTTP 503\)/);
  });
});
