/*
 * opts: the bench's command line, parsed into one plain struct.
 *
 * Parsing never prints: a bad flag or value comes back as -EINVAL with a
 * one-line description of the problem, and main.c alone decides how to
 * show it and which exit status to use.
 */
#ifndef RLMQ_BENCH_OPTS_H
#define RLMQ_BENCH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OPTS_MAX_PCTS       32
#define OPTS_MAX_SWEEP      64
#define OPTS_MAX_CONNS      10000
#define OPTS_MAX_PIPELINE   4096
#define OPTS_MAX_SIZE       65000 /* fits the daemon's default --max-line */
#define OPTS_MIN_PIPE_SIZE  31    /* pipeline payload: a flag, two times */
#define OPTS_MAX_QUEUE_NAME 64

enum wl_kind { WL_PING, WL_PUT, WL_CYCLE, WL_PIPELINE };

struct bench_opts {
    enum wl_kind workload;
    char host[256];
    uint16_t port;
    unsigned connections; /* producers, for the pipeline workload */
    unsigned consumers;   /* pipeline workload only */
    unsigned pipeline;    /* operations in flight per connection */
    uint64_t rate;        /* operations/s over all connections; 0: closed */
    uint64_t duration_ns;
    uint64_t warmup_ns;
    uint64_t requests;   /* 0: run for duration_ns instead */
    uint64_t timeout_ns; /* hard deadline of one run */
    size_t size;         /* payload bytes */
    char prefix[OPTS_MAX_QUEUE_NAME + 1];
    unsigned queues;
    unsigned wait_ms; /* consumers' GET wait */
    double pcts[OPTS_MAX_PCTS];
    size_t npcts;
    uint64_t sweep[OPTS_MAX_SWEEP];
    size_t nsweep;
    const char *json_path;
    const char *hgrm_path;
    const char *svg_path;
    bool quiet; /* no progress line */
    bool help;
};

/*
 * Fills *o from argv (argv[0] is skipped). Returns 0, or -EINVAL with the
 * problem, without a trailing period, in err[0..errlen).
 */
int opts_parse(struct bench_opts *o, int argc, char **argv, char *err,
               size_t errlen);

/* Prints every flag with its default. */
void opts_usage(FILE *f);

/* "ping", "put", "cycle" or "pipeline". */
const char *opts_workload_name(enum wl_kind w);

/* What one operation of the workload is called: "request", "cycle"... */
const char *opts_op_unit(enum wl_kind w);

#endif
