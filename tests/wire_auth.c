/*
 * Wire tests of AUTH: with --auth-token-file set, nothing but PING, QUIT
 * and AUTH runs before a good AUTH; a wrong token is refused; the token
 * never reaches the log; a non-loopback listener without a token warns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

static struct wire_client c1, c2;

static void test_auth_required(void **state)
{
    char path[] = "/tmp/rlmq-token-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "t0ken-xyz\n", 10), 10);
    close(fd);
    const char *args[] = {"--auth-token-file", path, "--log-level", "debug",
                          NULL};
    struct wire_daemon d;

    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_open(&c2, d.port);
    wire_expect(&c1, "PING", "PONG");
    static const char *const locked[] = {
        "STATS", "STATS q", "HELP",    "PUT q x",  "GET q",
        "ACK 1", "NACK 1",  "TOUCH 1", "SHUTDOWN",
    };
    for (size_t i = 0; i < sizeof(locked) / sizeof(locked[0]); i++)
        wire_expect(&c1, locked[i], "ERR auth required");
    wire_expect(&c1, "@3 PUT q x", "@3 ERR auth required");
    wire_expect(&c1, "NOPE", "ERR unknown command");
    wire_expect(&c1, "AUTH", "ERR bad argument");
    wire_expect(&c1, "AUTH t0ken-xy", "ERR auth failed");
    wire_expect(&c1, "AUTH t0ken-xyzz", "ERR auth failed");
    wire_expect(&c1, "AUTH T0KEN-XYZ", "ERR auth failed");
    wire_expect(&c1, "STATS", "ERR auth required");
    wire_expect(&c1, "auth t0ken-xyz", "OK");
    assert_memory_equal(wire_req(&c1, "PUT q x"), "OK ", 3);
    /* A wrong token later is refused but does not log the client out. */
    wire_expect(&c1, "AUTH wrong", "ERR auth failed");
    assert_memory_equal(wire_req(&c1, "GET q"), "MSG ", 4);
    /* Authentication belongs to the connection. */
    wire_expect(&c2, "GET q", "ERR auth required");
    wire_expect(&c2, "QUIT", "BYE");
    wire_close(&c1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
    /* wire_stop removed the log; start again to look at it. */
    wire_start(&d, args);
    wire_open(&c1, d.port);
    wire_expect(&c1, "AUTH t0ken-xyz", "OK");
    wire_expect(&c1, "AUTH nope", "ERR auth failed");
    wire_close(&c1);
    kill(d.pid, SIGTERM);
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_false(wire_log_has(&d, "t0ken"));
    unlink(d.log_path);
    unlink(path);
}

static void test_bad_token_file(void **state)
{
    static char out[4096];
    const char *argv[] = {
        RLMQ_DAEMON_PATH,     "--port", "0", "--auth-token-file",
        "/nonexistent/token", NULL};
    char path[] = "/tmp/rlmq-exit-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        wire_exec(argv);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, "/nonexistent/token"));
}

static void test_non_loopback_warning(void **state)
{
    struct wire_daemon d;
    const char *any[] = {"--host", "0.0.0.0", NULL};
    const char *lo[] = {"--host", "127.0.0.1", NULL};

    wire_start(&d, any);
    wire_sleep_ms(100);
    kill(d.pid, SIGTERM);
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_true(wire_log_has(&d, "not a loopback address"));
    unlink(d.log_path);

    wire_start(&d, lo);
    kill(d.pid, SIGTERM);
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_false(wire_log_has(&d, "not a loopback address"));
    unlink(d.log_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_required),
        cmocka_unit_test(test_bad_token_file),
        cmocka_unit_test(test_non_loopback_warning),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
