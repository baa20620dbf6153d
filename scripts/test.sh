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
# One plain closing line that any CI can read.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$results" || echo "0 passed, 1 failed"
# Vitest also fails a run on errors thrown outside any test; say so, since the counts above look clean then.
[ "$status" -eq 0 ] || echo "[test] vitest exited with $status: see the failures or unhandled errors above" >&2
exit "$status"
