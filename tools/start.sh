#!/usr/bin/env bash
# `npm start`: installs what is missing, builds, creates and migrates the database, then runs the five
# services in this terminal with prefixed output; the API is on http://localhost:${PORT:-3000}.
# Ctrl-C stops every service cleanly (each closes its transports, relay and pool); if one service
# exits, the others are stopped too (concurrently --kill-others).
# Needs Postgres and NATS with JetStream (defaults: 127.0.0.1:5432 user postgres, 127.0.0.1:4222).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"
started_at="$(date +%s%3N)"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/threadline}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export PORT="${PORT:-3000}"

ensure_dependencies
build
bash tools/migrate.sh
# On an empty database (no API key yet), create the first admin key and print it, once.
if [ "${AUTH_MODE:-api_key}" != "none" ]; then
  node dist/apps/gateway/src/keys-cli.js bootstrap
fi

# Prints the URL once the gateway is healthy; exits by itself when the stack stops first.
node tools/stack.js wait-ready --url "http://localhost:$PORT" --started-at "$started_at" &

commands=()
for service in "${THREADLINE_SERVICES[@]}"; do
  commands+=("node $SERVICE_NODE_FLAGS dist/apps/$service/src/main.js")
done
names="$(IFS=,; echo "${THREADLINE_SERVICES[*]}")"
exec node_modules/.bin/concurrently \
  --kill-others \
  --names "$names" \
  --prefix "[{name}]" \
  --prefix-colors "blue,magenta,cyan,yellow,green" \
  "${commands[@]}"
