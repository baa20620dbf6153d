/**
 * Exact facts of what a pg_dump holds: read in the snapshot the dump itself reads. The engine opens a
 * repeatable-read transaction, exports its snapshot (`pg_export_snapshot()`) for `pg_dump --snapshot`,
 * and counts in that same transaction while the dump runs, so the counts are those of the rows the dump
 * writes, whatever commits meanwhile. A drill reads the same facts from the restored copy.
 *
 * What is counted is what pg_dump writes: the rows of every ordinary table (its own rows, `FROM ONLY`:
 * an inheritance or partition parent's children are tables of their own), and the number of user
 * schemas, tables, views, materialized views, sequences and functions. Objects that belong to an
 * extension are left out: the dump recreates them with `CREATE EXTENSION`, not one by one.
 *
 * Sequence values are not read in the snapshot: they are not transactional, so such a read may differ
 * from the one pg_dump made. They are read from the dump itself as it streams past (the setval
 * statements of its `SEQUENCE SET` entries: plain-sequences.ts, archive-sequences.ts), for the
 * sequences the snapshot lists (an extension's own are left out, as in the counts). A dump that cannot
 * be read for them records none (`sequences` absent), and the other facts stay exact.
 */
import type pg from 'pg';
import type { DatabaseFacts } from '../engine.ts';
import { ArchiveSequenceReader } from './archive-sequences.ts';
import { PlainSequenceReader } from './plain-sequences.ts';
import { type SequenceValue, sortByName } from './setval.ts';

/** The user's relations and functions, not an extension's, outside the system schemas. */
const USER_NAMESPACE = `n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'`;
const NOT_EXTENSION_MEMBER = (catalog: string, oid: string) => `NOT EXISTS (
          SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/** The user's relations of one kind (`r` ordinary tables, `S` sequences), quoted and by name. */
const relationsSql = (relkind: string) => `
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS ident, n.nspname AS schema,
               c.relname AS name
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = '${relkind}' AND ${USER_NAMESPACE} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}
         ORDER BY 2, 3`;
const TABLES_SQL = relationsSql('r');
const SEQUENCES_SQL = relationsSql('S');
type Relation = { ident: string; schema: string; name: string };

const OBJECTS_SQL = `
        SELECT (SELECT count(*) FROM pg_namespace n
                 WHERE ${USER_NAMESPACE} AND ${NOT_EXTENSION_MEMBER('pg_namespace', 'n.oid')}) AS schemas,
               count(*) FILTER (WHERE c.relkind IN ('r', 'p')) AS tables,
               count(*) FILTER (WHERE c.relkind = 'v') AS views,
               count(*) FILTER (WHERE c.relkind = 'm') AS matviews,
               count(*) FILTER (WHERE c.relkind = 'S') AS sequences,
               (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE ${USER_NAMESPACE} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}) AS functions
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE ${USER_NAMESPACE} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`;

/**
 * Counts the facts on `c`, which must be in the transaction whose snapshot the dump reads. Throws what
 * the queries throw (a table the user cannot read fails here as it fails pg_dump).
 */
export async function countInSnapshot(c: pg.Client): Promise<DatabaseFacts> {
  // As pg_dump does: a row-level security policy must not hide rows from the count.
  await c.query('SET LOCAL row_security = off');
  const tables: DatabaseFacts['tables'] = [];
  const list = await c.query<Relation>(TABLES_SQL);
  for (const t of list.rows) {
    const res = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${t.ident}`);
    tables.push({ name: `${t.schema}.${t.name}`, rows: Number(res.rows[0]?.n ?? 0) });
  }
  const counts = (await c.query<Record<string, string>>(OBJECTS_SQL)).rows[0] ?? {};
  const objects = [
    ['schemas', counts.schemas],
    ['tables', counts.tables],
    ['views', counts.views],
    ['materialized views', counts.matviews],
    ['sequences', counts.sequences],
    ['functions', counts.functions],
  ].map(([kind, n]) => ({ kind: kind as string, count: Number(n ?? 0) }));
  return { exact: true, tables, objects };
}

/**
 * The facts of a database as it is now (a restored copy), counted in a snapshot of their own, with each
 * sequence's value as it reads now.
 */
export async function countInTransaction(c: pg.Client): Promise<DatabaseFacts> {
  await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const facts = await countInSnapshot(c);
  const sequences: SequenceValue[] = [];
  for (const s of (await c.query<Relation>(SEQUENCES_SQL)).rows) {
    const res = await c.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value, is_called FROM ${s.ident}`,
    );
    const row = res.rows[0];
    sequences.push({ name: `${s.schema}.${s.name}`, value: row?.is_called ? row.last_value : null });
  }
  await c.query('COMMIT');
  return { ...facts, sequences: sortByName(sequences) };
}

/** What reads a dump's sequence values as its bytes pass (see setval.ts). */
export interface SequenceReader {
  /** The next bytes of the dump. Never throws: a dump it cannot read yields no values. */
  push(chunk: Buffer): void;
  /** After the last bytes: the values, by name, or undefined when the dump could not be read for them. */
  values(): SequenceValue[] | undefined;
}

/** The reader for a dump of `format` (`plain`, else a custom archive). */
export function sequenceReader(format: string): SequenceReader {
  return format === 'plain' ? new PlainSequenceReader() : new ArchiveSequenceReader();
}

/**
 * The dump (`run`, given the extra pg_dump arguments) in a snapshot exported on a connection of its own
 * (`withClient`), with the facts counted in that same snapshot while pg_dump runs, and the sequence
 * values read from the dump's bytes by `reader`; `onFacts` hears of them once the dump ended cleanly.
 * The exporting transaction stays open until then: the snapshot is valid only while it is, and pg_dump
 * takes it as it starts. A connection that fails before the export fails the dump; a count that fails
 * fails it after its last bytes.
 */
export async function* dumpInSnapshot(
  run: (extra: string[]) => AsyncIterable<Buffer>,
  onFacts: (facts: DatabaseFacts) => void,
  withClient: <T>(fn: (c: pg.Client) => Promise<T>) => Promise<T>,
  reader: SequenceReader,
): AsyncGenerator<Buffer> {
  const exported = Promise.withResolvers<string>();
  const dumped = Promise.withResolvers<boolean>();
  const counted = withClient(async (c) => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const res = await c.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
    exported.resolve(res.rows[0]!.id);
    const facts = await countInSnapshot(c);
    const sequences = (await c.query<Relation>(SEQUENCES_SQL)).rows.map((s) => `${s.schema}.${s.name}`);
    const clean = await dumped.promise;
    await c.query('COMMIT');
    return clean ? { facts, sequences } : undefined;
  });
  counted.catch((err: unknown) => exported.reject(err));
  let clean = false;
  try {
    for await (const chunk of run([`--snapshot=${await exported.promise}`])) {
      reader.push(chunk);
      yield chunk;
    }
    clean = true;
  } finally {
    dumped.resolve(clean);
    if (!clean) await counted.catch(() => {});
  }
  const result = await counted;
  if (!result) return;
  const sequences = dumpedSequences(reader.values(), result.sequences);
  onFacts(sequences ? { ...result.facts, sequences } : result.facts);
}

/**
 * The values read from a dump, of the sequences the snapshot lists: an extension's own sequence, whose
 * value pg_dump writes when the extension marks it as configuration, is left out as the counts leave
 * it out. A listed sequence the dump holds no value of stays absent: a drill then reports it.
 */
export function dumpedSequences(
  values: SequenceValue[] | undefined,
  listed: string[],
): SequenceValue[] | undefined {
  const names = new Set(listed);
  return values?.filter((v) => names.has(v.name));
}
