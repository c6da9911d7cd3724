/*
 * stats: what one run measured, and the calls that record it.
 *
 * Only operations that belong to the measured window reach
 * stats_latency(); the driver decides that. Each latency goes to two
 * whole-run histograms, corrected (from the due time, which is the send
 * time in a closed loop) and uncorrected (from the send time), and to the
 * histogram of the current second. When a second ends its count, p50, p99
 * and max become one point of the series and that histogram is emptied,
 * so memory does not grow with the length of the run beyond 32 bytes a
 * second.
 *
 * Error counters cover the whole run, warmup included: an error is worth
 * seeing whenever it happened, and it never enters a latency.
 */
#ifndef RLMQ_BENCH_STATS_H
#define RLMQ_BENCH_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

#define STATS_SECOND_NS 1000000000ULL

struct stats_point {
    uint32_t second; /* 1 for the first second after the warmup */
    uint64_t count;
    uint64_t p50; /* ns, corrected */
    uint64_t p99;
    uint64_t max;
};

struct stats {
    /* What was run, for the reports. */
    uint64_t target_rate; /* 0: closed loop */
    uint64_t duration_ns; /* the measured window asked for */
    uint64_t warmup_ns;

    /* Counts. */
    uint64_t ops;          /* measured operations that succeeded */
    uint64_t lines_sent;   /* request lines written, whole run */
    uint64_t err_replies;  /* ERR replies but rate limited */
    uint64_t rate_limited; /* ERR rate limited */
    uint64_t bad_replies;  /* unparseable or unexpected replies */
    uint64_t resets;       /* connections lost */
    uint64_t lost;         /* measured operations never finished */
    uint64_t elapsed_ns;   /* warmup end to the last measured reply */
    bool complete;         /* false when the hard deadline ended it */

    struct hist *corrected;
    struct hist *uncorrected;

    /* The series, and the second being filled. */
    struct hist *sec_hist;
    uint64_t sec_start; /* start of the second being filled */
    struct stats_point *series;
    size_t nseries;
    size_t cap;
};

/* Allocates the histograms. 0 or -ENOMEM; stats_free() in both cases. */
int stats_init(struct stats *s);
void stats_free(struct stats *s);

/* The measured window starts at `start`: the first second begins. */
void stats_begin(struct stats *s, uint64_t start);

/*
 * Counts one measured operation that ended at `now`, due at `due` and sent
 * at `sent` (all ns on one monotonic clock). Returns 0 or -ENOMEM when
 * the series cannot grow; the latency is counted either way.
 */
int stats_latency(struct stats *s, uint64_t now, uint64_t due, uint64_t sent);

/* Closes every second that ended by `now`. 0 or -ENOMEM. */
int stats_tick(struct stats *s, uint64_t now);

/* Closes the last, partial second if anything landed in it. */
int stats_end(struct stats *s);

/* Errors of every kind but rate limiting. */
uint64_t stats_errors(const struct stats *s);

/* Achieved operations per second over the measured time; 0 if none. */
double stats_rate(const struct stats *s);

#endif
