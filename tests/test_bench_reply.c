/*
 * Unit tests for the bench's reply classifier (bench/reply.c): every reply
 * the protocol defines, Redis's +PONG, and lines that must be refused
 * rather than guessed at, since a misread reply would be timed as a good
 * one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "reply.h"

static struct reply parse(const char *s, int want_rc)
{
    struct reply r;

    assert_int_equal(reply_parse(s, strlen(s), &r), want_rc);
    return r;
}

static void test_simple_replies(void **state)
{
    assert_int_equal(parse("PONG", 0).kind, REPLY_PONG);
    assert_int_equal(parse("+PONG", 0).kind, REPLY_PONG);
    assert_int_equal(parse("EMPTY", 0).kind, REPLY_EMPTY);
    assert_int_equal(parse("BYE", 0).kind, REPLY_BYE);
    struct reply r = parse("OK", 0);
    assert_int_equal(r.kind, REPLY_OK);
    assert_false(r.has_id);
    r = parse("OK 18446744073709551615", 0);
    assert_int_equal(r.kind, REPLY_OK);
    assert_true(r.has_id);
    assert_int_equal(r.id, UINT64_MAX);
}

static void test_msg(void **state)
{
    struct reply r = parse("MSG 42 3 hello  world ", 0);

    assert_int_equal(r.kind, REPLY_MSG);
    assert_int_equal(r.id, 42);
    assert_int_equal(r.attempt, 3);
    assert_int_equal(r.payload_len, 13);
    assert_memory_equal(r.payload, "hello  world ", 13);
    parse("MSG 42 3 ", -EINVAL);  /* no payload */
    parse("MSG 42 x y", -EINVAL); /* bad attempt */
    parse("MSG 42", -EINVAL);
}

static void test_errors(void **state)
{
    assert_int_equal(parse("ERR rate limited 17", 0).kind, REPLY_RATE_LIMITED);
    assert_int_equal(parse("ERR queue full", 0).kind, REPLY_ERR);
    assert_int_equal(parse("ERR not found", 0).kind, REPLY_ERR);
    parse("ERR ", -EINVAL);
    parse("-ERR unknown command 'PUT'", -EINVAL); /* Redis */
}

static void test_refused(void **state)
{
    assert_int_equal(parse("", -EINVAL).kind, REPLY_BAD);
    parse("PONGX", -EINVAL);
    parse("pong", -EINVAL);
    parse("OK 18446744073709551616", -EINVAL); /* 2^64 */
    parse("OK -1", -EINVAL);
    parse("OK 12a", -EINVAL);
    parse("@7 PONG", -EINVAL); /* the bench never tags its requests */
}

static void test_stats(void **state)
{
    const char *line = "STATS uptime_s=3 requests=1234 put=7 acked=07";
    uint64_t v;

    assert_int_equal(parse(line, 0).kind, REPLY_STATS);
    assert_true(reply_stats_get(line, strlen(line), "requests", &v));
    assert_int_equal(v, 1234);
    assert_true(reply_stats_get(line, strlen(line), "acked", &v));
    assert_int_equal(v, 7);
    assert_false(reply_stats_get(line, strlen(line), "put_", &v));
    assert_false(reply_stats_get(line, strlen(line), "uptime", &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_replies), cmocka_unit_test(test_msg),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_refused),
        cmocka_unit_test(test_stats),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
