/*
 * Unit tests for the bench's JSON and .hgrm writers (bench/report.c).
 *
 * Each writer's output is read back, the JSON with bench/json_read.c and
 * the .hgrm with a line parser here, and the values found must be the
 * ones in the stats that were written: counts, rates, every percentile,
 * the series, and the HdrHistogram layout (column order, percentile
 * steps, the 100% line, the footer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_read.h"
#include "opts.h"
#include "report.h"
#include "stats.h"

#define MS   1000000ULL
#define SEC  1000000000ULL
#define HOUR (3600 * SEC)

static char *text;
static size_t text_len;

static FILE *mem(void)
{
    free(text);
    text = NULL;
    FILE *f = open_memstream(&text, &text_len);
    assert_non_null(f);
    return f;
}

static void opts_for(struct bench_opts *o, const char *host)
{
    char err[128];
    char *argv[] = {(char *)(uintptr_t) "b", NULL};

    assert_int_equal(opts_parse(o, 1, argv, err, sizeof(err)), 0);
    snprintf(o->host, sizeof(o->host), "%s", host);
    o->port = 6390;
    o->connections = 7;
}

/* Three seconds of an open loop at 1000/s, latencies 1 to 1000 us. */
static void fill_stats(struct stats *st)
{
    assert_int_equal(stats_init(st), 0);
    st->target_rate = 1000;
    st->duration_ns = 3 * SEC;
    st->warmup_ns = SEC;
    stats_begin(st, 0);
    for (uint64_t k = 0; k < 3000; k++) {
        uint64_t due = k * MS;
        uint64_t lat = (k % 1000 + 1) * 1000 * (k < 2000 ? 1 : 7);
        stats_latency(st, due + lat, due, due + lat / 2);
    }
    stats_end(st);
    st->elapsed_ns = 3 * SEC;
    st->lines_sent = 3100;
    st->err_replies = 2;
    st->rate_limited = 5;
    st->bad_replies = 1;
}

static double num(const struct json_doc *d, const char *path)
{
    const struct json_node *n = json_get(d, path);

    if (!n || n->type != JSON_NUM)
        fail_msg("no number at %s", path);
    return n->num;
}

static void assert_str(const struct json_doc *d, const char *path,
                       const char *want)
{
    const struct json_node *n = json_get(d, path);

    if (!n || n->type != JSON_STR || n->str_len != strlen(want) ||
        memcmp(n->str, want, n->str_len) != 0)
        fail_msg("%s is not \"%s\"", path, want);
}

static void assert_near(double got, double want, double tol)
{
    if (fabs(got - want) > tol)
        fail_msg("got %.9f, want %.9f", got, want);
}

static void check_run(const struct json_doc *d, const char *pre,
                      const struct bench_opts *o, const struct stats *st)
{
    char path[320];

#define P(s) (snprintf(path, sizeof(path), "%s%s", pre, s), path)
    assert_str(d, P("workload"), "ping");
    assert_str(d, P("unit"), "request");
    assert_str(d, P("mode"), "open");
    assert_near(num(d, P("port")), 6390, 0);
    assert_near(num(d, P("connections")), 7, 0);
    assert_near(num(d, P("target_rate")), (double)st->target_rate, 0);
    assert_near(num(d, P("duration_s")), 3, 1e-9);
    assert_near(num(d, P("warmup_s")), 1, 1e-9);
    assert_near(num(d, P("requests")), (double)st->ops, 0);
    assert_near(num(d, P("lines_sent")), 3100, 0);
    assert_near(num(d, P("achieved_rate")), stats_rate(st), 1e-3);
    assert_near(num(d, P("errors.total")), 3, 0);
    assert_near(num(d, P("errors.err_replies")), 2, 0);
    assert_near(num(d, P("errors.bad_replies")), 1, 0);
    assert_near(num(d, P("rate_limited")), 5, 0);
    const struct json_node *c = json_get(d, P("complete"));
    assert_non_null(c);
    assert_int_equal(c->type, JSON_BOOL);
    assert_true(c->num == 1);

    const struct hist *hs[] = {st->corrected, st->uncorrected};
    const char *names[] = {"corrected", "uncorrected"};
    for (int i = 0; i < 2; i++) {
        char base[96];
        snprintf(base, sizeof(base), "latency_ms.%s.", names[i]);
        char sub[256];
#define Q(s) (snprintf(sub, sizeof(sub), "%s%s", base, s), P(sub))
        assert_near(num(d, Q("count")), (double)hist_count(hs[i]), 0);
        assert_near(num(d, Q("min")), (double)hist_min(hs[i]) / 1e6, 1e-6);
        assert_near(num(d, Q("max")), (double)hist_max(hs[i]) / 1e6, 1e-6);
        assert_near(num(d, Q("mean")), hist_mean(hs[i]) / 1e6, 1e-6);
        for (size_t k = 0; k < o->npcts; k++) {
            char key[64];
            snprintf(key, sizeof(key), "percentiles.%g", o->pcts[k]);
            assert_near(num(d, Q(key)),
                        (double)hist_percentile(hs[i], o->pcts[k]) / 1e6, 1e-6);
        }
#undef Q
    }
    const struct json_node *series = json_get(d, P("series"));
    assert_non_null(series);
    assert_int_equal(series->type, JSON_ARR);
    assert_int_equal(json_len(d, series), st->nseries);
    for (size_t i = 0; i < st->nseries; i++) {
        char key[64];
        const struct stats_point *sp = &st->series[i];
        snprintf(key, sizeof(key), "series.%zu.second", i);
        assert_near(num(d, P(key)), sp->second, 0);
        snprintf(key, sizeof(key), "series.%zu.count", i);
        assert_near(num(d, P(key)), (double)sp->count, 0);
        snprintf(key, sizeof(key), "series.%zu.p50", i);
        assert_near(num(d, P(key)), (double)sp->p50 / 1e6, 1e-6);
        snprintf(key, sizeof(key), "series.%zu.p99", i);
        assert_near(num(d, P(key)), (double)sp->p99 / 1e6, 1e-6);
        snprintf(key, sizeof(key), "series.%zu.max", i);
        assert_near(num(d, P(key)), (double)sp->max / 1e6, 1e-6);
    }
#undef P
}

static void test_json_single(void **state)
{
    struct bench_opts o;
    struct stats st;
    struct json_doc d;

    opts_for(&o, "h\"o\\st");
    fill_stats(&st);
    /* Replies of the last due requests land in a fourth second. */
    assert_int_equal(st.nseries, 4);
    assert_true(st.series[3].count < 10);
    assert_int_equal(st.series[0].count + st.series[1].count +
                         st.series[2].count + st.series[3].count,
                     3000);
    /* The third second held the slower latencies. */
    assert_true(st.series[2].p99 > st.series[1].p99 * 5);
    FILE *f = mem();
    assert_int_equal(report_json(f, &o, &st, 1), 0);
    fclose(f);
    if (json_parse(&d, text, text_len) != 0)
        fail_msg("not JSON:\n%s", text);
    check_run(&d, "", &o, &st);
    assert_str(&d, "host", "h\\\"o\\\\st");
    json_free(&d);
    stats_free(&st);
}

static void test_json_sweep(void **state)
{
    struct bench_opts o;
    struct stats st[2];
    struct json_doc d;

    opts_for(&o, "localhost");
    o.nsweep = 2;
    fill_stats(&st[0]);
    fill_stats(&st[1]);
    st[1].target_rate = 2000;
    st[1].elapsed_ns = 6 * SEC;
    FILE *f = mem();
    assert_int_equal(report_json(f, &o, st, 2), 0);
    fclose(f);
    if (json_parse(&d, text, text_len) != 0)
        fail_msg("not JSON:\n%s", text);
    assert_int_equal(json_len(&d, json_get(&d, "sweep")), 2);
    check_run(&d, "sweep.0.", &o, &st[0]);
    check_run(&d, "sweep.1.", &o, &st[1]);
    json_free(&d);
    stats_free(&st[0]);
    stats_free(&st[1]);
}

static void test_json_overflow_and_empty(void **state)
{
    struct bench_opts o;
    struct stats st;
    struct json_doc d;

    opts_for(&o, "x");
    assert_int_equal(stats_init(&st), 0);
    FILE *f = mem();
    assert_int_equal(report_json(f, &o, &st, 1), 0); /* nothing measured */
    fclose(f);
    assert_int_equal(json_parse(&d, text, text_len), 0);
    assert_int_equal(json_get(&d, "target_rate")->type, JSON_NULL);
    assert_int_equal(json_len(&d, json_get(&d, "series")), 0);
    json_free(&d);

    stats_begin(&st, 0);
    stats_latency(&st, MS, 0, 0);
    stats_latency(&st, 2 * HOUR, 0, 0);
    f = mem();
    assert_int_equal(report_json(f, &o, &st, 1), 0);
    fclose(f);
    assert_int_equal(json_parse(&d, text, text_len), 0);
    /* Above the hour no bucket holds it: null, never a clamped number. */
    assert_int_equal(json_get(&d, "latency_ms.corrected.percentiles.99")->type,
                     JSON_NULL);
    assert_near(num(&d, "latency_ms.corrected.max"), 7200000.0, 1e-6);
    assert_near(num(&d, "latency_ms.corrected.overflow"), 1, 0);
    json_free(&d);
    stats_free(&st);
}

/* ---- .hgrm ---- */

struct hgrm_line {
    double value, pct, inv;
    unsigned long long count;
    int fields;
};

static void test_hgrm(void **state)
{
    struct stats st;
    struct hgrm_line lines[512];
    int n = 0;
    double mean = -1, sd = -1, max = -1;
    unsigned long long total = 0;
    int buckets = 0, subs = 0;

    fill_stats(&st);
    const struct hist *h = st.corrected;
    FILE *f = mem();
    assert_int_equal(report_hgrm(f, h), 0);
    fclose(f);

    char *save, *line = strtok_r(text, "\n", &save);
    char c1[32], c2[32], c3[32], c4[32];
    assert_int_equal(sscanf(line, "%31s %31s %31s %31s", c1, c2, c3, c4), 4);
    assert_string_equal(c1, "Value");
    assert_string_equal(c2, "Percentile");
    assert_string_equal(c3, "TotalCount");
    assert_string_equal(c4, "1/(1-Percentile)");
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        if (line[0] == '#') {
            if (sscanf(line, "#[Mean = %lf, StdDeviation = %lf]", &mean, &sd) ==
                2)
                continue;
            if (sscanf(line, "#[Max = %lf, Total count = %llu]", &max,
                       &total) == 2)
                continue;
            if (sscanf(line, "#[Buckets = %d, SubBuckets = %d]", &buckets,
                       &subs) == 2)
                continue;
            fail_msg("unknown footer line '%s'", line);
        }
        assert_true(n < 512);
        struct hgrm_line *l = &lines[n++];
        l->fields = sscanf(line, "%lf %lf %llu %lf", &l->value, &l->pct,
                           &l->count, &l->inv);
        assert_true(l->fields >= 3);
    }
    assert_true(n > 30);
    /* HdrHistogram's steps: 0, 10, ..., 50, then 55, 60, ... */
    static const double first[] = {0,   .1, .2,  .3, .4,  .5,
                                   .55, .6, .65, .7, .75, .775};
    for (size_t i = 0; i < sizeof(first) / sizeof(*first); i++)
        assert_near(lines[i].pct, first[i], 1e-9);
    for (int i = 0; i < n; i++) {
        const struct hgrm_line *l = &lines[i];
        if (i + 1 < n) {
            assert_int_equal(l->fields, 4);
            assert_near(l->inv, 1.0 / (1.0 - l->pct), 0.006);
            assert_near(l->value,
                        (double)hist_percentile(h, l->pct * 100) / 1e6, 0.0005);
        }
        if (i > 0) {
            assert_true(l->pct > lines[i - 1].pct);
            assert_true(l->value >= lines[i - 1].value);
            assert_true(l->count >= lines[i - 1].count);
        }
        /* TotalCount covers at least the level's share of the values. */
        assert_true((double)l->count >= l->pct * 3000 - 1e-6);
    }
    assert_int_equal(lines[n - 1].fields, 3);
    assert_near(lines[n - 1].pct, 1.0, 0);
    assert_int_equal(lines[n - 1].count, 3000);
    assert_near(lines[n - 1].value, (double)hist_max(h) / 1e6, 0.0005);
    assert_near(mean, hist_mean(h) / 1e6, 0.0005);
    assert_near(sd, hist_stddev(h) / 1e6, 0.0005);
    assert_near(max, (double)hist_max(h) / 1e6, 0.0005);
    assert_int_equal(total, 3000);
    assert_int_equal(buckets, HIST_BUCKETS);
    assert_int_equal(subs, HIST_SUB_COUNT);
    stats_free(&st);
}

static void test_hgrm_all_equal(void **state)
{
    struct hist *h = malloc(sizeof(*h));
    double v, p;
    unsigned long long c;

    assert_non_null(h);
    hist_reset(h);
    for (int i = 0; i < 5; i++)
        hist_record(h, 1500 * 1000);
    FILE *f = mem();
    assert_int_equal(report_hgrm(f, h), 0);
    fclose(f);
    /* One line at 0% and the 100% line, both at the one value. */
    const char *l2 = strchr(text, '\n') + 2;
    assert_int_equal(sscanf(l2, "%lf %lf %llu", &v, &p, &c), 3);
    assert_near(v, 1.5, 0);
    assert_near(p, 0, 0);
    assert_int_equal(c, 5);
    l2 = strchr(l2, '\n') + 1;
    assert_int_equal(sscanf(l2, "%lf %lf %llu", &v, &p, &c), 3);
    assert_near(p, 1, 0);
    assert_non_null(strstr(text, "Total count    =            5]"));
    free(h);
}

static void test_text(void **state)
{
    struct bench_opts o;
    struct stats st;

    opts_for(&o, "127.0.0.1");
    fill_stats(&st);
    FILE *f = mem();
    assert_int_equal(report_text(f, &o, &st), 0);
    fclose(f);
    static const char *const want[] = {
        "target rate    1000 requests/s",
        "achieved rate  1000.0",
        "rate limited   5",
        "errors         3",
        "corrected  uncorrected",
        "p50",
        "p95",
        "p99 ",
        "p99.9 ",
        "p99.99",
        "min",
        "mean",
        "max",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        if (!strstr(text, want[i]))
            fail_msg("summary lacks '%s':\n%s", want[i], text);
    stats_free(&st);
}

static int teardown(void **state)
{
    free(text);
    text = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_json_single, teardown),
        cmocka_unit_test_teardown(test_json_sweep, teardown),
        cmocka_unit_test_teardown(test_json_overflow_and_empty, teardown),
        cmocka_unit_test_teardown(test_hgrm, teardown),
        cmocka_unit_test_teardown(test_hgrm_all_equal, teardown),
        cmocka_unit_test_teardown(test_text, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
