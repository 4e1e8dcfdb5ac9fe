#!/usr/bin/env bash
# `npm run demo`: imports the bundled Taskmaster-4 dialogs through the running stack
# (tools/demo/README.md). Without THREADLINE_API_KEY (and with auth on) it sends with the one service
# key named "demo", made with the keys CLI on the first run and reused after (see demo-key.ts).
# Extra arguments go to the importer (e.g. `npm run demo -- --limit 50 --users 5`).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$THREADLINE_ROOT"

[[ -f dist/tools/demo/main.js ]] || { ensure_dependencies; build; }
exec node dist/tools/demo/main.js "$@"
