#!/usr/bin/env bash
# Validates ops/ against a real Prometheus (Debian's prometheus package, unpacked, not
# installed) scraping a live weir that carries real traffic:
#   - promtool checks the scrape config and the alert rules and runs their unit tests;
#   - every query of the Grafana dashboard (ops/grafana/weir.json) and every alert
#     expression is run through Prometheus's API and must return data (alerts: evaluate
#     without error, and none fires on a healthy broker).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=$(mktemp -d)
(cd "$tools" && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus >/dev/null; }; })
dpkg -x "$tools"/prometheus_*.deb "$tools/root"
PROMETHEUS="$tools/root/usr/bin/prometheus"
PROMTOOL="$tools/root/usr/bin/promtool"
for tool in kcat redis-cli; do
    command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat redis-tools >/dev/null; }
done

(cd ops/prometheus && "$PROMTOOL" check config prometheus.yml && "$PROMTOOL" test rules weir-alerts.test.yml)

source tests/clients/start-broker.sh
HTTP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['http_addr'])" "$WEIR_DIR/data/runtime.json")
RESP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resp_addr'].rsplit(':',1)[1])" "$WEIR_DIR/data/runtime.json")

# Traffic for every panel: produce and fetch, a consumer group left 1900 records behind
# (and falling further behind as the trickle below goes on), RESP commands.
seq 1 2000 | kcat -b "$BROKER" -P -t prom-orders
kcat -b "$BROKER" -C -t prom-orders -o beginning -e -q > /dev/null
timeout 60 kcat -b "$BROKER" -G prom-group -X auto.offset.reset=earliest -c 100 -q prom-orders > /dev/null
for i in $(seq 1 20); do redis-cli -p "$RESP" SET "key$i" "value$i" > /dev/null; redis-cli -p "$RESP" GET "key$i" > /dev/null; done

PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
cat > "$tools/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/ops/prometheus/weir-alerts.yml
scrape_configs:
  - job_name: weir
    static_configs:
      - targets: ['$HTTP']
CONF
"$PROMETHEUS" --config.file="$tools/prometheus.yml" --storage.tsdb.path="$tools/tsdb" \
    --web.listen-address="127.0.0.1:$PORT" > "$tools/prometheus.log" 2>&1 &
PROM_PID=$!
trap 'kill $PROM_PID 2>/dev/null || true; stop_broker' EXIT
# Keep a trickle of traffic going while Prometheus collects the samples rate() needs.
( for i in $(seq 1 20); do seq 1 50 | kcat -b "$BROKER" -P -t prom-orders; redis-cli -p "$RESP" GET key1 >/dev/null; sleep 0.5; done ) &
TRAFFIC=$!

python3 - "$PORT" <<'PY'
import json, re, sys, time, urllib.parse, urllib.request
port = sys.argv[1]
def query(expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]
deadline = time.time() + 60
while True:
    try:
        if query('count_over_time(up{job="weir"}[1m]) >= 8') and query('weir_group_lag{group="prom-group"}'):
            break
    except Exception:
        pass
    if time.time() > deadline:
        sys.exit("FAIL: Prometheus did not scrape weir within 60 s")
    time.sleep(0.5)
dashboard = json.load(open("ops/grafana/weir.json"))
exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
variables = [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
failed = 0
for title, expr in exprs:
    e = expr.replace("$__rate_interval", "20s").replace("$instance", ".*")
    result = query(e)
    ok = len(result) > 0
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'} {len(result):3} series  {title}: {e}")
for definition in variables:
    m = re.fullmatch(r"label_values\((.*), (\w+)\)", definition)
    result = query(m.group(1))
    ok = any(m.group(2) in s["metric"] for s in result)
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'} variable {definition}")
def rules():
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/rules", timeout=10) as r:
        return [rule for g in json.load(r)["data"]["groups"] for rule in g["rules"]]
# prom-group's lag is over 1000 and growing: WeirConsumerLagGrowing must notice (pending:
# its `for` is 15 minutes). Every other rule evaluates and stays quiet on a healthy broker
# (the disk alerts depend on the CI machine's disk, so they only need to evaluate).
deadline = time.time() + 30
while not any(r["name"] == "WeirConsumerLagGrowing" and r["state"] in ("pending", "firing") for r in rules()):
    if time.time() > deadline:
        break
    time.sleep(0.5)
loaded = rules()
for rule in loaded:
    if rule["name"] == "WeirConsumerLagGrowing":
        ok = rule["health"] == "ok" and rule["state"] in ("pending", "firing")
    else:
        ok = rule["health"] == "ok" and (rule["state"] == "inactive" or rule["name"].startswith("WeirDisk"))
    failed += not ok
    print(f"  {'ok  ' if ok else 'FAIL'} alert {rule['name']}: health={rule['health']} state={rule['state']}")
rules = loaded
if len(rules) != 7:
    sys.exit(f"FAIL: expected 7 alert rules, Prometheus loaded {len(rules)}")
print(f"dashboard queries: {len(exprs)}, variables: {len(variables)}, alert rules: {len(rules)}; failed: {failed}")
sys.exit(1 if failed else 0)
PY
kill $TRAFFIC 2>/dev/null || true
CLIENT_TEST_OK=1
echo "prometheus: dashboard and alerts checked against a live weir"
