/** An engine that dumps whatever the test gives it and reads any dump back as one table: for job tests. */
import { describeEngine, type EngineDescriptor } from '../../src/engines/descriptor.ts';
import type { DumpInspection, Engine, RestoreCapabilities } from '../../src/engines/engine.ts';
import { postgresDescriptor } from '../../src/engines/postgres/descriptor.ts';

/** What the fake engines of job tests can restore: over existing data, under another name, whole. */
export const fakeCapabilities: RestoreCapabilities = {
  overwrite: true,
  parallel: false,
  tables: false,
  destination: 'database',
  renames: true,
};

/** PostgreSQL's descriptor with the restore capabilities a test wants. */
export function fakeDescriptor(capabilities: RestoreCapabilities = fakeCapabilities): EngineDescriptor {
  return describeEngine({ ...postgresDescriptor, restore: () => capabilities });
}

export function fakeEngine(dump: () => AsyncIterable<Buffer>): Engine {
  return {
    descriptor: fakeDescriptor(),
    preflight: async () => ({ serverVersion: '15.18', toolVersion: 'pg_dump 15.18' }),
    facts: async () => ({ exact: false, tables: [{ name: 'public.t', rows: 3 }] }),
    dump: () => dump(),
    inspect: async (source): Promise<DumpInspection> => {
      for await (const _ of source) {
        // consume, as the contract requires
      }
      return { entries: [{ type: 'TABLE', schema: 'public', name: 't' }] };
    },
    restoreTargetState: async () => ({ description: 'x', exists: false, empty: true }),
    restore: async () => {},
    restoredFacts: async () => ({ exact: true, tables: [{ name: 'public.t', rows: 3 }] }),
    listDatabases: async () => [],
    dropDatabase: async () => {},
  };
}
