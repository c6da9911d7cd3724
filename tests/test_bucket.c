/*
 * Unit tests for the token buckets, on a fake clock.
 *
 * The properties checked are the ones protocol.md promises, not the
 * module's own arithmetic: the admission bound over every interval of
 * randomly driven buckets, the lower bound and the absence of drift when a
 * bucket is driven as hard as possible for hours, exact retry times, and
 * that a refused request changes neither bucket. Exact bounds need up to
 * 94-bit products (rate 10^9 times times near 2^63), so the checks use a
 * small two-word unsigned type rather than a compiler extension.
 *
 * Randomness comes from splitmix64 with a fixed seed, printed on failure;
 * RLMQ_TEST_SEED=<number> in the environment runs other seeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bucket.h"

#define NS_PER_S   UINT64_C(1000000000)
#define NS_PER_MS  UINT64_C(1000000)
#define SECOND     NS_PER_S
#define MINUTE     (60 * SECOND)
#define HOUR       (3600 * SECOND)
#define DAY        (24 * HOUR)
#define T63        (UINT64_C(1) << 63)
#define MAX_ADMITS 8192

/* ---- deterministic randomness ---- */

struct rng {
    uint64_t seed;
    uint64_t state;
};

static uint64_t base_seed(void)
{
    const char *s = getenv("RLMQ_TEST_SEED");

    return s != NULL ? strtoull(s, NULL, 0) : UINT64_C(0x7261746c696d6d71);
}

/* Each test gets its own stream so one test's failure reproduces alone. */
static void rng_init(struct rng *r, uint64_t salt)
{
    r->seed = base_seed() ^ salt;
    r->state = r->seed;
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform enough in [0, n] for test purposes; n may be UINT64_MAX. */
static uint64_t rng_upto(struct rng *r, uint64_t n)
{
    return n == UINT64_MAX ? rng_next(r) : rng_next(r) % (n + 1);
}

/* Spread over orders of magnitude: [0, 2^bits). */
static uint64_t rng_log(struct rng *r, unsigned max_bits)
{
    unsigned bits = (unsigned)rng_upto(r, max_bits);

    return bits == 0 ? 0 : rng_next(r) >> (64 - bits);
}

#define CHECK(r, cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("seed 0x%016" PRIx64 ": ", (r)->seed);                 \
            print_error(__VA_ARGS__);                                          \
            print_error("\n");                                                 \
            fail();                                                            \
        }                                                                      \
    } while (0)

/* ---- exact wide arithmetic for the bounds ---- */

struct u128 {
    uint64_t hi;
    uint64_t lo;
};

static struct u128 u128_mul(uint64_t a, uint64_t b)
{
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    struct u128 r;

    r.lo = (mid << 32) | (p00 & 0xffffffffu);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return r;
}

static struct u128 u128_add(struct u128 a, uint64_t b)
{
    a.lo += b;
    a.hi += a.lo < b;
    return a;
}

static bool u128_le(struct u128 a, struct u128 b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo <= b.lo);
}

/* ---- the bound checkers ---- */

/*
 * Index of the first admission that ends an interval holding more than
 * the upper bound allows, or n if there is none. Times are whole ns, so
 * admissions i <= j span T = t[j] - t[i] + 1 ns, and the bound is
 * (j - i + 1) * 10^9 < burst * 10^9 + rate * T. Not T = t[j] - t[i]: then
 * a burst-1 bucket would have to leave ceil(10^9 / rate) ns between
 * requests and fall behind its rate (bucket.c). In integers the bound is
 * A(i) <= B(j) with A(i) = rate * t[i] + (n + 1 - i) * 10^9 + 1 and B(j) =
 * rate * t[j] + (n + burst - j) * 10^9 + rate, all non-negative. Keeping
 * the largest A(i) so far checks every pair in one pass, and every interval
 * holds no more admissions than some [t[i], t[j]], so all intervals are
 * covered. Times must not decrease.
 */
static size_t upper_bound_violation(const uint64_t *t, size_t n, uint64_t rate,
                                    uint64_t burst)
{
    struct u128 max_a = {0, 0};

    for (size_t j = 0; j < n; j++) {
        struct u128 rt = u128_mul(rate, t[j] - t[0]);
        struct u128 a = u128_add(rt, (n + 1 - j) * NS_PER_S + 1);
        struct u128 b = u128_add(rt, (n + burst - j) * NS_PER_S + rate);

        if (!u128_le(max_a, a))
            a = max_a;
        max_a = a;
        if (!u128_le(max_a, b))
            return j;
    }
    return n;
}

/*
 * The lower bound for a bucket driven as hard as possible from a full
 * bucket at start: count admitted in [start, start + span_ns] must be at
 * least burst + rate * span - 1 (span in seconds), compared exactly, not
 * floor(burst + rate * span) - 1, which lets a bucket fall almost a whole
 * token further behind. A bucket that loses no refill admits burst +
 * floor(rate * span), so the exact bound is the tight one.
 */
static bool lower_bound_ok(uint64_t rate, uint64_t burst, uint64_t span_ns,
                           uint64_t count)
{
    struct u128 want = u128_add(u128_mul(rate, span_ns), burst * NS_PER_S);

    return u128_le(want, u128_mul(count + 1, NS_PER_S));
}

/* The checkers must themselves be able to fail, or the bound tests prove
 * nothing. */
static void test_checker_catches_excess(void **state)
{
    uint64_t t[16];
    struct u128 m = u128_mul(UINT64_MAX, UINT64_MAX);

    (void)state;
    assert_true(m.hi == UINT64_MAX - 1 && m.lo == 1);
    m = u128_mul(UINT64_C(1) << 40, UINT64_C(3) << 40);
    assert_true(m.hi == UINT64_C(3) << 16 && m.lo == 0);

    /* burst 3 at one instant is fine, a fourth is not. */
    memset(t, 0, sizeof(t));
    assert_int_equal(upper_bound_violation(t, 3, 7, 3), 3);
    assert_int_equal(upper_bound_violation(t, 4, 7, 3), 3);

    /* rate 3, burst 1: the k-th token is due at ceil(k * 10^9 / 3). That
     * admits two in 333333333 ns, fine in the 333333334 whole ns they
     * span; one ns earlier is one too many. */
    for (size_t k = 0; k < 16; k++)
        t[k] = (k * NS_PER_S + 2) / 3;
    assert_int_equal(upper_bound_violation(t, 16, 3, 1), 16);
    t[9]--;
    assert_int_equal(upper_bound_violation(t, 16, 3, 1), 9);

    /* rate 10^9, burst 1: one a ns, never two in one. */
    for (size_t k = 0; k < 16; k++)
        t[k] = UINT64_MAX - 15 + k;
    assert_int_equal(upper_bound_violation(t, 16, BUCKET_RATE_MAX, 1), 16);
    t[12] = t[11];
    assert_int_equal(upper_bound_violation(t, 16, BUCKET_RATE_MAX, 1), 12);

    /* A violation between two admissions far from the start. */
    for (size_t k = 0; k < 16; k++)
        t[k] = T63 + k * NS_PER_S;
    assert_int_equal(upper_bound_violation(t, 16, 1, 1), 16);
    t[15] = t[14] + NS_PER_S - 1;
    assert_int_equal(upper_bound_violation(t, 16, 1, 1), 15);

    /* rate 7, burst 1: the 9th token is whole at 8 * 10^9 / 7 ns, so by
     * 1142857143 ns (8.000000001 tokens' worth) 8 admitted is too few; by
     * 1142857142 (7.999999994) it is enough. */
    assert_false(lower_bound_ok(7, 1, 1142857143, 8));
    assert_true(lower_bound_ok(7, 1, 1142857143, 9));
    assert_true(lower_bound_ok(7, 1, 1142857142, 8));
    /* At a whole number of tokens, one short is still within the bound. */
    assert_true(lower_bound_ok(1, 10, 5 * NS_PER_S, 14));
    assert_false(lower_bound_ok(1, 10, 5 * NS_PER_S, 13));
    assert_true(lower_bound_ok(BUCKET_RATE_MAX, BUCKET_BURST_MAX, T63,
                               BUCKET_BURST_MAX + T63 - 1));
    assert_false(lower_bound_ok(BUCKET_RATE_MAX, BUCKET_BURST_MAX, T63,
                                BUCKET_BURST_MAX + T63 - 2));
}

/* ---- random bucket parameters and histories ---- */

static const uint64_t some_rates[] = {
    1, 3, 7, 1000, 999999937, BUCKET_RATE_MAX,
};
static const uint64_t some_bursts[] = {1, 2, 10, 64, BUCKET_BURST_MAX};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t pick_rate(struct rng *r)
{
    uint64_t rate;

    if (rng_upto(r, 1) == 0)
        return some_rates[rng_upto(r, LEN(some_rates) - 1)];
    rate = 1 + rng_log(r, 30);
    return rate < BUCKET_RATE_MAX ? rate : BUCKET_RATE_MAX;
}

/* Mostly small bursts, so that buckets run dry and refuse. */
static uint64_t pick_burst(struct rng *r)
{
    if (rng_upto(r, 7) == 0)
        return some_bursts[rng_upto(r, LEN(some_bursts) - 1)];
    return 1 + rng_log(r, 5);
}

static uint64_t period_ns(uint64_t rate)
{
    return (NS_PER_S + rate - 1) / rate;
}

/* A gap between arrivals: often near one token period, where the
 * boundaries are, sometimes zero, sometimes long enough to refill. */
static uint64_t pick_gap(struct rng *r, uint64_t rate, uint64_t burst)
{
    uint64_t p = period_ns(rate);

    switch (rng_upto(r, 5)) {
    case 0:
        return 0;
    case 1:
        return rng_upto(r, p);
    case 2:
        return p - 1 + rng_upto(r, 2);
    case 3:
        return rng_upto(r, burst < 64 ? burst * p : 64 * p);
    case 4:
        return rng_log(r, 40);
    default:
        return rng_upto(r, 3);
    }
}

/*
 * Two on buckets, each with a random rate and burst, and a shared random
 * past: both start full at one time and are drained by bursts of takes at
 * the same random times. Sharing the clock matters: a bucket whose last
 * take is far behind the other's would be full again by the time the pair
 * is asked, and never refuse together with it. *now is left at the time
 * of the last event.
 */
static void random_pair(struct rng *r, struct bucket *c, struct bucket *g,
                        uint64_t *now)
{
    struct bucket *b[2] = {c, g};
    uint64_t rate[2], burst[2];
    unsigned events = (unsigned)rng_upto(r, 12);

    *now = rng_upto(r, T63);
    for (unsigned i = 0; i < 2; i++) {
        rate[i] = pick_rate(r);
        burst[i] = pick_burst(r);
        bucket_init(b[i], rate[i], burst[i], *now);
    }
    for (unsigned e = 0; e < events; e++) {
        unsigned k = (unsigned)rng_upto(r, 1);

        /* Gaps sized for either bucket, so each sometimes runs dry. */
        *now += pick_gap(r, rate[k], burst[k]);
        for (unsigned i = 0; i < 2; i++) {
            uint64_t takes = rng_log(r, 7);

            while (takes-- > 0 && bucket_wait_ns(b[i], *now) == 0)
                bucket_take(b[i], *now);
        }
    }
}

/* ---- the upper bound under random arrivals ---- */

struct drive {
    struct bucket client;
    struct bucket global;
    uint64_t c_rate, c_burst, g_rate, g_burst;
    uint64_t admits[MAX_ADMITS];
    size_t n;
};

/*
 * One random arrival pattern of `arrivals` requests through
 * bucket_pair_admit(), recording admission times. The mix of gaps is
 * drawn per pattern, so some patterns hammer and others trickle; a quarter
 * of the arrivals after a refusal come exactly at, or 1 ns before, the
 * returned wait.
 */
static void drive_random(struct rng *r, struct drive *d, size_t arrivals)
{
    uint64_t now = rng_upto(r, T63 >> 1);
    uint64_t rate = d->c_rate ? d->c_rate : d->g_rate;
    uint64_t burst = d->c_rate ? d->c_burst : d->g_burst;
    uint64_t hammer = rng_upto(r, 3), wait = 0;

    bucket_init(&d->client, d->c_rate, d->c_burst, now);
    bucket_init(&d->global, d->g_rate, d->g_burst, now);
    d->n = 0;
    for (size_t i = 0; i < arrivals && d->n < MAX_ADMITS; i++) {
        uint64_t cw = bucket_wait_ns(&d->client, now);
        uint64_t gw = bucket_wait_ns(&d->global, now);
        uint64_t want = (cw | gw) == 0 ? 0 : (cw > gw ? cw : gw);

        wait = bucket_pair_admit(&d->client, &d->global, now);
        CHECK(r, wait == want, "pair_admit %" PRIu64 " != %" PRIu64, wait,
              want);
        if (wait == 0)
            d->admits[d->n++] = now;
        if (wait != 0 && rng_upto(r, 3) < hammer)
            now += wait - rng_upto(r, 1);
        else
            now += pick_gap(r, rate, burst);
    }
}

static void check_upper(struct rng *r, const struct drive *d)
{
    size_t j;

    if (d->c_rate != 0) {
        j = upper_bound_violation(d->admits, d->n, d->c_rate, d->c_burst);
        CHECK(r, j == d->n,
              "client rate %" PRIu64 " burst %" PRIu64 ": admission %zu"
              " at %" PRIu64 " exceeds the bound",
              d->c_rate, d->c_burst, j, j < d->n ? d->admits[j] : 0);
    }
    if (d->g_rate != 0) {
        j = upper_bound_violation(d->admits, d->n, d->g_rate, d->g_burst);
        CHECK(r, j == d->n,
              "global rate %" PRIu64 " burst %" PRIu64 ": admission %zu"
              " at %" PRIu64 " exceeds the bound",
              d->g_rate, d->g_burst, j, j < d->n ? d->admits[j] : 0);
    }
}

static void test_upper_bound_random(void **state)
{
    static const uint64_t cfg[][2] = {
        {1, 1},
        {1, 10},
        {3, 1},
        {3, 10},
        {7, 1},
        {7, 2},
        {7, BUCKET_BURST_MAX},
        {1000, 1},
        {1000, 10},
        {1000, BUCKET_BURST_MAX},
        {999999937, 3},
        {BUCKET_RATE_MAX, 1},
        {BUCKET_RATE_MAX, 10},
        {BUCKET_RATE_MAX, BUCKET_BURST_MAX},
    };
    static struct drive d;
    struct rng r;
    uint64_t patterns = 0, arrivals = 0, admitted = 0;

    (void)state;
    rng_init(&r, 1);
    /* Fixed configurations, each alone as client, alone as global, and
     * with a random partner; then random configurations. */
    for (size_t c = 0; c < LEN(cfg) + 40; c++) {
        uint64_t rate = c < LEN(cfg) ? cfg[c][0] : pick_rate(&r);
        uint64_t burst = c < LEN(cfg) ? cfg[c][1] : pick_burst(&r);

        for (unsigned p = 0; p < 1200; p++) {
            unsigned mode = p % 3;
            size_t len = 2 + (size_t)rng_log(&r, 11);

            d.c_rate = mode == 1 ? 0 : rate;
            d.c_burst = burst;
            d.g_rate = mode == 0 ? 0 : mode == 1 ? rate : pick_rate(&r);
            d.g_burst = mode == 2 ? pick_burst(&r) : burst;
            drive_random(&r, &d, len);
            check_upper(&r, &d);
            patterns++;
            arrivals += len;
            admitted += d.n;
        }
    }
    print_message("upper bound: %" PRIu64 " patterns, %" PRIu64
                  " arrivals, %" PRIu64 " admitted\n",
                  patterns, arrivals, admitted);
    assert_true(admitted > arrivals / 10 && admitted < arrivals);
}

/* ---- the lower bound and drift, driven as hard as possible ---- */

/*
 * From `start`, ask at every instant a token is available until
 * start + span: after an admission, again at the same instant; after a
 * refusal, exactly when the returned wait says. At every horizon T the
 * count of admissions in [start, start + T] must satisfy
 *   burst + rate * T - 1 <= count <= burst + rate * T   (T in seconds).
 * The count changes only at admissions, so checking the upper side at
 * each admission and the lower side just before the next one covers every
 * T. Returns the number of admissions.
 */
static uint64_t drive_hard(struct rng *r, uint64_t rate, uint64_t burst,
                           uint64_t start, uint64_t span, bool as_global)
{
    struct bucket b, off;
    uint64_t now = start, count = 0;

    bucket_init(&b, rate, burst, start);
    bucket_init(&off, 0, 0, start);
    while (now - start <= span) {
        uint64_t wait = as_global ? bucket_pair_admit(&off, &b, now)
                                  : bucket_pair_admit(&b, &off, now);
        struct u128 hi;

        if (wait == 0) {
            count++;
            hi = u128_add(u128_mul(rate, now - start), burst * NS_PER_S);
            CHECK(r, u128_le(u128_mul(count, NS_PER_S), hi),
                  "rate %" PRIu64 " burst %" PRIu64 ": %" PRIu64
                  " admitted by T=%" PRIu64 " ns, over the bound",
                  rate, burst, count, now - start);
            continue;
        }
        CHECK(r, lower_bound_ok(rate, burst, now + wait - 1 - start, count),
              "rate %" PRIu64 " burst %" PRIu64 ": only %" PRIu64
              " admitted by T=%" PRIu64 " ns, under the bound",
              rate, burst, count, now + wait - 1 - start);
        now += wait;
    }
    return count;
}

static void test_lower_bound_hard_drive(void **state)
{
    static const uint64_t cfg[][3] = {
        {1, 1, 7 * DAY},
        {3, 10, DAY},
        {7, 2, DAY},
        {7, 1, 2 * HOUR},
        {999, 1, 10 * MINUTE},
        {1000, 100, 10 * MINUTE},
        {999999937, 10, NS_PER_MS},
        {BUCKET_RATE_MAX, 1, NS_PER_MS},
        {BUCKET_RATE_MAX, 1000000, NS_PER_MS},
    };
    struct rng r;
    uint64_t runs = 0, admitted = 0;

    (void)state;
    rng_init(&r, 2);
    for (size_t c = 0; c < LEN(cfg); c++) {
        uint64_t start = c % 2 ? T63 - 8 * DAY : rng_upto(&r, T63);

        admitted +=
            drive_hard(&r, cfg[c][0], cfg[c][1], start, cfg[c][2], c % 2);
        runs++;
    }
    /* Random rates over spans that cost about 2^15 admissions each. The
     * burst is capped because each of its tokens costs one admission;
     * the largest bursts are covered by test_edges_extremes. */
    for (unsigned i = 0; i < 60; i++) {
        uint64_t rate = pick_rate(&r), burst = pick_burst(&r);

        if (burst > UINT64_C(1) << 16)
            burst = UINT64_C(1) << 16;
        uint64_t span = (UINT64_C(1) << 15) * period_ns(rate);

        admitted += drive_hard(&r, rate, burst, rng_upto(&r, T63), span, i % 2);
        runs++;
    }
    print_message("lower bound: %" PRIu64 " runs, %" PRIu64 " admitted\n", runs,
                  admitted);
}

/* ---- exact retry times ---- */

static void check_retry(struct rng *r, const struct bucket *b, uint64_t now)
{
    uint64_t wait = bucket_wait_ns(b, now), d, ms;

    if (wait == 0) {
        CHECK(r, bucket_tokens(b, now) >= 1, "wait 0 but no token");
        return;
    }
    CHECK(r, bucket_tokens(b, now) == 0, "token present but wait %" PRIu64,
          wait);
    CHECK(r, bucket_wait_ns(b, now + wait - 1) == 1,
          "not refused 1 ns before the wait %" PRIu64, wait);
    CHECK(r, bucket_wait_ns(b, now + wait) == 0,
          "refused at now + wait %" PRIu64, wait);
    /* The wait counts down exactly, ns for ns. */
    d = rng_upto(r, wait);
    CHECK(r, bucket_wait_ns(b, now + d) == wait - d,
          "wait %" PRIu64 " after %" PRIu64 " ns of %" PRIu64,
          bucket_wait_ns(b, now + d), d, wait);
    ms = bucket_wait_ms(wait);
    CHECK(r, bucket_wait_ns(b, now + ms * NS_PER_MS) == 0,
          "refused after the %" PRIu64 " ms advertised", ms);
}

static void test_retry_after_exact(void **state)
{
    struct rng r;
    uint64_t refused = 0, earlier = 0, pair_refused = 0;

    (void)state;
    rng_init(&r, 3);
    for (unsigned i = 0; i < 300000; i++) {
        struct bucket c, g, c2, g2;
        uint64_t now, wait, cw, gw;

        random_pair(&r, &c, &g, &now);
        now += rng_upto(&r, 3) == 0 ? 0 : pick_gap(&r, c.rate, 1);
        /* Sometimes a clock that went back: no time passed. */
        if (rng_upto(&r, 7) == 0) {
            now = c.last - rng_upto(&r, c.last < SECOND ? c.last : SECOND);
            earlier++;
        }
        check_retry(&r, &c, now);
        refused += bucket_wait_ns(&c, now) != 0;

        cw = bucket_wait_ns(&c, now);
        gw = bucket_wait_ns(&g, now);
        c2 = c;
        g2 = g;
        wait = bucket_pair_admit(&c2, &g2, now);
        if (wait == 0)
            continue;
        pair_refused++;
        CHECK(&r, wait == (cw > gw ? cw : gw), "pair wait %" PRIu64, wait);
        CHECK(&r, bucket_pair_admit(&c2, &g2, now + wait - 1) != 0,
              "pair admitted 1 ns before its wait %" PRIu64, wait);
        CHECK(&r, bucket_pair_admit(&c2, &g2, now + wait) == 0,
              "pair refused at its wait %" PRIu64, wait);
    }
    print_message("retry: 300000 states, %" PRIu64 " refused (%" PRIu64
                  " with an earlier now), %" PRIu64 " pairs refused\n",
                  refused, earlier, pair_refused);
    assert_true(refused > 30000 && pair_refused > 30000 && earlier > 10000);
}

static void test_wait_ms_rounding(void **state)
{
    static const uint64_t fixed[] = {
        0,          1, NS_PER_MS - 1, NS_PER_MS, NS_PER_MS + 1, UINT64_MAX - 1,
        UINT64_MAX,
    };
    struct rng r;

    (void)state;
    rng_init(&r, 4);
    assert_int_equal(bucket_wait_ms(0), 0);
    assert_int_equal(bucket_wait_ms(1), 1);
    assert_int_equal(bucket_wait_ms(NS_PER_MS), 1);
    assert_int_equal(bucket_wait_ms(NS_PER_MS + 1), 2);
    for (unsigned i = 0; i < 100000 + LEN(fixed); i++) {
        uint64_t ns = i < LEN(fixed) ? fixed[i] : rng_log(&r, 64);
        uint64_t ms = bucket_wait_ms(ns);

        /* The smallest ms with ms * 10^6 >= ns. */
        CHECK(&r, u128_le((struct u128){0, ns}, u128_mul(ms, NS_PER_MS)),
              "%" PRIu64 " ns rounded to %" PRIu64 " ms", ns, ms);
        CHECK(&r, ms == 0 || (ms - 1) * NS_PER_MS < ns,
              "%" PRIu64 " ns rounded to %" PRIu64 " ms", ns, ms);
    }
}

/* ---- a refused request takes nothing ---- */

static void test_refused_leaves_buckets_unchanged(void **state)
{
    struct rng r;
    uint64_t c_only = 0, g_only = 0, both = 0, admitted = 0;

    (void)state;
    rng_init(&r, 5);
    for (unsigned i = 0; i < 300000; i++) {
        struct bucket c, g, c0, g0, c1, g1;
        uint64_t now, wait, cw, gw, rate;

        random_pair(&r, &c, &g, &now);
        rate = rng_upto(&r, 1) ? c.rate : g.rate;
        if (rng_upto(&r, 9) == 0)
            bucket_init(rng_upto(&r, 1) ? &c : &g, 0, 0, now);
        now += rng_upto(&r, 3) == 0 ? 0 : pick_gap(&r, rate, 1);
        cw = bucket_wait_ns(&c, now);
        gw = bucket_wait_ns(&g, now);
        c0 = c;
        g0 = g;
        wait = bucket_pair_admit(&c, &g, now);
        if (cw == 0 && gw == 0) {
            /* Admitted: exactly one token from each bucket that is on. */
            c1 = c0;
            g1 = g0;
            bucket_take(&c1, now);
            bucket_take(&g1, now);
            CHECK(&r, wait == 0, "refused with both waits 0");
            CHECK(&r, memcmp(&c, &c1, sizeof(c)) == 0, "client token");
            CHECK(&r, memcmp(&g, &g1, sizeof(g)) == 0, "global token");
            admitted++;
            continue;
        }
        CHECK(&r, wait != 0, "admitted with waits %" PRIu64 ", %" PRIu64, cw,
              gw);
        CHECK(&r, memcmp(&c, &c0, sizeof(c)) == 0,
              "refused request changed the client bucket (waits %" PRIu64
              ", %" PRIu64 ")",
              cw, gw);
        CHECK(&r, memcmp(&g, &g0, sizeof(g)) == 0,
              "refused request changed the global bucket (waits %" PRIu64
              ", %" PRIu64 ")",
              cw, gw);
        c_only += cw != 0 && gw == 0;
        g_only += cw == 0 && gw != 0;
        both += cw != 0 && gw != 0;
    }
    print_message("unchanged: %" PRIu64 " refused by the client only, %" PRIu64
                  " by the global only, %" PRIu64 " by both, %" PRIu64
                  " admitted\n",
                  c_only, g_only, both, admitted);
    assert_true(c_only > 10000 && g_only > 10000 && both > 10000 &&
                admitted > 10000);
}

/* The global token a refused client did not take is there for the next
 * client, and the other way round. */
static void test_pair_admit_order(void **state)
{
    struct bucket c1, c2, g, before;

    (void)state;
    bucket_init(&g, 1, 1, 0);
    bucket_init(&c1, 1, 1, 0);
    bucket_init(&c2, 1, 1, 0);
    bucket_take(&c1, 0);

    /* The client refuses: the global keeps its one token. */
    before = g;
    assert_int_equal(bucket_pair_admit(&c1, &g, 10), NS_PER_S - 10);
    assert_memory_equal(&g, &before, sizeof(g));
    assert_int_equal(bucket_pair_admit(&c2, &g, 10), 0);
    assert_int_equal(bucket_tokens(&g, 10), 0);
    assert_int_equal(bucket_tokens(&c2, 10), 0);

    /* The global refuses: a client with a token keeps it. */
    bucket_init(&c2, 5, 2, 10);
    before = c2;
    assert_int_equal(bucket_pair_admit(&c2, &g, 20), NS_PER_S - 10);
    assert_memory_equal(&c2, &before, sizeof(c2));
    assert_int_equal(bucket_tokens(&c2, 20), 2);

    /* Both refuse: the longer wait wins, whichever bucket has it. Here
     * the global took its token 10 ns after c1, so its wait is longer. */
    assert_int_equal(bucket_wait_ns(&c1, 20), NS_PER_S - 20);
    assert_int_equal(bucket_pair_admit(&c1, &g, 20), NS_PER_S - 10);
    bucket_init(&c2, 1, 1, 5 * SECOND);
    bucket_take(&c2, 5 * SECOND);
    assert_int_equal(bucket_pair_admit(&c2, &g, 20), 6 * SECOND - 20);
    assert_int_equal(bucket_pair_admit(&g, &c2, 20), 6 * SECOND - 20);

    /* At the later of the two times, both admit together. */
    assert_int_equal(bucket_pair_admit(&c2, &g, 6 * SECOND), 0);
    assert_int_equal(bucket_tokens(&c2, 6 * SECOND), 0);
    assert_int_equal(bucket_tokens(&g, 6 * SECOND), 0);
}

/* ---- edges of the parameter range ---- */

/*
 * Tokens after draining `drain` tokens at `start` and waiting `gap`:
 * min(burst, burst - drain + floor(gap * rate / 10^9)), computed without
 * the module's shortcut through fill_ns.
 */
static uint64_t expect_tokens(uint64_t rate, uint64_t burst, uint64_t drain,
                              uint64_t gap)
{
    struct u128 added = u128_mul(gap, rate);

    if (u128_le(u128_mul(drain, NS_PER_S), added))
        return burst;
    return burst - drain + added.lo / NS_PER_S;
}

static void test_edges_refill_and_clamp(void **state)
{
    static const uint64_t cfg[][2] = {
        {1, 1},
        {1, BUCKET_BURST_MAX},
        {BUCKET_RATE_MAX, 1},
        {BUCKET_RATE_MAX, BUCKET_BURST_MAX},
        {3, 7},
        {999999937, 1000},
    };
    static const uint64_t starts[] = {0, T63 - 1, T63, UINT64_MAX / 2 + 12345};

    (void)state;
    for (size_t c = 0; c < LEN(cfg); c++) {
        for (size_t s = 0; s < LEN(starts); s++) {
            uint64_t rate = cfg[c][0], burst = cfg[c][1], t0 = starts[s];
            uint64_t drain = burst < 1000 ? burst : 1000;
            uint64_t fill = drain * ((NS_PER_S + rate - 1) / rate);
            const uint64_t gaps[] = {
                0,
                1,
                2,
                fill / 3,
                fill - 1,
                fill,
                fill + 1,
                UINT64_C(1) << 32,
                UINT64_C(1) << 62,
                UINT64_MAX - t0, /* the largest now there is */
            };
            struct bucket b;

            bucket_init(&b, rate, burst, t0);
            assert_int_equal(bucket_tokens(&b, t0), burst);
            for (uint64_t k = 0; k < drain; k++)
                bucket_take(&b, t0);
            for (size_t g = 0; g < LEN(gaps); g++) {
                uint64_t now = t0 + gaps[g];
                uint64_t want = expect_tokens(rate, burst, drain, gaps[g]);

                assert_int_equal(bucket_tokens(&b, now), want);
                assert_int_equal(bucket_wait_ns(&b, now) == 0, want >= 1);
            }
            /* An earlier now than the last take adds nothing. */
            if (t0 > 0)
                assert_int_equal(bucket_tokens(&b, t0 - 1), burst - drain);
            assert_int_equal(bucket_tokens(&b, 0), burst - drain);
        }
    }
}

static void test_edges_extremes(void **state)
{
    struct bucket b, before;
    uint64_t t;

    (void)state;
    /* rate 1, burst 1: one request a second, to the nanosecond. */
    bucket_init(&b, 1, 1, T63);
    bucket_take(&b, T63);
    assert_int_equal(bucket_wait_ns(&b, T63), NS_PER_S);
    assert_int_equal(bucket_wait_ns(&b, T63 + NS_PER_S - 1), 1);
    assert_int_equal(bucket_wait_ns(&b, T63 + NS_PER_S), 0);
    assert_int_equal(bucket_wait_ms(bucket_wait_ns(&b, T63 + 1)), 1000);

    /* Gaps of 2^63 ns and 2^64 - 1 ns (the largest times there are)
     * refill to burst, not to gap * rate. */
    bucket_init(&b, 1, 1, 0);
    bucket_take(&b, 0);
    assert_int_equal(bucket_tokens(&b, T63), 1);
    assert_int_equal(bucket_tokens(&b, UINT64_MAX), 1);
    bucket_take(&b, T63);
    assert_int_equal(bucket_wait_ns(&b, T63), NS_PER_S);
    bucket_init(&b, BUCKET_RATE_MAX, BUCKET_BURST_MAX, 0);
    bucket_take(&b, 0);
    assert_int_equal(bucket_tokens(&b, UINT64_MAX), BUCKET_BURST_MAX);

    /* rate 10^9, burst 10^9: a token every ns on top of the burst. */
    bucket_init(&b, BUCKET_RATE_MAX, BUCKET_BURST_MAX, T63);
    for (unsigned i = 0; i < 1000; i++)
        bucket_take(&b, T63);
    assert_int_equal(bucket_tokens(&b, T63), BUCKET_BURST_MAX - 1000);
    assert_int_equal(bucket_tokens(&b, T63 + 999), BUCKET_BURST_MAX - 1);
    assert_int_equal(bucket_tokens(&b, T63 + 1000), BUCKET_BURST_MAX);
    assert_int_equal(bucket_tokens(&b, UINT64_MAX), BUCKET_BURST_MAX);

    /* rate 10^9, burst 1: once a ns, never twice in one. */
    bucket_init(&b, BUCKET_RATE_MAX, 1, UINT64_MAX - 10);
    for (t = UINT64_MAX - 10; t < UINT64_MAX; t++) {
        assert_int_equal(bucket_wait_ns(&b, t), 0);
        bucket_take(&b, t);
        assert_int_equal(bucket_wait_ns(&b, t), 1);
    }

    /* A wait measured from an earlier now includes the time back to the
     * last take, and saturates rather than wrapping. */
    bucket_init(&b, 1, 1, UINT64_MAX - 5);
    bucket_take(&b, UINT64_MAX - 5);
    assert_int_equal(bucket_wait_ns(&b, UINT64_MAX - 105), NS_PER_S + 100);
    assert_int_equal(bucket_wait_ns(&b, 0), UINT64_MAX);
    before = b;
    assert_int_not_equal(bucket_pair_admit(&b, &b, 1), 0);
    assert_memory_equal(&b, &before, sizeof(b));
}

static void test_rate_off(void **state)
{
    struct bucket off, on, off0, on0;
    struct rng r;

    (void)state;
    rng_init(&r, 6);
    bucket_init(&off, 0, 0, 100);
    bucket_init(&on, 2, 1, 100);
    assert_false(bucket_is_on(&off));
    assert_true(bucket_is_on(&on));
    off0 = off;
    for (unsigned i = 0; i < 10000; i++) {
        uint64_t now = rng_log(&r, 64);

        assert_int_equal(bucket_wait_ns(&off, now), 0);
        assert_int_equal(bucket_tokens(&off, now), UINT64_MAX);
        bucket_take(&off, now);
        assert_int_equal(bucket_pair_admit(&off, &off, now), 0);
        assert_memory_equal(&off, &off0, sizeof(off));
    }

    /* Off on one side, the other bucket alone decides. */
    on0 = on;
    assert_int_equal(bucket_pair_admit(&off, &on, 100), 0);
    assert_int_equal(bucket_pair_admit(&on, &off, 100), NS_PER_S / 2);
    assert_int_equal(bucket_pair_admit(&off, &on, 100), NS_PER_S / 2);
    assert_memory_equal(&off, &off0, sizeof(off));
    bucket_init(&on, 2, 1, 100);
    assert_memory_equal(&on, &on0, sizeof(on));
}

/* ---- a clock that goes back ---- */

/*
 * Query times that wander backwards now and then. An earlier now counts as
 * no time passed, so each admission happens at the later of its query time
 * and the previous admission's time, and the bound must hold for those.
 */
static void test_clock_going_back(void **state)
{
    static uint64_t admits[MAX_ADMITS];
    struct rng r;
    uint64_t back = 0;

    (void)state;
    rng_init(&r, 7);
    for (unsigned p = 0; p < 2000; p++) {
        uint64_t rate = pick_rate(&r), burst = pick_burst(&r);
        uint64_t now = rng_upto(&r, T63), eff = now;
        struct bucket b, off;
        size_t n = 0, j;

        bucket_init(&b, rate, burst, now);
        bucket_init(&off, 0, 0, now);
        for (unsigned i = 0; i < 2000 && n < MAX_ADMITS; i++) {
            uint64_t q = now, wait;

            if (rng_upto(&r, 3) == 0) {
                q = now - rng_upto(&r, now < HOUR ? now : HOUR);
                back++;
            }
            wait = bucket_pair_admit(&b, &off, q);
            if (wait == 0) {
                eff = q > eff ? q : eff;
                admits[n++] = eff;
            }
            now += rng_upto(&r, 1) ? wait : pick_gap(&r, rate, burst);
        }
        j = upper_bound_violation(admits, n, rate, burst);
        CHECK(&r, j == n,
              "rate %" PRIu64 " burst %" PRIu64 ": admission %zu breaks"
              " the bound with a clock going back",
              rate, burst, j);
    }
    assert_true(back > 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches_excess),
        cmocka_unit_test(test_upper_bound_random),
        cmocka_unit_test(test_lower_bound_hard_drive),
        cmocka_unit_test(test_retry_after_exact),
        cmocka_unit_test(test_wait_ms_rounding),
        cmocka_unit_test(test_refused_leaves_buckets_unchanged),
        cmocka_unit_test(test_pair_admit_order),
        cmocka_unit_test(test_edges_refill_and_clamp),
        cmocka_unit_test(test_edges_extremes),
        cmocka_unit_test(test_rate_off),
        cmocka_unit_test(test_clock_going_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
