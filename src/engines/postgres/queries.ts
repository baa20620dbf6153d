/** The catalog queries of the PostgreSQL engine that are too long to read inline. */

/**
 * Row counts per table, from planner statistics. The comments in PostgresEngine#facts say why
 * reltuples, and n_live_tup only for tables never analysed.
 */
export const TABLE_ROWS_SQL = `
        SELECT n.nspname AS schema, c.relname AS name,
               (CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE COALESCE(s.n_live_tup, 0) END)::bigint AS rows
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
         WHERE c.relkind IN ('r', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
         ORDER BY 1, 2`;

/**
 * How many user objects a database holds (relations, functions, schemas, types, collations, text search
 * configurations, publications, foreign servers, event triggers, large objects): 0 means empty.
 */
export const USER_OBJECTS_SQL = `
        SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%')
             + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
             + (SELECT count(*) FROM pg_namespace
                 WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%')
             + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                   AND t.typrelid = 0 AND t.typcategory <> 'A')
             + (SELECT count(*) FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
             + (SELECT count(*) FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                 WHERE n.nspname <> 'pg_catalog')
             + (SELECT count(*) FROM pg_publication) + (SELECT count(*) FROM pg_foreign_server)
             + (SELECT count(*) FROM pg_event_trigger)
             + (SELECT count(*) FROM pg_largeobject_metadata) AS n`;
