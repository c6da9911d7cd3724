/*
 * Helpers for the wire tests; see wire.h.
 *
 * The daemon's stderr goes to a file, not a pipe: a pipe nobody drains
 * would block the daemon once it filled, and the tests want to read the
 * log after the daemon exits anyway.
 */
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

uint64_t wire_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void wire_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static char *read_log(const struct wire_daemon *d)
{
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *bigger = realloc(text, cap * 2);
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (text)
        text[len] = '\0';
    return text;
}

int wire_log_count(const struct wire_daemon *d, const char *s)
{
    char *text = read_log(d);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, s)); p += strlen(s))
        n++;
    free(text);
    return n;
}

bool wire_log_has(const struct wire_daemon *d, const char *s)
{
    char *text = read_log(d);
    bool has = text && strstr(text, s);
    free(text);
    return has;
}

unsigned long wire_child_nofile;

void wire_exec(const char *const *argv)
{
    char *copy[64];
    size_t n = 0;
    for (; argv[n] && n < 63; n++)
        copy[n] = strdup(argv[n]);
    copy[n] = NULL;
    execv(copy[0], copy);
    _exit(127);
}

void wire_start(struct wire_daemon *d, const char *const *args)
{
    const char *argv[64];
    size_t n = 0;

    snprintf(d->log_path, sizeof(d->log_path), "/tmp/rlmq-wire-XXXXXX");
    int log_fd = mkstemp(d->log_path);
    assert_true(log_fd >= 0);

    /* Under memcheck every wire test doubles as a leak and memory-error
     * check of the daemon: an error makes it exit 99, not 0. */
    if (getenv("RLMQ_WIRE_VALGRIND")) {
        argv[n++] = "/usr/bin/valgrind";
        argv[n++] = "--quiet";
        argv[n++] = "--error-exitcode=99";
        argv[n++] = "--leak-check=full";
        argv[n++] = "--errors-for-leak-kinds=definite,indirect";
    }
    argv[n++] = RLMQ_DAEMON_PATH;
    argv[n++] = "--port";
    argv[n++] = "0";
    for (size_t i = 0; args && args[i]; i++) {
        assert_true(n < 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    d->pid = fork();
    assert_true(d->pid >= 0);
    if (d->pid == 0) {
        /* The daemon dies with the test, and never holds the test's
         * stdout open, so a failed test cannot leave ctest waiting. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (wire_child_nofile) {
            struct rlimit rl = {wire_child_nofile, wire_child_nofile};
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        wire_exec(argv);
    }
    close(log_fd);

    uint64_t deadline = wire_now_ms() + 3 * WIRE_TIMEOUT_MS;
    d->port = 0;
    while (wire_now_ms() < deadline) {
        char *text = read_log(d);
        const char *at = text ? strstr(text, "listening on ") : NULL;
        if (at) {
            /* "HOST:PORT" ends at a space or the line's end; the port
             * follows its last colon. */
            const char *end = at + 13 + strcspn(at + 13, " \n");
            const char *p = end;
            while (p > at && p[-1] != ':')
                p--;
            if (*end == '\n')
                d->port = atoi(p);
        }
        free(text);
        if (d->port > 0)
            return;
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid)
            fail_msg("the daemon exited before listening (status %d)", status);
        wire_sleep_ms(5);
    }
    kill(d->pid, SIGKILL);
    fail_msg("the daemon did not log 'listening on' in time");
}

int wire_wait(struct wire_daemon *d, int timeout_ms)
{
    uint64_t deadline = wire_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(d->pid, &status, WNOHANG);
        if (r == d->pid) {
            d->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (wire_now_ms() >= deadline)
            return -2;
        wire_sleep_ms(5);
    }
}

int wire_stop(struct wire_daemon *d)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    int rc = wire_wait(d, WIRE_TIMEOUT_MS);
    if (rc == -2) {
        kill(d->pid, SIGKILL);
        wire_wait(d, WIRE_TIMEOUT_MS);
        fail_msg("the daemon did not exit after SIGTERM");
    }
    unlink(d->log_path);
    return rc;
}

void wire_open(struct wire_client *c, int port)
{
    struct sockaddr_in sa = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    int one = 1;

    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
}

void wire_close(struct wire_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int wire_send(struct wire_client *c, const void *p, size_t n)
{
    const char *at = p;
    while (n > 0) {
        ssize_t w = send(c->fd, at, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        at += w;
        n -= (size_t)w;
    }
    return 0;
}

void wire_sends(struct wire_client *c, const char *s)
{
    int rc = wire_send(c, s, strlen(s));
    if (rc < 0)
        fail_msg("send: %s", strerror(-rc));
}

long wire_line_timeout(struct wire_client *c, char *out, size_t cap,
                       int timeout_ms)
{
    uint64_t deadline = wire_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *lf = memchr(c->in, '\n', c->len);
        if (lf) {
            size_t n = (size_t)(lf - c->in);
            if (n + 1 > cap)
                fail_msg("reply line of %zu bytes is too long", n);
            memcpy(out, c->in, n);
            out[n] = '\0';
            memmove(c->in, lf + 1, c->len - n - 1);
            c->len -= n + 1;
            return (long)n;
        }
        if (c->len == sizeof(c->in))
            fail_msg("reply line longer than %zu bytes", sizeof(c->in));
        uint64_t now = wire_now_ms();
        if (now >= deadline)
            return -2;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -2;
        ssize_t got = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        c->len += (size_t)got;
    }
}

const char *wire_line(struct wire_client *c)
{
    static char line[1 << 17];
    long n = wire_line_timeout(c, line, sizeof(line), WIRE_TIMEOUT_MS);
    if (n == -1)
        fail_msg("the daemon closed the connection");
    if (n == -2)
        fail_msg("no reply within %d ms", WIRE_TIMEOUT_MS);
    return line;
}

const char *wire_req(struct wire_client *c, const char *req)
{
    wire_sends(c, req);
    wire_sends(c, "\n");
    return wire_line(c);
}

void wire_expect(struct wire_client *c, const char *req, const char *want)
{
    assert_string_equal(wire_req(c, req), want);
}

bool wire_closed(struct wire_client *c, int timeout_ms)
{
    char line[4096];
    long n;
    while ((n = wire_line_timeout(c, line, sizeof(line), timeout_ms)) >= 0)
        ;
    return n == -1;
}

uint64_t wire_stat(const char *stats_line, const char *key)
{
    size_t klen = strlen(key);
    const char *p = stats_line;
    while ((p = strstr(p, key))) {
        if (p > stats_line && p[-1] == ' ' && p[klen] == '=')
            return strtoull(p + klen + 1, NULL, 10);
        p += klen;
    }
    fail_msg("no %s in '%s'", key, stats_line);
    return 0;
}

uint64_t wire_stat_of(struct wire_client *c, const char *q, const char *key)
{
    char req[128];
    snprintf(req, sizeof(req), q ? "STATS %s" : "STATS", q);
    return wire_stat(wire_req(c, req), key);
}

void wire_reset(struct wire_client *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    wire_close(c);
}

long wire_rss_kib(pid_t pid)
{
    char path[64], text[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(text, sizeof(text), f))
        if (sscanf(text, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
