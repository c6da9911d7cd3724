/*
 * Unit tests for the bench's command line (bench/opts.c): defaults, every
 * flag in both spellings, the workload word anywhere, and the bad values
 * and combinations that must be refused with a message naming the flag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"

#define SEC 1000000000ULL

static char err[256];

/* Parses a NULL-terminated list of arguments (argv[0] is added). */
static int parse_v(struct bench_opts *o, const char *const *args)
{
    /* opts_parse takes main's argv, which is not const: copy. */
    static char store[64][128];
    char *argv[64];
    int argc = 0;

    strcpy(store[0], "ratelimmq-bench");
    argv[argc++] = store[0];
    for (; *args; args++, argc++) {
        snprintf(store[argc], sizeof(store[argc]), "%s", *args);
        argv[argc] = store[argc];
    }
    err[0] = '\0';
    return opts_parse(o, argc, argv, err, sizeof(err));
}

#define PARSE(o, ...) parse_v((o), (const char *const[]){__VA_ARGS__, NULL})

static void test_defaults(void **state)
{
    struct bench_opts o;

    assert_int_equal(parse_v(&o, (const char *const[]){NULL}), 0);
    assert_int_equal(o.workload, WL_PING);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 7878);
    assert_int_equal(o.connections, 16);
    assert_int_equal(o.pipeline, 1);
    assert_int_equal(o.rate, 0);
    assert_int_equal(o.duration_ns, 10 * SEC);
    assert_int_equal(o.warmup_ns, SEC);
    assert_int_equal(o.timeout_ns, 21 * SEC);
    assert_int_equal(o.npcts, 5);
    assert_true(o.pcts[3] == 99.9);
    assert_string_equal(o.prefix, "bench");
}

static void test_all_flags(void **state)
{
    struct bench_opts o;

    assert_int_equal(
        PARSE(&o, "--host", "::1", "--port=6390", "pipeline", "--connections",
              "8", "--consumers=4", "--pipeline", "16", "--rate", "50k",
              "--requests", "1000", "--timeout", "90s", "--size", "100",
              "--queue-prefix", "q.x", "--queues", "3", "--wait-ms", "0",
              "--percentiles", "90,99.999", "--json", "a.json", "--hgrm",
              "a.hgrm", "--svg", "a.svg", "--quiet"),
        0);
    assert_int_equal(o.workload, WL_PIPELINE);
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 6390);
    assert_int_equal(o.connections, 8);
    assert_int_equal(o.consumers, 4);
    assert_int_equal(o.pipeline, 16);
    assert_int_equal(o.rate, 50000);
    assert_int_equal(o.requests, 1000);
    assert_int_equal(o.warmup_ns, 0); /* --requests: no warmup by default */
    assert_int_equal(o.timeout_ns, 90 * SEC);
    assert_int_equal(o.size, 100);
    assert_string_equal(o.prefix, "q.x");
    assert_int_equal(o.queues, 3);
    assert_int_equal(o.wait_ms, 0);
    assert_int_equal(o.npcts, 2);
    assert_true(o.pcts[1] == 99.999);
    assert_string_equal(o.json_path, "a.json");
    assert_string_equal(o.hgrm_path, "a.hgrm");
    assert_string_equal(o.svg_path, "a.svg");
    assert_true(o.quiet);
}

static void test_durations_and_sweep(void **state)
{
    struct bench_opts o;

    assert_int_equal(PARSE(&o, "put", "--duration", "250ms", "--warmup", "0.5",
                           "--sweep", "1000,2k,1.5M"),
                     0);
    assert_int_equal(o.duration_ns, 250000000ULL);
    assert_int_equal(o.warmup_ns, SEC / 2);
    assert_int_equal(o.timeout_ns, SEC / 2 + 250000000ULL + 10 * SEC);
    assert_int_equal(o.nsweep, 3);
    assert_int_equal(o.sweep[2], 1500000);
    assert_int_equal(PARSE(&o, "cycle", "--duration", "2m"), 0);
    assert_int_equal(o.duration_ns, 120 * SEC);
    assert_int_equal(o.consumers, 16); /* pipeline's default, harmless */
}

static void test_help(void **state)
{
    struct bench_opts o;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    assert_int_equal(PARSE(&o, "--connections", "3", "-h"), 0);
    assert_true(o.help);
    opts_usage(f);
    fclose(f);
    /* --help lists every flag. */
    static const char *const flags[] = {
        "--host",         "--port",     "--connections", "--consumers",
        "--pipeline",     "--rate",     "--sweep",       "--duration",
        "--warmup",       "--requests", "--timeout",     "--size",
        "--queue-prefix", "--queues",   "--wait-ms",     "--percentiles",
        "--json",         "--hgrm",     "--svg",         "--quiet",
        "--help",
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(*flags); i++)
        if (!strstr(text, flags[i]))
            fail_msg("--help does not list %s", flags[i]);
    free(text);
}

/* Each must be refused, with a message containing `mention`. */
static void refuse(const char *mention, const char *const *args)
{
    struct bench_opts o;

    assert_int_equal(parse_v(&o, args), -EINVAL);
    if (!strstr(err, mention))
        fail_msg("message '%s' does not mention '%s'", err, mention);
    assert_null(strchr(err, '\n'));
}

#define REFUSE(m, ...) refuse((m), (const char *const[]){__VA_ARGS__, NULL})

static void test_bad_values(void **state)
{
    REFUSE("--connections", "--connections", "0");
    REFUSE("--connections", "--connections", "10001");
    REFUSE("--connections", "--connections", "12x");
    REFUSE("--connections", "--connections", "-3");
    REFUSE("--connections", "--connections", " 3");
    REFUSE("--port", "--port", "70000");
    REFUSE("--port", "--port", "0");
    REFUSE("--pipeline", "--pipeline", "0");
    REFUSE("--rate", "--rate", "0");
    REFUSE("--rate", "--rate", "1.5");
    REFUSE("--rate", "--rate", "5G");
    REFUSE("--duration", "--duration", "0");
    REFUSE("--duration", "--duration", "-1");
    REFUSE("--duration", "--duration", "10 s");
    REFUSE("--duration", "--duration", "10y");
    REFUSE("--warmup", "--warmup", "abc");
    REFUSE("--requests", "--requests", "0");
    REFUSE("--size", "--size", "0");
    REFUSE("--size", "--size", "65001");
    REFUSE("--queue-prefix", "--queue-prefix", "a b");
    REFUSE("--queue-prefix", "--queue-prefix", "");
    REFUSE("--wait-ms", "--wait-ms", "3600001");
    REFUSE("--percentiles", "--percentiles", "100");
    REFUSE("--percentiles", "--percentiles", "0");
    REFUSE("--percentiles", "--percentiles", "50,");
    REFUSE("--percentiles", "--percentiles", "50,,99");
    REFUSE("--sweep", "--sweep", "100,0");
    REFUSE("--sweep", "--sweep", "");
    REFUSE("--json", "--json", "");
}

static void test_bad_usage(void **state)
{
    REFUSE("--bogus", "--bogus");
    REFUSE("-x", "-x");
    REFUSE("missing value for --port", "--port");
    REFUSE("unknown workload 'pong'", "pong");
    REFUSE("more than one workload", "ping", "put");
    REFUSE("--rate and --sweep", "--rate", "10", "--sweep", "1,2");
    REFUSE("--hgrm", "--sweep", "1,2", "--hgrm", "x");
    REFUSE("--requests and --duration", "--requests", "5", "--duration", "1");
    REFUSE("--consumers", "ping", "--consumers", "2");
    REFUSE("--size", "pipeline", "--size", "30");
    REFUSE("--consumers must be at least --queues", "pipeline", "--consumers",
           "2", "--queues", "3");
    REFUSE("--queue-prefix is too long", "--queue-prefix",
           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
           "--queues", "11");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_flags),
        cmocka_unit_test(test_durations_and_sweep),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_usage),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
