#!/usr/bin/env bash
# The RESP port side by side with a real redis-server, in one run on one machine:
# `redis-benchmark -t set,get -c 50 -n 1000000 -d 100` at -P 1 and -P 16 (issue 5's targets:
# GET >= 1.0x Redis, SET >= 0.5x — a weir SET is a durable log append, Redis's is a memory
# write). Each round starts a fresh weir and a fresh redis-server (no persistence), and the
# rounds alternate between them so both see the same machine state.
#
# Usage: benches/redis_compare.sh [rounds]   (needs redis-server and redis-benchmark:
# apt-get install redis-server; builds target/release/weir)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-1000000}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    { echo "needs redis-server and redis-benchmark (apt-get install redis-server)"; exit 1; }
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Prints "SET GET" requests per second of one redis-benchmark run against port $1.
bench() {
    redis-benchmark -p "$1" -t set,get -c 50 -n "$N" -d 100 -P "$2" -q 2>/dev/null | tr '\r' '\n' |
        awk '/^SET: .* requests per second/ {s=$2} /^GET: .* requests per second/ {g=$2} END {print s, g}'
}

weir_round() {
    local dir="$WORK/weir-$RANDOM"
    target/release/weir serve --data-dir "$dir" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
        --resp-addr 127.0.0.1:0 > "$WORK/weir.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do [ -s "$dir/runtime.json" ] && break; sleep 0.1; done
    local port
    port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resp_addr'].rsplit(':',1)[1])" "$dir/runtime.json")
    bench "$port" "$1"
    kill -TERM "$pid"; wait "$pid" || true
    rm -rf "$dir"
}

redis_round() {
    local port=16379
    redis-server --port $port --save '' --appendonly no --bind 127.0.0.1 > "$WORK/redis.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
    bench $port "$1"
    kill -TERM "$pid"; wait "$pid" || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "machine: $(nproc) cores, $(redis-server --version | awk '{print $1, $3}'), n=$N, 50 clients, 100-byte values"
for p in 1 16; do
    : > "$WORK/w" ; : > "$WORK/r"
    for round in $(seq 1 "$ROUNDS"); do
        w=$(weir_round "$p"); r=$(redis_round "$p")
        echo "  -P $p round $round: weir SET/GET $w   redis SET/GET $r"
        echo "$w" >> "$WORK/w"; echo "$r" >> "$WORK/r"
    done
    ws=$(cut -d' ' -f1 "$WORK/w" | median); wg=$(cut -d' ' -f2 "$WORK/w" | median)
    rs=$(cut -d' ' -f1 "$WORK/r" | median); rg=$(cut -d' ' -f2 "$WORK/r" | median)
    awk -v p="$p" -v ws="$ws" -v wg="$wg" -v rs="$rs" -v rg="$rg" 'BEGIN {
        printf "-P %-2s median  SET weir %9.0f redis %9.0f = %.2fx   GET weir %9.0f redis %9.0f = %.2fx\n",
            p, ws, rs, ws / rs, wg, rg, wg / rg }'
done
