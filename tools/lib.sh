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

# `npm ci`: installs exactly package-lock.json. On this project's machines npm ci refuses every lock
# file ("Missing: @swc/core-darwin-arm64@ from lock file"): the registry reached here serves no
# other platform's optional binaries, so no lock made here can list them (npm/cli#4828). Then the
# same lock is installed with `npm install`, which keeps it as is; under CI a lock that this changes
# (package.json and lock out of sync) fails the run, as npm ci would.
install_dependencies() {
  local out
  if out="$(cd "$THREADLINE_ROOT" && npm ci --no-audit --no-fund 2>&1)"; then
    printf '%s\n' "$out" | grep -v 'Unknown user config' | tail -n 2
    return 0
  fi
  if ! grep -q 'can only install packages when your package.json and package-lock.json' <<<"$out"; then
    printf '%s\n' "$out" >&2
    return 1
  fi
  echo "threadline: npm ci refused the lock file (other platforms' optional binaries are not served here); npm install from the same lock"
  local before
  before="$(cksum <"$THREADLINE_ROOT/package-lock.json")"
  (cd "$THREADLINE_ROOT" && npm install --no-audit --no-fund)
  if [[ "${CI:-}" == "true" && "$(cksum <"$THREADLINE_ROOT/package-lock.json")" != "$before" ]]; then
    echo "threadline: package-lock.json does not match package.json: run npm install and commit the lock" >&2
    return 1
  fi
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
