#!/usr/bin/env bash
# Creates the database of DATABASE_URL when missing and applies every pending migration: each service
# with tables runs `node dist/apps/<service>/src/main.js migrate` (the event store's migrations, then
# its read models'), one after the other (tools/migrate/main.ts; also `npm run migrate`). Safe while
# services run: migrations are serialized by an advisory lock. Builds first when there is no build.
# Exit code: 0, or 1 when a service's migration fails.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/threadline}"
if [[ ! -f dist/tools/migrate/main.js ]]; then
  ensure_dependencies
  build
fi
exec node dist/tools/migrate/main.js
