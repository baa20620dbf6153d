import { describeEngine } from '../descriptor.ts';

/** PostgreSQL: one database per target, pg_dump's custom archive or a plain SQL script. */
export const postgresDescriptor = describeEngine({
  name: 'postgres',
  label: 'PostgreSQL',
  schemes: [{ scheme: 'postgres:' }, { scheme: 'postgresql:' }],
  urlExample: 'postgres://user:password@host:5432/db',
  formats: [
    { name: 'custom', extension: 'dump' },
    { name: 'plain', extension: 'sql' },
  ],
  database: 'name',
  settings: { sslmode: true, tls: false, schemaOnly: true },
  // A restore's spool; a drill's throwaway server (its postmaster, `postgres -D <dir>/pg/data`).
  tempDirTools: ['pg_restore', 'psql', 'postgres'],
  tablesNamedByDatabase: false,
  inUseSideFiles: [],
  defaultTargetName: (database) => database || undefined,
  // A plain script cannot drop what it creates first, nor run in parallel, nor pick tables.
  restore: (format) => {
    const custom = format === 'custom';
    return { overwrite: custom, parallel: custom, tables: custom, destination: 'database', renames: true };
  },
});
