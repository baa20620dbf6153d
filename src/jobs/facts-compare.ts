/**
 * The rule a restore drill judges by: the exact facts a backup recorded of its dump, against the same
 * facts read from a restored copy, item by item. Pure. Every item is named the way a user finds it
 * (`table public.orders`, `objects views`, `sequence public.orders_id_seq`), and every difference is
 * reported, not only the first.
 */
import type { DatabaseFacts } from '../engines/engine.ts';

export interface FactDifference {
  /** What differs: `table <name>`, `objects <kind>`, `sequence <name>`. */
  item: string;
  /** As recorded at backup time; `absent` when the backup did not hold the item. */
  expected: string;
  /** As read from the restored copy; `absent` when the copy does not hold it. */
  found: string;
}

export interface FactComparison {
  /** Items compared (the union of both sides). */
  compared: number;
  differences: FactDifference[];
  /** Counts found lower than recorded within `mayExpire`: keys that expired, no fault of the backup. */
  expired: FactDifference[];
}

export interface CompareOptions {
  /**
   * How many of the recorded keys had a time to live (Redis): those may expire between the backup and
   * the drill, so a count found lower by at most this many is no difference. 0 (default): exact.
   */
  mayExpire?: number | undefined;
}

/**
 * Compares recorded facts with those of a restored copy. Only exact facts can be compared: throws
 * TypeError when `expected` is not exact (estimates would report differences that are no fault of the
 * backup). A kind of fact the backup did not record (`objects`, `sequences` absent) is not compared.
 */
export function compareFacts(
  expected: DatabaseFacts,
  found: DatabaseFacts,
  options: CompareOptions = {},
): FactComparison {
  if (!expected.exact) throw new TypeError('only exact facts can be compared with a restored copy');
  const sides = [
    compareItems(
      'table',
      expected.tables.map((t) => [t.name, String(t.rows)]),
      found.tables.map((t) => [t.name, String(t.rows)]),
    ),
  ];
  if (expected.objects) {
    sides.push(
      compareItems(
        'objects',
        expected.objects.map((o) => [o.kind, String(o.count)]),
        (found.objects ?? []).map((o) => [o.kind, String(o.count)]),
      ),
    );
  }
  if (expected.sequences) {
    sides.push(
      compareItems(
        'sequence',
        expected.sequences.map((s) => [s.name, s.value ?? 'not started']),
        (found.sequences ?? []).map((s) => [s.name, s.value ?? 'not started']),
      ),
    );
  }
  const all = sides.flatMap((s) => s.differences);
  const mayExpire = options.mayExpire ?? 0;
  const expired = all.filter((d) => expiredWithin(d, mayExpire));
  return {
    compared: sides.reduce((n, s) => n + s.compared, 0),
    differences: all.filter((d) => !expired.includes(d)),
    expired,
  };
}

/** A count found lower than recorded by at most `mayExpire` (a key space, or a kind of key, emptied). */
function expiredWithin(d: FactDifference, mayExpire: number): boolean {
  if (mayExpire <= 0 || d.item.startsWith('sequence ')) return false;
  const expected = Number(d.expected);
  const found = d.found === 'absent' ? 0 : Number(d.found);
  return (
    Number.isInteger(expected) && Number.isInteger(found) && found < expected && expected - found <= mayExpire
  );
}

function compareItems(
  label: string,
  expected: [string, string][],
  found: [string, string][],
): Omit<FactComparison, 'expired'> {
  const want = new Map(expected);
  const have = new Map(found);
  const names = [...new Set([...want.keys(), ...have.keys()])].sort();
  const differences = names
    .map((name) => ({
      item: `${label} ${name}`,
      expected: want.get(name) ?? 'absent',
      found: have.get(name) ?? 'absent',
    }))
    .filter((d) => d.expected !== d.found);
  return { compared: names.length, differences };
}
