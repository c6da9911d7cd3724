/*
 * sched: due times as exact integer functions of the request index; see
 * schedule.h. Splitting into whole seconds and a remainder keeps every
 * product below 2^64 for any index and any rate up to SCHED_MAX_RATE.
 */
#include "schedule.h"

#include <errno.h>

#define NS_PER_S 1000000000ULL

int sched_init(struct sched *s, uint64_t start, uint64_t rate)
{
    if (rate == 0 || rate > SCHED_MAX_RATE)
        return -EINVAL;
    s->start = start;
    s->rate = rate;
    s->taken = 0;
    return 0;
}

uint64_t sched_due_at(const struct sched *s, uint64_t k)
{
    /* floor(k * 1e9 / rate) without overflow: k = q * rate + r. */
    uint64_t q = k / s->rate;
    uint64_t r = k % s->rate;
    return s->start + q * NS_PER_S + (r * NS_PER_S) / s->rate;
}

uint64_t sched_due_count(const struct sched *s, uint64_t now)
{
    if (now < s->start)
        return 0;
    /*
     * Request k is due when floor(k * 1e9 / rate) <= t, that is when
     * k <= floor(((t + 1) * rate - 1) / 1e9); count = that + 1.
     */
    uint64_t t = now - s->start + 1;
    uint64_t q = t / NS_PER_S;
    uint64_t r = t % NS_PER_S;
    /* t * rate - 1 = q * rate * 1e9 + (r * rate - 1) */
    if (r == 0)
        return q * s->rate; /* q >= 1 here, since t >= 1 */
    return q * s->rate + (r * s->rate - 1) / NS_PER_S + 1;
}

uint64_t sched_backlog(const struct sched *s, uint64_t now)
{
    uint64_t due = sched_due_count(s, now);
    return due > s->taken ? due - s->taken : 0;
}

uint64_t sched_next_due(const struct sched *s)
{
    return sched_due_at(s, s->taken);
}

bool sched_take(struct sched *s, uint64_t now, uint64_t *due, uint64_t *k)
{
    uint64_t d = sched_next_due(s);
    if (d > now)
        return false;
    if (due)
        *due = d;
    if (k)
        *k = s->taken;
    s->taken++;
    return true;
}

int sched_rr_pick(struct sched_rr *rr, bool (*has_room)(void *, unsigned),
                  void *ctx)
{
    for (unsigned j = 0; j < rr->n; j++) {
        unsigned i = rr->next + j;
        if (i >= rr->n)
            i -= rr->n;
        if (has_room(ctx, i)) {
            rr->next = i + 1 == rr->n ? 0 : i + 1;
            return (int)i;
        }
    }
    return -EBUSY;
}
