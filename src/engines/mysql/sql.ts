/** SQL text for the MySQL client: quoting, the schemas of the server itself, batch output. */

/** Schemas of the server itself: never counted as user data, never dropped by a restore. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/** An SQL string literal. */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** An SQL identifier, quoted. */
export function ident(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** Rows of `mysql --batch --skip-column-names`: tab-separated, with \t \n \\ \0 escaped. */
export function parseBatchOutput(text: string): string[][] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) =>
    line
      .split('\t')
      .map((f) =>
        f.replace(/\\([\\nt0])/g, (_, c: string) =>
          c === 'n' ? '\n' : c === 't' ? '\t' : c === '0' ? '\0' : '\\',
        ),
      ),
  );
}

/** Counts tables, views, routines and events in the schemas matching `schemaCondition`. */
export function objectCountSql(schemaCondition: string): string {
  return `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA ${schemaCondition})
    + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA ${schemaCondition})
    + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA ${schemaCondition})`;
}

/** A table by its database and name. */
export interface TableRef {
  schema: string;
  table: string;
}

/** Tables counted per query: one statement of moderate length. */
export const COUNT_BATCH = 50;

/** One query counting the rows of each of `tables` exactly: rows `(index in tables, count)`. */
export function countRowsSql(tables: readonly TableRef[]): string {
  return tables
    .map((t, j) => `SELECT ${j}, COUNT(*) FROM ${ident(t.schema)}.${ident(t.table)}`)
    .join(' UNION ALL ');
}
