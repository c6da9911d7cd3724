/*
 * Unit tests for the bench's log-linear histogram (bench/hist.c).
 *
 * Every percentile read from the histogram is compared with the exact
 * value from the sorted samples at the same rank, and must lie within
 * 0.1% of it: on random data spanning the whole range, on all-equal
 * values, on two modes six decades apart, and at the range's extremes,
 * including values above one hour, which must be counted, never clamped.
 * Random data comes from splitmix64 with a fixed seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define US   1000ULL
#define MS   1000000ULL
#define SEC  1000000000ULL
#define HOUR (3600 * SEC)
#define TOL  0.001 /* 0.1% */

static uint64_t rng_state = 0x62656e6368697374ULL;

static uint64_t splitmix64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in log space between lo and hi: every decade gets samples. */
static uint64_t log_uniform(uint64_t lo, uint64_t hi)
{
    double u = (double)(splitmix64() >> 11) / 9007199254740992.0;

    return (uint64_t)exp(log((double)lo) +
                         u * (log((double)hi) - log((double)lo)));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The exact value at percentile p: rank ceil(p * n / 100), 1-based. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
    double r = ceil(p * (double)n / 100.0 - 1e-9);

    if (r < 1)
        r = 1;
    return sorted[(size_t)r - 1];
}

static struct hist *new_hist(void)
{
    struct hist *h = malloc(sizeof(*h));

    assert_non_null(h);
    hist_reset(h);
    return h;
}

static void assert_close(uint64_t got, uint64_t want, double p)
{
    double err = fabs((double)got - (double)want) / (double)want;

    if (err > TOL)
        fail_msg("p%g: got %llu, exact %llu (%.4f%% off)", p,
                 (unsigned long long)got, (unsigned long long)want, err * 100);
}

static const double pcts[] = {
    0.001, 0.1, 1,  5,  10,   25,   33.3,  50,     66.6,
    75,    90,  95, 99, 99.5, 99.9, 99.99, 99.999,
};

static void check_all(const struct hist *h, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(*pcts); i++)
        assert_close(hist_percentile(h, pcts[i]), exact(v, n, pcts[i]),
                     pcts[i]);
    assert_int_equal(hist_min(h), v[0]);
    assert_int_equal(hist_max(h), v[n - 1]);
    assert_int_equal(hist_percentile(h, 0), v[0]);
    assert_int_equal(hist_percentile(h, 100), v[n - 1]);
    assert_int_equal(hist_count(h), n);
}

static void test_random_against_exact(void **state)
{
    enum { N = 200000 };
    uint64_t *v = malloc(N * sizeof(*v));
    struct hist *h = new_hist();
    double sum = 0;

    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = log_uniform(US, HOUR);
        sum += (double)v[i];
        hist_record(h, v[i]);
    }
    assert_true(fabs(hist_mean(h) - sum / N) <= 1e-9 * sum / N);
    check_all(h, v, N);
    free(v);
    free(h);
}

static void test_narrow_random(void **state)
{
    /* Most samples in one bucket region: ranks, not just buckets. */
    enum { N = 50001 };
    uint64_t *v = malloc(N * sizeof(*v));
    struct hist *h = new_hist();

    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] = 250 * US + splitmix64() % (5 * US);
        hist_record(h, v[i]);
    }
    check_all(h, v, N);
    free(v);
    free(h);
}

static void test_all_equal(void **state)
{
    struct hist *h = new_hist();

    for (int i = 0; i < 10000; i++)
        hist_record(h, 123456789);
    /* Clamped to the exact min and max, every percentile is exact. */
    for (size_t i = 0; i < sizeof(pcts) / sizeof(*pcts); i++)
        assert_int_equal(hist_percentile(h, pcts[i]), 123456789);
    assert_true(hist_mean(h) == 123456789.0);
    assert_true(hist_stddev(h) < 123456789.0 * TOL);
    free(h);
}

static void test_two_far_modes(void **state)
{
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(*v));
    struct hist *h = new_hist();

    assert_non_null(v);
    for (size_t i = 0; i < N; i++) {
        v[i] =
            i % 2 ? 2 * SEC + splitmix64() % MS : 5 * US + splitmix64() % 100;
        hist_record(h, v[i]);
    }
    check_all(h, v, N);
    assert_true(hist_percentile(h, 50) < 6 * US);
    assert_true(hist_percentile(h, 50.01) >= 2 * SEC);
    free(v);
    free(h);
}

static void test_one_microsecond(void **state)
{
    struct hist *h = new_hist();

    hist_record(h, US);
    hist_record(h, US + 1);
    /* 1 ns resolution below 2048 ns: exact at the bottom of the range. */
    assert_int_equal(hist_percentile(h, 50), US);
    assert_int_equal(hist_percentile(h, 99), US + 1);
    assert_int_equal(hist_min(h), US);
    assert_int_equal(h->overflow, 0);
    free(h);
}

static void test_one_hour(void **state)
{
    struct hist *h = new_hist();

    hist_record(h, HOUR);
    hist_record(h, HOUR - 1);
    assert_int_equal(h->overflow, 0);
    assert_close(hist_percentile(h, 50), HOUR - 1, 50);
    assert_int_equal(hist_percentile(h, 99), HOUR);
    assert_int_equal(hist_max(h), HOUR);
    free(h);
}

static void test_above_one_hour(void **state)
{
    struct hist *h = new_hist();

    for (int i = 0; i < 90; i++)
        hist_record(h, MS);
    for (int i = 0; i < 10; i++)
        hist_record(h, 2 * HOUR + (uint64_t)i);
    /* Counted, not clamped, and reported as beyond the range. */
    assert_int_equal(hist_count(h), 100);
    assert_int_equal(h->overflow, 10);
    assert_int_equal(hist_max(h), 2 * HOUR + 9);
    assert_int_equal(hist_percentile(h, 100), 2 * HOUR + 9);
    assert_int_equal(hist_percentile(h, 95), HIST_OVERFLOW);
    assert_close(hist_percentile(h, 90), MS, 90);
    assert_true(
        fabs(hist_mean(h) - (90.0 * MS + 10.0 * 2 * HOUR + 45) / 100.0) < 1.0);
    free(h);
}

static void test_bucket_bounds(void **state)
{
    /* Every value lies in its counter, which is at most 1/1024 wide. */
    for (int i = 0; i < 100000; i++) {
        uint64_t v = i < 3000 ? (uint64_t)i : log_uniform(1, HOUR);
        size_t idx = hist_index(v);
        uint64_t lo = hist_index_low(idx), hi = hist_index_high(idx);
        assert_true(idx < HIST_NCOUNTS);
        assert_true(lo <= v && v <= hi);
        assert_true(hi - lo + 1 <= (lo / 1024 > 1 ? lo / 1024 : 1));
    }
    assert_true(hist_index(HOUR) < HIST_NCOUNTS);
}

static void test_fixed_memory(void **state)
{
    /* The size the head comment of hist.h promises. */
    assert_int_equal(sizeof(struct hist), 270376);
}

static void test_merge_and_rank(void **state)
{
    struct hist *a = new_hist(), *b = new_hist();

    for (uint64_t i = 1; i <= 1000; i++)
        hist_record(i % 2 ? a : b, i * US);
    hist_merge(a, b);
    assert_int_equal(hist_count(a), 1000);
    assert_int_equal(hist_min(a), US);
    assert_int_equal(hist_max(a), 1000 * US);
    assert_close(hist_percentile(a, 99.9), 999 * US, 99.9);
    assert_int_equal(hist_rank(1000, 99.9), 999);
    assert_int_equal(hist_rank(3, 50), 2);
    assert_int_equal(hist_rank(0, 50), 0);
    hist_reset(b);
    assert_int_equal(hist_percentile(b, 50), 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_exact),
        cmocka_unit_test(test_narrow_random),
        cmocka_unit_test(test_all_equal),
        cmocka_unit_test(test_two_far_modes),
        cmocka_unit_test(test_one_microsecond),
        cmocka_unit_test(test_one_hour),
        cmocka_unit_test(test_above_one_hour),
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_fixed_memory),
        cmocka_unit_test(test_merge_and_rank),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
