#!/usr/bin/env bash
# `npm run bench` (issue 6): builds (incremental), then runs tools/bench/main.ts, which starts its own
# stack on the local Postgres and NATS, measures and cleans up. Arguments go to the bench
# (e.g. `npm run bench -- --duration 20`); see the README, section "Benchmark". BENCH_NO_BUILD=1 skips the build.
# When scenario 5 runs (it does unless --scenarios leaves it out), the peer libraries it compares
# against are installed first into tools/bench/peers/node_modules, from that folder's own
# package.json and lock: never part of the root install, CI or npm test.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$THREADLINE_ROOT"

PEERS_DIR="$THREADLINE_ROOT/tools/bench/peers"

# True when the bench arguments select scenario 5 (no --scenarios: every scenario).
wants_peers() {
  local scenarios="" next=0 arg
  for arg in "$@"; do
    if ((next)); then
      scenarios="$arg"
      next=0
      continue
    fi
    case "$arg" in
      --scenarios) next=1 ;;
      --scenarios=*) scenarios="${arg#--scenarios=}" ;;
    esac
  done
  [[ -z "$scenarios" || ",$scenarios," == *",5,"* ]]
}

# Installs tools/bench/peers when its node_modules is missing or older than its lock: npm ci, or, when
# npm ci refuses the lock for other platforms' optional binaries, npm install from the same lock (as
# install_dependencies in tools/lib.sh). A failure does not stop the bench: scenario 5 then reports
# the peers as not installed.
ensure_peer_dependencies() {
  if [[ -f "$PEERS_DIR/node_modules/.package-lock.json" ]] &&
     [[ ! "$PEERS_DIR/package-lock.json" -nt "$PEERS_DIR/node_modules/.package-lock.json" ]]; then
    return 0
  fi
  echo "threadline: installing the peer libraries of scenario 5 (tools/bench/peers)..."
  local out
  if out="$(npm ci --prefix "$PEERS_DIR" --no-audit --no-fund 2>&1)"; then
    printf '%s\n' "$out" | grep -E '^(added|removed|changed|up to date)' || true
    return 0
  fi
  if grep -q 'can only install packages when your package.json and package-lock.json' <<<"$out"; then
    echo "threadline: npm ci refused the peers' lock file; npm install from the same lock"
    if out="$(npm install --prefix "$PEERS_DIR" --no-audit --no-fund 2>&1)"; then
      printf '%s\n' "$out" | grep -E '^(added|removed|changed|up to date)' || true
      return 0
    fi
  fi
  printf '%s\n' "$out" >&2
  echo "threadline: the peer libraries could not be installed; scenario 5 reports them as not installed" >&2
  return 0
}

if [[ "${BENCH_NO_BUILD:-}" != "1" ]]; then
  ensure_dependencies
  build
fi
if wants_peers "$@"; then
  ensure_peer_dependencies
fi
exec node dist/tools/bench/main.js "$@"
