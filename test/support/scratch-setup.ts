/**
 * The unit project's global setup: only a scratch root for temp dirs (`tempDir`), no servers, so the tests
 * that need none run in seconds. The integration project's global-setup.ts provides the servers too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

let scratch: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  scratch = await mkdtemp(join(tmpdir(), 'datasaver-unit-'));
  project.provide('scratchDir', scratch);
}

export async function teardown(): Promise<void> {
  if (scratch) await rm(scratch, { recursive: true, force: true });
}
