/** Text from storage made safe to print: what a terminal would act on is shown, never obeyed. */
import { describe, expect, it } from 'vitest';
import { isPrintable, printable } from '../../src/util/printable.ts';

describe('printable', () => {
  const cases: [string, string, string][] = [
    ['plain text and unicode stay', 'shop-20260101T000000Z données 📦', 'shop-20260101T000000Z données 📦'],
    ['a CSI sequence', 'a\u001b[2Jb', 'a\\x1b[2Jb'],
    ['an OSC title with BEL', '\u001b]0;pwned\u0007', '\\x1b]0;pwned\\x07'],
    ['an 8-bit CSI', 'x\u009b31m', 'x\\x9b31m'],
    ['a carriage return that would overwrite the line', 'ok\rFAILED', 'ok\\x0dFAILED'],
    ['a newline that would start a fake row', 'a\nb\tc', 'a\\x0ab\\x09c'],
    ['DEL', 'a\u007f', 'a\\x7f'],
    ['bidi override and isolate', 'a\u202eb\u2066c', 'a\\u202eb\\u2066c'],
    ['zero-width space and byte order mark', 'a\u200bb\ufeff', 'a\\u200bb\\ufeff'],
  ];
  for (const [name, input, shown] of cases) {
    it(name, () => {
      expect(printable(input)).toBe(shown);
      expect(isPrintable(input)).toBe(input === shown);
    });
  }

  it('keeps newlines and tabs of a multi-line message, and nothing else', () => {
    expect(printable('line 1\n\tline 2\u001b[0m', { multiline: true })).toBe('line 1\n\tline 2\\x1b[0m');
  });
});
