#!/usr/bin/env bash
# Measures what the daemon's memory costs per idle connection and per
# queued message, and whether a full queue slows the cycle down: the
# figures behind the sizing advice in docs/operations.md.
#
#   bench/memory.sh BUILD_DIR [CONNECTIONS] [MESSAGES]
#
# Memory is the daemon's resident set (VmRSS) before and after, so it
# counts what the kernel really gave the process, allocator slack
# included. Idle connections are opened by this shell itself
# (/dev/tcp), so no client process shares the figure. Everything
# listens on 127.0.0.1 and stops by itself.
set -euo pipefail
build=${1:?usage: bench/memory.sh BUILD_DIR [CONNECTIONS] [MESSAGES]}
conns=${2:-10000}
msgs=${3:-1000000}
size=64
daemon=$build/ratelimmqd
bench=$build/bench/ratelimmq-bench
port=16394
pid=

cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    return 0
}
trap cleanup EXIT

start() { # extra flags...
    "$daemon" --port "$port" --log-level error "$@" &
    pid=$!
    for _ in $(seq 50); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "memory.sh: the daemon did not start" >&2
    exit 1
}

rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
}

stop() {
    kill "$pid"
    wait "$pid" || true
    pid=
}

# Idle connections: each needs a descriptor here and one in the daemon.
ulimit -n $((conns + 100))
start --max-connections $((conns + 10))
before=$(rss_kib)
fds=()
for _ in $(seq "$conns"); do
    exec {fd}<>/dev/tcp/127.0.0.1/$port
    fds+=("$fd")
done
# Let the daemon accept them all: one PING on the last proves it has.
printf 'PING\n' >&"${fds[-1]}"
read -r -t 10 reply <&"${fds[-1]}"
[ "${reply%$'\r'}" = PONG ] || { echo "memory.sh: no PONG" >&2; exit 1; }
after=$(rss_kib)
for fd in "${fds[@]}"; do
    exec {fd}>&-
done
echo "idle connections: $conns, RSS $before KiB before, $after KiB after," \
    "$(echo "scale=1; ($after - $before) * 1024 / $conns" | bc)" \
    "bytes per connection"
stop

# Queued messages: the payload is counted apart from the overhead.
# The cycles run on the queue that is then filled, so with it full each
# GET takes the oldest of a million and each ACK finds its id among them.
start --max-messages $((msgs + msgs / 100 + 100))
cycle() { # -> cycles per second
    "$bench" --port "$port" --quiet cycle --connections 1 --size "$size" \
        --queue-prefix q --duration 3 --warmup 1 |
        awk '/achieved/ { for (i = 1; i <= NF; i++)
            if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}
empty=$(cycle)
fill() { # count; every PUT must be admitted, or the figure is wrong
    "$bench" --port "$port" --quiet put --connections 4 --pipeline 64 \
        --size "$size" --queue-prefix q --requests "$1" |
        awk '$1 == "errors" && $2 != 0 { bad = 1 } END { exit bad }' || {
        echo "memory.sh: some PUTs were refused" >&2
        exit 1
    }
}
per_msg() { # kib_before kib_after count -> bytes beyond the payload
    echo "scale=3; ($2 - $1) * 1024 / $3 - $size" | bc
}
# The first messages also pay for things made once: the queue, the
# filling connections, the allocator's first pages. A first fill of 1%
# takes those out of the figure per message; both figures are printed.
prime=$((msgs / 100))
fresh=$(rss_kib)
fill "$prime"
before=$(rss_kib)
fill "$msgs"
after=$(rss_kib)
full=$(cycle)
echo "queued messages: $prime then $msgs of $size bytes, RSS $fresh KiB" \
    "empty, $before KiB after the first $prime, $after KiB after all:" \
    "$(per_msg "$before" "$after" "$msgs") bytes per message beyond its" \
    "payload over the $msgs," \
    "$(per_msg "$fresh" "$after" $((prime + msgs))) counting from empty"
echo "cycle, 1 connection: $empty/s with the queue empty," \
    "$full/s with $((prime + msgs)) queued beside it," \
    "ratio $(echo "scale=3; $full / $empty" | bc)"
stop
