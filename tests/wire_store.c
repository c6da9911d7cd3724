/*
 * Wire tests of the message store: every queue command, leases, retries,
 * dead letters, blocking GETs, the bounds, and a conservation run, against
 * the real daemon over TCP.
 *
 * Lease and delay times are a few hundred milliseconds so the tests run
 * quickly, with sleeps of twice the time they wait out, so that a loaded
 * machine cannot make them flap.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

static struct wire_client c1, c2, c3;

/* Sends PUT and returns the id of "OK <id>". */
static uint64_t put(struct wire_client *c, const char *q, const char *p)
{
    char req[256];
    snprintf(req, sizeof(req), "PUT %s %s", q, p);
    const char *r = wire_req(c, req);
    if (strncmp(r, "OK ", 3) != 0)
        fail_msg("PUT answered '%s'", r);
    uint64_t id = strtoull(r + 3, NULL, 10);
    assert_true(id > 0);
    return id;
}

/* Parses "MSG <id> <attempt> <payload>". */
static void parse_msg(const char *r, uint64_t *id, uint64_t *attempt,
                      const char **payload)
{
    char *end;
    if (strncmp(r, "MSG ", 4) != 0)
        fail_msg("expected MSG, got '%s'", r);
    *id = strtoull(r + 4, &end, 10);
    *attempt = strtoull(end + 1, &end, 10);
    *payload = end + 1;
}

static void expect_msg(const char *r, uint64_t id, uint64_t attempt,
                       const char *payload)
{
    uint64_t got_id, got_attempt;
    const char *got_payload;
    parse_msg(r, &got_id, &got_attempt, &got_payload);
    assert_int_equal(got_id, id);
    assert_int_equal(got_attempt, attempt);
    assert_string_equal(got_payload, payload);
}

static void test_put_get_ack(void **state)
{
    struct wire_daemon d;
    char req[64];

    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    uint64_t a = put(&c1, "jobs", "hello world");
    uint64_t b = put(&c1, "jobs", "x  y \t z ");
    assert_true(b != a);
    expect_msg(wire_req(&c1, "GET jobs"), a, 1, "hello world");
    expect_msg(wire_req(&c1, "@g GET jobs") + 3, b, 1, "x  y \t z ");
    /* Only the lease holder may settle a message. */
    snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)a);
    wire_expect(&c2, req, "ERR not found");
    wire_expect(&c1, req, "OK");
    wire_expect(&c1, req, "ERR not found");
    snprintf(req, sizeof(req), "NACK %llu", (unsigned long long)b);
    wire_expect(&c2, req, "ERR not found");
    wire_expect(&c1, req, "OK");
    expect_msg(wire_req(&c2, "GET jobs"), b, 2, "x  y \t z ");
    snprintf(req, sizeof(req), "TOUCH %llu", (unsigned long long)b);
    wire_expect(&c1, req, "ERR not found");
    wire_expect(&c2, req, "OK");
    snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)b);
    wire_expect(&c2, req, "OK");
    wire_expect(&c1, "GET jobs", "EMPTY");
    wire_expect(&c1, "GET jobs 0", "EMPTY");
    wire_expect(&c1, "GET other", "EMPTY");

    const char *st = wire_req(&c1, "STATS jobs");
    assert_memory_equal(st, "STATS queue=jobs ", 17);
    assert_int_equal(wire_stat(st, "put"), 2);
    assert_int_equal(wire_stat(st, "delivered"), 3);
    assert_int_equal(wire_stat(st, "acked"), 2);
    assert_int_equal(wire_stat(st, "nacked"), 1);
    assert_int_equal(wire_stat(st, "ready"), 0);
    assert_int_equal(wire_stat(st, "leased"), 0);
    st = wire_req(&c1, "STATS");
    assert_int_equal(wire_stat(st, "messages"), 0);
    assert_int_equal(wire_stat(st, "bytes"), 0);
    assert_int_equal(wire_stat(st, "queues"), 2);
    wire_close(&c1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_bad_arguments(void **state)
{
    static const char *const bad[] = {
        "PUT",
        "PUT q",
        "PUT q ",
        "PUT bad/name x",
        "PUT bad!name x",
        "PUT " /* 65-byte name: */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x",
        "PUT aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ".dlq x",
        "GET",
        "GET q 1 2",
        "GET q abc",
        "GET q -1",
        "GET q 3600001",
        "GET q 1x",
        "GET bad/name",
        "ACK",
        "ACK x",
        "ACK -1",
        "ACK 18446744073709551616",
        "ACK 1 2",
        "NACK",
        "NACK x",
        "NACK 1 3600001",
        "NACK 1 -5",
        "NACK 1 2 3",
        "TOUCH",
        "TOUCH 1 2",
        "TOUCH y",
        "STATS a b",
        "STATS bad/name",
    };
    struct wire_daemon d;

    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *r = wire_req(&c1, bad[i]);
        if (strcmp(r, "ERR bad argument") != 0)
            fail_msg("'%s' answered '%s'", bad[i], r);
    }
    /* The edges that are allowed. */
    put(&c1, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "x");
    put(&c1,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ".dlq",
        "x");
    put(&c1, "Az09_-.:", "x");
    wire_expect(&c1, "ACK 999", "ERR not found");
    wire_expect(&c1, "ACK 18446744073709551615", "ERR not found");
    wire_expect(&c1, "NACK 999 3600000", "ERR not found");
    wire_expect(&c1, "GET empty 3600000x", "ERR bad argument");
    assert_int_equal(wire_stat_of(&c1, NULL, "messages"), 3);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_lease_expiry_and_touch(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--lease-ms", "300", NULL};
    char req[64];

    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    uint64_t a = put(&c1, "q", "one");
    expect_msg(wire_req(&c1, "GET q"), a, 1, "one");
    wire_expect(&c2, "GET q", "EMPTY");
    wire_sleep_ms(600);
    expect_msg(wire_req(&c2, "GET q"), a, 2, "one");
    /* The expired lease is no longer c1's. */
    snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)a);
    wire_expect(&c1, req, "ERR not found");
    assert_int_equal(wire_stat_of(&c1, "q", "expired"), 1);

    /* TOUCH keeps a lease alive past its first deadline. */
    snprintf(req, sizeof(req), "TOUCH %llu", (unsigned long long)a);
    for (int i = 0; i < 4; i++) {
        wire_sleep_ms(150);
        wire_expect(&c2, req, "OK");
    }
    wire_expect(&c1, "GET q", "EMPTY");
    snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)a);
    wire_expect(&c2, req, "OK");
    wire_close(&c1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_disconnect_requeues(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    uint64_t a = put(&c2, "q", "one");
    uint64_t b = put(&c2, "q", "two");
    expect_msg(wire_req(&c1, "GET q"), a, 1, "one");
    expect_msg(wire_req(&c1, "GET q"), b, 1, "two");
    wire_close(&c1);
    /* Returned leases go to the tail in the order they were taken. */
    uint64_t id = 0, attempt = 0;
    const char *p;
    for (int i = 0; i < 200; i++) {
        const char *r = wire_req(&c2, "GET q");
        if (strcmp(r, "EMPTY") != 0) {
            parse_msg(r, &id, &attempt, &p);
            break;
        }
        wire_sleep_ms(10);
    }
    assert_int_equal(id, a);
    assert_int_equal(attempt, 2);
    expect_msg(wire_req(&c2, "GET q"), b, 2, "two");
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_dead_letter(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-attempts", "2", NULL};
    char req[64];
    uint64_t id, attempt;
    const char *p;

    wire_start(&d, args);
    wire_open(&c1, d.port);
    uint64_t a = put(&c1, "q", "poison");
    snprintf(req, sizeof(req), "NACK %llu", (unsigned long long)a);
    expect_msg(wire_req(&c1, "GET q"), a, 1, "poison");
    wire_expect(&c1, req, "OK");
    expect_msg(wire_req(&c1, "GET q"), a, 2, "poison");
    wire_expect(&c1, req, "OK");
    wire_expect(&c1, "GET q", "EMPTY");
    const char *st = wire_req(&c1, "STATS");
    assert_int_equal(wire_stat(st, "dead"), 1);
    assert_int_equal(wire_stat(st, "dead_lettered"), 1);
    assert_int_equal(wire_stat(st, "messages"), 1);
    assert_int_equal(wire_stat_of(&c1, "q", "dead_lettered"), 1);
    assert_int_equal(wire_stat_of(&c1, "q.dlq", "ready"), 1);

    /* The dead-letter queue keeps id and payload, and retries forever. */
    for (int i = 0; i < 5; i++) {
        parse_msg(wire_req(&c1, "GET q.dlq"), &id, &attempt, &p);
        assert_int_equal(id, a);
        assert_string_equal(p, "poison");
        wire_expect(&c1, req, "OK");
    }
    assert_int_equal(wire_stat_of(&c1, "q.dlq", "ready"), 1);
    assert_int_equal(wire_stat_of(&c1, NULL, "dead_lettered"), 1);
    parse_msg(wire_req(&c1, "GET q.dlq"), &id, &attempt, &p);
    snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)a);
    wire_expect(&c1, req, "OK");
    assert_int_equal(wire_stat_of(&c1, NULL, "messages"), 0);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_nack_delay(void **state)
{
    struct wire_daemon d;
    char req[64];

    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    uint64_t a = put(&c1, "q", "later");
    expect_msg(wire_req(&c1, "GET q"), a, 1, "later");
    snprintf(req, sizeof(req), "NACK %llu 300", (unsigned long long)a);
    wire_expect(&c1, req, "OK");
    wire_expect(&c1, "GET q", "EMPTY");
    assert_int_equal(wire_stat_of(&c1, "q", "delayed"), 1);
    uint64_t start = wire_now_ms();
    /* A waiting GET is served when the delay ends. */
    expect_msg(wire_req(&c1, "GET q 5000"), a, 2, "later");
    assert_true(wire_now_ms() - start >= 250);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

/* Waits (bounded) for the server to notice that its waiters are gone. */
static void expect_no_waiters(struct wire_client *c)
{
    for (int i = 0; i < 200; i++) {
        if (wire_stat_of(c, NULL, "waiting") == 0)
            break;
        wire_sleep_ms(5);
    }
    assert_int_equal(wire_stat_of(c, NULL, "waiting"), 0);
}

static void test_blocking_get(void **state)
{
    struct wire_daemon d;
    char line[256];

    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    wire_open(&c3, d.port);
    /* Later requests wait behind the blocked GET, so replies keep order. */
    wire_sends(&c1, "@1 GET w 5000\n@2 PING\n");
    assert_int_equal(wire_line_timeout(&c1, line, sizeof(line), 200), -2);
    assert_int_equal(wire_stat_of(&c3, "w", "waiting"), 1);
    wire_sends(&c2, "@2 GET w 5000\n");
    for (int i = 0; i < 200; i++) {
        if (wire_stat_of(&c3, "w", "waiting") == 2)
            break;
        wire_sleep_ms(5);
    }
    assert_int_equal(wire_stat_of(&c3, NULL, "waiting"), 2);
    uint64_t a = put(&c3, "w", "first");
    uint64_t b = put(&c3, "w", "second");
    /* First come, first served. */
    expect_msg(wire_line(&c1) + 3, a, 1, "first");
    assert_string_equal(wire_line(&c1), "@2 PONG");
    expect_msg(wire_line(&c2) + 3, b, 1, "second");

    /* A wait that runs out answers EMPTY, with the GET's tag. */
    uint64_t start = wire_now_ms();
    wire_expect(&c1, "@t GET w 200", "@t EMPTY");
    assert_true(wire_now_ms() - start >= 200);
    assert_int_equal(wire_stat_of(&c3, NULL, "waiting"), 0);

    /* A waiter whose connection is reset is not served. */
    wire_sends(&c2, "GET z 5000\n");
    wire_sleep_ms(50);
    wire_reset(&c2);
    expect_no_waiters(&c3);
    uint64_t z = put(&c3, "z", "kept");
    expect_msg(wire_req(&c1, "GET z"), z, 1, "kept");

    /* A consumer that stops sending while its GET waits is answered
     * EMPTY at once, then the requests it sent after the GET run, then
     * the server closes the connection. */
    uint64_t start_h = wire_now_ms();
    wire_sends(&c1, "@h GET h 5000\n@p PING\n");
    shutdown(c1.fd, SHUT_WR);
    assert_string_equal(wire_line(&c1), "@h EMPTY");
    assert_string_equal(wire_line(&c1), "@p PONG");
    assert_true(wire_closed(&c1, WIRE_TIMEOUT_MS));
    assert_true(wire_now_ms() - start_h < 5000);
    wire_close(&c1);
    assert_int_equal(wire_stat_of(&c3, NULL, "waiting"), 0);

    /* Consumers that wait and then close, without a reset, are not handed
     * messages: the next live consumer gets the message on its first
     * delivery, not after five dead ones spent its attempts. */
    for (int i = 0; i < 5; i++) {
        wire_open(&c2, d.port);
        wire_sends(&c2, "GET dw 30000\n");
        wire_sleep_ms(20);
        wire_close(&c2);
    }
    expect_no_waiters(&c3);
    uint64_t h = put(&c3, "dw", "live");
    expect_msg(wire_req(&c3, "GET dw"), h, 1, "live");
    assert_int_equal(wire_stat_of(&c3, "dw", "delivered"), 1);
    wire_close(&c3);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_max_messages_edge(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-messages", "3", NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    put(&c1, "a", "1");
    put(&c1, "b", "2");
    uint64_t c = put(&c1, "a", "3");
    wire_expect(&c1, "PUT c 4", "ERR queue full");
    const char *st = wire_req(&c1, "STATS");
    assert_int_equal(wire_stat(st, "messages"), 3);
    assert_int_equal(wire_stat(st, "put"), 3);
    /* Leased messages still count; an ACK makes room. */
    expect_msg(wire_req(&c1, "GET a"), 1, 1, "1");
    wire_expect(&c1, "PUT c 4", "ERR queue full");
    wire_expect(&c1, "ACK 1", "OK");
    uint64_t e = put(&c1, "c", "5");
    assert_true(e > c);
    wire_expect(&c1, "PUT c 6", "ERR queue full");
    assert_int_equal(wire_stat_of(&c1, "c", "ready"), 1);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_max_bytes_edge(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-bytes", "10", NULL};

    wire_start(&d, args);
    wire_open(&c1, d.port);
    put(&c1, "q", "12345");
    put(&c1, "q", "1234");
    put(&c1, "q", "1");
    wire_expect(&c1, "PUT q 1", "ERR queue full");
    wire_expect(&c1, "PUT q 123456789012", "ERR queue full");
    assert_int_equal(wire_stat_of(&c1, NULL, "bytes"), 10);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_queue_stats(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    put(&c1, "q", "old");
    put(&c1, "q", "new");
    wire_sleep_ms(300);
    const char *st = wire_req(&c1, "STATS q");
    static const char *const keys[] = {
        "ready",
        "delayed",
        "leased",
        "put",
        "delivered",
        "acked",
        "nacked",
        "expired",
        "dead_lettered",
        "waiting",
        "oldest_ready_age_ms",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        (void)wire_stat(st, keys[i]);
    assert_int_equal(wire_stat(st, "ready"), 2);
    assert_true(wire_stat(st, "oldest_ready_age_ms") >= 300);
    assert_true(wire_stat(st, "oldest_ready_age_ms") < 60000);
    st = wire_req(&c1, "STATS nosuch");
    assert_int_equal(wire_stat(st, "ready"), 0);
    assert_int_equal(wire_stat(st, "oldest_ready_age_ms"), 0);
    /* STATS of a queue does not create it. */
    assert_int_equal(wire_stat_of(&c1, NULL, "queues"), 1);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_shutdown_reports_dropped(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&c1, d.port);
    put(&c1, "q", "a");
    put(&c1, "q", "b");
    put(&c1, "r", "c");
    kill(d.pid, SIGTERM);
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_true(wire_log_has(&d, "dropped 3 messages"));
    wire_close(&c1);
}

/*
 * Conservation: producers put N messages; consumers take them and
 * sometimes drop their connection without ACK. In the end every message
 * put was acknowledged exactly once and nothing is left.
 */
static void test_conservation(void **state)
{
    enum { N = 3000, CONSUMERS = 4 };
    struct wire_daemon d;
    const char *args[] = {"--max-attempts", "1000", NULL};
    static struct wire_client cons[CONSUMERS];
    static unsigned char acked[N + 1];
    uint64_t rng = 42, put_count = 0, ack_count = 0;
    char req[64];

    wire_start(&d, args);
    wire_open(&c1, d.port);
    for (int i = 0; i < CONSUMERS; i++)
        wire_open(&cons[i], d.port);
    while (ack_count < N) {
        for (int k = 0; k < 5 && put_count < N; k++) {
            uint64_t id = put(&c1, "cons", "payload");
            assert_true(id <= N);
            put_count++;
        }
        for (int i = 0; i < CONSUMERS; i++) {
            const char *r = wire_req(&cons[i], "GET cons");
            if (strcmp(r, "EMPTY") == 0)
                continue;
            uint64_t id, attempt;
            const char *p;
            parse_msg(r, &id, &attempt, &p);
            assert_string_equal(p, "payload");
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            if ((rng >> 33) % 8 == 0) {
                wire_close(&cons[i]);
                wire_open(&cons[i], d.port);
                continue;
            }
            snprintf(req, sizeof(req), "ACK %llu", (unsigned long long)id);
            wire_expect(&cons[i], req, "OK");
            assert_int_equal(acked[id], 0);
            acked[id] = 1;
            ack_count++;
        }
    }
    for (uint64_t id = 1; id <= N; id++)
        assert_int_equal(acked[id], 1);
    const char *st = wire_req(&c1, "STATS");
    assert_int_equal(wire_stat(st, "put"), N);
    assert_int_equal(wire_stat(st, "acked"), N);
    assert_int_equal(wire_stat(st, "messages"), 0);
    assert_int_equal(wire_stat(st, "leased"), 0);
    assert_int_equal(wire_stat(st, "bytes"), 0);
    for (int i = 0; i < CONSUMERS; i++)
        wire_close(&cons[i]);
    wire_close(&c1);
    assert_int_equal(wire_stop(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_ack),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_lease_expiry_and_touch),
        cmocka_unit_test(test_disconnect_requeues),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_nack_delay),
        cmocka_unit_test(test_blocking_get),
        cmocka_unit_test(test_max_messages_edge),
        cmocka_unit_test(test_max_bytes_edge),
        cmocka_unit_test(test_queue_stats),
        cmocka_unit_test(test_shutdown_reports_dropped),
        cmocka_unit_test(test_conservation),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
