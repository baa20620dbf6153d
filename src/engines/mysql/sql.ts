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
