/*
 * report: the bench's results as text for people, JSON for scripts and an
 * HdrHistogram percentile distribution (.hgrm) for the usual plotters.
 *
 * Every writer takes a FILE * so that tests can write to a memory stream
 * and read it back; each returns 0, or -EIO when the stream reports an
 * error. Latencies are shown in milliseconds everywhere.
 */
#ifndef RLMQ_BENCH_REPORT_H
#define RLMQ_BENCH_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "hist.h"
#include "opts.h"
#include "stats.h"

/* The summary of one run: rates, counts, errors, latency percentiles. */
int report_text(FILE *f, const struct bench_opts *o, const struct stats *st);

/* One line per run of a --sweep, under a header line. */
int report_sweep_text(FILE *f, const struct bench_opts *o,
                      const struct stats *runs, size_t n);

/*
 * One JSON object: the settings, summary and per-second series of a run,
 * or with --sweep {"sweep": [one such object per rate]}.
 */
int report_json(FILE *f, const struct bench_opts *o, const struct stats *runs,
                size_t n);

/*
 * h in the HdrHistogram percentile-distribution text format: a header,
 * lines of Value (ms), Percentile (0 to 1), TotalCount and
 * 1/(1-Percentile), five lines per halving of the distance to 100%, and
 * the #[Mean, #[Max and #[Buckets footer lines.
 */
int report_hgrm(FILE *f, const struct hist *h);

/* The latency at percentile p in ms; a negative value means above 1 h. */
double report_ms(const struct hist *h, double p);

#endif
