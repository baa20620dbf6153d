/**
 * One throwaway PostgreSQL server and two S3-compatible servers for the whole suite (s3rver with the
 * features datasaver uses added in front, and s3rver unmodified as a partial service); each test file
 * creates its own databases, storage directories and S3 prefixes (unique names), so files run in parallel.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type PostgresServer, startPostgres } from './postgres-server.ts';
import { S3_BUCKET, type S3Server, startS3Server } from './s3-server.ts';

export interface ServerInfo {
  port: number;
  password: string;
  binDir: string;
  version: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: ServerInfo;
    /** Root of every temp dir the tests make (storage dirs, fake tools); removed after the run. */
    scratchDir: string;
    /** The S3-compatible server with every feature datasaver uses (bucket S3_BUCKET exists). */
    s3Endpoint: string;
    /** s3rver unmodified: no ListMultipartUploads, `If-None-Match` ignored (bucket S3_BUCKET exists). */
    s3PlainEndpoint: string;
  }
}

let server: PostgresServer | undefined;
let s3: S3Server | undefined;
let s3Plain: S3Server | undefined;
let scratch: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  scratch = await mkdtemp(join(tmpdir(), 'datasaver-tests-'));
  project.provide('scratchDir', scratch);
  [server, s3, s3Plain] = await Promise.all([
    startPostgres(),
    startS3Server(join(scratch, 's3'), [S3_BUCKET]),
    startS3Server(join(scratch, 's3-plain'), [S3_BUCKET], { plain: true }),
  ]);
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('s3PlainEndpoint', s3Plain.endpoint);
  project.provide('postgres', {
    port: server.port,
    password: server.password,
    binDir: server.binDir,
    version: server.version,
  });
}

export async function teardown(): Promise<void> {
  await Promise.all([server?.stop(), s3?.stop(), s3Plain?.stop()]);
  if (scratch) await rm(scratch, { recursive: true, force: true });
}
