/*
 * run: one run of a workload against the server, from connecting to the
 * last reply, on a single-threaded epoll loop.
 *
 * In a closed loop each connection keeps --pipeline operations in flight
 * and starts the next one as soon as one finishes. In an open loop the
 * schedule (schedule.h) says when each operation is due, whatever the
 * server's speed; a due operation goes to the next connection with room,
 * and when none has room it waits in the schedule and its latency still
 * counts from its due time.
 */
#ifndef RLMQ_BENCH_RUN_H
#define RLMQ_BENCH_RUN_H

#include <stdint.h>

#include "opts.h"
#include "stats.h"

/* Where a failed run failed, for the one message main.c prints. */
enum run_stage {
    RUN_SETUP,   /* memory, epoll or timerfd */
    RUN_CONNECT, /* a connection could not be opened */
    RUN_LOST,    /* every connection was lost; st holds what was measured */
};

/*
 * Runs the workload of o at `rate` operations a second (0: closed loop)
 * and records into st, which the caller has stats_init()ed. Returns 0,
 * also when the hard deadline ended the run (st->complete is false then),
 * or -errno with *stage set.
 */
int run_bench(const struct bench_opts *o, uint64_t rate, struct stats *st,
              enum run_stage *stage);

#endif
