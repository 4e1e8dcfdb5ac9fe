#!/usr/bin/env bash
# `npm run chaos` (issue 20): builds (incremental), then runs tools/chaos/main.ts, which makes its own
# Postgres cluster and 3-node NATS cluster in a temp dir, runs two instances of every service, injects
# the faults and removes everything it made. Arguments go to the harness (e.g.
# `npm run chaos -- --short`, `--scenarios pg-restart-fast`, `--soak 900`, `--hostile`); see the
# README, section "Chaos harness". CHAOS_NO_BUILD=1 skips the build. Never part of npm test.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$THREADLINE_ROOT"

if [[ "${CHAOS_NO_BUILD:-}" != "1" ]]; then
  ensure_dependencies
  build
fi
exec node dist/tools/chaos/main.js "$@"
