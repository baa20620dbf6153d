/** The engine conformance suite on PostgreSQL (the suite's server). */
import { offlineTarget } from '../../src/config/target.ts';
import type { TargetConfig } from '../../src/config/types.ts';
import { Secret } from '../../src/util/secret.ts';
import { engineConformance } from '../support/engine-conformance.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, server, uniqueName } from '../support/pg.ts';

function target(database: string, password = server().password): TargetConfig {
  const s = server();
  const t = offlineTarget(database, undefined, 'postgres');
  return {
    ...t,
    connection: {
      ...t.connection,
      host: s.host,
      port: s.port,
      user: s.user,
      password: new Secret(password),
      database,
    },
  };
}

engineConformance('postgres', {
  seed: async () => {
    const db = uniqueName('conf');
    await createRichDatabase(db);
    return target(db);
  },
  snapshot: (t, where) => comparableDump(where ?? t.connection.database!),
  restoreDestination: async (source) => ({ targetDatabase: uniqueName('conf_restored'), target: source }),
  extension: 'dump',
  facts: [{ name: 'sales.customers', rows: 200 }],
  wrongPassword: (t) => target(t.connection.database!, 'not-the-password'),
  serverDown: (t) => ({ ...t, connection: { ...t.connection, port: 1 } }),
  tool: { name: 'pg_dump', package: /postgresql-client/ },
});
