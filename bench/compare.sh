#!/usr/bin/env bash
# Runs the comparisons quoted in the README, alternating the two sides of
# each so that the noise of a shared machine falls on both. Every figure
# is a ratio of two runs made back to back.
#
#   bench/compare.sh BUILD_DIR [ROUNDS]   (ROUNDS: 5 by default)
#
# Needs redis-server, redis-benchmark and beanstalkd (apt-get install -y
# redis-server redis-tools beanstalkd bc). Everything listens on
# 127.0.0.1 and stops by itself.
set -euo pipefail
build=${1:?usage: bench/compare.sh BUILD_DIR [ROUNDS]}
rounds=${2:-5}
daemon=$build/ratelimmqd
bench=$build/bench/ratelimmq-bench
compare=$build/bench/ratelimmq-compare
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

start_rlmq() { # port, extra flags...
    local port=$1
    shift
    "$daemon" --port "$port" --log-level error "$@" &
    pids+=($!)
    sleep 0.3
}

rate() { # bench output -> achieved requests per second
    awk '/achieved/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'
}

ratio() { # a b -> sets q to a / b and remembers it for median
    q=$(echo "scale=3; $1 / $2" | bc)
    ratios+=("$q")
}

median() { # prints the median of the ratios since the last call
    printf '%s\n' "${ratios[@]}" | sort -n |
        awk '{ v[NR] = $1 } END { print "  median ratio " v[int((NR + 1) / 2)] }'
    ratios=()
}
ratios=()

ping_run() { # port, connections, pipeline
    "$bench" --port "$1" --quiet ping --connections "$2" --pipeline "$3" \
        --duration 3 --warmup 1 | rate
}

redis-server --port 16390 --save '' --appendonly no --daemonize no \
    --loglevel warning >/dev/null &
pids+=($!)
beanstalkd -l 127.0.0.1 -p 16391 2>/dev/null &
pids+=($!)
start_rlmq 16392
start_rlmq 16393 --client-rate 1000000000 --global-rate 1000000000
start_rlmq 16396 --busy-poll-us 50

echo "PING, ratelimmqd vs redis-server (requests/s, ratio):"
for shape in "1 1" "50 1" "50 16"; do
    for r in $(seq "$rounds"); do
        a=$(ping_run 16392 $shape)
        b=$(ping_run 16390 $shape)
        ratio "$a" "$b"
        echo "  conns/pipeline $shape round $r: rlmq $a redis $b ratio $q"
    done
    median
done

echo "PING 50x16, limits on but never hit vs off:"
for r in $(seq "$rounds"); do
    off=$(ping_run 16392 50 16)
    on=$(ping_run 16393 50 16)
    ratio "$on" "$off"
    echo "  round $r: off $off on $on ratio $q"
done
median

echo "put/take/delete cycles, ratelimmqd vs beanstalkd:"
for c in 1 50; do
    for r in $(seq "$rounds"); do
        a=$("$compare" rlmq 16392 "$c" 3 | sed 's/.*cycles_per_s=//')
        b=$("$compare" beanstalkd 16391 "$c" 3 | sed 's/.*cycles_per_s=//')
        ratio "$a" "$b"
        echo "  connections $c round $r: rlmq $a beanstalkd $b ratio $q"
    done
    median
done

# The same with --busy-poll-us 50, an option beanstalkd has no match for:
# it trades a busy core for the wake-up a sleeping daemon costs.
echo "put/take/delete cycles, ratelimmqd --busy-poll-us 50 vs beanstalkd:"
for c in 1 50; do
    for r in $(seq "$rounds"); do
        a=$("$compare" rlmq 16396 "$c" 3 | sed 's/.*cycles_per_s=//')
        b=$("$compare" beanstalkd 16391 "$c" 3 | sed 's/.*cycles_per_s=//')
        ratio "$a" "$b"
        echo "  connections $c round $r: rlmq $a beanstalkd $b ratio $q"
    done
    median
done

# The bench must not be the bottleneck: against the same redis-server,
# ratelimmq-bench beside redis-benchmark at the same shape, and the bench
# against ratelimmqd. (redis-benchmark cannot drive ratelimmqd: it asks
# for CONFIG and expects RESP replies.)
echo "PING 50x16, ratelimmq-bench vs redis-benchmark (requests/s):"
rb() { # port -> requests per second
    redis-benchmark -p "$1" -t ping_inline -P 16 -c 50 -n 2000000 --csv |
        awk -F'"' '$2 == "PING_INLINE" { print $4 }'
}
for r in $(seq "$rounds"); do
    a=$(ping_run 16390 50 16)
    b=$(rb 16390)
    c=$(ping_run 16392 50 16)
    ratio "$a" "$b"
    echo "  round $r: redis-benchmark->redis $b, bench->redis $a," \
        "bench->rlmq $c, ratio bench/redis-benchmark $q"
done
median
