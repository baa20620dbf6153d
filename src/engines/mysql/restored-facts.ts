/**
 * The facts of a restored copy, read from the server with the definitions the dump counter uses
 * (dump-facts.ts), so that a restore drill can compare the two item by item: every base table (a view is
 * not one, a table without rows is listed with 0) with an exact `COUNT(*)`, and the databases, base
 * tables, views, routines (procedures and functions), triggers and events. MariaDB sequences and
 * Oracle-mode packages are left out, as the counter leaves them out.
 */
import { RestoreError } from '../../util/errors.ts';
import type { DatabaseFacts } from '../engine.ts';
import { OBJECT_KINDS, tableFacts } from './dump-facts.ts';
import type { MysqlRunner } from './runner.ts';
import { COUNT_BATCH, countRowsSql, literal, SYSTEM_SCHEMAS, type TableRef } from './sql.ts';
import type { ResolvedTool } from './tools.ts';

/**
 * Engines whose rows the dump tools leave out (a MERGE table's rows are those of its underlying tables,
 * the others' live elsewhere): their script holds none, so neither does the count. mysqldump skips the
 * first three, mariadb-dump all of them (its `--no-data-med`, on by default).
 */
const DATA_ELSEWHERE_ENGINES = ['MRG_MYISAM', 'MRG_ISAM', 'FEDERATED', 'CONNECT', 'OQGRAPH', 'SPIDER', 'VP'];

/**
 * One row per counted object: kind (as the facts name it), database, name, storage engine (tables only).
 * `schemaCondition` narrows the rows on the server; information_schema compares names without regard to
 * case, so the caller keeps only the exact names.
 */
function catalogSql(schemaCondition: string): string {
  return `SELECT 'databases', SCHEMA_NAME, '', '' FROM information_schema.SCHEMATA WHERE SCHEMA_NAME ${schemaCondition}
    UNION ALL SELECT IF(TABLE_TYPE = 'VIEW', 'views', 'tables'), TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE, '')
      FROM information_schema.TABLES
      WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED', 'VIEW') AND TABLE_SCHEMA ${schemaCondition}
    UNION ALL SELECT 'routines', ROUTINE_SCHEMA, ROUTINE_NAME, '' FROM information_schema.ROUTINES
      WHERE ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') AND ROUTINE_SCHEMA ${schemaCondition}
    UNION ALL SELECT 'triggers', TRIGGER_SCHEMA, TRIGGER_NAME, '' FROM information_schema.TRIGGERS
      WHERE TRIGGER_SCHEMA ${schemaCondition}
    UNION ALL SELECT 'events', EVENT_SCHEMA, EVENT_NAME, '' FROM information_schema.EVENTS
      WHERE EVENT_SCHEMA ${schemaCondition}`;
}

/**
 * Reads the facts of `databases` (undefined: every user database, the system schemas excluded as the
 * backup excludes them) on the runner's server. A database that does not exist counts for nothing.
 * `exact: true`. Throws ConnectionError when the server cannot be reached, RestoreError when a query
 * fails (a table dropped while it is counted included); an abort rejects with the signal's reason.
 */
export async function readRestoredFacts(
  run: MysqlRunner,
  client: ResolvedTool,
  databases: readonly string[] | undefined,
  signal: AbortSignal | undefined,
): Promise<DatabaseFacts> {
  const options = { signal, failAs: RestoreError };
  const condition = databases
    ? `IN (${databases.map(literal).join(', ')})`
    : `NOT IN (${SYSTEM_SCHEMAS.map(literal).join(', ')})`;
  const inScope = databases
    ? (schema: string) => databases.includes(schema)
    : (schema: string) => !SYSTEM_SCHEMAS.includes(schema.toLowerCase());
  const counts = new Map<string, number>(OBJECT_KINDS.map((kind) => [kind, 0]));
  const rows = new Map<string, number>();
  const toCount: TableRef[] = [];
  for (const [kind, schema, name, engine] of await run.query(client, catalogSql(condition), options)) {
    if (!inScope(schema!)) continue;
    counts.set(kind!, (counts.get(kind!) ?? 0) + 1);
    if (kind !== 'tables') continue;
    rows.set(`${schema}.${name}`, 0);
    if (!DATA_ELSEWHERE_ENGINES.includes(engine!.toUpperCase()))
      toCount.push({ schema: schema!, table: name! });
  }
  for (let i = 0; i < toCount.length; i += COUNT_BATCH) {
    const batch = toCount.slice(i, i + COUNT_BATCH);
    for (const [j, n] of await run.query(client, countRowsSql(batch), options)) {
      const t = batch[Number(j)]!;
      rows.set(`${t.schema}.${t.table}`, Number(n));
    }
  }
  return {
    exact: true,
    tables: tableFacts(rows),
    objects: OBJECT_KINDS.map((kind) => ({ kind, count: counts.get(kind)! })),
  };
}
