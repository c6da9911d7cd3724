/*
 * Wire tests of the rate limits: the per-connection and the global token
 * bucket, in reject mode and in shape mode, against the real daemon.
 *
 * Rates are chosen low (a few requests per second) so that the few
 * milliseconds a loaded test machine adds between two requests cannot
 * refill a token by accident; the bucket arithmetic itself is tested to
 * the nanosecond in test_bucket.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

static struct wire_client c1, c2;

/* The N of "ERR rate limited N", or fails the test. */
static uint64_t retry_ms(const char *line)
{
    static const char head[] = "ERR rate limited ";
    if (strncmp(line, head, sizeof(head) - 1) != 0)
        fail_msg("expected a rate-limit error, got '%s'", line);
    return strtoull(line + sizeof(head) - 1, NULL, 10);
}

/* A pipelined burst gets exactly `burst` PONGs and the rest errors whose
 * retry time is within one token interval; waiting that long works. */
static void test_burst_then_retry(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--client-rate", "2", "--client-burst", "5", NULL};
    char req[20 * 5 + 1] = "";

    wire_start(&d, args);
    wire_open(&c1, d.port);
    for (int i = 0; i < 20; i++)
        strcat(req, "PING\n");
    wire_sends(&c1, req);
    for (int i = 0; i < 5; i++)
        assert_string_equal(wire_line(&c1), "PONG");
    for (int i = 0; i < 15; i++) {
        uint64_t ms = retry_ms(wire_line(&c1));
        assert_true(ms >= 1 && ms <= 500);
    }
    /* rate_limited and requests count the refused requests too. */
    uint64_t ms = retry_ms(wire_req(&c1, "STATS"));
    wire_sleep_ms((unsigned)ms);
    const char *st = wire_req(&c1, "STATS");
    assert_memory_equal(st, "STATS ", 6);
    assert_int_equal(wire_stat(st, "rate_limited"), 16);
    assert_int_equal(wire_stat(st, "requests"), 22);
    /* That STATS took the token; the next one is 500 ms away. */
    ms = retry_ms(wire_req(&c1, "PING"));
    assert_true(ms > 250 && ms <= 500);
    wire_sleep_ms((unsigned)ms);
    wire_expect(&c1, "@t PING", "@t PONG");
    /* A refused request keeps its tag. */
    assert_memory_equal(wire_req(&c1, "@u PING"), "@u ERR rate limited ", 20);
    wire_close(&c1);
    kill(d.pid, SIGTERM);
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    /* 18 refusals over about a second: the first is logged at once, the
     * rest at most once a second with their count, never per request. */
    assert_true(wire_log_has(&d, "rate limited 1 request by the client"));
    int lines = wire_log_count(&d, "by the client bucket");
    assert_true(lines >= 1 && lines <= 3);
    unlink(d.log_path);
}

static void test_global_bucket_shared(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--global-rate", "1", "--global-burst", "3", NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    wire_expect(&c1, "PING", "PONG");
    wire_expect(&c2, "PING", "PONG");
    wire_expect(&c1, "PING", "PONG");
    uint64_t ms = retry_ms(wire_req(&c2, "PING"));
    assert_true(ms > 500 && ms <= 1000);
    retry_ms(wire_req(&c1, "PING"));
    wire_close(&c1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

/* A request refused by its client bucket leaves the global bucket alone,
 * so a noisy client cannot drain the server's tokens. */
static void test_client_refusal_takes_no_global_token(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--client-rate",
                          "1",
                          "--client-burst",
                          "1",
                          "--global-rate",
                          "1",
                          "--global-burst",
                          "2",
                          NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    wire_expect(&c1, "PING", "PONG");
    for (int i = 0; i < 50; i++)
        retry_ms(wire_req(&c1, "PING"));
    wire_expect(&c2, "PING", "PONG");
    retry_ms(wire_req(&c2, "PING"));
    wire_close(&c1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_empty_lines_are_free(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--client-rate", "1", "--client-burst", "2", NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    for (int i = 0; i < 100; i++)
        wire_sends(&c1, "\n\r\n \t\n");
    wire_expect(&c1, "PING", "PONG");
    wire_expect(&c1, "PING", "PONG");
    retry_ms(wire_req(&c1, "PING"));
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

/* Shape mode answers every request, in order, never with an error, and
 * no sooner than the rate allows. */
static void test_shape_mode(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--limit-mode",
                          "shape",
                          "--client-rate",
                          "20",
                          "--client-burst",
                          "1",
                          NULL};
    char req[64 * 16] = "";
    char want[32];

    wire_start(&d, args);
    wire_open(&c1, d.port);
    for (int i = 0; i < 10; i++) {
        char one[16];
        snprintf(one, sizeof(one), "@%d PING\n", i);
        strcat(req, one);
    }
    uint64_t start = wire_now_ms();
    wire_sends(&c1, req);
    for (int i = 0; i < 10; i++) {
        snprintf(want, sizeof(want), "@%d PONG", i);
        assert_string_equal(wire_line(&c1), want);
    }
    /* One token up front, then one per 50 ms: nine waits at least. */
    assert_true(wire_now_ms() - start >= 9 * 50);
    const char *st = wire_req(&c1, "STATS");
    assert_int_equal(wire_stat(st, "rate_limited"), 0);
    assert_true(wire_stat(st, "shaped") >= 9);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

/* A connection with held requests can still quit or be shut down. */
static void test_shape_close_and_shutdown(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--limit-mode",
                          "shape",
                          "--client-rate",
                          "1",
                          "--client-burst",
                          "1",
                          NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    wire_expect(&c1, "PING", "PONG");
    /* The next request waits a second for its token. */
    wire_sends(&c1, "PING\nPING\nPING\n");
    wire_sleep_ms(100);
    const char *st = wire_req(&c2, "STATS");
    assert_int_equal(wire_stat(st, "held"), 1);
    wire_close(&c1);
    wire_sleep_ms(100);
    /* The held request went with its connection; c2's STATS token is
     * spent, so this one is itself held for about a second. */
    st = wire_req(&c2, "STATS");
    assert_int_equal(wire_stat(st, "connections"), 1);

    wire_sends(&c2, "PING\n");
    wire_sleep_ms(50);
    kill(d.pid, SIGTERM);
    assert_true(wire_closed(&c2, WIRE_TIMEOUT_MS));
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    wire_close(&c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_retry),
        cmocka_unit_test(test_global_bucket_shared),
        cmocka_unit_test(test_client_refusal_takes_no_global_token),
        cmocka_unit_test(test_empty_lines_are_free),
        cmocka_unit_test(test_shape_mode),
        cmocka_unit_test(test_shape_close_and_shutdown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
