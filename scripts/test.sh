#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (Node, npm ci, build, PostgreSQL), typecheck, lint, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh

echo "[test] typecheck" >&2
npm run -s typecheck
echo "[test] lint" >&2
npm run -s lint

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# One plain closing line that any CI can read; with CI=true, skipped or todo tests fail the run.
report=0
node scripts/test-report.ts "$results" || report=$?
# Vitest also fails a run on errors thrown outside any test; say so, since the counts above look clean then.
[ "$status" -eq 0 ] || echo "[test] vitest exited with $status: see the failures or unhandled errors above" >&2
[ "$status" -ne 0 ] || status=$report
exit "$status"
