/**
 * An S3-compatible server for tests and benchmarks: s3rver (a real HTTP S3 implementation on the local
 * filesystem), started on loopback in its own process so its CPU and memory are not datasaver's.
 *
 * s3rver lacks three S3 features that datasaver relies on, so this adds them in front of its routes, as
 * AWS S3 and MinIO implement them:
 * - AbortMultipartUpload (`DELETE /bucket/key?uploadId=`),
 * - ListMultipartUploads (`GET /bucket?uploads`),
 * - conditional writes: `If-None-Match: *` on PutObject and CompleteMultipartUpload fails with 412.
 *
 * With `--plain` it is s3rver unmodified, as a partial S3-compatible service: ListMultipartUploads answers
 * 501 NotImplemented, an abort 405 MethodNotAllowed, and `If-None-Match: *` is ignored (a second PutObject
 * silently replaces the first).
 *
 * Both run with node's `--openssl-legacy-provider` (s3-server.ts): s3rver's ListObjectsV2 pagination
 * encrypts its continuation token with DES, which OpenSSL 3 has only there.
 *
 * Usage: node --openssl-legacy-provider s3-server-main.ts [--plain] <directory> <bucket>...; prints
 * `{"port": N}` on stdout once listening.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface Ctx {
  req: NodeJS.ReadableStream;
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
  status: number;
  body: unknown;
  type: string;
}
interface Store {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
}
interface S3rverApp {
  middleware: ((ctx: Ctx, next: () => Promise<void>) => Promise<void>)[];
  store: Store;
  run(): Promise<{ port: number }>;
}

const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as new (options: Record<string, unknown>) => S3rverApp;

const args = process.argv.slice(2);
const plain = args[0] === '--plain';
const [directory, ...buckets] = plain ? args.slice(1) : args;
if (!directory) throw new Error('usage: s3-server-main.ts [--plain] <directory> <bucket>...');

const app = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.map((name) => ({ name })),
});

function xmlError(ctx: Ctx, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const extensions = async (ctx: Ctx, next: () => Promise<void>): Promise<void> => {
  const [, bucket, ...rest] = ctx.path.split('/');
  const key = decodeURIComponent(rest.join('/'));
  if (!bucket) return next();
  const uploads = app.store.getResourcePath(bucket, undefined, 'uploads');

  if (ctx.method === 'DELETE' && key && ctx.query.uploadId !== undefined) {
    // A part may be landing in the directory at this moment (S3 lets an abort race an upload).
    await rm(join(uploads, ctx.query.uploadId), {
      recursive: true,
      force: true,
      maxRetries: 10,
      retryDelay: 20,
    });
    ctx.status = 204;
    return;
  }
  if (ctx.method === 'GET' && !key && ctx.query.uploads !== undefined) {
    const prefix = ctx.query.prefix ?? '';
    const entries = await readdir(uploads).catch(() => [] as string[]);
    const items: string[] = [];
    for (const id of entries) {
      const k = await readFile(join(uploads, id, 'key'), 'utf8').catch(() => undefined);
      if (k === undefined || !k.startsWith(prefix)) continue;
      const initiated = (await stat(join(uploads, id))).birthtime.toISOString();
      items.push(
        `<Upload><Key>${escapeXml(k)}</Key><UploadId>${id}</UploadId><Initiated>${initiated}</Initiated></Upload>`,
      );
    }
    ctx.status = 200;
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${bucket}</Bucket><Prefix>${escapeXml(prefix)}</Prefix><IsTruncated>false</IsTruncated>${items.join('')}</ListMultipartUploadsResult>`;
    return;
  }
  const writes =
    (ctx.method === 'PUT' && key && Object.keys(ctx.query).every((q) => q === 'x-id')) ||
    (ctx.method === 'POST' && key && ctx.query.uploadId !== undefined);
  if (writes && ctx.headers['if-none-match'] === '*') {
    let target = key;
    if (ctx.method === 'POST') {
      target = await readFile(join(uploads, ctx.query.uploadId!, 'key'), 'utf8').catch(() => key);
    }
    if (existsSync(app.store.getResourcePath(bucket, target, 'object'))) {
      // Read the body the client is sending, as S3 does: an answer before it would leave the client's
      // keep-alive connection broken for its next request.
      for await (const _ of ctx.req);
      return xmlError(
        ctx,
        412,
        'PreconditionFailed',
        'At least one of the pre-conditions you specified did not hold',
      );
    }
  }
  return next();
};
if (!plain) app.middleware.unshift(extensions);

const address = await app.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
