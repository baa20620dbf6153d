/**
 * One throwaway PostgreSQL server for the whole suite; each test file creates its own databases (with
 * unique names) and storage directories in it, so files can run in parallel.
 */
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
  }
}

let server: PostgresServer | undefined;

export async function setup(project: TestProject): Promise<void> {
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
}
