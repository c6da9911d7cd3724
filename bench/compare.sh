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
bean_pid=$!
start_rlmq 16392
rlmq_pid=$!
start_rlmq 16393 --client-rate 1000000000 --global-rate 1000000000
start_rlmq 16396 --busy-poll-us 0
sleeper_pid=$!

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

ticks() { # pid -> CPU time used so far, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Besides cycles per second, each server's own CPU time per cycle, from
# /proc. With one client process on a 2-core machine, the client needs a
# core of its own at 50 connections and caps both servers; the CPU time
# per cycle is what each server costs, whoever is the bottleneck.
cycles_vs_beanstalkd() { # port pid
    local cratios=() c r a b t0 t1 u0 u1 ca cb
    for c in 1 50; do
        for r in $(seq "$rounds"); do
            t0=$(ticks "$2")
            a=$("$compare" rlmq "$1" "$c" 3 | sed 's/.*cycles=\([0-9]*\).*cycles_per_s=/\1 /')
            t1=$(ticks "$2")
            u0=$(ticks "$bean_pid")
            b=$("$compare" beanstalkd 16391 "$c" 3 | sed 's/.*cycles=\([0-9]*\).*cycles_per_s=/\1 /')
            u1=$(ticks "$bean_pid")
            ca=$(echo "scale=2; ($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / ${a% *}" | bc)
            cb=$(echo "scale=2; ($u1 - $u0) * 1000000 / $(getconf CLK_TCK) / ${b% *}" | bc)
            ratio "${a#* }" "${b#* }"
            cratios+=("$(echo "scale=3; $cb / $ca" | bc)")
            echo "  connections $c round $r: rlmq ${a#* }/s ${ca} us CPU a cycle," \
                "beanstalkd ${b#* }/s ${cb} us, ratio $q, CPU ratio ${cratios[-1]}"
        done
        median
        printf '%s\n' "${cratios[@]}" | sort -n |
            awk '{ v[NR] = $1 } END { print "  median CPU ratio " v[int((NR + 1) / 2)] }'
        cratios=()
    done
}

echo "put/take/delete cycles, ratelimmqd vs beanstalkd:"
cycles_vs_beanstalkd 16392 "$rlmq_pid"

# The same with busy polling off: the daemon then sleeps whenever it runs
# out of work, as beanstalkd does. Its CPU time counts the wake-ups.
echo "put/take/delete cycles, ratelimmqd --busy-poll-us 0 vs beanstalkd:"
cycles_vs_beanstalkd 16396 "$sleeper_pid"

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
