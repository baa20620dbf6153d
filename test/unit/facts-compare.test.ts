/** The drill's rule: recorded facts against a restored copy's, every difference named. */
import { describe, expect, it } from 'vitest';
import type { DatabaseFacts } from '../../src/engines/engine.ts';
import { compareFacts } from '../../src/jobs/facts-compare.ts';

const recorded: DatabaseFacts = {
  exact: true,
  tables: [
    { name: 'public.orders', rows: 120 },
    { name: 'public.items', rows: 7 },
  ],
  objects: [
    { kind: 'tables', count: 2 },
    { kind: 'views', count: 1 },
  ],
  sequences: [
    { name: 'public.orders_id_seq', value: '120' },
    { name: 'public.unused_seq', value: null },
  ],
};

describe('compareFacts', () => {
  it('finds nothing when the copy holds what the backup recorded', () => {
    const copy = structuredClone(recorded);
    copy.tables.reverse();
    expect(compareFacts(recorded, copy)).toEqual({ compared: 6, differences: [], expired: [] });
  });

  it('names every difference: rows, a missing and an extra table, objects and sequences', () => {
    const copy: DatabaseFacts = {
      exact: true,
      tables: [
        { name: 'public.orders', rows: 119 },
        { name: 'public.stray', rows: 1 },
      ],
      objects: [{ kind: 'tables', count: 2 }],
      sequences: [
        { name: 'public.orders_id_seq', value: '120' },
        { name: 'public.unused_seq', value: '1' },
      ],
    };
    expect(compareFacts(recorded, copy)).toEqual({
      compared: 7,
      differences: [
        { item: 'table public.items', expected: '7', found: 'absent' },
        { item: 'table public.orders', expected: '120', found: '119' },
        { item: 'table public.stray', expected: 'absent', found: '1' },
        { item: 'objects views', expected: '1', found: 'absent' },
        { item: 'sequence public.unused_seq', expected: 'not started', found: '1' },
      ],
      expired: [],
    });
  });

  it('compares only the kinds of fact the backup recorded', () => {
    const tablesOnly: DatabaseFacts = { exact: true, tables: [{ name: 'db0', rows: 3 }] };
    const copy: DatabaseFacts = { ...tablesOnly, objects: [{ kind: 'string', count: 3 }] };
    expect(compareFacts(tablesOnly, copy)).toEqual({ compared: 1, differences: [], expired: [] });
  });

  it('takes counts lower by no more than the expiring keys as expired, never sequences or higher counts', () => {
    const keys: DatabaseFacts = {
      exact: true,
      tables: [
        { name: 'db0', rows: 10 },
        { name: 'db1', rows: 2 },
      ],
      objects: [{ kind: 'expiring keys', count: 2 }],
      sequences: [{ name: 's', value: '5' }],
    };
    const copy: DatabaseFacts = {
      exact: true,
      tables: [{ name: 'db0', rows: 11 }],
      objects: [],
      sequences: [{ name: 's', value: '4' }],
    };
    const result = compareFacts(keys, copy, { mayExpire: 2 });
    expect(result.expired.map((d) => d.item)).toEqual(['table db1', 'objects expiring keys']);
    expect(result.differences.map((d) => d.item)).toEqual(['table db0', 'sequence s']);
  });

  it('refuses estimates: they would report differences that are no fault of the backup', () => {
    expect(() => compareFacts({ ...recorded, exact: false }, recorded)).toThrow(TypeError);
  });
});
