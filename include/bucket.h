/*
 * Rate-limit token buckets: one per connection and one for the server.
 *
 * A bucket is a plain value the caller owns; nothing here allocates, reads
 * a clock or does I/O. Every call takes `now`, integer nanoseconds from a
 * monotonic clock, so the daemon passes its cached loop time and the tests
 * pass a fake clock.
 *
 * Guarantee (protocol.md, "Rate limits"), with time in whole nanoseconds
 * and T in seconds: requests admitted at times t1 <= t2 lie within a
 * stretch of T = t2 - t1 + 1 whole nanoseconds, and there are fewer than
 * burst + rate * T of them. A client that asks at the first nanosecond
 * each token is available, starting from a full bucket at s, has at least
 * burst + rate * T - 1 admitted in [s, s + T] for every T: in fact exactly
 * burst + floor(rate * T). There is no drift: the bounds hold over hours
 * as over microseconds, for every rate and burst, burst 1 included.
 *
 * Limits: 1 <= rate <= BUCKET_RATE_MAX and 1 <= burst <= BUCKET_BURST_MAX
 * for a bucket that is on. The caller validates configuration against these
 * and bucket_init() only asserts them. `now` should never go backwards; if
 * it does, the earlier time is treated as if no time had passed.
 */
#ifndef RLMQ_BUCKET_H
#define RLMQ_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

/* Level units per token: one token is 10^9 units, so one nanosecond at a
 * rate of r tokens per second adds exactly r units. */
#define BUCKET_UNIT      UINT64_C(1000000000)
#define BUCKET_RATE_MAX  UINT64_C(1000000000)
#define BUCKET_BURST_MAX UINT64_C(1000000000)

/* All fields are uint64_t so the struct has no padding and two buckets in
 * the same state compare equal with memcmp(). Treat as opaque. */
struct bucket {
    uint64_t rate;    /* tokens per second, = units per ns; 0 = off */
    uint64_t cap;     /* burst * BUCKET_UNIT + rate - 1, < 10^18 + 10^9 */
    uint64_t fill_ns; /* ceil(cap / rate): ns to fill from empty */
    uint64_t level;   /* units held at time `last`; level <= cap */
    uint64_t last;    /* time at which `level` was brought up to date */
};

/*
 * Set up a full bucket (burst tokens, no fraction) at time now. rate is in
 * requests per second; 0 turns the bucket off (it always admits). burst is
 * ignored when rate is 0.
 * Asserts the limits above.
 */
void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now);

/* True unless the bucket was initialised with rate 0. */
bool bucket_is_on(const struct bucket *b);

/*
 * Nanoseconds from now until one token is available: 0 if one is available
 * at now. Exact: with no take in between, a request at now + wait is
 * admitted and one at now + wait - 1 is not. Does not modify the bucket.
 * Always 0 for a bucket that is off.
 */
uint64_t bucket_wait_ns(const struct bucket *b, uint64_t now);

/*
 * Whole tokens available at now (at most burst); UINT64_MAX for a bucket
 * that is off. Does not modify the bucket. For statistics and tests; the
 * request path uses bucket_pair_admit().
 */
uint64_t bucket_tokens(const struct bucket *b, uint64_t now);

/* Take one token at now. Precondition: bucket_wait_ns(b, now) == 0. A
 * bucket that is off is left unchanged. */
void bucket_take(struct bucket *b, uint64_t now);

/*
 * The request path. The client bucket is checked first, then the global
 * one; only if both can admit is one token taken from each, and 0 returned.
 * Otherwise neither bucket is modified (not even brought up to date) and
 * the result is the wait in ns until both could admit: the larger of the
 * two bucket_wait_ns(). Either bucket may be off; neither may be NULL.
 */
uint64_t bucket_pair_admit(struct bucket *client, struct bucket *global,
                           uint64_t now);

/* wait_ns rounded up to whole milliseconds, for `ERR rate limited <ms>`:
 * waiting the returned number of ms is always long enough. */
uint64_t bucket_wait_ms(uint64_t wait_ns);

#endif
