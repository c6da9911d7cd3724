/*
 * Token buckets in exact integer arithmetic.
 *
 * Why a classic token bucket and not GCRA: GCRA keeps one "theoretical
 * arrival time" and advances it by the emission interval 10^9 / rate ns
 * per request. For most rates (3, 7, 999999937 ...) that interval is not
 * a whole number of nanoseconds, so GCRA either rounds it, and drifts by
 * up to 1 ns per request (hours of traffic at a high rate add up to many
 * extra or missing requests), or keeps time scaled by rate, and overflows
 * 64 bits once now * rate passes 2^64 (now = 2^63 ns, rate = 10^9). The
 * token bucket has no such interval: its level is kept in units of 10^-9
 * token, so one nanosecond adds exactly `rate` units and one token is
 * 10^9 units. A refill is then a single exact product with no remainder to
 * lose, whatever the rate, and a full bucket holds at most 10^18 units.
 *
 * Invariants:
 *   1. level <= full = burst * 10^9 <= 10^18.
 *   2. The level at any time t >= last is min(full, level + (t - last) *
 *      rate). Bringing the level up to date at an intermediate time gives
 *      the same result (min and + compose), so when or how often a bucket
 *      is refilled never changes what it admits: no drift.
 *   3. If t - last >= fill_ns = ceil(full / rate) the bucket is full,
 *      whatever it held. Otherwise (t - last) * rate < full, so the product
 *      never overflows, and the clamp-to-full covers idle gaps of any size.
 *
 * From 2, a token is taken only when at least 10^9 units are present, and
 * at most full + rate * T units enter over an interval of T ns, so at most
 * burst + rate * T / 10^9 requests are admitted in it. A client that asks
 * at every instant a token is available gets exactly burst + floor(rate *
 * T / 10^9) in [start, start + T], one short of the bound at worst.
 *
 * Cost on the request path (bucket_pair_admit() admitting): per bucket
 * that is on, a few compares, one 64-bit multiply, an add and two stores;
 * no division. A refusal costs one 64-bit division per bucket that is on,
 * to turn the missing units into an exact wait.
 */
#include "bucket.h"

#include <assert.h>
#include <stddef.h>

void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst,
                 uint64_t now)
{
    assert(rate <= BUCKET_RATE_MAX);
    b->rate = rate;
    b->last = now;
    if (rate == 0) {
        b->full = 0;
        b->fill_ns = 0;
        b->level = 0;
        return;
    }
    assert(burst >= 1 && burst <= BUCKET_BURST_MAX);
    b->full = burst * BUCKET_UNIT;
    b->fill_ns = b->full / rate + (b->full % rate != 0);
    b->level = b->full;
}

bool bucket_is_on(const struct bucket *b)
{
    return b->rate != 0;
}

/* An earlier `now` counts as `last`: no time passed, and `last` never moves
 * back, or the next refill would count the same nanoseconds twice. */
static uint64_t bucket_time(const struct bucket *b, uint64_t now)
{
    return now > b->last ? now : b->last;
}

/* Level in units at time t >= b->last (invariants 2 and 3). */
static uint64_t bucket_level_at(const struct bucket *b, uint64_t t)
{
    uint64_t elapsed = t - b->last;
    uint64_t level;

    if (elapsed >= b->fill_ns)
        return b->full;
    level = b->level + elapsed * b->rate;
    return level < b->full ? level : b->full;
}

/*
 * Whether a bucket that is on holds a token at now; if so, the level and
 * time to store when it is taken. Split from the store so that a pair is
 * checked completely before either bucket is written.
 */
static bool bucket_peek(const struct bucket *b, uint64_t now, uint64_t *level,
                        uint64_t *t)
{
    *t = bucket_time(b, now);
    *level = bucket_level_at(b, *t);
    return *level >= BUCKET_UNIT;
}

static void bucket_commit(struct bucket *b, uint64_t level, uint64_t t)
{
    assert(level >= BUCKET_UNIT && level <= b->full);
    b->level = level - BUCKET_UNIT;
    b->last = t;
}

uint64_t bucket_wait_ns(const struct bucket *b, uint64_t now)
{
    uint64_t level, t, need, wait;

    if (b->rate == 0 || bucket_peek(b, now, &level, &t))
        return 0;
    /* level < 10^9 <= full, so no clamp applies before the token is whole:
     * each ns adds exactly rate units, and the ceiling is exact. */
    need = BUCKET_UNIT - level;
    wait = need / b->rate + (need % b->rate != 0);
    /* Measured from the caller's now, even when it is before `last`. */
    if (t - now > UINT64_MAX - wait)
        return UINT64_MAX;
    return wait + (t - now);
}

uint64_t bucket_tokens(const struct bucket *b, uint64_t now)
{
    if (b->rate == 0)
        return UINT64_MAX;
    return bucket_level_at(b, bucket_time(b, now)) / BUCKET_UNIT;
}

void bucket_take(struct bucket *b, uint64_t now)
{
    uint64_t level, t;
    bool ok;

    if (b->rate == 0)
        return;
    ok = bucket_peek(b, now, &level, &t);
    assert(ok);
    (void)ok;
    bucket_commit(b, level, t);
}

uint64_t bucket_pair_admit(struct bucket *client, struct bucket *global,
                           uint64_t now)
{
    uint64_t c_level = 0, c_t = 0, g_level = 0, g_t = 0;
    uint64_t c_wait, g_wait;

    assert(client != NULL && global != NULL);
    if (client->rate != 0 && !bucket_peek(client, now, &c_level, &c_t))
        goto refused;
    if (global->rate != 0 && !bucket_peek(global, now, &g_level, &g_t))
        goto refused;
    if (client->rate != 0)
        bucket_commit(client, c_level, c_t);
    if (global->rate != 0)
        bucket_commit(global, g_level, g_t);
    return 0;

refused:
    c_wait = bucket_wait_ns(client, now);
    g_wait = bucket_wait_ns(global, now);
    return c_wait > g_wait ? c_wait : g_wait;
}

uint64_t bucket_wait_ms(uint64_t wait_ns)
{
    const uint64_t ns_per_ms = 1000000;

    /* Not (wait_ns + 999999) / 10^6, which wraps near UINT64_MAX. */
    return wait_ns / ns_per_ms + (wait_ns % ns_per_ms != 0);
}
