#!/usr/bin/env bash
# Real Redis clients against weir's RESP port: Debian's redis-cli and redis-benchmark, and
# PyPI's redis-py (RESP2 and RESP3 handshakes, strings, hashes, pub/sub over topics), npm's
# ioredis (its handshake, strings, hashes, pub/sub), and go-redis as Debian packages it
# (gopkg.in/redis.v5, built with Debian's Go; the Go module proxy is out of reach here, so
# go-redis v9's HELLO 3 handshake is replayed frame for frame in tests/it/resp.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null; }
python3 -c "import redis" 2>/dev/null || pip install -q redis
command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
IOREDIS_DIR=${IOREDIS_DIR:-$(mktemp -d)}
[ -d "$IOREDIS_DIR/node_modules/ioredis" ] || (cd "$IOREDIS_DIR" && npm install --silent --no-audit --no-fund ioredis@5 >/dev/null)
[ -d /usr/share/gocode/src/gopkg.in/redis.v5 ] && command -v go >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-gopkg-redis.v5-dev >/dev/null; }
GO_REDIS=$(mktemp -d)/go_redis_check
(cd tests/clients/go_redis && GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE=$(mktemp -d) go build -o "$GO_REDIS" .)
source tests/clients/start-broker.sh
RESP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resp_addr'].rsplit(':',1)[1])" "$WEIR_DIR/data/runtime.json")
fail() { echo "FAIL: $*"; exit 1; }
cli() { redis-cli -p "$RESP" "$@"; }

[ "$(cli PING)" = PONG ] || fail "redis-cli PING"
[ "$(cli ECHO hello)" = hello ] || fail "redis-cli ECHO"
cli HELLO 3 | grep -q '^proto' || fail "redis-cli HELLO 3"
cli COMMAND COUNT | grep -Eq '^[0-9]+$' || fail "redis-cli COMMAND COUNT"
[ "$(cli SET greeting hello)" = OK ] && [ "$(cli GET greeting)" = hello ] || fail "redis-cli SET/GET"
[ "$(cli HSET cli-hash f v)" = 1 ] && [ "$(cli HGET cli-hash f)" = v ] || fail "redis-cli HSET/HGET"
[ "$(cli DEL greeting)" = 1 ] && [ -z "$(cli GET greeting)" ] || fail "redis-cli DEL"
# redis-cli's pub/sub: a subscriber (from the channel's end) receives what PUBLISH appends.
timeout 20 redis-cli -p "$RESP" SUBSCRIBE cli-news > "$WEIR_DIR/sub.txt" &
sub=$!
for _ in $(seq 1 100); do [ "$(cli PUBSUB NUMSUB cli-news | tail -1)" = 1 ] && break; sleep 0.1; done
[ "$(cli PUBLISH cli-news hi)" = 1 ] || fail "PUBLISH reaches the subscriber"
for _ in $(seq 1 100); do grep -q '^hi$' "$WEIR_DIR/sub.txt" && break; sleep 0.1; done
grep -q '^hi$' "$WEIR_DIR/sub.txt" || fail "redis-cli subscriber got the message"
kill "$sub" 2>/dev/null || true

python3 - "$RESP" <<'PY'
import sys, time
import redis
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol)
    assert r.ping() is True, "redis-py ping"
    assert r.echo("x") == b"x"
    assert r.client_setname("py") and r.client_getname() in (b"py", "py")
    assert r.set(f"k{protocol}", "v") is True and r.get(f"k{protocol}") == b"v"
    assert r.set(f"k{protocol}", "w", nx=True) is None
    assert r.mset({"m1": "1", "m2": "2"}) and r.mget("m1", "m2", "nope") == [b"1", b"2", None]
    assert r.hset(f"h{protocol}", mapping={"a": "1", "b": "2"}) == 2
    assert r.hgetall(f"h{protocol}") == {b"a": b"1", b"b": b"2"}
    assert sorted(r.scan_iter(match="m*")) == [b"m1", b"m2"]
    assert r.delete("m1") == 1 and r.exists("m1") == 0
    p = r.pubsub()
    p.subscribe(f"py-chan-{protocol}")
    assert p.get_message(timeout=5)["type"] == "subscribe"
    assert r.publish(f"py-chan-{protocol}", "payload") == 1
    deadline = time.time() + 20
    m = None
    while time.time() < deadline and (m is None or m["type"] != "message"):
        m = p.get_message(timeout=1)
    assert m and m["data"] == b"payload", m
print("redis-py: ok")
PY

NODE_PATH="$IOREDIS_DIR/node_modules" timeout 60 node tests/clients/ioredis_check.js "$RESP" || fail "ioredis"

# go-redis: without a password here, and with one (AUTH in its handshake) on a second broker.
timeout 60 "$GO_REDIS" "127.0.0.1:$RESP" "" || fail "go-redis"
SECOND=$(mktemp -d)
"$WEIR_BIN" serve --data-dir "$SECOND/data" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --resp-addr 127.0.0.1:0 --set resp.requirepass=go-secret > "$SECOND/weir.log" 2>&1 &
SECOND_PID=$!
for _ in $(seq 1 300); do [ -s "$SECOND/data/runtime.json" ] && break; sleep 0.1; done
SECOND_RESP=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['resp_addr'])" "$SECOND/data/runtime.json")
go_ok=0; timeout 60 "$GO_REDIS" "$SECOND_RESP" go-secret && go_ok=1
kill -TERM "$SECOND_PID"; wait "$SECOND_PID" || true
[ $go_ok = 1 ] || { cat "$SECOND/weir.log"; fail "go-redis with a password"; }
rm -rf "$SECOND"

out=$(redis-benchmark -p "$RESP" -t ping,get,set -n 20000 -q 2>&1)
for t in PING_INLINE SET GET; do
    echo "$out" | grep -q "$t: .* requests per second" || fail "redis-benchmark $t: $out"
done
echo "$out" | sed 's/\r/\n/g' | grep "requests per second" | tail -4
CLIENT_TEST_OK=1
echo "redis clients: 5 passed, 0 failed"
