import { describeEngine } from '../descriptor.ts';

/** SQLite: one database file, copied as a database file (no external tool). */
export const sqliteDescriptor = describeEngine({
  name: 'sqlite',
  label: 'SQLite',
  schemes: [{ scheme: 'sqlite:' }],
  urlExample: 'sqlite:///path/to/file.db',
  formats: [{ name: 'sqlite', extension: 'sqlite' }],
  database: 'file',
  settings: { sslmode: false, tls: false, schemaOnly: false },
  tempDirTools: [],
  // A WAL or a hot journal beside the file would be applied to a file written in its place.
  tablesNamedByDatabase: false,
  inUseSideFiles: ['-wal', '-journal'],
  // The file's base name without its extension: /var/lib/app/app.db -> app.
  defaultTargetName: (database) =>
    database ? database.replace(/^.*\//, '').replace(/\.[^.]*$/, '') : undefined,
  restore: () => ({ overwrite: true, parallel: false, tables: false, destination: 'file', renames: true }),
});
