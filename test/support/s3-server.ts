/** Starts a test S3 server (s3-server-main.ts) in a child process on loopback, and stops it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { S3StorageConfig } from '../../src/storage/config.ts';
import { Secret } from '../../src/util/secret.ts';

export const S3_ACCESS_KEY = 'S3RVER';
export const S3_SECRET_KEY = 'S3RVER';
export const S3_REGION = 'us-east-1';
export const S3_BUCKET = 'datasaver-test';

export interface S3Server {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('./s3-server-main.ts', import.meta.url));

/** With `plain`, s3rver unmodified: no ListMultipartUploads, no abort, `If-None-Match` ignored. */
export async function startS3Server(
  directory: string,
  buckets: string[],
  options: { plain?: boolean } = {},
): Promise<S3Server> {
  const args = [...(options.plain ? ['--plain'] : []), directory, ...buckets];
  // s3rver makes ListObjectsV2's continuation token with DES, which OpenSSL 3 keeps in its legacy
  // provider: without it every listing past one page of 1,000 keys fails with an internal error.
  const child: ChildProcess = spawn(process.execPath, ['--openssl-legacy-provider', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`S3 server exited with ${code} before listening`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Storage settings for the test S3 server at `endpoint`, under `prefix` of the test bucket. */
export function s3StorageConfig(endpoint: string, prefix: string): S3StorageConfig {
  return {
    backend: 's3',
    bucket: S3_BUCKET,
    prefix,
    endpoint,
    region: S3_REGION,
    forcePathStyle: true,
    accessKey: new Secret(S3_ACCESS_KEY),
    secretKey: new Secret(S3_SECRET_KEY),
    sse: undefined,
    sseKmsKeyId: undefined,
    storageClass: undefined,
    partSizeMb: 5,
    uploadConcurrency: 4,
    verifyUpload: 'etag',
  };
}
