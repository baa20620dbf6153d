/** Which manifests' dates can be believed: golden cases of the one rule every reader uses. */
import { describe, expect, it } from 'vitest';
import { manifestDistrust, retentionTime } from '../../src/catalog/manifest-trust.ts';

const NOW = new Date('2026-06-15T12:00:00.000Z');

/** A manifest's times: the id is made from `id`, the dates as given. */
const times = (id: string, createdAt: string, finishedAt = createdAt) => ({
  id: `shop-${id}`,
  createdAt,
  finishedAt,
});

describe('manifestDistrust', () => {
  const cases: [string, ReturnType<typeof times>, RegExp | undefined][] = [
    [
      'a backup as the job writes it',
      times('20260615T115900Z', '2026-06-15T11:59:00.734Z', '2026-06-15T11:59:42.100Z'),
      undefined,
    ],
    ['a sequence-suffixed id', times('20260615T115900Z-2', '2026-06-15T11:59:00.999Z'), undefined],
    ['one taken years ago', times('20200101T020000Z', '2020-01-01T02:00:00.000Z'), undefined],
    [
      'created 4 minutes ahead (clock drift between hosts)',
      times('20260615T120400Z', '2026-06-15T12:04:00.000Z'),
      undefined,
    ],
    [
      'finished exactly at the tolerance',
      times('20260615T120000Z', '2026-06-15T12:00:00.000Z', '2026-06-15T12:05:00.000Z'),
      undefined,
    ],
    [
      'created 6 minutes ahead',
      times('20260615T120600Z', '2026-06-15T12:06:00.000Z'),
      /^created in the future \(2026-06-15T12:06:00.000Z; the time here is 2026-06-15T12:00:00.000Z\)$/,
    ],
    ['created next year', times('20270101T000000Z', '2027-01-01T00:00:00.000Z'), /created in the future/],
    [
      'finished in the future',
      times('20260615T115900Z', '2026-06-15T11:59:00.000Z', '2026-06-16T00:00:00.000Z'),
      /^finished in the future/,
    ],
    [
      'created a second before its id',
      times('20260615T115900Z', '2026-06-15T11:58:59.000Z'),
      /^created at 2026-06-15T11:58:59.000Z, but its id says 2026-06-15T11:59:00.000Z$/,
    ],
    [
      'created two seconds after its id',
      times('20260615T115900Z', '2026-06-15T11:59:02.000Z'),
      /but its id says/,
    ],
    [
      'an old id with a recent date (to win `latest`)',
      times('20200101T000000Z', '2026-06-15T11:59:00.000Z'),
      /but its id says 2020-01-01/,
    ],
    [
      'finished before it was created',
      times('20260615T115900Z', '2026-06-15T11:59:00.000Z', '2026-06-15T11:00:00.000Z'),
      /^finished \(2026-06-15T11:00:00.000Z\) before it was created/,
    ],
    [
      'an id without a time',
      { id: 'not-an-id', createdAt: '2026-06-15T11:59:00.000Z', finishedAt: '2026-06-15T11:59:00.000Z' },
      /its id holds no time/,
    ],
    ['unreadable times', times('20260615T115900Z', 'soon'), /its times cannot be read/],
  ];
  for (const [name, m, expected] of cases) {
    it(name, () => {
      const reason = manifestDistrust(m, NOW);
      if (expected === undefined) expect(reason).toBeUndefined();
      else expect(reason).toMatch(expected);
    });
  }

  it('judges against the clock it is given: a future backup becomes ordinary once its time has come', () => {
    const m = times('20270101T000000Z', '2027-01-01T00:00:00.000Z');
    expect(manifestDistrust(m, NOW)).toMatch(/future/);
    expect(manifestDistrust(m, new Date('2027-01-01T00:00:01Z'))).toBeUndefined();
  });
});

describe('retentionTime', () => {
  it('places an inconsistent manifest at the earlier of its two claims', () => {
    expect(retentionTime(times('20200101T000000Z', '2027-01-01T00:00:00.000Z')).toISOString()).toBe(
      '2020-01-01T00:00:00.000Z',
    );
    expect(retentionTime(times('20270101T000000Z', '2020-01-01T00:00:00.000Z')).toISOString()).toBe(
      '2020-01-01T00:00:00.000Z',
    );
  });
});
