#!/usr/bin/env bash
# The demo on a fresh machine: set-up, then a throwaway PostgreSQL with sample data is backed up, listed,
# verified and restored into a new database, and the two are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
exec node scripts/demo.ts
