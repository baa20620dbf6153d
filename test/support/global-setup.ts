/**
 * One throwaway PostgreSQL server for the whole suite; each test file creates its own databases (with
 * unique names) and storage directories in it, so files can run in parallel.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type PostgresServer, startPostgres } from './postgres-server.ts';

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
  }
}

let server: PostgresServer | undefined;
let scratch: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  scratch = await mkdtemp(join(tmpdir(), 'datasaver-tests-'));
  project.provide('scratchDir', scratch);
  server = await startPostgres();
  project.provide('postgres', {
    port: server.port,
    password: server.password,
    binDir: server.binDir,
    version: server.version,
  });
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}
