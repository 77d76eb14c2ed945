# Sourced by the client scripts: starts target/debug/weir on free ports in a temp dir and sets
# BROKER (host:port), WEIR_DIR and WEIR_PID; stops the broker (SIGTERM, clean) on exit.
WEIR_BIN=${WEIR_BIN:-target/debug/weir}
WEIR_DIR=$(mktemp -d)
"$WEIR_BIN" serve --data-dir "$WEIR_DIR/data" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --resp-addr 127.0.0.1:0 \
    "$@" > "$WEIR_DIR/weir.log" 2>&1 &
WEIR_PID=$!
stop_broker() {
    if kill -0 "$WEIR_PID" 2>/dev/null; then
        kill -TERM "$WEIR_PID"
        for _ in $(seq 1 300); do kill -0 "$WEIR_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "${KEEP_LOG_ON_FAILURE:-1}" = 1 ] && [ "${CLIENT_TEST_OK:-0}" != 1 ]; then
        echo "----- weir log -----"; cat "$WEIR_DIR/weir.log"; echo "----- end -----"
    fi
    rm -rf "$WEIR_DIR"
}
trap stop_broker EXIT
for _ in $(seq 1 300); do
    [ -s "$WEIR_DIR/data/runtime.json" ] && break
    kill -0 "$WEIR_PID" 2>/dev/null || { echo "weir exited during startup"; exit 1; }
    sleep 0.1
done
BROKER=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['kafka_addr'])" "$WEIR_DIR/data/runtime.json")
