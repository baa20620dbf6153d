/**
 * pg_restore's table of contents (`pg_restore --list`): read for what a backup holds, and reordered so
 * that `--clean` can drop what a restore recreates.
 */
import type { DumpEntry } from '../engine.ts';

/** Multi-word TOC entry types, longest first, so `TABLE DATA` is not read as `TABLE`. */
const MULTI_WORD_TYPES = [
  'MATERIALIZED VIEW DATA',
  'TEXT SEARCH CONFIGURATION',
  'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH PARSER',
  'TEXT SEARCH TEMPLATE',
  'FOREIGN DATA WRAPPER',
  'SEQUENCE OWNED BY',
  'MATERIALIZED VIEW',
  'PUBLICATION TABLE',
  'ROW SECURITY',
  'OPERATOR CLASS',
  'OPERATOR FAMILY',
  'EVENT TRIGGER',
  'FOREIGN TABLE',
  'ACCESS METHOD',
  'BLOB METADATA',
  'SEQUENCE SET',
  'USER MAPPING',
  'FK CONSTRAINT',
  'INDEX ATTACH',
  'TABLE ATTACH',
  'DEFAULT ACL',
  'TABLE DATA',
  'LARGE OBJECT',
];

/** One `pg_restore --list` line such as `214; 1259 16385 TABLE public t postgres`; comments give undefined. */
export function parseRestoreLine(line: string): DumpEntry | undefined {
  const m = /^\d+;\s+\d+\s+\d+\s+(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const rest = m[1]!;
  const type = MULTI_WORD_TYPES.find((t) => rest.startsWith(`${t} `)) ?? rest.split(' ')[0]!;
  const words = rest.slice(type.length).trim().split(' ');
  const schema = words[0] ?? '-';
  // The last word is the owner (absent for some entries); the name sits in between.
  const name = words.length > 2 ? words.slice(1, -1).join(' ') : (words[1] ?? '');
  return { type, schema: schema === '-' ? '' : schema, name };
}

export function parseRestoreList(text: string): DumpEntry[] {
  return text.split('\n').flatMap((line) => parseRestoreLine(line) ?? []);
}

/**
 * The TOC, reordered for `pg_restore --clean`, which drops entries in the reverse of the order it
 * creates them. pg_dump lists a partition's primary key, unique constraint or index before or after its
 * partitioned parent's by name alone, and attaches it to the parent's in a later INDEX ATTACH entry; so
 * `--clean` may drop a partition's attached constraint first, which PostgreSQL refuses ("cannot drop
 * inherited constraint") and which fails the whole restore. Here every attached constraint and index
 * moves ahead of the first constraint or index in the list: it is then created before its parent's (as
 * PostgreSQL allows: `ON ONLY` leaves the parent's index invalid until all its partitions' are attached,
 * which the INDEX ATTACH entries still do afterwards) and dropped after it, when dropping the parent's
 * has already taken the partitions' with it and the `--if-exists` drop finds nothing. Nothing else moves,
 * and nothing is added or left out, so the restore recreates exactly what the dump holds and drops only
 * objects it recreates. Keeping pg_restore's own `--clean` (rather than datasaver writing DROP statements)
 * keeps the drops in the same single transaction as the restore, and its drops never CASCADE: an object
 * outside the dump that depends on one it recreates fails the restore, which then changes nothing.
 */
export function cleanSafeOrder(list: string): string {
  const lines = list.split('\n');
  const entries = lines.map(parseRestoreLine);
  const attached = new Set(
    entries.flatMap((e) => (e?.type === 'INDEX ATTACH' ? [`${e.schema}\n${e.name}`] : [])),
  );
  const isIndexLike = (e: DumpEntry | undefined) => e?.type === 'CONSTRAINT' || e?.type === 'INDEX';
  const isAttached = (e: DumpEntry | undefined): boolean => {
    if (!isIndexLike(e)) return false;
    if (e!.type === 'INDEX') return attached.has(`${e!.schema}\n${e!.name}`);
    // A CONSTRAINT's name is "<table> <constraint>"; names hold no newline, so the key is unambiguous.
    const name = e!.name;
    for (let i = name.indexOf(' '); i !== -1; i = name.indexOf(' ', i + 1)) {
      if (attached.has(`${e!.schema}\n${name.slice(i + 1)}`)) return true;
    }
    return false;
  };
  const moved = lines.filter((_, i) => isAttached(entries[i]));
  if (moved.length === 0) return list;
  const kept = lines.filter((_, i) => !isAttached(entries[i]));
  // No line before the first constraint or index moves: it keeps its place in `kept`.
  kept.splice(entries.findIndex(isIndexLike), 0, ...moved);
  return kept.join('\n');
}
