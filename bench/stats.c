/*
 * stats: recording of one run's measurements; see stats.h.
 */
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int stats_init(struct stats *s)
{
    memset(s, 0, sizeof(*s));
    s->corrected = malloc(sizeof(struct hist));
    s->uncorrected = malloc(sizeof(struct hist));
    s->sec_hist = malloc(sizeof(struct hist));
    if (!s->corrected || !s->uncorrected || !s->sec_hist)
        return -ENOMEM;
    hist_reset(s->corrected);
    hist_reset(s->uncorrected);
    hist_reset(s->sec_hist);
    s->complete = true;
    return 0;
}

void stats_free(struct stats *s)
{
    free(s->corrected);
    free(s->uncorrected);
    free(s->sec_hist);
    free(s->series);
    memset(s, 0, sizeof(*s));
}

void stats_begin(struct stats *s, uint64_t start)
{
    s->sec_start = start;
}

static int close_second(struct stats *s)
{
    if (s->nseries == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct stats_point *p = realloc(s->series, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        s->series = p;
        s->cap = cap;
    }
    struct hist *h = s->sec_hist;
    s->series[s->nseries] = (struct stats_point){
        .second = (uint32_t)(s->nseries + 1),
        .count = hist_count(h),
        .p50 = hist_percentile(h, 50.0),
        .p99 = hist_percentile(h, 99.0),
        .max = hist_max(h),
    };
    s->nseries++;
    /* An empty second costs nothing to reset: skip the 270 KB memset. */
    if (hist_count(h))
        hist_reset(h);
    return 0;
}

int stats_tick(struct stats *s, uint64_t now)
{
    while (now >= s->sec_start + STATS_SECOND_NS) {
        int rc = close_second(s);
        if (rc)
            return rc;
        s->sec_start += STATS_SECOND_NS;
    }
    return 0;
}

int stats_latency(struct stats *s, uint64_t now, uint64_t due, uint64_t sent)
{
    int rc = 0;

    if (now >= s->sec_start + STATS_SECOND_NS)
        rc = stats_tick(s, now);
    /* A reply can never precede its request; guard the subtraction. */
    uint64_t cor = now > due ? now - due : 0;
    uint64_t unc = now > sent ? now - sent : 0;
    hist_record(s->corrected, cor);
    hist_record(s->uncorrected, unc);
    hist_record(s->sec_hist, cor);
    s->ops++;
    return rc;
}

int stats_end(struct stats *s)
{
    if (hist_count(s->sec_hist) == 0)
        return 0;
    return close_second(s);
}

uint64_t stats_errors(const struct stats *s)
{
    return s->err_replies + s->bad_replies + s->resets + s->lost;
}

double stats_rate(const struct stats *s)
{
    if (s->elapsed_ns == 0)
        return 0.0;
    return (double)s->ops * 1e9 / (double)s->elapsed_ns;
}
