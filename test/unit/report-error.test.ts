/**
 * How the command line prints an error: text that came from storage or a server can sit in an error's
 * message, and with DATASAVER_DEBUG its stack repeats that message; both are printed with every
 * terminal control escaped, newlines kept.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reportError } from '../../src/cli/program.ts';
import { isPrintable } from '../../src/util/printable.ts';

function context(env: NodeJS.ProcessEnv) {
  let stderr = '';
  const out = {
    write: (s: string) => {
      stderr += s;
    },
  };
  const ctx = {
    env,
    stdout: out,
    stderr: out,
    stdin: Readable.from([]),
    signal: new AbortController().signal,
  };
  return { ctx, printed: () => stderr };
}

describe('reportError', () => {
  it('escapes terminal controls in the message and, with DATASAVER_DEBUG, in the stack', () => {
    const { ctx, printed } = context({ DATASAVER_DEBUG: '1' });
    reportError(new Error('storage said \u001b[2J\u001b]0;pwned\u0007 no'), ctx);
    const text = printed();
    expect(text.split('\n').every((line) => isPrintable(line))).toBe(true);
    expect(text).toContain('Error: storage said \\x1b[2J\\x1b]0;pwned\\x07 no\n');
    // The stack is printed (its frames on their own lines) and repeats the message, escaped too.
    expect(text.match(/storage said \\x1b\[2J/g)).toHaveLength(2);
    expect(text).toMatch(/\n {4}at /);
  });
});
