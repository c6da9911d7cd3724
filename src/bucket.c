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
 * lose, whatever the rate, and a bucket holds less than 10^18 + 10^9 units.
 *
 * Why the level may pass burst * 10^9, by at most rate - 1 units: requests
 * are stamped in whole nanoseconds, so when a token becomes whole between
 * two of them a client driving the bucket hard asks at the next one, when
 * up to rate - 1 more units have come in. Clamping at burst * 10^9 would
 * throw those units away whenever the bucket is full at that moment, which
 * for burst 1 is at every token: the bucket then admits one request every
 * ceil(10^9 / rate) ns and falls behind for good (rate 999: 4 requests short
 * per hour; rate 6 * 10^8: 5 * 10^8 a second). So the cap is
 * burst * 10^9 + rate - 1, the most a nanosecond can leave over; it never
 * adds a whole token, so at most burst tokens are ever available.
 *
 * Invariants:
 *   1. level <= cap = burst * 10^9 + rate - 1 < 10^18 + 10^9.
 *   2. The level at any time t >= last is min(cap, level + (t - last) *
 *      rate). Bringing the level up to date at an intermediate time gives
 *      the same result (min and + compose), so when or how often a bucket
 *      is refilled never changes what it admits.
 *   3. If t - last >= fill_ns = ceil(cap / rate) the bucket is at cap,
 *      whatever it held. Otherwise (t - last) * rate < cap, so the product
 *      never overflows, and the clamp covers idle gaps of any size.
 *
 * Upper bound: the takes at t1..t2 need count * 10^9 units, and at most
 * cap + rate * (t2 - t1) = burst * 10^9 + rate * (t2 - t1 + 1) - 1 are there
 * for them, so count < burst + rate * T for the T = t2 - t1 + 1 whole ns
 * they span. Counting T as t2 - t1 instead cannot be met without drift at
 * burst 1: it forces ceil(10^9 / rate) ns between any two requests.
 *
 * Lower bound: a hard-driven bucket, once its burst is spent, holds less
 * than rate units after each take and at most 10^9 + rate - 1 <= cap at
 * the next, so the clamp never bites and no unit is lost. From a full
 * bucket at start, exactly burst + floor(rate * T / 10^9) requests are
 * admitted in [start, start + T], more than burst + rate * T / 10^9 - 1.
 *
 * Cost on the request path (bucket_pair_admit() admitting): per bucket
 * that is on, a few compares, one 64-bit multiply, an add and two stores;
 * no division. A refusal costs one 64-bit division per bucket that is on,
 * to turn the missing units into an exact wait.
 */
#include "bucket.h"

#include <assert.h>
#include <stddef.h>

void bucket_init(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
    assert(rate <= BUCKET_RATE_MAX);
    b->rate = rate;
    b->last = now;
    if (rate == 0) {
        b->cap = 0;
        b->fill_ns = 0;
        b->level = 0;
        return;
    }
    assert(burst >= 1 && burst <= BUCKET_BURST_MAX);
    b->cap = burst * BUCKET_UNIT + rate - 1;
    b->fill_ns = b->cap / rate + (b->cap % rate != 0);
    /* Full is burst whole tokens: the fraction above it is only ever
     * refill that came in since the last token became whole. */
    b->level = burst * BUCKET_UNIT;
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
        return b->cap;
    level = b->level + elapsed * b->rate;
    return level < b->cap ? level : b->cap;
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
    assert(level >= BUCKET_UNIT && level <= b->cap);
    b->level = level - BUCKET_UNIT;
    b->last = t;
}

uint64_t bucket_wait_ns(const struct bucket *b, uint64_t now)
{
    uint64_t level, t, need, wait;

    if (b->rate == 0 || bucket_peek(b, now, &level, &t))
        return 0;
    /* level < 10^9 <= cap, so no clamp applies before the token is whole:
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
