#!/usr/bin/env bash
# `npm test`: installs what is missing, builds (the e2e suite runs the built services), then runs
# every Jest project of jest.config.js (unit, integration against the real Postgres and NATS, e2e).
# What the e2e stacks' services wrote goes to tmp/e2e-logs/, one file per test file, not to the output.
# Extra arguments go to Jest (e.g. `npm test -- apps/gateway-e2e`). Exit code: Jest's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"

ensure_dependencies
build
status=0
node_modules/.bin/jest --ci "$@" || status=$?
if [[ $status -ne 0 && -d tmp/e2e-logs ]]; then
  echo "npm test: what the services of each e2e stack wrote is in tmp/e2e-logs/<test file>.log" >&2
fi
exit $status
