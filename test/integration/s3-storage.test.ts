/**
 * The S3 backend against a real S3-compatible server: streaming
 * multipart uploads and their abort, part sizing, permanent errors that name bucket and endpoint, and
 * transient faults (503, 429, dropped connections, cut downloads) injected by a proxy and survived by the
 * retry wrapper, or failing cleanly with nothing left behind. Uploads also run against an unmodified s3rver:
 * its missing features are found, warned about once, and done without.
 */
import { createHash, randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageConflictError, StorageUnsupportedError } from '../../src/storage/backend.ts';
import type { S3VerifyMode } from '../../src/storage/config.ts';
import { type RetryInfo, RetryingStorage, type RetryPolicy } from '../../src/storage/retry.ts';
import { partSize } from '../../src/storage/s3/multipart.ts';
import { S3Storage } from '../../src/storage/s3/s3.ts';
import { etagMatches } from '../../src/storage/s3/upload-check.ts';
import { StorageError } from '../../src/util/errors.ts';
import { Secret } from '../../src/util/secret.ts';
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
import { S3_SERVERS, s3Config, s3Endpoint, s3EndpointOf, s3Prefix } from '../support/s3.ts';
import { S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY } from '../support/s3-server.ts';

const MIB = 1024 * 1024;

/** A body of `size` random bytes in 1 MB chunks, failing after `failAfter` bytes if given. */
async function* body(data: Buffer, failAfter?: number): AsyncGenerator<Buffer> {
  for (let off = 0; off < data.length; off += MIB) {
    if (failAfter !== undefined && off >= failAfter) throw new Error('the dump died');
    yield data.subarray(off, off + MIB);
  }
}

const FAST_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 };

function retrying(storage: S3Storage, retries: RetryInfo[]): RetryingStorage {
  return new RetryingStorage(storage, { ...FAST_RETRY, onRetry: (r) => retries.push(r) });
}

it('part sizes grow so that 10,000 parts hold the largest S3 object (5 TiB), never above 5 GiB a part', () => {
  expect(partSize(16 * MIB, 1)).toBe(16 * MIB);
  expect(partSize(16 * MIB, 1000)).toBe(16 * MIB);
  expect(partSize(16 * MIB, 1001)).toBe(32 * MIB);
  expect(partSize(8 * MIB, 10_000)).toBe(8 * MIB * 512);
  // The smallest part size the config accepts (8 MiB) is the worst case.
  let total = 0;
  for (let n = 1; n <= 10_000; n++) {
    expect(partSize(8 * MIB, n)).toBeLessThanOrEqual(5 * 1024 * MIB);
    total += partSize(8 * MIB, n);
  }
  expect(total).toBeGreaterThan(5 * 1024 ** 4);
});

describe.each(S3_SERVERS)('S3 multipart uploads (%s server)', (kind) => {
  const storage = () => new S3Storage(s3Config(s3Prefix(), { endpoint: s3EndpointOf(kind) }));
  /** No upload is left open: the extended server lists them; the plain one cannot (and says so). */
  async function expectNoUploadOpen(s: S3Storage) {
    if (kind === 'extended') expect(await s.listTemporary('')).toEqual([]);
    else await expect(s.listTemporary('')).rejects.toBeInstanceOf(StorageUnsupportedError);
  }

  it('streams a large object in parts, reads it back equal, and leaves no upload open', async () => {
    const s = storage();
    const data = randomBytes(12 * MIB + 12345);
    expect((await s.put('t/big.dump.zst', body(data))).size).toBe(data.length);
    expect((await buffer(await s.get('t/big.dump.zst'))).equals(data)).toBe(true);
    expect(await s.stat('t/big.dump.zst')).toMatchObject({ size: data.length });
    await expectNoUploadOpen(s);
  });

  it('a body that fails mid-upload leaves no object and aborts the multipart upload', async () => {
    const s = storage();
    const data = randomBytes(12 * MIB);
    await expect(s.put('t/broken', body(data, 11 * MIB))).rejects.toThrow('the dump died');
    expect(await s.stat('t/broken')).toBeUndefined();
    expect(await s.list('')).toEqual([]);
    await expectNoUploadOpen(s);
  });

  it('ifAbsent refuses to replace an object, also for multipart uploads', async () => {
    const s = storage();
    await s.put('t/once', [Buffer.from('first')], { ifAbsent: true });
    await expect(s.put('t/once', [Buffer.from('second')], { ifAbsent: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    await expect(s.put('t/once', body(randomBytes(11 * MIB)), { ifAbsent: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    expect((await buffer(await s.get('t/once'))).toString()).toBe('first');
    expect((await s.list('')).map((o) => o.key)).toEqual(['t/once']);
    await expectNoUploadOpen(s);
  });
});

describe('S3 unfinished uploads (extended server: the plain one cannot list them)', () => {
  it('an unfinished upload is visible to listTemporary and removable with deleteTemporary', async () => {
    const s = new S3Storage(s3Config(s3Prefix()));
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    async function* held() {
      yield randomBytes(6 * MIB); // more than one 5 MiB part: the multipart upload has started
      await gate;
      throw new Error('crash');
    }
    const writing = s.put('t/shop-20260101T000000Z.dump.zst', held());
    let temps: Awaited<ReturnType<S3Storage['listTemporary']>> = [];
    for (let i = 0; i < 200 && temps.length === 0; i++) {
      temps = await s.listTemporary('t/');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(temps).toEqual([
      expect.objectContaining({ finalKey: 't/shop-20260101T000000Z.dump.zst', modified: expect.any(Date) }),
    ]);
    await s.deleteTemporary(temps[0]!.key);
    await s.deleteTemporary(temps[0]!.key); // idempotent
    expect(await s.listTemporary('t/')).toEqual([]);
    release();
    await expect(writing).rejects.toThrow('crash');
  });
});

describe('partial S3 services: optional features are found, warned about once, and done without', () => {
  /** Every key under `prefix`, straight from the service (S3Storage.list hides reserved names). */
  async function rawKeys(endpoint: string, prefix: string): Promise<string[]> {
    const client = new S3Client({
      region: S3_REGION,
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    });
    const res = await client.send(new ListObjectsV2Command({ Bucket: S3_BUCKET, Prefix: `${prefix}/` }));
    return (res.Contents ?? []).map((o) => o.Key!);
  }

  it.each([
    ['extended', { conditionalWrites: true, listTemporary: true }, 0],
    ['plain', { conditionalWrites: false, listTemporary: false }, 2],
  ] as const)(
    'the %s server: capabilities are probed once, leaving nothing behind',
    async (kind, expected, nWarnings) => {
      const prefix = s3Prefix();
      const warnings: string[] = [];
      const config = s3Config(prefix, { endpoint: s3EndpointOf(kind) });
      const s = new S3Storage(config, { onWarning: (m) => warnings.push(m) });
      expect(await s.capabilities()).toEqual(expected);
      // A second instance for the same destination (another target on the same bucket) asks nothing new.
      const again = new S3Storage(config, { onWarning: (m) => warnings.push(m) });
      expect(await again.capabilities()).toEqual(expected);
      // `put` says whether the service enforced ifAbsent, or it was only checked first.
      const put = await again.put('t/x', [Buffer.from('x')], { ifAbsent: true });
      expect(put.ifAbsentEnforced).toBe(expected.conditionalWrites);
      await again.listTemporary('t/').catch(() => []);
      expect(warnings).toHaveLength(nWarnings);
      expect(await rawKeys(s3EndpointOf(kind), prefix)).toEqual([`${prefix}/t/x`]);
    },
  );

  it('the plain server: the warnings say what is done without, and what to do', async () => {
    const warnings: string[] = [];
    const s = new S3Storage(s3Config(s3Prefix(), { endpoint: s3EndpointOf('plain') }), {
      onWarning: (m) => warnings.push(m),
    });
    await s.put('t/a', [Buffer.from('a')], { ifAbsent: true });
    const err = (await s.listTemporary('t/').catch((e: unknown) => e)) as StorageUnsupportedError;
    expect(err).toBeInstanceOf(StorageUnsupportedError);
    expect(err.exitCode).toBe(6);
    await expect(s.listTemporary('t/')).rejects.toBeInstanceOf(StorageUnsupportedError);
    expect(warnings).toEqual([
      expect.stringMatching(/does not enforce conditional writes \(If-None-Match: \*\).*best effort/),
      expect.stringMatching(
        /cannot list unfinished multipart uploads \(ListMultipartUploads\).*lifecycle rule AbortIncompleteMultipartUpload/,
      ),
    ]);
  });
});

describe('a conditional-write probe that the service refuses (access denied to its key)', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3EndpointOf('extended'));
  });
  afterAll(async () => {
    await proxy.stop();
  });

  const path = (url: string) => url.split('?')[0]!;

  it('writes still work: If-None-Match is sent and a HEAD checks first, with one warning', async () => {
    const prefix = s3Prefix();
    const warnings: string[] = [];
    proxy.setRule((req) => {
      if (req.method === 'PUT' && req.url.includes('.datasaver-probe-'))
        return { status: 403, code: 'AccessDenied' };
      // The HEAD before the write of an existing `t/hidden` says it is not there: only the
      // header can then refuse the write.
      if (req.method === 'HEAD' && path(req.url).endsWith('/t/hidden'))
        return { status: 404, code: 'NotFound' };
      return undefined;
    });
    const s = new S3Storage(s3Config(prefix, { endpoint: proxy.endpoint }), {
      retry: FAST_RETRY,
      onWarning: (m) => warnings.push(m),
    });
    const put = await s.put('t/x', [Buffer.from('x')], { ifAbsent: true });
    expect(put.ifAbsentEnforced).toBe(false);
    const head = proxy.log.findIndex((r) => r.method === 'HEAD' && path(r.url).endsWith('/t/x'));
    const write = proxy.log.findIndex((r) => r.method === 'PUT' && path(r.url).endsWith('/t/x'));
    expect(head).toBeGreaterThan(-1);
    expect(head).toBeLessThan(write);
    // The HEAD finds an existing object.
    await expect(s.put('t/x', [Buffer.from('y')], { ifAbsent: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    // When the HEAD misses it, the header refuses the write.
    await s.put('t/hidden', [Buffer.from('1')]);
    await expect(s.put('t/hidden', [Buffer.from('2')], { ifAbsent: true })).rejects.toBeInstanceOf(
      StorageConflictError,
    );
    expect(await buffer(await s.get('t/hidden'))).toEqual(Buffer.from('1'));
    expect(await buffer(await s.get('t/x'))).toEqual(Buffer.from('x'));
    expect(warnings).toEqual([
      expect.stringMatching(
        /could not probe whether the service enforces conditional writes \(If-None-Match: \*\): .*denied.*; datasaver sends the header and also checks/i,
      ),
    ]);
    expect(await s.capabilities()).toMatchObject({ conditionalWrites: false });
    // The refusal is permanent: probed once, not retried.
    expect(proxy.log.filter((r) => r.url.includes('.datasaver-probe-') && r.method === 'PUT')).toHaveLength(
      1,
    );
  });
});

describe('S3 permanent errors name bucket and endpoint, never the secret', () => {
  it('an unknown access key', async () => {
    const s = new S3Storage(
      s3Config(s3Prefix(), { accessKey: new Secret('NOT-A-KEY'), secretKey: new Secret('Sup3r-S3cret-Key') }),
    );
    const err = (await s.list('').catch((e: unknown) => e)) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err.transient).toBe(false);
    expect(err.message).toMatch(
      /access denied \(InvalidAccessKeyId\) to bucket datasaver-test at http:\/\/127\.0\.0\.1:\d+/,
    );
    expect(err.hint).toMatch(/DATASAVER_S3_ACCESS_KEY/);
    expect(`${err.message} ${err.hint}`).not.toContain('Sup3r-S3cret-Key');
  });

  it('a missing bucket', async () => {
    const s = new S3Storage(s3Config(s3Prefix(), { bucket: 'no-such-bucket' }));
    const err = (await s.put('t/x', [Buffer.from('x')]).catch((e: unknown) => e)) as StorageError;
    expect(err.message).toBe(`bucket no-such-bucket does not exist at ${s3Endpoint()}`);
    expect(err.transient).toBe(false);
  });
});

describe('S3 transient faults through a proxy', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy.stop();
  });

  function viaProxy(prefix: string) {
    const retries: RetryInfo[] = [];
    const inner = new S3Storage(s3Config(prefix, { endpoint: proxy.endpoint }), {
      retry: { ...FAST_RETRY, onRetry: (r) => retries.push(r) },
    });
    return { storage: retrying(inner, retries), retries };
  }

  it('503 and 429 on part uploads and a dropped connection are retried to success', async () => {
    const { storage, retries } = viaProxy(s3Prefix());
    let parts = 0;
    proxy.setRule((req) => {
      if (!isPartUpload(req)) return undefined;
      parts++;
      if (parts === 2) return { status: 503 };
      if (parts === 3) return { status: 429 };
      if (parts === 4) return { drop: true };
      return undefined;
    });
    const data = randomBytes(16 * MIB);
    try {
      await storage.put('t/flaky.dump.zst', body(data));
    } finally {
      proxy.setRule(() => undefined);
    }
    expect(retries.map((r) => r.operation)).toEqual([
      expect.stringMatching(/^upload part \d of t\/flaky.dump.zst$/),
      expect.stringMatching(/^upload part \d of t\/flaky.dump.zst$/),
      expect.stringMatching(/^upload part \d of t\/flaky.dump.zst$/),
    ]);
    expect((await buffer(await storage.get('t/flaky.dump.zst'))).equals(data)).toBe(true);
  });

  it('a download cut mid-body resumes from where it stopped', async () => {
    const { storage, retries } = viaProxy(s3Prefix());
    const data = randomBytes(3 * MIB);
    await storage.put('t/cut', [data]);
    let gets = 0;
    proxy.setRule((req) => (req.method === 'GET' && ++gets <= 2 ? { truncateAfter: 700_000 } : undefined));
    try {
      const read = await buffer(await storage.get('t/cut'));
      expect(read.equals(data)).toBe(true);
    } finally {
      proxy.setRule(() => undefined);
    }
    // Each resume starts where the bytes that arrived end (a reset may lose some of what the proxy sent).
    const offsets = retries
      .filter((r) => r.operation.startsWith('get t/cut from byte'))
      .map((r) => Number(r.operation.split(' ').at(-1)));
    expect(offsets).toHaveLength(2);
    expect(offsets[0]).toBeGreaterThan(0);
    expect(offsets[1]).toBeGreaterThan(offsets[0]!);
  });

  it('list and stat are retried after a 500', async () => {
    const { storage, retries } = viaProxy(s3Prefix());
    await storage.put('t/a', [Buffer.from('a')]);
    let n = 0;
    proxy.setRule((req) =>
      req.method === 'GET' && !req.url.includes('/t/') && ++n === 1
        ? { status: 500, code: 'InternalError' }
        : undefined,
    );
    try {
      expect((await storage.list('t/')).map((o) => o.key)).toEqual(['t/a']);
    } finally {
      proxy.setRule(() => undefined);
    }
    expect(retries).toHaveLength(1);
  });

  it('a part that keeps failing fails the upload cleanly: no object, the upload aborted', async () => {
    const prefix = s3Prefix();
    const { storage, retries } = viaProxy(prefix);
    proxy.setRule((req) =>
      isPartUpload(req) && /partNumber=2&/.test(`${req.url}&`) ? { status: 503 } : undefined,
    );
    try {
      const err = (await storage
        .put('t/doomed', body(randomBytes(12 * MIB)))
        .catch((e: unknown) => e)) as StorageError;
      expect(err).toBeInstanceOf(StorageError);
      expect(err.message).toMatch(/cannot upload part 2 of t\/doomed: ServiceUnavailable \(HTTP 503\)/);
    } finally {
      proxy.setRule(() => undefined);
    }
    expect(retries.filter((r) => r.operation === 'upload part 2 of t/doomed')).toHaveLength(
      FAST_RETRY.attempts - 1,
    );
    const direct = new S3Storage(s3Config(prefix));
    expect(await direct.stat('t/doomed')).toBeUndefined();
    expect(await direct.listTemporary('')).toEqual([]);
  });
});

describe('S3 upload verification: the stored object is checked before the upload counts', () => {
  it("an ETag is the MD5 of the object, or of the parts' MD5s joined with the part count", () => {
    const md5 = (b: Buffer) => createHash('md5').update(b).digest();
    const [a, b] = [randomBytes(100), randomBytes(50)];
    const whole = md5(Buffer.concat([a, b]));
    const composite = `${createHash('md5')
      .update(Buffer.concat([md5(a), md5(b)]))
      .digest('hex')}-2`;
    expect(etagMatches(`"${whole.toString('hex')}"`, whole, [])).toBe(true);
    expect(etagMatches(`"${whole.toString('hex').toUpperCase()}"`, whole, [md5(a), md5(b)])).toBe(true);
    expect(etagMatches(`"${composite}"`, whole, [md5(a), md5(b)])).toBe(true);
    expect(etagMatches(`"${composite}"`, whole, [md5(b), md5(a)])).toBe(false);
    expect(etagMatches(composite.replace(/-2$/, '-3'), whole, [md5(a), md5(b)])).toBe(false);
    expect(etagMatches('"kms-0123456789"', whole, [md5(a), md5(b)])).toBe(false);
  });

  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(s3Endpoint());
  });
  afterAll(async () => {
    await proxy.stop();
  });

  /** The request that publishes `key`: its single PUT, or the completion of its multipart upload. */
  const publishes = (key: string) => (req: ProxiedRequest) =>
    req.url.includes(key) && (isCompleteUpload(req) || (req.method === 'PUT' && !isPartUpload(req)));
  const reads = (key: string) => (req: ProxiedRequest) => req.method === 'GET' && req.url.includes(key);

  /** Uploads `size` random bytes under `faults`; returns the outcome and how often the object was read. */
  async function upload(
    verifyUpload: S3VerifyMode,
    size: number,
    faults: { opaque?: boolean; etag?: (data: Buffer) => string; corruptReads?: boolean } = {},
  ) {
    const prefix = s3Prefix();
    const key = `t/checked-${size}.dump.zst`;
    const storage = new S3Storage(s3Config(prefix, { endpoint: proxy.endpoint, verifyUpload }), {
      retry: FAST_RETRY,
    });
    const data = randomBytes(size);
    const from = proxy.log.length;
    proxy.setRule((req): Fault | undefined => {
      if (faults.opaque && publishes(key)(req)) return { rewrite: opaqueEtag };
      const etag = faults.etag?.(data);
      if (etag && publishes(key)(req)) {
        return { rewrite: (b) => Buffer.from(b.toString().replace(/<ETag>[^<]*</, `<ETag>"${etag}"<`)) };
      }
      if (faults.corruptReads && reads(key)(req)) return { rewrite: flipByte };
      return undefined;
    });
    const error = await storage
      .put(key, body(data))
      .then(() => undefined)
      .catch((e: unknown) => e)
      .finally(() => proxy.setRule(() => undefined));
    const readBacks = proxy.log.slice(from).filter(reads(key)).length;
    const direct = new S3Storage(s3Config(prefix));
    const stored = (await direct.stat(key)) ? await buffer(await direct.get(key)) : undefined;
    expect(await direct.listTemporary('')).toEqual([]);
    return { error, readBacks, stored, data };
  }

  const SIZES = [
    ['a single PUT', 1 * MIB],
    ['a multipart upload', 12 * MIB + 7],
  ] as const;

  it.each(SIZES)('etag: %s whose ETag is its MD5 is not downloaded again', async (_, size) => {
    const { error, readBacks, stored, data } = await upload('etag', size);
    expect(error).toBeUndefined();
    expect(readBacks).toBe(0);
    expect(stored?.equals(data)).toBe(true);
  });

  it("etag: a multipart upload whose ETag is the MD5 of its parts' MD5s (AWS) is not downloaded again", async () => {
    const md5 = (b: Buffer) => createHash('md5').update(b).digest();
    const aws = (data: Buffer) => {
      const parts = [0, 5, 10].map((m) => md5(data.subarray(m * MIB, (m + 5) * MIB)));
      return `${md5(Buffer.concat(parts)).toString('hex')}-3`;
    };
    const { error, readBacks, stored, data } = await upload('etag', 12 * MIB + 7, { etag: aws });
    expect(error).toBeUndefined();
    expect(readBacks).toBe(0);
    expect(stored?.equals(data)).toBe(true);
  });

  it('etag: an upload whose ETag is an MD5, but not that of what was sent, is read back and kept when equal', async () => {
    const wrong = () => '0123456789abcdef0123456789abcdef';
    const { error, readBacks, stored, data } = await upload('etag', 12 * MIB + 7, { etag: wrong });
    expect(error).toBeUndefined();
    expect(readBacks).toBe(1);
    expect(stored?.equals(data)).toBe(true);
  });

  it.each(SIZES)('%s whose answer was lost is found on the retry, read back and kept', async (_, size) => {
    const prefix = s3Prefix();
    const key = 't/lost-answer.dump.zst';
    const storage = new S3Storage(s3Config(prefix, { endpoint: proxy.endpoint }), { retry: FAST_RETRY });
    const data = randomBytes(size);
    let lost = 0;
    const from = proxy.log.length;
    proxy.setRule((req) => (publishes(key)(req) && ++lost === 1 ? { loseAnswer: true } : undefined));
    try {
      await storage.put(key, body(data), { ifAbsent: true });
    } finally {
      proxy.setRule(() => undefined);
    }
    // The retry met the object (already there, or the upload already completed) and adopted it.
    // (A retry may itself meet the connection the proxy cut, hence at least two.)
    expect(proxy.log.slice(from).filter(publishes(key)).length).toBeGreaterThanOrEqual(2);
    expect(proxy.log.slice(from).filter(reads(key))).toHaveLength(1);
    const direct = new S3Storage(s3Config(prefix));
    expect((await buffer(await direct.get(key))).equals(data)).toBe(true);
    expect(await direct.listTemporary('')).toEqual([]);
  });

  it.each(SIZES)('etag: %s whose ETag is no MD5 (SSE-KMS) is read back and kept', async (_, size) => {
    const { error, readBacks, stored, data } = await upload('etag', size, { opaque: true });
    expect(error).toBeUndefined();
    expect(readBacks).toBe(1);
    expect(stored?.equals(data)).toBe(true);
  });

  it.each(SIZES)('etag: %s that reads back different fails and is deleted', async (_, size) => {
    const { error, readBacks, stored } = await upload('etag', size, { opaque: true, corruptReads: true });
    expect(error).toBeInstanceOf(StorageError);
    expect((error as StorageError).message).toMatch(
      new RegExp(
        `checked-${size}\\.dump\\.zst does not match what was uploaded \\(${size} bytes, md5 [0-9a-f]{32}; sent ${size} bytes, md5 [0-9a-f]{32}\\)`,
      ),
    );
    expect(readBacks).toBe(1);
    expect(stored).toBeUndefined();
  });

  it('read-back downloads every upload, and one that differs fails and is deleted', async () => {
    const good = await upload('read-back', 12 * MIB);
    expect(good.error).toBeUndefined();
    expect(good.readBacks).toBe(1);
    const bad = await upload('read-back', 12 * MIB, { corruptReads: true });
    expect((bad.error as StorageError).message).toMatch(
      /does not match what was uploaded \(\d+ bytes, sha256 [0-9a-f]{64}; sent \d+ bytes, sha256 [0-9a-f]{64}\)/,
    );
    expect(bad.stored).toBeUndefined();
  });

  it('size checks the size only: no download, whatever the ETag', async () => {
    const { error, readBacks, stored, data } = await upload('size', 12 * MIB, { opaque: true });
    expect(error).toBeUndefined();
    expect(readBacks).toBe(0);
    expect(stored?.equals(data)).toBe(true);
  });
});
