#!/usr/bin/env bash
# ops/systemd/weir.service passes `systemd-analyze verify` (unit syntax, directives, the
# binary it starts), with ExecStart pointed at the weir built for this run; and the command
# line it runs is one `weir serve` accepts.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v systemd-analyze >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
WEIR_BIN=$(realpath "${WEIR_BIN:-target/debug/weir}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sed "s|/usr/local/bin/weir|$WEIR_BIN|g" ops/systemd/weir.service > "$WORK/weir.service"
systemd-analyze verify "$WORK/weir.service"
# The unit's ExecStart arguments, with the unit's paths moved into the temp dir.
args=$(sed -n 's|^ExecStart=[^ ]* ||p' ops/systemd/weir.service |
    sed -e "s|/etc/weir/weir.toml|ops/weir.toml|" -e "s|/var/lib/weir|$WORK/data|")
# shellcheck disable=SC2086
"$WEIR_BIN" $args --set kafka.addr=127.0.0.1:0 --set http.addr=127.0.0.1:0 --set resp.addr=127.0.0.1:0 > "$WORK/weir.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -s "$WORK/data/runtime.json" ] && break; sleep 0.1; done
[ -s "$WORK/data/runtime.json" ] || { cat "$WORK/weir.log"; echo "FAIL: weir did not start with the unit's arguments"; exit 1; }
kill -TERM $pid; wait $pid
grep -q "clean shutdown complete" "$WORK/weir.log" || { cat "$WORK/weir.log"; echo "FAIL: no clean shutdown on SIGTERM"; exit 1; }
echo "systemd: 2 passed, 0 failed"
