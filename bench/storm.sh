#!/usr/bin/env bash
# How long the loop stalls when a storm of leases expires in the same
# millisecond: one connection leases LEASES messages at once and lets
# them all run out, while an open-loop PING client times every request
# against its schedule. The same PING run without the storm, back to
# back, is the baseline. Last, the same PING run while one connection
# writes LEASES PINGs in one go: the stall a long pipeline causes others.
#
#   bench/storm.sh BUILD_DIR [LEASES]
#
# Everything listens on 127.0.0.1 and stops by itself.
set -euo pipefail
build=${1:?usage: bench/storm.sh BUILD_DIR [LEASES]}
leases=${2:-100000}
daemon=$build/ratelimmqd
bench=$build/bench/ratelimmq-bench
port=16395
lease_ms=1000
pid=

cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    return 0
}
trap cleanup EXIT

"$daemon" --port "$port" --log-level error --lease-ms "$lease_ms" \
    --max-messages "$leases" &
pid=$!
sleep 0.3

ping() { # -> the bench's latency lines
    "$bench" --port "$port" --quiet ping --connections 1 --rate 2000 \
        --duration 4 --warmup 0 --percentiles 50,99,99.9,99.99 |
        grep -E 'achieved|p99|max'
}

echo "PING at 2000/s, no storm:"
ping

"$bench" --port "$port" --quiet put --connections 1 --pipeline 64 \
    --size 16 --queue-prefix storm --requests "$leases" >/dev/null
# LEASES GETs in a few large writes: the leases start within a few
# milliseconds of each other, so they expire together lease_ms later,
# while the PING run below is under way. The replies are read as they
# come, or --max-output would stop the daemon reading the GETs.
exec {fd}<>/dev/tcp/127.0.0.1/$port
count=$(mktemp)
head -n "$leases" <&"$fd" | grep -c '^MSG' >"$count" &
reader=$!
{ yes 'GET storm0' || true; } | head -n "$leases" >&"$fd"
echo "PING at 2000/s across the storm, due $lease_ms ms after the GETs:"
ping
wait "$reader" || true
echo "leased $(cat "$count") of $leases"
rm -f "$count"
printf 'STATS storm0\n' >&"$fd"
read -r -t 10 line <&"$fd"
echo "$line" | tr ' ' '\n' | grep -E '^(ready|leased|expired)='
exec {fd}>&-

# The flood starts a second into the PING run and is read as it comes.
flood() {
    sleep 1
    exec {f}<>/dev/tcp/127.0.0.1/$port
    head -n "$leases" <&"$f" >/dev/null &
    { yes PING || true; } | head -n "$leases" >&"$f"
    wait
}
flood &
flooder=$!
echo "PING at 2000/s while one connection pipelines $leases PINGs:"
ping
wait "$flooder"

