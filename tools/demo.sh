#!/usr/bin/env bash
# `npm run demo`: imports the Taskmaster-4 dialogs through the running stack (tools/demo/README.md).
# With no THREADLINE_API_KEY (and auth on), it first creates a service key of DEFAULT_TENANT_ID named
# "demo" with the keys CLI (its own rate limit raised: a bulk import, not an interactive client), against
# the same DATABASE_URL the stack uses, and sends the import with it.
# Extra arguments go to the importer (e.g. `npm run demo -- --limit 50 --users 5`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"

[[ -f dist/tools/demo/main.js ]] || { ensure_dependencies; build; }
if [[ -z "${THREADLINE_API_KEY:-}" && "${AUTH_MODE:-api_key}" != "none" ]]; then
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/threadline}"
  created="$(node dist/apps/gateway/src/keys-cli.js create --tenant "${DEFAULT_TENANT_ID:-default}" \
    --role service --name demo --rate-limit 1000000 --json)"
  THREADLINE_API_KEY="$(node -e 'process.stdout.write(JSON.parse(process.argv[1]).key)' "$created")"
  export THREADLINE_API_KEY
  echo "demo: created service key $(node -e 'process.stdout.write(JSON.parse(process.argv[1]).key_id)' "$created") (revoke with: npm run keys -- revoke <key_id>)"
fi
exec node dist/tools/demo/main.js "$@"
