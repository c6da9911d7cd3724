/*
 * Unit tests for how the server shares its loop between connections.
 *
 * The real server runs in this process on a fake clock: clients are
 * socketpairs handed to conn_new() the way the accept callback hands over
 * accepted sockets, and the test turns the loop one iteration at a time
 * with loop_run_once(), so what each iteration did can be counted exactly.
 * Replies produced in one iteration are sent at the start of the next.
 *
 * What is shown: a connection that sends a long pipeline runs at most
 * CONN_TURN_LINES requests per iteration, and another connection is served
 * in the first iteration all the same; every request still gets its reply,
 * in order, however many turns it takes; a client that shuts its sending
 * side after a long pipeline is answered in full before the close; and
 * reply storage goes back to the server's pool, not to malloc.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "server.h"

struct rig {
    struct server *srv;
    uint64_t now;
};

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static int rig_setup(void **state)
{
    static char *argv[] = {"ratelimmqd", "--port=0", "--log-level=error"};
    struct config cfg;
    char err[512];
    struct rig *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    assert_int_equal(config_parse(&cfg, 3, argv, no_env, err, sizeof(err)), 0);
    assert_int_equal(server_new(&r->srv, &cfg, err, sizeof(err)), 0);
    r->now = loop_now(r->srv->loop);
    log_threshold = LOG_ERROR;
    *state = r;
    return 0;
}

static int rig_teardown(void **state)
{
    struct rig *r = *state;

    server_free(r->srv);
    free(r);
    return 0;
}

/* A client connected the way on_accept connects one; returns its end. */
static int rig_client(struct rig *r)
{
    int sv[2];
    struct conn *c;

    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
    assert_int_equal(conn_new(r->srv, sv[0], &c), 0);
    r->srv->stats.connections++;
    r->srv->stats.connections_total++;
    return sv[1];
}

static void rig_turn(struct rig *r)
{
    assert_int_equal(loop_run_once(r->srv->loop, r->now), 0);
}

static void send_lines(int fd, const char *line, size_t count)
{
    size_t n = strlen(line);
    char *all = malloc(n * count);

    assert_non_null(all);
    for (size_t i = 0; i < count; i++)
        memcpy(all + i * n, line, n);
    assert_int_equal(send(fd, all, n * count, 0), (ssize_t)(n * count));
    free(all);
}

/* Reads what has arrived and checks it is whole "PONG\n" replies; returns
 * how many. Returns -1 once the server has closed and nothing is left. */
static long read_pongs(int fd)
{
    static char in[1 << 16];
    long pongs = 0;

    for (;;) {
        ssize_t n = recv(fd, in, sizeof(in), 0);

        if (n == 0)
            return pongs ? pongs : -1;
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            return pongs;
        }
        assert_int_equal(n % 5, 0);
        for (ssize_t i = 0; i < n; i += 5)
            assert_memory_equal(in + i, "PONG\n", 5);
        pongs += n / 5;
    }
}

static void test_long_pipeline_takes_turns(void **state)
{
    struct rig *r = *state;
    const long lines = 3 * CONN_TURN_LINES + 40;
    int a = rig_client(r), b = rig_client(r);

    send_lines(a, "PING\n", (size_t)lines);
    send_lines(b, "PING\n", 1);

    /* Iteration 1 reads both and runs one turn of a; iteration 2 sends
     * those replies after a's second turn. b is answered at once. */
    rig_turn(r);
    rig_turn(r);
    assert_int_equal(read_pongs(b), 1);
    assert_int_equal(read_pongs(a), 2 * CONN_TURN_LINES);

    rig_turn(r);
    assert_int_equal(read_pongs(a), CONN_TURN_LINES);
    rig_turn(r);
    assert_int_equal(read_pongs(a), 40);
    rig_turn(r);
    assert_int_equal(read_pongs(a), 0);
    assert_true(list_empty(&r->srv->ready));

    /* A connection that was yielding is read again afterwards. */
    send_lines(a, "PING\n", 3);
    rig_turn(r);
    rig_turn(r);
    assert_int_equal(read_pongs(a), 3);
    close(a);
    close(b);
}

/* Lines sent in one write are answered in order across five turns: a
 * turn boundary loses, repeats and reorders nothing. */
static void test_turns_keep_order(void **state)
{
    struct rig *r = *state;
    const int lines = 5 * CONN_TURN_LINES + 7;
    int a = rig_client(r);
    char *all = malloc((size_t)lines * 16);
    size_t len = 0;

    assert_non_null(all);
    for (int i = 0; i < lines; i++)
        len += (size_t)sprintf(all + len, "PUT q%d m%d\n", i % 3, i);
    assert_int_equal(send(a, all, len, 0), (ssize_t)len);

    static char in[1 << 18];
    size_t got = 0;

    for (int i = 0; i < 20; i++) {
        rig_turn(r);
        ssize_t n = recv(a, in + got, sizeof(in) - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    /* Ids are handed out in order: 1, 2, 3, ... */
    size_t off = 0;
    for (int i = 0; i < lines; i++) {
        char want[32];
        int w = sprintf(want, "OK %d\n", i + 1);

        assert_true(off + (size_t)w <= got);
        assert_memory_equal(in + off, want, (size_t)w);
        off += (size_t)w;
    }
    assert_int_equal(off, got);
    free(all);
    close(a);
}

/* Shutting the sending side after a long pipeline must not cut it short:
 * the connection closes only once every line has run and been answered. */
static void test_eof_waits_for_every_turn(void **state)
{
    struct rig *r = *state;
    const long lines = 4 * CONN_TURN_LINES + 1;
    int a = rig_client(r);
    long got = 0;
    bool closed = false;

    send_lines(a, "PING\n", (size_t)lines);
    assert_int_equal(shutdown(a, SHUT_WR), 0);
    for (int i = 0; i < 20 && !closed; i++) {
        rig_turn(r);
        long n = read_pongs(a);
        if (n < 0)
            closed = true;
        else
            got += n;
    }
    assert_true(closed);
    assert_int_equal(got, lines);
    assert_int_equal(r->srv->stats.connections, 0);
    close(a);
}

/* Reply storage is reused: after a burst, the pool holds what the
 * connections used, and the next replies take it instead of allocating. */
static void test_reply_storage_is_pooled(void **state)
{
    struct rig *r = *state;
    int a = rig_client(r), b = rig_client(r);

    assert_int_equal(r->srv->out_pool.n, 0);
    send_lines(a, "PING\n", 1);
    send_lines(b, "PING\n", 1);
    rig_turn(r);
    rig_turn(r);
    assert_int_equal(read_pongs(a), 1);
    assert_int_equal(read_pongs(b), 1);
    assert_int_equal(r->srv->out_pool.n, 2);

    char *kept = r->srv->out_pool.slot[1].data;
    send_lines(a, "PING\n", 1);
    rig_turn(r);
    assert_int_equal(r->srv->out_pool.n, 1);
    rig_turn(r);
    assert_int_equal(read_pongs(a), 1);
    assert_int_equal(r->srv->out_pool.n, 2);
    assert_ptr_equal(r->srv->out_pool.slot[1].data, kept);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_long_pipeline_takes_turns,
                                        rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_turns_keep_order, rig_setup,
                                        rig_teardown),
        cmocka_unit_test_setup_teardown(test_eof_waits_for_every_turn,
                                        rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_reply_storage_is_pooled, rig_setup,
                                        rig_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
