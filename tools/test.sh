#!/usr/bin/env bash
# `npm test`: installs what is missing, builds (the e2e suite runs the built services), then runs
# every Jest project of jest.config.js (unit, integration against the real Postgres and NATS, e2e).
# Extra arguments go to Jest (e.g. `npm test -- apps/gateway-e2e`). Exit code: Jest's.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"

ensure_dependencies
build
exec node_modules/.bin/jest --ci "$@"
