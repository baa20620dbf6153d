/**
 * scripts/test.sh closes with scripts/test-report.ts: under CI a skipped or todo test fails the run and
 * is named, so a green CI always means every test ran.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summary } from '../../scripts/test-report.ts';
import { tempDir } from '../support/pg.ts';

const root = '/repo';
const report = (...statuses: string[]) => ({
  numPassedTests: statuses.filter((s) => s === 'passed').length,
  numFailedTests: statuses.filter((s) => s === 'failed').length,
  testResults: [
    {
      name: `${root}/test/unit/a.test.ts`,
      assertionResults: statuses.map((status, i) => ({ fullName: `suite case ${i}`, status })),
    },
  ],
});

describe('the closing test report', () => {
  it('under CI, names every skipped and todo test and fails', () => {
    const out = summary(report('passed', 'skipped', 'todo', 'pending'), true, root);
    expect(out.fail).toBe(true);
    expect(out.lines[0]).toBe('1 passed, 0 failed, 3 skipped');
    expect(out.lines.slice(2)).toEqual([
      '  - test/unit/a.test.ts > suite case 1 (skipped)',
      '  - test/unit/a.test.ts > suite case 2 (todo)',
      '  - test/unit/a.test.ts > suite case 3 (pending)',
    ]);
  });

  it('outside CI, skips are counted but do not fail; a clean CI run passes', () => {
    expect(summary(report('passed', 'skipped'), false, root)).toEqual({
      lines: ['1 passed, 0 failed, 1 skipped'],
      fail: false,
    });
    expect(summary(report('passed', 'failed'), true, root)).toEqual({
      lines: ['1 passed, 1 failed'],
      fail: false,
    });
  });

  it('the script exits 1 under CI=true with a skipped test, 0 without CI', async () => {
    const file = join(await tempDir(), 'report.json');
    writeFileSync(file, JSON.stringify(report('passed', 'skipped')));
    const run = (ci: string) => {
      try {
        const stdout = execFileSync(process.execPath, ['scripts/test-report.ts', file], {
          env: { ...process.env, CI: ci },
          encoding: 'utf8',
        });
        return { code: 0, stdout };
      } catch (err) {
        const e = err as { status: number; stdout: string };
        return { code: e.status, stdout: e.stdout };
      }
    };
    const ci = run('true');
    expect(ci.code).toBe(1);
    expect(ci.stdout).toContain('suite case 1 (skipped)');
    expect(run('').code).toBe(0);
  });
});
