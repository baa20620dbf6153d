/** An engine that dumps whatever the test gives it and reads any dump back as one table: for job tests. */
import { describeEngine, type EngineDescriptor } from '../../src/engines/descriptor.ts';
import type {
  DumpInspection,
  Engine,
  GlobalsReport,
  RestoreCapabilities,
  ServerMembers,
  ServerSet,
} from '../../src/engines/engine.ts';
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

/** What a fake whole-server engine holds: its globals script and each database's dump. */
export interface FakeServer {
  globals: () => AsyncIterable<Buffer>;
  databases: Record<string, () => AsyncIterable<Buffer>>;
  /** Databases the backup user may not read. */
  unreadable?: string[];
  rolePasswords?: boolean;
}

/**
 * An engine for a target that names no database: its backups are sets of `server`'s databases, each
 * dumped by a fake engine; globals restore into nothing and report one created role.
 */
export function fakeServerEngine(server: FakeServer): Engine & { serverSet: ServerSet } {
  const base = fakeEngine(() => {
    throw new Error('a whole-server target dumps through its set');
  });
  const serverSet: ServerSet = {
    wholeServer: true,
    globalsFormat: 'globals',
    globalsExtension: 'sql',
    members: async (exclude): Promise<ServerMembers> => {
      const unreadable = server.unreadable ?? [];
      const names = Object.keys(server.databases).sort();
      return {
        databases: names.filter((n) => !exclude.includes(n) && !unreadable.includes(n)),
        excluded: names.filter((n) => exclude.includes(n)),
        unreadable: unreadable.map((database) => ({ database, reason: 'no CONNECT privilege' })),
        rolePasswords: server.rolePasswords ?? true,
      };
    },
    databaseExists: async (name) => name in server.databases || (server.unreadable ?? []).includes(name),
    database: (name) => {
      const dump = server.databases[name];
      if (!dump) throw new Error(`no database ${name}`);
      return fakeEngine(dump);
    },
    dumpGlobals: () => server.globals(),
    inspectGlobals: async (source) => {
      for await (const _ of source) {
        // consume, as the contract requires
      }
      return { entries: [{ type: 'ROLE', schema: '', name: 'app' }] };
    },
    restoreGlobals: async (source): Promise<GlobalsReport> => {
      for await (const _ of source) {
        // consume, as the contract requires
      }
      return { created: ['app'], existing: [], tablespacesCreated: [], tablespacesExisting: [], skipped: [] };
    },
  };
  return { ...base, serverSet };
}
