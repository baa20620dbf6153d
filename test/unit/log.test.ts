import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/util/log.ts';

function capture(isTTY: boolean) {
  const lines: string[] = [];
  return { lines, out: { isTTY, write: (t: string) => lines.push(t) } };
}

describe('daemon log', () => {
  it('writes one JSON object per line, with the level as a word, and honours the level', () => {
    const { lines, out } = capture(false);
    const log = createLogger({ level: 'info', format: 'auto', out });
    log.debug('hidden');
    log.info({ target: 'shop', backupId: 'shop-1', durationMs: 12 }, 'backup succeeded');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      msg: 'backup succeeded',
      target: 'shop',
      backupId: 'shop-1',
      durationMs: 12,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('is readable on a terminal, and hides credentials in URLs either way', () => {
    for (const isTTY of [true, false]) {
      const { lines, out } = capture(isTTY);
      createLogger({ level: 'info', format: 'auto', out }).error(
        { target: 'shop', error: 'connect to postgres://app:s3cret@db:5432/shop failed' },
        'backup failed',
      );
      expect(lines[0]).not.toContain('s3cret');
      if (isTTY)
        expect(lines[0]).toMatch(
          /^\S+ ERROR backup failed target=shop error="connect to postgres:\/\/app:\*\*\*@db/,
        );
    }
  });
});
