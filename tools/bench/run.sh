#!/usr/bin/env bash
# `npm run bench` (issue 6): builds (incremental), then runs tools/bench/main.ts, which starts its own
# stack on the local Postgres and NATS, measures and cleans up. Arguments go to the bench
# (e.g. `npm run bench -- --duration 20`); see the README, section "Benchmark". BENCH_NO_BUILD=1 skips the build.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$THREADLINE_ROOT"

if [[ "${BENCH_NO_BUILD:-}" != "1" ]]; then
  ensure_dependencies
  build
fi
exec node dist/tools/bench/main.js "$@"
