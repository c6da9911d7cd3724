/*
 * sched: the open-loop schedule, a pure function of the clock.
 *
 * Request k of a run is due at start + k * 1e9 / rate ns, computed in
 * exact integer arithmetic from k itself rather than by adding an interval
 * to the previous due time, so rounding never accumulates into drift.
 *
 * The schedule is also the backlog: a request that is due but has no free
 * connection stays in the schedule (not taken) and keeps its due time, so
 * when the client catches up after a stall every missed request still
 * counts from when it was due. Nothing here reads a clock; `now` is always
 * passed in, which lets the tests drive it on a fake clock.
 */
#ifndef RLMQ_BENCH_SCHEDULE_H
#define RLMQ_BENCH_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define SCHED_MAX_RATE 1000000000ULL /* one request per ns */

struct sched {
    uint64_t start; /* due time of request 0, ns */
    uint64_t rate;  /* requests per second, 1..SCHED_MAX_RATE */
    uint64_t taken; /* requests handed out so far */
};

/* Starts a schedule at `start`. -EINVAL when rate is 0 or too high. */
int sched_init(struct sched *s, uint64_t start, uint64_t rate);

/* The due time of request k (0-based). */
uint64_t sched_due_at(const struct sched *s, uint64_t k);

/* How many requests are due at `now`: those with a due time <= now. */
uint64_t sched_due_count(const struct sched *s, uint64_t now);

/* Requests due at `now` and not yet taken (the backlog). */
uint64_t sched_backlog(const struct sched *s, uint64_t now);

/* The due time of the next request not yet taken. */
uint64_t sched_next_due(const struct sched *s);

/*
 * Takes the next request when it is due at `now`: stores its due time in
 * *due and its index in *k (either may be NULL) and returns true; returns
 * false, changing nothing, when the next request is not due yet.
 */
bool sched_take(struct sched *s, uint64_t now, uint64_t *due, uint64_t *k);

/*
 * Round-robin choice of the connection that sends the next due request.
 * Starting after the connection chosen last spreads the requests evenly
 * when the rate is below the number of connections, instead of sending
 * them all on the first one.
 */
struct sched_rr {
    unsigned n;    /* connections */
    unsigned next; /* where the next search starts */
};

/*
 * Returns the first connection from the cursor on for which has_room(ctx,
 * i) is true and moves the cursor past it, or -EBUSY when none has room.
 */
int sched_rr_pick(struct sched_rr *rr, bool (*has_room)(void *, unsigned),
                  void *ctx);

#endif
