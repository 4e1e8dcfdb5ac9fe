#!/usr/bin/env bash
# Installs Debian's chromium when /usr/bin/chromium is missing, for the dashboard's browser test
# (apps/gateway-e2e/src/dashboard.e2e-spec.ts, driven by playwright-core; no browser download).
# Non-interactive; needs root (or sudo) and the Debian mirrors. Exit 0 when chromium is there.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [[ -x "$CHROMIUM" ]]; then
  echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") present"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "ensure-chromium: $CHROMIUM missing; run as root: apt-get install -y chromium" >&2; exit 1; }
  SUDO="sudo"
fi
echo "ensure-chromium: installing Debian's chromium (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
[[ -x "$CHROMIUM" ]] || { echo "ensure-chromium: apt-get finished but $CHROMIUM is still missing" >&2; exit 1; }
echo "ensure-chromium: $("$CHROMIUM" --version) installed"
