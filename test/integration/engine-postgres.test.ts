/** The engine conformance suite on PostgreSQL (the suite's server). */
import { engineConformance } from '../support/engine-conformance.ts';
import { createRichDatabase } from '../support/fixtures.ts';
import { comparableDump, pgTarget, uniqueName } from '../support/pg.ts';

engineConformance('postgres', {
  seed: async () => {
    const db = uniqueName('conf');
    await createRichDatabase(db);
    return pgTarget(db);
  },
  snapshot: (t, where) => comparableDump(where ?? t.connection.database!),
  restoreDestination: async (source) => ({ targetDatabase: uniqueName('conf_restored'), target: source }),
  extension: 'dump',
  facts: [{ name: 'sales.customers', rows: 200 }],
  wrongPassword: (t) => pgTarget(t.connection.database!, 'not-the-password'),
  serverDown: (t) => ({ ...t, connection: { ...t.connection, port: 1 } }),
  tool: { name: 'pg_dump', package: /postgresql-client/ },
});
