/*
 * hist: a log-linear latency histogram (the HdrHistogram idea, own code).
 *
 * Values are nanoseconds. The tracked range is 1 us to 1 hour at three
 * significant digits: every bucket is at most 1/1024 of its lower bound
 * wide, so a percentile read back is within 0.098% of the exact value.
 *
 * Layout: bucket 0 (the lowest bucket) is linear, 2048 counters of 1 ns
 * each, so it holds 0 to 2047 ns; everything below 1 us lands there, with
 * more precision than the range asks for, never dropped. Each later bucket
 * k = 1..31 covers [1024 << k, 2048 << k) ns in 1024 counters of width
 * 2^k. Values above HIST_MAX_NS (1 hour) are counted in a separate
 * overflow counter that every reader reports as overflow; no value is ever
 * clamped into the range. The exact minimum, maximum and sum are kept
 * beside the counters.
 *
 * Memory: a fixed 33792 counters of 8 bytes, 270336 bytes, plus a 40-byte
 * head: sizeof(struct hist) is 270376 bytes whatever is recorded. Callers
 * allocate it (calloc or static storage); nothing here allocates.
 */
#ifndef RLMQ_BENCH_HIST_H
#define RLMQ_BENCH_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_MIN_NS     1000ULL          /* 1 us */
#define HIST_MAX_NS     3600000000000ULL /* 1 hour */
#define HIST_SUB_COUNT  2048             /* counters in bucket 0 */
#define HIST_HALF_COUNT 1024             /* counters in buckets 1.. */
#define HIST_BUCKETS    32               /* bucket 0 and 1..31 */
#define HIST_NCOUNTS    (HIST_SUB_COUNT + 31 * HIST_HALF_COUNT)
#define HIST_OVERFLOW   UINT64_MAX /* a percentile in overflow */

struct hist {
    uint64_t count;    /* values recorded, overflow included */
    uint64_t overflow; /* values above HIST_MAX_NS */
    uint64_t min;      /* exact; UINT64_MAX when empty */
    uint64_t max;      /* exact; 0 when empty */
    double sum;        /* exact values summed, for the mean */
    uint64_t counts[HIST_NCOUNTS];
};

/* Empties h. Must be called before first use. */
void hist_reset(struct hist *h);

/* Counts one value of ns nanoseconds. Never fails. */
void hist_record(struct hist *h, uint64_t ns);

/* Adds every value of src to dst. Returns 0. */
int hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at percentile p (0 to 100) in ns: the smallest recorded value
 * v such that at least ceil(p * count / 100) values are <= v, read at
 * bucket resolution (the bucket's highest value, kept within the exact
 * min and max). p <= 0 gives the exact min, p >= 100 the exact max,
 * even above 1 hour. Returns 0 for an empty histogram and HIST_OVERFLOW
 * when the value at p lies above 1 hour, where there are no buckets.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* The rank (1-based) that hist_percentile reads for p, or 0 when empty. */
uint64_t hist_rank(uint64_t count, double p);

uint64_t hist_count(const struct hist *h);
uint64_t hist_min(const struct hist *h);  /* 0 when empty */
uint64_t hist_max(const struct hist *h);  /* 0 when empty; exact */
double hist_mean(const struct hist *h);   /* 0 when empty; exact */
double hist_stddev(const struct hist *h); /* from bucket midpoints */

/* The counter index a value in range lands in (ns <= HIST_MAX_NS). */
size_t hist_index(uint64_t ns);

/* The lowest and highest value a counter index stands for. */
uint64_t hist_index_low(size_t idx);
uint64_t hist_index_high(size_t idx);

#endif
