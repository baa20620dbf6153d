import { describeEngine } from '../descriptor.ts';

/** Redis: the whole server as one RDB snapshot. */
export const redisDescriptor = describeEngine({
  name: 'redis',
  label: 'Redis',
  schemes: [{ scheme: 'redis:' }, { scheme: 'rediss:', tls: true }],
  urlExample: 'redis://:password@host:6379',
  formats: [{ name: 'rdb', extension: 'rdb' }],
  database: 'server',
  settings: { sslmode: false, tls: true, schemaOnly: false },
  // The restore's loader and a drill's throwaway server: a private redis-server on a socket in the temp dir.
  tempDirTools: ['redis-server'],
  tablesNamedByDatabase: false,
  inUseSideFiles: [],
  defaultTargetName: () => 'redis',
  restore: () => ({ overwrite: true, parallel: false, tables: false, destination: 'server', renames: false }),
});
