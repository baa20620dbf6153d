import { describeEngine, namesWholeServer } from '../descriptor.ts';

/**
 * PostgreSQL: one database per target, or the whole server (a set: every database and the globals),
 * pg_dump's custom archive or a plain SQL script per database.
 */
export const postgresDescriptor = describeEngine({
  name: 'postgres',
  label: 'PostgreSQL',
  schemes: [{ scheme: 'postgres:' }, { scheme: 'postgresql:' }],
  urlExample: 'postgres://user:password@host:5432/db',
  formats: [
    { name: 'custom', extension: 'dump' },
    { name: 'plain', extension: 'sql' },
  ],
  database: 'name-or-server',
  settings: { sslmode: true, tls: false, schemaOnly: true },
  // A restore's spool; a drill's throwaway server (its postmaster, `postgres -D <dir>/pg/data`).
  tempDirTools: ['pg_restore', 'psql', 'postgres'],
  tablesNamedByDatabase: false,
  inUseSideFiles: [],
  // A whole-server target is named after the engine, as a MySQL backup of all databases is.
  defaultTargetName: (database) => (namesWholeServer('name-or-server', database) ? 'postgres' : database),
  // A plain script cannot drop what it creates first, nor run in parallel, nor pick tables.
  restore: (format) => {
    const custom = format === 'custom';
    return { overwrite: custom, parallel: custom, tables: custom, destination: 'database', renames: true };
  },
});
