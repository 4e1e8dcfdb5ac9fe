#!/usr/bin/env bash
# `npm run openapi`: builds (incremental), writes the gateway's OpenAPI document to openapi.json (built
# in-process: no Postgres, NATS or running gateway needed), then regenerates the TypeScript SDK's types
# (libs/client/src/generated/schema.ts) from it. Commit both; specs fail when either is stale.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$THREADLINE_ROOT"

ensure_dependencies
build
node dist/apps/gateway/src/openapi-cli.js "$@"
node libs/client/codegen/generate-types.mjs
