import { describe, expect, it } from 'vitest';
import { cleanSafeOrder, parseRestoreList } from '../../src/engines/postgres/list.ts';

/** Entry lines only, as `DumpEntry` ids: the order pg_restore restores (and reversed, drops) them in. */
function ids(list: string): string[] {
  return list.split('\n').flatMap((l) => /^(\d+);/.exec(l)?.[1] ?? []);
}

const partitioned = `;
; Archive created at 2026-12-07 18:00:00 UTC
214; 1259 16385 TABLE public m postgres
215; 1259 16390 TABLE public m1 postgres
216; 1259 16395 TABLE public m2 postgres
3244; 0 0 TABLE ATTACH public m1 postgres
3432; 0 16395 TABLE DATA public m2 postgres
3252; 2606 16389 CONSTRAINT public m m_pkey postgres
3255; 2606 16394 CONSTRAINT public m1 m1_pkey postgres
3264; 2606 16413 CONSTRAINT public m2 m2_pkey postgres
3267; 2606 16426 CONSTRAINT public parent parent_pkey postgres
3253; 1259 16416 INDEX public m_v_idx postgres
3256; 1259 16417 INDEX public a_m1_v postgres
3274; 0 0 INDEX ATTACH public m1_pkey postgres
3275; 0 0 INDEX ATTACH public a_m1_v postgres
3280; 0 0 INDEX ATTACH public m2_pkey postgres
3283; 2606 16438 FK CONSTRAINT public ref ref_mid_fkey postgres
3437; 0 16477 MATERIALIZED VIEW DATA public m_mat postgres
`;

describe('the TOC order for --clean', () => {
  it('puts attached partition constraints and indexes before every parent, so they are dropped after it', () => {
    const out = cleanSafeOrder(partitioned);
    expect(ids(out)).toEqual([
      '214',
      '215',
      '216',
      '3244',
      '3432',
      '3255',
      '3264',
      '3256', // attached to a parent: created first, dropped last
      '3252',
      '3267',
      '3253',
      '3274',
      '3275',
      '3280',
      '3283',
      '3437',
    ]);
    // Reordered, never selected: the same entries, header comments included.
    expect(out.split('\n').sort()).toEqual(partitioned.split('\n').sort());
  });

  it('leaves a list without partitioned keys as it is', () => {
    const plain =
      '214; 1259 16385 TABLE public t postgres\n3252; 2606 16389 CONSTRAINT public t t_pkey postgres\n';
    expect(cleanSafeOrder(plain)).toBe(plain);
  });

  it('matches attached names in their own schema only, and names with spaces', () => {
    const list = [
      '3252; 2606 1 CONSTRAINT a p p_pkey postgres',
      '3255; 2606 2 CONSTRAINT b my t my key postgres',
      '3256; 2606 3 CONSTRAINT a q my key postgres',
      '3274; 0 0 INDEX ATTACH b my key postgres',
    ].join('\n');
    expect(ids(cleanSafeOrder(list))).toEqual(['3255', '3252', '3256', '3274']);
  });

  it('reads the ATTACH entries as their own types', () => {
    expect(
      parseRestoreList(
        '3274; 0 0 INDEX ATTACH public m1_pkey postgres\n3244; 0 0 TABLE ATTACH public m1 postgres',
      ),
    ).toEqual([
      { type: 'INDEX ATTACH', schema: 'public', name: 'm1_pkey' },
      { type: 'TABLE ATTACH', schema: 'public', name: 'm1' },
    ]);
  });
});
