/*
 * ratelimmq-bench: the load generator's entry point.
 *
 * It parses the flags, runs one measurement (or one per --sweep rate),
 * prints the summary and writes the files asked for. This is the one
 * place that turns errors into messages and exit statuses: 2 for a bad
 * flag or value, 1 when the server cannot be reached or a file cannot be
 * written, 0 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "report.h"
#include "run.h"
#include "stats.h"
#include "svg.h"

#define PROG "ratelimmq-bench"

enum writer { W_JSON, W_HGRM, W_SVG };

static int write_file(const char *path, enum writer w,
                      const struct bench_opts *o, const struct stats *runs,
                      size_t n)
{
    FILE *f = fopen(path, "w");
    int rc;

    if (!f)
        return -errno;
    if (w == W_JSON)
        rc = report_json(f, o, runs, n);
    else if (w == W_HGRM)
        rc = report_hgrm(f, runs[0].corrected);
    else if (o->nsweep)
        rc = svg_sweep(f, o, runs, n);
    else
        rc = svg_run(f, o, &runs[0]);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

static int write_outputs(const struct bench_opts *o, const struct stats *runs,
                         size_t n)
{
    const char *paths[] = {o->json_path, o->hgrm_path, o->svg_path};

    for (int w = W_JSON; w <= W_SVG; w++) {
        if (!paths[w])
            continue;
        int rc = write_file(paths[w], (enum writer)w, o, runs, n);
        if (rc) {
            fprintf(stderr, PROG ": cannot write %s: %s\n", paths[w],
                    strerror(-rc));
            return 1;
        }
    }
    return 0;
}

static int run_failed(const struct bench_opts *o, enum run_stage stage, int rc)
{
    switch (stage) {
    case RUN_CONNECT:
        fprintf(stderr, PROG ": cannot connect to %s:%u: %s\n", o->host,
                o->port, strerror(-rc));
        break;
    case RUN_LOST:
        fprintf(stderr, PROG ": lost every connection to %s:%u\n", o->host,
                o->port);
        break;
    default:
        fprintf(stderr, PROG ": cannot run: %s\n", strerror(-rc));
        break;
    }
    return 1;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    char err[256];

    if (opts_parse(&o, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s; run '" PROG " --help'\n", err);
        return 2;
    }
    if (o.help) {
        opts_usage(stdout);
        return 0;
    }
    size_t n = o.nsweep ? o.nsweep : 1;
    struct stats *runs = calloc(n, sizeof(*runs));
    int status = 0;
    if (!runs) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        struct stats *st = &runs[i];
        enum run_stage stage;
        int rc = stats_init(st);
        if (rc == 0)
            rc = run_bench(&o, o.nsweep ? o.sweep[i] : o.rate, st, &stage);
        else
            stage = RUN_SETUP;
        if (rc) {
            if (stage == RUN_LOST)
                report_text(stdout, &o, st);
            status = run_failed(&o, stage, rc);
            break;
        }
        if (o.nsweep)
            report_text(stdout, &o, st);
        fflush(stdout);
    }
    if (status == 0) {
        if (o.nsweep)
            report_sweep_text(stdout, &o, runs, n);
        else
            report_text(stdout, &o, &runs[0]);
        status = write_outputs(&o, runs, n);
    }
    for (size_t i = 0; i < n; i++)
        stats_free(&runs[i]);
    free(runs);
    return status;
}
