#!/usr/bin/env bash
# The CPU floor of a paced request/response load on this machine: what a server pays for
# nothing but the network (recv, send, sleep in epoll, wake the client) at the request rate
# of issue 3's latency scenario.
#
# `cargo bench --bench e2e -- latency` (10,000 msgs/s, acks=all, linger 0) drives weir's
# Kafka port with about 15,000 requests/s: each message costs a Produce and a Fetch, and
# librdkafka carries about 1.35 messages per request. Each request arrives while the broker
# sleeps, so each costs a wake-up, a recv and a send that wakes the client. This script puts
# the same request rate on redis-server (the reference event loop) and on weir's RESP port,
# with PING (no work at all), and reports each server's CPU per request.
#
# Usage: benches/wake_floor.sh [rate] [secs]   (default 15000 requests/s for 10 s over 2
# connections; needs redis-server: apt-get install redis-server; builds target/release/weir)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-15000}
SECS=${2:-10}
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)"; exit 1; }
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Two connections, each sending PING at RATE/2 per second and waiting for the reply.
cat > "$WORK/drive.py" <<'EOF'
import socket, sys, threading, time
port, rate, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def run(per):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start, i = time.monotonic(), 0
    while time.monotonic() - start < secs:
        wait = start + i / per - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        if not s.recv(64).startswith(b"+PONG"):
            sys.exit("unexpected reply")
        i += 1
    done.append(i)
done = []
threads = [threading.Thread(target=run, args=(rate / 2,)) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(done))
EOF

# CPU seconds (user + system, all threads) of a process.
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

# Drives port $2 of process $1 and prints "requests/s cores us/request".
measure() {
    local before after n
    before=$(cpu "$1")
    n=$(python3 "$WORK/drive.py" "$2" "$RATE" "$SECS")
    after=$(cpu "$1")
    awk -v n="$n" -v s="$SECS" -v b="$before" -v a="$after" \
        'BEGIN {c = a - b; printf "%7.0f requests/s  %.3f cores  %5.1f us/request\n", n / s, c / s, c / n * 1e6}'
}

redis-server --port 16380 --save '' --appendonly no --bind 127.0.0.1 > "$WORK/redis.log" 2>&1 &
RPID=$!
for _ in $(seq 1 100); do redis-cli -p 16380 ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "machine: $(nproc) cores; $RATE PING/s over 2 connections for $SECS s"
echo "redis-server $(redis-server --version | awk '{print $3}' | cut -d= -f2):   $(measure $RPID 16380)"
kill -TERM $RPID; wait $RPID || true

target/release/weir serve --data-dir "$WORK/data" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --resp-addr 127.0.0.1:0 > "$WORK/weir.log" 2>&1 &
WPID=$!
for _ in $(seq 1 100); do [ -s "$WORK/data/runtime.json" ] && break; sleep 0.1; done
PORT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resp_addr'].rsplit(':',1)[1])" "$WORK/data/runtime.json")
echo "weir RESP port:       $(measure $WPID "$PORT")"
kill -TERM $WPID; wait $WPID || true
