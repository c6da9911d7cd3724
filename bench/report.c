/*
 * report: the text, JSON and .hgrm writers; see report.h.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define HGRM_TICKS_PER_HALF 5

typedef unsigned long long ull;

double report_ms(const struct hist *h, double p)
{
    uint64_t v = hist_percentile(h, p);

    return v == HIST_OVERFLOW ? -1.0 : (double)v / 1e6;
}

static int done(FILE *f)
{
    return ferror(f) ? -EIO : 0;
}

/* "99.9" for 99.9, "50" for 50: the shortest exact-looking form. */
static void pct_label(char *buf, size_t len, double p)
{
    snprintf(buf, len, "%.6g", p);
}

static const char *loop_name(const struct stats *st)
{
    return st->target_rate ? "open loop" : "closed loop";
}

/* ---- text ---- */

static void text_ms(FILE *f, double ms)
{
    if (ms < 0)
        fprintf(f, " %12s", ">3600000");
    else
        fprintf(f, " %12.3f", ms);
}

static void text_row(FILE *f, const char *name, double a, double b, bool two)
{
    fprintf(f, "    %-10s", name);
    text_ms(f, a);
    if (two)
        text_ms(f, b);
    fputc('\n', f);
}

int report_text(FILE *f, const struct bench_opts *o, const struct stats *st)
{
    const char *unit = opts_op_unit(o->workload);
    const struct hist *c = st->corrected;
    const struct hist *u = st->uncorrected;
    bool two = st->target_rate != 0;

    fprintf(f, "ratelimmq-bench: %s on %s:%u, %u connections",
            opts_workload_name(o->workload), o->host, o->port, o->connections);
    if (o->workload == WL_PIPELINE)
        fprintf(f, " + %u consumers", o->consumers);
    fprintf(f, ", pipeline %u, %s\n", o->pipeline, loop_name(st));
    fprintf(f,
            "  measured       %llu %ss in %.3f s (warmup %.3f s "
            "excluded)%s\n",
            (ull)st->ops, unit, (double)st->elapsed_ns / 1e9,
            (double)st->warmup_ns / 1e9,
            st->complete ? "" : ", STOPPED AT THE DEADLINE");
    if (st->target_rate)
        fprintf(f, "  target rate    %llu %ss/s\n", (ull)st->target_rate, unit);
    else
        fprintf(f, "  target rate    none (closed loop)\n");
    fprintf(f, "  achieved rate  %.1f %ss/s\n", stats_rate(st), unit);
    fprintf(f, "  requests sent  %llu lines\n", (ull)st->lines_sent);
    fprintf(f,
            "  errors         %llu (ERR replies %llu, bad replies %llu, "
            "connections lost %llu, unfinished %llu)\n",
            (ull)stats_errors(st), (ull)st->err_replies, (ull)st->bad_replies,
            (ull)st->resets, (ull)st->lost);
    fprintf(f, "  rate limited   %llu\n", (ull)st->rate_limited);
    /* Corrected minus uncorrected is the time from due to sent. */
    if (two && hist_count(c))
        fprintf(f,
                "  send lag       %.3f ms mean from due time to sent "
                "(the bench's own delay, or its backlog)\n",
                (hist_mean(c) - hist_mean(u)) / 1e6);
    fprintf(f, "  latency (ms)%s\n", two ? "    corrected  uncorrected" : "");
    text_row(f, "min", (double)hist_min(c) / 1e6, (double)hist_min(u) / 1e6,
             two);
    text_row(f, "mean", hist_mean(c) / 1e6, hist_mean(u) / 1e6, two);
    for (size_t i = 0; i < o->npcts; i++) {
        char name[32];
        char label[24];
        pct_label(label, sizeof(label), o->pcts[i]);
        snprintf(name, sizeof(name), "p%s", label);
        text_row(f, name, report_ms(c, o->pcts[i]), report_ms(u, o->pcts[i]),
                 two);
    }
    text_row(f, "max", (double)hist_max(c) / 1e6, (double)hist_max(u) / 1e6,
             two);
    return done(f);
}

int report_sweep_text(FILE *f, const struct bench_opts *o,
                      const struct stats *runs, size_t n)
{
    fprintf(f, "%12s %14s %10s %10s %10s %8s %8s\n", "target/s", "achieved/s",
            "p50 ms", "p99 ms", "max ms", "errors", "limited");
    for (size_t i = 0; i < n; i++) {
        const struct stats *st = &runs[i];
        fprintf(f, "%12llu %14.1f %10.3f %10.3f %10.3f %8llu %8llu%s\n",
                (ull)st->target_rate, stats_rate(st),
                report_ms(st->corrected, 50), report_ms(st->corrected, 99),
                (double)hist_max(st->corrected) / 1e6, (ull)stats_errors(st),
                (ull)st->rate_limited, st->complete ? "" : "  (deadline)");
    }
    return done(f);
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_ms(FILE *f, double ms)
{
    if (ms < 0)
        fputs("null", f);
    else
        fprintf(f, "%.6f", ms);
}

static void json_latency(FILE *f, const struct bench_opts *o,
                         const struct hist *h)
{
    fprintf(f, "{\"count\": %llu, \"overflow\": %llu, \"min\": ",
            (ull)hist_count(h), (ull)h->overflow);
    json_ms(f, (double)hist_min(h) / 1e6);
    fputs(", \"mean\": ", f);
    json_ms(f, hist_mean(h) / 1e6);
    fputs(", \"stddev\": ", f);
    json_ms(f, hist_stddev(h) / 1e6);
    fputs(", \"max\": ", f);
    json_ms(f, (double)hist_max(h) / 1e6);
    fputs(", \"percentiles\": {", f);
    for (size_t i = 0; i < o->npcts; i++) {
        char label[24];
        pct_label(label, sizeof(label), o->pcts[i]);
        fprintf(f, "%s\"%s\": ", i ? ", " : "", label);
        json_ms(f, report_ms(h, o->pcts[i]));
    }
    fputs("}}", f);
}

static void json_series(FILE *f, const struct stats *st)
{
    fputs("[", f);
    for (size_t i = 0; i < st->nseries; i++) {
        const struct stats_point *p = &st->series[i];
        fprintf(f, "%s\n    {\"second\": %u, \"count\": %llu, \"p50\": ",
                i ? "," : "", p->second, (ull)p->count);
        json_ms(f, p->p50 == HIST_OVERFLOW ? -1.0 : (double)p->p50 / 1e6);
        fputs(", \"p99\": ", f);
        json_ms(f, p->p99 == HIST_OVERFLOW ? -1.0 : (double)p->p99 / 1e6);
        fputs(", \"max\": ", f);
        json_ms(f, (double)p->max / 1e6);
        fputs("}", f);
    }
    fputs(st->nseries ? "\n  ]" : "]", f);
}

static void json_run(FILE *f, const struct bench_opts *o,
                     const struct stats *st)
{
    fputs("{\n  \"workload\": ", f);
    json_str(f, opts_workload_name(o->workload));
    fputs(",\n  \"unit\": ", f);
    json_str(f, opts_op_unit(o->workload));
    fputs(",\n  \"host\": ", f);
    json_str(f, o->host);
    fprintf(f,
            ",\n  \"port\": %u,\n  \"connections\": %u,\n"
            "  \"consumers\": %u,\n  \"pipeline\": %u,\n"
            "  \"size\": %zu,\n  \"queues\": %u,\n  \"mode\": \"%s\",\n",
            o->port, o->connections,
            o->workload == WL_PIPELINE ? o->consumers : 0, o->pipeline, o->size,
            o->queues, st->target_rate ? "open" : "closed");
    if (st->target_rate)
        fprintf(f, "  \"target_rate\": %llu,\n", (ull)st->target_rate);
    else
        fputs("  \"target_rate\": null,\n", f);
    if (st->duration_ns)
        fprintf(f, "  \"duration_s\": %.3f,\n", (double)st->duration_ns / 1e9);
    else
        fputs("  \"duration_s\": null,\n", f);
    fprintf(f,
            "  \"warmup_s\": %.3f,\n  \"requests\": %llu,\n"
            "  \"lines_sent\": %llu,\n  \"elapsed_s\": %.6f,\n"
            "  \"achieved_rate\": %.3f,\n  \"complete\": %s,\n",
            (double)st->warmup_ns / 1e9, (ull)st->ops, (ull)st->lines_sent,
            (double)st->elapsed_ns / 1e9, stats_rate(st),
            st->complete ? "true" : "false");
    fprintf(f,
            "  \"errors\": {\"total\": %llu, \"err_replies\": %llu, "
            "\"bad_replies\": %llu, \"connections_lost\": %llu, "
            "\"unfinished\": %llu},\n  \"rate_limited\": %llu,\n",
            (ull)stats_errors(st), (ull)st->err_replies, (ull)st->bad_replies,
            (ull)st->resets, (ull)st->lost, (ull)st->rate_limited);
    fputs("  \"latency_ms\": {\n    \"corrected\": ", f);
    json_latency(f, o, st->corrected);
    fputs(",\n    \"uncorrected\": ", f);
    json_latency(f, o, st->uncorrected);
    fputs("\n  },\n  \"series\": ", f);
    json_series(f, st);
    fputs("\n}", f);
}

int report_json(FILE *f, const struct bench_opts *o, const struct stats *runs,
                size_t n)
{
    if (!o->nsweep) {
        json_run(f, o, &runs[0]);
    } else {
        fputs("{\"sweep\": [\n", f);
        for (size_t i = 0; i < n; i++) {
            json_run(f, o, &runs[i]);
            fputs(i + 1 < n ? ",\n" : "\n", f);
        }
        fputs("]}", f);
    }
    fputc('\n', f);
    return done(f);
}

/* ---- .hgrm ---- */

/*
 * The next percentile level after `level`, as HdrHistogram's percentile
 * iterator steps: a fixed number of steps per halving of the distance
 * to 100%, so the tail gets as many lines as the body.
 */
static double next_level(double level)
{
    double halvings = floor(log2(100.0 / (100.0 - level)));
    double ticks = HGRM_TICKS_PER_HALF * pow(2.0, halvings + 1);

    return level + 100.0 / ticks;
}

int report_hgrm(FILE *f, const struct hist *h)
{
    uint64_t total = hist_count(h);
    uint64_t cum = 0;
    size_t idx = 0;

    fprintf(f, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
            "1/(1-Percentile)");
    for (double level = 0.0; total && level < 100.0;
         level = next_level(level)) {
        uint64_t rank = hist_rank(total, level);
        /* Levels only grow, so the walk over the counters goes on. */
        while (cum < rank && idx < HIST_NCOUNTS)
            cum += h->counts[idx++];
        if (cum < rank)
            break; /* the rest lies above 1 h: only the max is known */
        uint64_t v = hist_index_high(idx - 1);
        if (v > hist_max(h))
            v = hist_max(h);
        fprintf(f, "%12.3f %2.12f %10llu %14.2f\n", (double)v / 1e6,
                level / 100.0, (ull)cum, 1.0 / (1.0 - level / 100.0));
        if (cum >= total)
            break; /* every later level reads this same last bucket */
    }
    if (total)
        fprintf(f, "%12.3f %2.12f %10llu\n", (double)hist_max(h) / 1e6, 1.0,
                (ull)total);
    fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
            hist_mean(h) / 1e6, hist_stddev(h) / 1e6);
    fprintf(f, "#[Max     = %12.3f, Total count    = %12llu]\n",
            (double)hist_max(h) / 1e6, (ull)total);
    fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n", HIST_BUCKETS,
            HIST_SUB_COUNT);
    return done(f);
}
