#!/usr/bin/env bash
# CI check of the Prometheus configuration: `promtool check config` on prometheus.yml (which loads
# alerts.yml), `promtool check rules` on alerts.yml and `promtool test rules` on alerts.test.yml.
# Installs promtool (Debian's `prometheus` package) with apt-get when it is missing. Exit code:
# non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool missing: installing Debian's prometheus package" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # --no-install-recommends: promtool only, without the node exporter and the web console assets.
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # Debian starts the server it installs; CI needs the tool only.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop prometheus >/dev/null 2>&1 || true; fi
fi
command -v promtool >/dev/null 2>&1 || { echo "promtool is still missing after installing prometheus" >&2; exit 1; }

# prometheus.yml names the rule file where the compose service mounts it; check a copy that points here.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp alerts.yml "$tmp/alerts.yml"
sed "s#/etc/prometheus/alerts.yml#$tmp/alerts.yml#" prometheus.yml >"$tmp/prometheus.yml"

promtool check config "$tmp/prometheus.yml"
promtool check rules alerts.yml
promtool test rules alerts.test.yml

# Every query of the Grafana dashboard parses: each becomes a recording rule of a scratch rule file.
node -e '
  const d = require(process.argv[1]);
  const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
  const rules = exprs.map((e, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(e)}`);
  process.stdout.write(`groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`);
' "$PWD/grafana/dashboards/threadline.json" >"$tmp/dashboard-queries.yml"
promtool check rules "$tmp/dashboard-queries.yml"
echo "prometheus config, rules, rule tests and dashboard queries: OK"
