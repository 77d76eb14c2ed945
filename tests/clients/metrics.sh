#!/usr/bin/env bash
# Scrapes /metrics of a real weir after real traffic and runs `promtool check metrics` on it
# (promtool taken out of Debian's prometheus package, not installed system-wide).
set -euo pipefail
cd "$(dirname "$0")/../.."
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ]; then
    tools=$(mktemp -d)
    (cd "$tools" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
    dpkg -x "$tools"/prometheus_*.deb "$tools/root"
    PROMTOOL="$tools/root/usr/bin/promtool"
fi
command -v kcat >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }
source tests/clients/start-broker.sh
HTTP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['http_addr'])" "$WEIR_DIR/data/runtime.json")
seq 1 100 | kcat -b "$BROKER" -P -t metrics-check
kcat -b "$BROKER" -C -t metrics-check -o beginning -e -q > /dev/null
# A group that consumed 60 of the 100 records and committed (on close): lag 40.
timeout 60 kcat -b "$BROKER" -G metrics-group -X auto.offset.reset=earliest -X enable.auto.offset.store=true -c 60 -q metrics-check > /dev/null
python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://' + sys.argv[1] + '/metrics').read().decode())" "$HTTP" > "$WEIR_DIR/metrics.txt"
grep -q 'weir_topic_records_in_total{topic="metrics-check"} 100' "$WEIR_DIR/metrics.txt" || { echo "FAIL: records in"; exit 1; }
grep -q 'weir_group_lag{group="metrics-group",topic="metrics-check",partition="0"} 40' "$WEIR_DIR/metrics.txt" || { echo "FAIL: group lag"; grep weir_group "$WEIR_DIR/metrics.txt"; exit 1; }
grep -q 'weir_group_state{group="metrics-group",state="Empty"} 1' "$WEIR_DIR/metrics.txt" || { echo "FAIL: group state"; exit 1; }
"$PROMTOOL" check metrics < "$WEIR_DIR/metrics.txt"
CLIENT_TEST_OK=1
echo "metrics: 2 passed, 0 failed"
