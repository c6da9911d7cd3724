/*
 * Wire tests of the transport, framing, errors, connection limits and
 * shutdown, against the real daemon over TCP.
 *
 * Each test starts its own daemon so that one test's connections, limits
 * and counters cannot leak into another's.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

static struct wire_client cl, c2, c3;

static void test_commands(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&cl, d.port);

    wire_expect(&cl, "PING", "PONG");
    wire_expect(&cl, "ping", "PONG");
    wire_expect(&cl, "PiNg", "PONG");
    wire_expect(&cl, "  PING  ", "PONG");
    wire_expect(&cl, "\tPING", "PONG");
    wire_expect(&cl, "@7 PING", "@7 PONG");
    wire_expect(&cl, "@a-b_c.d:E PING", "@a-b_c.d:E PONG");
    wire_expect(&cl, "@abcdefghijabcdefghijabcdefghij12 PING",
                "@abcdefghijabcdefghijabcdefghij12 PONG");
    wire_expect(&cl, "@abcdefghijabcdefghijabcdefghij123 PING", "ERR bad tag");
    wire_expect(&cl, "@ PING", "ERR bad tag");
    wire_expect(&cl, "@x! PING", "ERR bad tag");
    wire_expect(&cl, "@x", "@x ERR unknown command");
    wire_expect(&cl, "@x NOPE", "@x ERR unknown command");
    wire_expect(&cl, "NOPE", "ERR unknown command");
    wire_expect(&cl, "PINGX", "ERR unknown command");
    wire_expect(&cl, "PING extra", "ERR bad argument");
    wire_expect(&cl, "HELP",
                "OK PING QUIT SHUTDOWN HELP AUTH STATS PUT GET ACK NACK TOUCH");
    wire_expect(&cl, "HELP me", "ERR bad argument");
    /* With no token set, AUTH has nothing to refuse. */
    wire_expect(&cl, "AUTH anything", "OK");
    wire_expect(&cl, "AUTH", "ERR bad argument");

    const char *st = wire_req(&cl, "STATS");
    assert_memory_equal(st, "STATS ", 6);
    static const char *const keys[] = {
        "uptime_s",
        "connections",
        "connections_total",
        "rejected_connections",
        "requests",
        "rate_limited",
        "queues",
        "messages",
        "bytes",
        "ready",
        "delayed",
        "leased",
        "dead",
        "put",
        "delivered",
        "acked",
        "nacked",
        "expired",
        "dead_lettered",
        "waiting",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        (void)wire_stat(st, keys[i]);
    assert_int_equal(wire_stat(st, "connections"), 1);
    /* 20 requests before this STATS, and STATS itself. */
    assert_int_equal(wire_stat(st, "requests"), 21);

    wire_expect(&cl, "QUIT", "BYE");
    assert_true(wire_closed(&cl, WIRE_TIMEOUT_MS));
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

/* Empty and blank lines get no reply and are not counted as requests. */
static void test_blank_lines(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    wire_sends(&cl, "\n\r\n \t \n\n");
    wire_expect(&cl, "PING\r", "PONG");
    assert_int_equal(wire_stat_of(&cl, NULL, "requests"), 2);
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_pipeline_10000(void **state)
{
    struct wire_daemon d;
    enum { N = 10000 };
    static char req[N * 8];
    size_t len = 0;

    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    for (int i = 0; i < N; i++) {
        memcpy(req + len, i % 2 ? "PING\r\n" : "PING\n", i % 2 ? 6 : 5);
        len += i % 2 ? 6 : 5;
    }
    assert_int_equal(wire_send(&cl, req, len), 0);
    for (int i = 0; i < N; i++)
        assert_string_equal(wire_line(&cl), "PONG");
    wire_expect(&cl, "@end PING", "@end PONG");
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_one_byte_writes(void **state)
{
    struct wire_daemon d;
    const char *text = "@1 PING\r\n\nping\n@2 HELP\n";

    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    for (const char *p = text; *p; p++) {
        assert_int_equal(wire_send(&cl, p, 1), 0);
        wire_sleep_ms(1);
    }
    assert_string_equal(wire_line(&cl), "@1 PONG");
    assert_string_equal(wire_line(&cl), "PONG");
    assert_memory_equal(wire_line(&cl), "@2 OK PING", 10);
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

/* A line of exactly --max-line bytes runs; one byte more is refused, the
 * rest of it is discarded, and the next line on the connection runs. */
static void test_max_line_edge(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-line", "64", NULL};
    char line[80];

    wire_start(&d, args);
    wire_open(&cl, d.port);
    /* "PING" plus 60 spaces: 64 bytes, a valid PING. */
    memset(line, ' ', sizeof(line));
    memcpy(line, "PING", 4);
    line[64] = '\0';
    wire_expect(&cl, line, "PONG");
    line[64] = ' ';
    line[65] = '\0';
    wire_expect(&cl, line, "ERR line too long");
    /* With CRLF the CR is not part of the line. */
    line[64] = '\r';
    wire_expect(&cl, line, "PONG");
    wire_expect(&cl, "PING", "PONG");
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_huge_line(void **state)
{
    struct wire_daemon d;
    size_t n = 10u << 20;
    char *big = malloc(n);

    assert_non_null(big);
    memset(big, 'x', n);
    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    wire_sends(&cl, "@a PING\n");
    assert_int_equal(wire_send(&cl, big, n), 0);
    wire_sends(&cl, "\n@b PING\n");
    assert_string_equal(wire_line(&cl), "@a PONG");
    assert_string_equal(wire_line(&cl), "ERR line too long");
    assert_string_equal(wire_line(&cl), "@b PONG");
    /* A too-long line whose start is a tag gets no tag back: the framer
     * never keeps the line, so the error is untagged by design. */
    free(big);
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

/*
 * A client that writes without reading: the daemon must stop reading it
 * once --max-output bytes of replies are waiting, keep serving others,
 * and deliver every reply once the client reads.
 */
static void test_slow_reader(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-output", "4096", NULL};
    static char chunk[5 * 4096];
    size_t pings = 0;

    for (size_t i = 0; i < sizeof(chunk); i += 5)
        memcpy(chunk + i, "PING\n", 5);
    wire_start(&d, args);
    wire_open(&cl, d.port);
    int fl = fcntl(cl.fd, F_GETFL);
    fcntl(cl.fd, F_SETFL, fl | O_NONBLOCK);
    /* Write until the kernel buffers on both sides are full and the
     * daemon has stopped reading; ten stalls in a row mean it has. */
    int stalls = 0;
    size_t sent = 0;
    while (stalls < 10 && sent < 50u << 20) {
        ssize_t w = send(cl.fd, chunk + sent % 5, sizeof(chunk) - sent % 5,
                         MSG_NOSIGNAL);
        if (w < 0) {
            assert_int_equal(errno, EAGAIN);
            stalls++;
            wire_sleep_ms(20);
            continue;
        }
        stalls = 0;
        sent += (size_t)w;
    }
    assert_int_equal(stalls, 10);
    pings = sent / 5;

    /* Another client is served meanwhile. */
    wire_open(&c2, d.port);
    wire_expect(&c2, "PING", "PONG");

    fcntl(cl.fd, F_SETFL, fl);
    for (size_t i = 0; i < pings; i++)
        assert_string_equal(wire_line(&cl), "PONG");
    /* The last PING may have been cut by the stall: finish it. */
    if (sent % 5) {
        wire_sends(&cl, &"PING\n"[sent % 5]);
        assert_string_equal(wire_line(&cl), "PONG");
    }
    wire_expect(&cl, "@last PING", "@last PONG");
    wire_close(&cl);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

/* A client that resets its connection with replies still unsent. */
static void test_reset_with_replies_pending(void **state)
{
    struct wire_daemon d;
    static char req[5 * 20000];
    struct linger lg = {.l_onoff = 1, .l_linger = 0};

    for (size_t i = 0; i < sizeof(req); i += 5)
        memcpy(req + i, "PING\n", 5);
    wire_start(&d, NULL);
    for (int round = 0; round < 20; round++) {
        wire_open(&cl, d.port);
        assert_int_equal(wire_send(&cl, req, sizeof(req)), 0);
        setsockopt(cl.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        wire_close(&cl);
    }
    wire_open(&c2, d.port);
    wire_expect(&c2, "PING", "PONG");
    /* Closed connections are gone from the count. */
    for (int i = 0; i < 200; i++) {
        if (wire_stat_of(&c2, NULL, "connections") == 1)
            break;
        wire_sleep_ms(10);
    }
    assert_int_equal(wire_stat_of(&c2, NULL, "connections"), 1);
    wire_close(&c2);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_max_connections(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--max-connections", "2", NULL};

    wire_start(&d, args);
    wire_open(&cl, d.port);
    wire_expect(&cl, "PING", "PONG");
    wire_open(&c2, d.port);
    wire_expect(&c2, "PING", "PONG");
    wire_open(&c3, d.port);
    assert_string_equal(wire_line(&c3), "ERR too many connections");
    assert_true(wire_closed(&c3, WIRE_TIMEOUT_MS));
    wire_close(&c3);
    assert_int_equal(wire_stat_of(&cl, NULL, "rejected_connections"), 1);

    /* A slot freed is a slot available. */
    wire_close(&c2);
    bool served = false;
    for (int i = 0; i < 100 && !served; i++) {
        wire_open(&c3, d.port);
        char line[256];
        wire_sends(&c3, "PING\n");
        long n = wire_line_timeout(&c3, line, sizeof(line), WIRE_TIMEOUT_MS);
        served = n > 0 && strcmp(line, "PONG") == 0;
        wire_close(&c3);
        if (!served)
            wire_sleep_ms(20);
    }
    assert_true(served);
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

/* CPU seconds the process has used, from /proc. */
static double cpu_seconds(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    /* utime and stime are fields 14 and 15; the name in field 2 may hold
     * spaces, so count from its closing parenthesis. */
    const char *p = strrchr(text, ')');
    assert_non_null(p);
    unsigned long ut = 0, st = 0;
    assert_int_equal(sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                            "%*u %lu %lu",
                            &ut, &st),
                     2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * With a file limit of 64 the daemon fits --max-connections under it.
 * Past that, clients are refused, those already open are served, the
 * daemon does not spin, and service comes back when connections close.
 */
static void test_file_limit(void **state)
{
    enum { N = 80 };
    static struct wire_client many[N];
    struct wire_daemon d;
    int served = 0, refused = 0;
    char line[256];

    wire_child_nofile = 64;
    wire_start(&d, NULL);
    wire_child_nofile = 0;
    assert_true(wire_log_has(&d, "max-connections lowered"));
    for (int i = 0; i < N; i++) {
        wire_open(&many[i], d.port);
        wire_sends(&many[i], "PING\n");
        long n =
            wire_line_timeout(&many[i], line, sizeof(line), WIRE_TIMEOUT_MS);
        if (n > 0 && strcmp(line, "PONG") == 0) {
            served++;
        } else {
            assert_true(n < 0 || strcmp(line, "ERR too many connections") == 0);
            refused++;
            wire_close(&many[i]);
        }
    }
    assert_true(served >= 16);
    assert_true(refused >= N - 64);
    /* The open ones are still served. */
    for (int i = 0; i < N; i++) {
        if (many[i].fd >= 0)
            wire_expect(&many[i], "PING", "PONG");
    }
    /* Idle, the daemon sleeps: far less than one CPU second in one. */
    double before = cpu_seconds(d.pid);
    wire_sleep_ms(1000);
    double idle = cpu_seconds(d.pid) - before;
    print_message("CPU while idle after refusing %d clients: %.2f s in 1 s\n",
                  refused, idle);
    assert_true(idle < 0.5);
    /* Closing connections makes room again. */
    for (int i = 0; i < N; i++)
        wire_close(&many[i]);
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        wire_open(&many[0], d.port);
        wire_sends(&many[0], "PING\n");
        long n =
            wire_line_timeout(&many[0], line, sizeof(line), WIRE_TIMEOUT_MS);
        ok = n > 0 && strcmp(line, "PONG") == 0;
        wire_close(&many[0]);
        if (!ok)
            wire_sleep_ms(20);
    }
    assert_true(ok);
    assert_int_equal(wire_stop(&d), 0);
}

/* The daemon's flags in the busy-polling tests: a 100 ms window, long
 * enough that polling or its absence shows plainly in CPU time. */
static const char *const poll_100ms[] = {"--busy-poll-us", "100000", NULL};

/* The daemon's CPU time while c sends a PING every 20 ms for 1 s. */
static double cpu_of_steady_pings(const struct wire_daemon *d,
                                  struct wire_client *c)
{
    double before = cpu_seconds(d->pid);
    uint64_t end = wire_now_ms() + 1000;
    while (wire_now_ms() < end) {
        wire_expect(c, "PING", "PONG");
        wire_sleep_ms(20);
    }
    return cpu_seconds(d->pid) - before;
}

/*
 * --busy-poll-us: once a run of requests has each come within the window,
 * the daemon polls without sleeping between them. With a 100 ms window,
 * a PING every 20 ms soon keeps it polling the whole time; a GET's wait
 * still ends while it polls; once the PINGs stop it goes back to sleep.
 */
static void test_busy_poll(void **state)
{
    struct wire_daemon d;
    struct wire_client c;

    wire_start(&d, poll_100ms);
    wire_open(&c, d.port);
    double busy = cpu_of_steady_pings(&d, &c);
    wire_expect(&c, "GET q 50", "EMPTY");
    wire_sleep_ms(200);
    double before = cpu_seconds(d.pid);
    wire_sleep_ms(1000);
    double idle = cpu_seconds(d.pid) - before;
    print_message("CPU with a PING every 20 ms: %.2f s in 1 s; idle after: "
                  "%.2f s in 1 s\n",
                  busy, idle);
    assert_true(busy >= 0.3);
    assert_true(idle < 0.1);
    wire_close(&c);
    assert_int_equal(wire_stop(&d), 0);
}

/*
 * Paced traffic does not start busy polling: three PINGs 20 ms apart and
 * then a 150 ms pause, six times over, with a 100 ms window. A daemon
 * that polled after every request, or after every short gap, would spend
 * at least 100 ms polling in vain after each third PING; this one sleeps.
 */
static void test_busy_poll_paced(void **state)
{
    struct wire_daemon d;
    struct wire_client c;

    wire_start(&d, poll_100ms);
    wire_open(&c, d.port);
    double before = cpu_seconds(d.pid);
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 3; j++) {
            wire_expect(&c, "PING", "PONG");
            wire_sleep_ms(j < 2 ? 20 : 150);
        }
    }
    double used = cpu_seconds(d.pid) - before;
    print_message("CPU with paced PINGs: %.2f s in 1.1 s\n", used);
    assert_true(used < 0.15);
    wire_close(&c);
    assert_int_equal(wire_stop(&d), 0);
}

/*
 * A daemon that may run on one CPU only never polls: the client it would
 * wait for needs that CPU to answer. The daemon inherits the affinity of
 * the test, which is narrowed to one CPU while it starts.
 */
static void test_busy_poll_one_cpu(void **state)
{
    struct wire_daemon d;
    struct wire_client c;
    cpu_set_t all, one;

    assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &all)) {
            CPU_SET(i, &one);
            break;
        }
    }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    wire_start(&d, poll_100ms);
    assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
    assert_true(wire_log_has(&d, "busy polling is off"));

    wire_open(&c, d.port);
    double used = cpu_of_steady_pings(&d, &c);
    print_message("CPU on one CPU with a PING every 20 ms: %.2f s in 1 s\n",
                  used);
    assert_true(used < 0.15);
    wire_close(&c);
    assert_int_equal(wire_stop(&d), 0);
}

static void test_shutdown_command(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    wire_open(&c2, d.port);
    wire_expect(&c2, "PING", "PONG");
    /* Replies made before SHUTDOWN are written out; nothing after it runs. */
    wire_sends(&cl, "PING\nSHUTDOWN\nPING\n");
    assert_string_equal(wire_line(&cl), "PONG");
    assert_string_equal(wire_line(&cl), "BYE");
    assert_true(wire_closed(&cl, WIRE_TIMEOUT_MS));
    assert_true(wire_closed(&c2, WIRE_TIMEOUT_MS));
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_true(wire_log_has(&d, "shutting down"));
    assert_true(wire_log_has(&d, "dropped 0 messages"));
    wire_close(&cl);
    wire_close(&c2);
    unlink(d.log_path);
}

static void test_no_shutdown(void **state)
{
    struct wire_daemon d;
    const char *args[] = {"--no-shutdown", NULL};
    wire_start(&d, args);
    wire_open(&cl, d.port);
    wire_expect(&cl, "SHUTDOWN", "ERR shutdown disabled");
    wire_expect(&cl, "PING", "PONG");
    wire_close(&cl);
    assert_int_equal(wire_stop(&d), 0);
}

/* Under systemd's Type=notify: READY=1 once listening, STOPPING=1 when
 * shutting down, each a datagram to $NOTIFY_SOCKET. */
static void test_notify_socket(void **state)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[256];
    struct wire_daemon d;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/rlmq-notify-%d",
             (int)getpid());
    unlink(sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = WIRE_TIMEOUT_MS / 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    wire_start(&d, NULL);
    unsetenv("NOTIFY_SOCKET");
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "READY=1");
    /* Ready means listening: a client is served at once. */
    wire_open(&cl, d.port);
    wire_expect(&cl, "PING", "PONG");
    wire_sends(&cl, "SHUTDOWN\n");
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "STOPPING=1");
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    wire_close(&cl);
    close(fd);
    unlink(sa.sun_path);
    unlink(d.log_path);
}

static void test_sigint(void **state)
{
    struct wire_daemon d;
    wire_start(&d, NULL);
    wire_open(&cl, d.port);
    wire_expect(&cl, "PING", "PONG");
    kill(d.pid, SIGINT);
    assert_true(wire_closed(&cl, WIRE_TIMEOUT_MS));
    assert_int_equal(wire_wait(&d, WIRE_TIMEOUT_MS), 0);
    assert_true(wire_log_has(&d, "SIGINT"));
    wire_close(&cl);
    unlink(d.log_path);
}

/* Runs the daemon to completion with args; returns its exit status and
 * its stderr in err. */
static int run_to_exit(const char *const *args, char *err, size_t cap)
{
    char path[] = "/tmp/rlmq-exit-XXXXXX";
    int fd = mkstemp(path);
    const char *argv[16] = {RLMQ_DAEMON_PATH};
    size_t n = 1;

    assert_true(fd >= 0);
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        wire_exec(argv);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    ssize_t got = pread(fd, err, cap - 1, 0);
    err[got > 0 ? got : 0] = '\0';
    close(fd);
    unlink(path);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_exit_statuses(void **state)
{
    static char out[65536];
    struct wire_daemon d;

    const char *bad_flag[] = {"--bogus", NULL};
    assert_int_equal(run_to_exit(bad_flag, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--bogus"));
    assert_non_null(strstr(out, "--help"));

    const char *bad_value[] = {"--max-line", "12x", NULL};
    assert_int_equal(run_to_exit(bad_value, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--max-line"));

    const char *bad_port[] = {"--port", "65536", NULL};
    assert_int_equal(run_to_exit(bad_port, out, sizeof(out)), 2);

    const char *help[] = {"--help", NULL};
    assert_int_equal(run_to_exit(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--max-connections"));
    assert_non_null(strstr(out, "RATELIMMQ_PORT"));

    const char *version[] = {"--version", NULL};
    assert_int_equal(run_to_exit(version, out, sizeof(out)), 0);
    assert_non_null(strstr(out, RLMQ_VERSION));

    const char *bad_host[] = {"--host", "no.such.host.invalid", NULL};
    assert_int_equal(run_to_exit(bad_host, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no.such.host.invalid"));

    /* A port already in use. */
    wire_start(&d, NULL);
    char port[16];
    snprintf(port, sizeof(port), "%d", d.port);
    const char *in_use[] = {"--port", port, NULL};
    assert_int_equal(run_to_exit(in_use, out, sizeof(out)), 1);
    assert_non_null(strstr(out, port));
    assert_int_equal(wire_stop(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_blank_lines),
        cmocka_unit_test(test_pipeline_10000),
        cmocka_unit_test(test_one_byte_writes),
        cmocka_unit_test(test_max_line_edge),
        cmocka_unit_test(test_huge_line),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_reset_with_replies_pending),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_file_limit),
        cmocka_unit_test(test_busy_poll),
        cmocka_unit_test(test_busy_poll_paced),
        cmocka_unit_test(test_busy_poll_one_cpu),
        cmocka_unit_test(test_shutdown_command),
        cmocka_unit_test(test_no_shutdown),
        cmocka_unit_test(test_sigint),
        cmocka_unit_test(test_notify_socket),
        cmocka_unit_test(test_exit_statuses),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
