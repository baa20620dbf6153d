#!/usr/bin/env bash
# Idempotent set-up for datasaver's demo and test suite on a fresh Debian machine.
#   - Node >= 22.15 (zstd in node:zlib): installed from the npm registry into a private prefix when the
#     machine's Node is older.
#   - npm ci (only when package-lock.json changed since the last install), then the TypeScript build.
#   - PostgreSQL server binaries (Debian `postgresql`), MariaDB (`mariadb-server`, `mariadb-client`) and
#     Redis (`redis-server`, `redis-tools`) when they are missing; the demo and the tests start their own
#     throwaway instances, so no system service is used (SQLite needs nothing: node:sqlite).
# Source it (`. scripts/setup.sh`) to get the right Node on PATH in the calling shell.
set -euo pipefail

DATASAVER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${DATASAVER_TOOLS_DIR:-$HOME/.cache/datasaver}"
NODE_PREFIX="$TOOLS_DIR/node24"

log() { printf '[setup] %s\n' "$*" >&2; }

node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=15)?0:1)'
}

if [ -x "$NODE_PREFIX/bin/node" ]; then
  export PATH="$NODE_PREFIX/bin:$PATH"
fi
if ! node_ok; then
  log "Node $(node --version 2>/dev/null || echo none) is older than 22.15; installing Node 24 into $NODE_PREFIX"
  command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
  mkdir -p "$NODE_PREFIX"
  npm install --global --prefix "$NODE_PREFIX" --no-audit --no-fund node@24 >&2
  export PATH="$NODE_PREFIX/bin:$PATH"
  node_ok || { log "could not install Node >= 22.15"; exit 1; }
fi
log "node $(node --version)"

APT_UPDATED=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "missing packages: $*; run as root or install them: apt-get install $*"
    exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_server_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}
if ! pg_server_bindir >/dev/null || ! command -v pg_dump >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
fi
log "postgresql server binaries in $(pg_server_bindir)"
# The crash tests find pg_dump's pid with pgrep.
command -v pgrep >/dev/null 2>&1 || apt_install procps
# The daemon's port test runs it under a low open-file limit.
command -v prlimit >/dev/null 2>&1 || apt_install util-linux
# The other engines' servers and client tools: the tests start throwaway MariaDB and Redis servers.
missing=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || missing+=(mariadb-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
# The encryption tests check that the stock age tool opens what datasaver encrypts, and the reverse.
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing+=(age)
[ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"

cd "$DATASAVER_ROOT"
stamp="node_modules/.datasaver-lock-stamp"
want="$(node --version) $(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2
  echo "$want" >"$stamp"
fi
log "build"
npm run -s build >&2
