#!/usr/bin/env bash
# `npm start`: installs what is missing (npm ci), builds, creates and migrates the database, then runs
# the five services in this terminal (tools/start/main.ts): logs prefixed by service, readable on a
# terminal and JSON otherwise (LOG_FORMAT=auto|pretty|json); the API is on http://localhost:${PORT:-3000}.
# The first admin key is shown in a box once the stack is up. Ctrl-C stops every service cleanly; if
# one service exits, the others are stopped too.
# Needs Postgres and NATS with JetStream (defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:4222).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"
export THREADLINE_STARTED_AT="$(date +%s%3N)"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/threadline}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export PORT="${PORT:-3000}"
export THREADLINE_NODE_FLAGS="$SERVICE_NODE_FLAGS"

ensure_dependencies
build
bash tools/migrate.sh
exec node dist/tools/start/main.js
