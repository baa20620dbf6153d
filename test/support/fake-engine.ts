/** An engine that dumps whatever the test gives it and reads any dump back as one table: for job tests. */
import type { DumpInspection, Engine, RestoreCapabilities } from '../../src/engines/engine.ts';

/** What the fake engines of job tests can restore: over existing data, under another name, whole. */
export const fakeCapabilities: RestoreCapabilities = {
  overwrite: true,
  parallel: false,
  tables: false,
  destination: 'database',
  renames: true,
};

export function fakeEngine(dump: () => AsyncIterable<Buffer>): Engine {
  return {
    name: 'postgres',
    formats: ['custom', 'plain'],
    extension: (f) => (f === 'custom' ? 'dump' : 'sql'),
    restoreCapabilities: () => fakeCapabilities,
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
  };
}
