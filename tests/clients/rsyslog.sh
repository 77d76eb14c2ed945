#!/usr/bin/env bash
# Log shipping end to end: Debian's rsyslogd (imfile → omkafka, librdkafka 2.0.2) runs in the
# foreground with ops/rsyslog/weir.conf (addresses substituted) and ships the lines of a file
# into a weir it started. Checked with weir's own consumer:
#   1. N lines written → all N arrive, in order within each partition;
#   2. weir is stopped while lines keep being written, then restarted on the same port and
#      data dir → every line written arrives after the restart: none lost (duplicates, which
#      at-least-once delivery allows, are counted and reported).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v rsyslogd >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ] ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-kafka >/dev/null; }
WEIR_BIN=${WEIR_BIN:-target/debug/weir}
WORK=$(mktemp -d)
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
BROKER=127.0.0.1:$PORT
WEIR_PID=; RSYSLOG_PID=; OK=0
cleanup() {
    [ -n "$RSYSLOG_PID" ] && kill "$RSYSLOG_PID" 2>/dev/null || true
    [ -n "$WEIR_PID" ] && kill "$WEIR_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$OK" != 1 ]; then
        echo "----- weir log -----"; cat "$WORK"/weir*.log 2>/dev/null || true
        echo "----- rsyslog log -----"; cat "$WORK/rsyslog.log" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

start_weir() {
    rm -f "$WORK/data/runtime.json"
    "$WEIR_BIN" serve --data-dir "$WORK/data" --kafka-addr "$BROKER" --http-addr 127.0.0.1:0 \
        --resp-addr 127.0.0.1:0 >> "$WORK/weir.log" 2>&1 &
    WEIR_PID=$!
    for _ in $(seq 1 300); do
        [ -s "$WORK/data/runtime.json" ] && return 0
        kill -0 "$WEIR_PID" 2>/dev/null || fail "weir exited during startup"
        sleep 0.1
    done
    fail "weir did not start"
}
stop_weir() { kill -TERM "$WEIR_PID"; wait "$WEIR_PID" || true; WEIR_PID=; }

# Lines received so far, as "partition offset value", read with weir's own consumer.
received() { "$WEIR_BIN" consume app-logs --bootstrap "$BROKER" -o start -e -f '%p %o %v\n' 2>/dev/null || true; }
# Waits until every line up to $1 has arrived (distinct values), up to $2 seconds.
wait_for_lines() {
    local want=$1 deadline=$((SECONDS + $2)) have=0
    while [ $SECONDS -lt $deadline ]; do
        have=$(received | awk '{print $3}' | sort -u | wc -l)
        [ "$have" -ge "$want" ] && return 0
        sleep 0.5
    done
    fail "only $have of $want distinct lines arrived"
}
write_lines() { # first last
    for i in $(seq "$1" "$2"); do printf 'line-%06d\n' "$i"; done >> "$WORK/app.log"
}

start_weir
"$WEIR_BIN" topic create app-logs -p 3 --bootstrap "$BROKER" > /dev/null

mkdir -p "$WORK/spool"
: > "$WORK/app.log"
{
    echo "global(workDirectory=\"$WORK/spool\")"
    sed -e "s|/var/log/app/app.log|$WORK/app.log|" -e "s|127.0.0.1:9092|$BROKER|" \
        -e "s|/var/lib/rsyslog/weir-failed.kafkamsgs|$WORK/spool/failed.kafkamsgs|" ops/rsyslog/weir.conf
} > "$WORK/rsyslog.conf"
rsyslogd -N1 -f "$WORK/rsyslog.conf" > "$WORK/rsyslog-check.log" 2>&1 || { cat "$WORK/rsyslog-check.log"; fail "rsyslog rejects ops/rsyslog/weir.conf"; }
rsyslogd -n -f "$WORK/rsyslog.conf" -i "$WORK/rsyslogd.pid" > "$WORK/rsyslog.log" 2>&1 &
RSYSLOG_PID=$!

# 1. N lines, all delivered, in order within each partition.
N1=5000
write_lines 1 $N1
wait_for_lines $N1 120
received > "$WORK/phase1.txt"
python3 - "$WORK/phase1.txt" <<'PY'
import sys
last = {}
for line in open(sys.argv[1]):
    p, o, v = line.split()
    n = int(v.split("-")[1])
    if n <= last.get(p, 0):
        sys.exit(f"FAIL: partition {p} offset {o}: {v} after line {last[p]}")
    last[p] = n
print(f"rsyslog: phase 1: {sum(1 for _ in open(sys.argv[1]))} records over {len(last)} partitions, in order per partition")
PY

# 2. Stop weir mid-stream, keep writing, restart it: nothing lost.
N2=15000
( for first in $(seq $((N1 + 1)) 500 $N2); do write_lines "$first" $((first + 499)); sleep 0.1; done ) &
WRITER=$!
sleep 0.5
stop_weir
echo "rsyslog: weir stopped mid-stream"
sleep 2
start_weir
echo "rsyslog: weir restarted"
wait $WRITER
wait_for_lines $N2 180
received > "$WORK/all.txt"
python3 - "$WORK/all.txt" "$N2" <<'PY'
import collections, sys
values = [line.split()[2] for line in open(sys.argv[1])]
want = {f"line-{i:06d}" for i in range(1, int(sys.argv[2]) + 1)}
counts = collections.Counter(values)
lost = want - set(counts)
duplicates = sum(c - 1 for c in counts.values())
print(f"rsyslog: phase 2: {len(values)} records, {len(counts)} distinct of {len(want)} written, "
      f"lost {len(lost)}, duplicates {duplicates}")
if lost:
    sys.exit(f"FAIL: lost {sorted(lost)[:10]}...")
PY
OK=1
echo "rsyslog: 2 passed, 0 failed"
