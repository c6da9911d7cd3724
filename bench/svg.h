/*
 * svg: charts of the bench's results as standalone SVG files that open
 * in any browser, with no script and no external resource.
 *
 * Like the other writers these take a FILE * and return 0 or -EIO.
 */
#ifndef RLMQ_BENCH_SVG_H
#define RLMQ_BENCH_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "opts.h"
#include "stats.h"

/*
 * Two panels: latency by percentile on a log 1/(1-p) axis, corrected and
 * uncorrected; and p50 and p99 of each second over the run.
 */
int svg_run(FILE *f, const struct bench_opts *o, const struct stats *st);

/* One panel: p50 and p99 latency against achieved throughput. */
int svg_sweep(FILE *f, const struct bench_opts *o, const struct stats *runs,
              size_t n);

#endif
