/*
 * hist: the log-linear histogram; see hist.h for the layout and its
 * error bound. Recording is a count-leading-zeros, a shift and an add,
 * cheap enough to run once per reply in the bench's hot loop.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t hist_index(uint64_t ns)
{
    if (ns < HIST_SUB_COUNT)
        return (size_t)ns;
    /* ns lies in [1024 << k, 2048 << k) with k >= 1. */
    unsigned msb = 63u - (unsigned)__builtin_clzll(ns);
    unsigned k = msb - 10;
    return HIST_SUB_COUNT + (size_t)(k - 1) * HIST_HALF_COUNT +
           (size_t)((ns >> k) - HIST_HALF_COUNT);
}

uint64_t hist_index_low(size_t idx)
{
    if (idx < HIST_SUB_COUNT)
        return idx;
    size_t j = idx - HIST_SUB_COUNT;
    unsigned k = (unsigned)(j / HIST_HALF_COUNT) + 1;
    uint64_t sub = (uint64_t)(j % HIST_HALF_COUNT) + HIST_HALF_COUNT;
    return sub << k;
}

uint64_t hist_index_high(size_t idx)
{
    if (idx < HIST_SUB_COUNT)
        return idx;
    unsigned k = (unsigned)((idx - HIST_SUB_COUNT) / HIST_HALF_COUNT) + 1;
    return hist_index_low(idx) + (1ULL << k) - 1;
}

void hist_record(struct hist *h, uint64_t ns)
{
    h->count++;
    h->sum += (double)ns;
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
    if (ns > HIST_MAX_NS)
        h->overflow++;
    else
        h->counts[hist_index(ns)]++;
}

int hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return 0;
    for (size_t i = 0; i < HIST_NCOUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->overflow += src->overflow;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    return 0;
}

uint64_t hist_rank(uint64_t count, double p)
{
    if (count == 0)
        return 0;
    /*
     * ceil(p * count / 100), with a relative slack so that a percentile
     * such as 99.9 (not exact in binary) of 1000 values is rank 999 and
     * not 1000.
     */
    double x = p * (double)count / 100.0;
    double r = ceil(x - x * 1e-12);
    if (r < 1.0)
        return 1;
    if (r > (double)count)
        return count;
    return (uint64_t)r;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p <= 0.0)
        return h->min;
    if (p >= 100.0)
        return h->max; /* exact, so no bucket and no overflow to hide */
    uint64_t rank = hist_rank(h->count, p);
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_NCOUNTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_index_high(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return HIST_OVERFLOW;
}

uint64_t hist_count(const struct hist *h)
{
    return h->count;
}

uint64_t hist_min(const struct hist *h)
{
    return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

double hist_stddev(const struct hist *h)
{
    if (h->count == 0)
        return 0.0;
    double mean = hist_mean(h);
    double acc = 0.0;
    for (size_t i = 0; i < HIST_NCOUNTS; i++) {
        if (h->counts[i] == 0)
            continue;
        double mid =
            ((double)hist_index_low(i) + (double)hist_index_high(i)) / 2.0;
        acc += (double)h->counts[i] * (mid - mean) * (mid - mean);
    }
    /* Overflow values are only known through the exact maximum. */
    if (h->overflow)
        acc += (double)h->overflow * ((double)h->max - mean) *
               ((double)h->max - mean);
    return sqrt(acc / (double)h->count);
}
