#!/usr/bin/env bash
# Debian's kcat (librdkafka 2.0.2, an old client) against a real weir: metadata, produce with
# each codec, consume from the beginning and the tail, offsets, the stored codecs, and
# balanced consumers (-G) sharing partitions and resuming from their committed offsets.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v kcat >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null; }
kcat -V | grep -o 'librdkafka [0-9.]*'
source tests/clients/start-broker.sh --set num.partitions=3 --set group.initial.rebalance.delay.ms=0
fail() { echo "FAIL: $*"; exit 1; }

kcat -b "$BROKER" -L | grep -q "1 brokers" || fail "kcat -L lists the broker"
for codec in none gzip snappy lz4 zstd; do
    seq 1 1000 | kcat -b "$BROKER" -P -t "kc-$codec" -p 0 -z "$codec"
    n=$(kcat -b "$BROKER" -C -t "kc-$codec" -p 0 -o beginning -e -q | wc -l)
    [ "$n" = 1000 ] || fail "$codec: consumed $n of 1000"
    last=$(kcat -b "$BROKER" -C -t "kc-$codec" -p 0 -o -1 -e -q -f '%o %s\n')
    [ "$last" = "999 1000" ] || fail "$codec: tail is '$last'"
    stored=$(target/debug/weir log dump "$WEIR_DIR/data/kc-$codec-0/00000000000000000000.log" | grep -o 'compresscodec: [a-z0-9]*' | sort -u)
    [ "$stored" = "compresscodec: $codec" ] || fail "$codec: stored as '$stored'"
done
kcat -b "$BROKER" -L -t kc-gzip | grep -q 'partition 0, leader 0' || fail "partition metadata"
keys=$(printf 'a:1\nb:2\n' | kcat -b "$BROKER" -P -t kc-keys -p 0 -K: && kcat -b "$BROKER" -C -t kc-keys -p 0 -o beginning -e -q -f '%k=%s,')
[ "$keys" = "a=1,b=2," ] || fail "keys: '$keys'"

# Balanced consumers: two kcat -G members of one group split the 3 partitions; together they
# read every record once. Then one member alone resumes after the group's committed offsets.
wait_for_lines() { # FILE... COUNT: waits (60 s) until the files hold COUNT lines in total
    local count=${*: -1} files=("${@:1:$#-1}")
    for _ in $(seq 1 600); do
        [ "$(cat "${files[@]}" 2>/dev/null | wc -l)" -ge "$count" ] && return 0
        sleep 0.1
    done
    echo "only $(cat "${files[@]}" | wc -l) of $count lines in ${files[*]}"; return 1
}
kcat -b "$BROKER" -L -t kc-group >/dev/null # auto-creates the topic with 3 partitions
kcat -b "$BROKER" -G kc-grp -X auto.offset.reset=earliest -q -u -f '%p %s\n' kc-group > "$WEIR_DIR/a.txt" 2>"$WEIR_DIR/a.err" &
member_a=$!
kcat -b "$BROKER" -G kc-grp -X auto.offset.reset=earliest -q -u -f '%p %s\n' kc-group > "$WEIR_DIR/b.txt" 2>"$WEIR_DIR/b.err" &
member_b=$!
# Wait until the group is Stable with both members (each holds at least one partition).
for _ in $(seq 1 600); do
    members=$(target/debug/weir group describe kc-grp --bootstrap "$BROKER" --format json 2>/dev/null |
        python3 -c "import json,sys; d=json.load(sys.stdin); print(d['state'], sum(1 for m in d['members'] if m['assignment']))" 2>/dev/null || true)
    [ "$members" = "Stable 2" ] && break
    sleep 0.1
done
[ "$members" = "Stable 2" ] || fail "two kcat members never shared the group: '$members'"
# 100 records to each partition: keyless records are partitioned stickily (one partition
# for sticky.partitioning.linger.ms), so a fast `kcat -P` may put all 300 on one partition.
for p in 0 1 2; do seq $((p * 100 + 1)) $((p * 100 + 100)) | kcat -b "$BROKER" -P -t kc-group -p "$p"; done
wait_for_lines "$WEIR_DIR/a.txt" "$WEIR_DIR/b.txt" 300 || { cat "$WEIR_DIR/a.err" "$WEIR_DIR/b.err"; exit 1; }
kill -TERM "$member_a" "$member_b"; wait "$member_a" "$member_b" || true
[ -s "$WEIR_DIR/a.txt" ] && [ -s "$WEIR_DIR/b.txt" ] || fail "both members consumed"
sort -n <(cut -d' ' -f2 "$WEIR_DIR/a.txt" "$WEIR_DIR/b.txt") | diff -q - <(seq 1 300) >/dev/null || fail "members read each record exactly once"
a_parts=$(cut -d' ' -f1 "$WEIR_DIR/a.txt" | sort -u | tr '\n' ' ')
b_parts=$(cut -d' ' -f1 "$WEIR_DIR/b.txt" | sort -u | tr '\n' ' ')
for p in $a_parts; do case " $b_parts" in *" $p "*) fail "partition $p read by both ($a_parts / $b_parts)";; esac; done
# The members committed on close: a new member resumes after the 300.
seq 301 350 | kcat -b "$BROKER" -P -t kc-group
timeout 60 kcat -b "$BROKER" -G kc-grp -q -c 50 -f '%s\n' kc-group > "$WEIR_DIR/c.txt" || fail "resuming member"
sort -n "$WEIR_DIR/c.txt" | diff -q - <(seq 301 350) >/dev/null || fail "resumed after the commits: $(sort -n "$WEIR_DIR/c.txt" | head -3 | tr '\n' ' ')..."
CLIENT_TEST_OK=1
echo "kcat: 6 passed, 0 failed"
