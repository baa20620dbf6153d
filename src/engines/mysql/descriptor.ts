import { describeEngine } from '../descriptor.ts';

/** MySQL and MariaDB: one database, several or all of a server, as the dump tool's SQL script. */
export const mysqlDescriptor = describeEngine({
  name: 'mysql',
  label: 'MySQL/MariaDB',
  schemes: [{ scheme: 'mysql:' }, { scheme: 'mariadb:' }],
  urlExample: 'mysql://user:password@host:3306/db',
  formats: [{ name: 'sql', extension: 'mysql.sql' }],
  database: 'names',
  settings: { sslmode: false, tls: true, schemaOnly: true },
  // The clients reading an option file; a drill's throwaway server (`--datadir=<dir>/...`).
  tempDirTools: ['mariadb', 'mysql', 'mariadb-dump', 'mysqldump', 'mariadbd', 'mysqld'],
  tablesNamedByDatabase: true,
  inUseSideFiles: [],
  // A backup of the whole server is named after the engine.
  defaultTargetName: (database) => database?.split(',')[0]?.trim() || 'mysql',
  restore: (_format, database) => {
    // A backup of several or all databases is a script that names them: it restores under no other name.
    const renames = (database ?? '').split(',').filter((d) => d.trim()).length === 1;
    // Dumps carry DROP TABLE IF EXISTS before every table, so restoring over existing objects replaces them.
    return { overwrite: true, parallel: false, tables: false, destination: 'database', renames };
  },
});
