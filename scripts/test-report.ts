/**
 * Reads vitest's JSON report and prints one closing line any CI can read. Under CI (`CI=true`) a skipped
 * or todo test fails the run and is named: a suite that passes because its tests did not run proves
 * nothing. Usage: node scripts/test-report.ts <report.json>; exits 1 when CI must fail.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  testResults: { name: string; assertionResults: { fullName: string; status: string }[] }[];
}

/** The tests that did not run, as `file > full name`. */
export function notRun(report: Report, root: string): string[] {
  return report.testResults.flatMap((file) =>
    file.assertionResults
      .filter((t) => t.status !== 'passed' && t.status !== 'failed')
      .map(
        (t) =>
          `${file.name.startsWith(`${root}/`) ? file.name.slice(root.length + 1) : file.name} > ${t.fullName} (${t.status})`,
      ),
  );
}

/** The closing line, and whether the run must fail because of skipped tests. */
export function summary(report: Report, ci: boolean, root: string): { lines: string[]; fail: boolean } {
  const skipped = notRun(report, root);
  const counts = `${report.numPassedTests} passed, ${report.numFailedTests} failed${skipped.length ? `, ${skipped.length} skipped` : ''}`;
  if (!ci || skipped.length === 0) return { lines: [counts], fail: false };
  return {
    lines: [
      counts,
      `[test] CI=true and ${skipped.length} test(s) did not run; CI passes only when every test runs:`,
      ...skipped.map((s) => `  - ${s}`),
    ],
    fail: true,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let report: Report;
  try {
    report = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Report;
  } catch {
    // vitest died before writing its report: nothing can be counted as passed.
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const ci = ['true', '1'].includes((process.env.CI ?? '').toLowerCase());
  const { lines, fail } = summary(report, ci, process.cwd());
  console.log(lines.join('\n'));
  process.exitCode = fail ? 1 : 0;
}
