/*
 * The server: see server.h.
 *
 * Running out of descriptors is handled the way mature daemons do: one
 * descriptor is kept in reserve. When accept fails with EMFILE or ENFILE,
 * the reserve is closed, the waiting client is accepted, told
 * "ERR too many connections" and closed, and the reserve is reopened. If
 * even that fails, the listener is put to sleep for ACCEPT_PAUSE_NS, so the
 * loop never spins on a listener it cannot serve while the connections
 * already open go on being served.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "cmd.h"
#include "conn.h"
#include "log.h"
#include "notify.h"

#define ACCEPT_BATCH      64
#define ACCEPT_PAUSE_NS   100000000u /* 100 ms */
#define SHUTDOWN_FLUSH_NS 2000000000u
#define FD_HEADROOM       32 /* descriptors kept for the listener, logs, etc. */
#define SCRATCH_SIZE      65536
#define LOG_EVERY_NS      1000000000u

/* Store events handled per timer callback: small, so that a storm of
 * leases expiring together holds other clients back one short slice at a
 * time. At 1024, 100000 leases expiring at once raised PING p99 from 0.1
 * to 3 ms for that second; at 128 it stays near 0.2 ms (bench/storm.sh). */
#define STORE_SLICE 128

static const char too_many[] = "ERR too many connections\n";

static void on_accept(struct loop *l, struct loop_io *io, unsigned events);

/* Writes "<what>: <reason>" to err for main() to print. */
__attribute__((format(printf, 4, 5))) static int
set_error(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    char head[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", head, strerror(-rc));
    return rc;
}

/* Sizes --max-connections to the descriptors the process may open, raising
 * the soft limit to the hard one when that helps. */
static void fit_file_limit(struct server *s)
{
    struct rlimit rl;
    uint64_t want = s->cfg.max_connections + FD_HEADROOM;

    s->max_connections = s->cfg.max_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t cur = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want
                          ? (rlim_t)want
                          : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            rl.rlim_cur = cur;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        uint64_t fit = rl.rlim_cur > 2 * FD_HEADROOM
                           ? (uint64_t)rl.rlim_cur - FD_HEADROOM
                           : (uint64_t)rl.rlim_cur / 2;
        if (fit < 1)
            fit = 1;
        LOG(LOG_WARN,
            "max-connections lowered from %llu to %llu to fit the open file "
            "limit of %llu",
            (unsigned long long)s->cfg.max_connections, (unsigned long long)fit,
            (unsigned long long)rl.rlim_cur);
        s->max_connections = fit;
    }
}

static int open_listener(struct server *s, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16], where[300];

    snprintf(port, sizeof(port), "%llu", (unsigned long long)s->cfg.port);
    snprintf(where, sizeof(where), "%s:%s", s->cfg.host, port);
    int gai = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", where,
                 gai_strerror(gai));
        return -EINVAL;
    }
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = 0;
    int one = 1;
    if (fd < 0) {
        rc = -errno;
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
            listen(fd, SOMAXCONN) < 0)
            rc = -errno;
    }
    freeaddrinfo(ai);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        return set_error(err, errlen, rc, "cannot listen on %s", where);
    }

    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned bound = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            const uint8_t *b = a->sin6_addr.s6_addr;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            bound = ntohs(a->sin6_port);
            s->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                          (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && b[12] == 127);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            bound = ntohs(a->sin_port);
            s->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        }
    }
    snprintf(s->addr_text, sizeof(s->addr_text),
             ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, bound);
    loop_io_init(&s->listen_io, fd, on_accept, s);
    rc = loop_io_watch(s->loop, &s->listen_io, LOOP_READ);
    if (rc < 0) {
        close(fd);
        return set_error(err, errlen, rc, "cannot watch %s", where);
    }
    return 0;
}

static void on_signal(struct loop *l, struct loop_io *io, unsigned events)
{
    struct server *s = io->arg;
    struct signalfd_siginfo si;
    (void)l;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        server_shutdown(s, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
}

static int open_signals(struct server *s, char *err, size_t errlen)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    /* Blocked so that they arrive only through the descriptor, in the
     * loop, never as an asynchronous handler. */
    sigprocmask(SIG_BLOCK, &set, NULL);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return set_error(err, errlen, -errno, "cannot %s", "open a signalfd");
    loop_io_init(&s->signal_io, fd, on_signal, s);
    int rc = loop_io_watch(s->loop, &s->signal_io, LOOP_READ);
    if (rc < 0) {
        close(fd);
        return set_error(err, errlen, rc, "cannot %s", "watch signals");
    }
    return 0;
}

static void store_due(struct loop *l, struct loop_timer *t)
{
    struct server *s = t->arg;
    store_expire(s->store, loop_now(l), STORE_SLICE);
    server_arm_store_timer(s);
}

void server_arm_store_timer(struct server *s)
{
    uint64_t d = store_next_deadline(s->store);
    if (d == UINT64_MAX || s->shutting_down) {
        loop_timer_stop(s->loop, &s->store_timer);
        return;
    }
    if (loop_timer_active(&s->store_timer) && s->store_timer.node.deadline == d)
        return;
    if (loop_timer_start(s->loop, &s->store_timer, d) < 0)
        LOG(LOG_ERROR, "out of memory for the store timer");
}

static bool server_prepare(struct loop *l, void *arg)
{
    struct server *s = arg;
    struct list turn, *n;

    /* A connection that uses up its turn puts itself back on s->ready;
     * taking the list first makes that wait for the next iteration. */
    list_init(&turn);
    list_splice_back(&turn, &s->ready);
    while ((n = list_pop_front(&turn)))
        conn_run(LIST_ENTRY(n, struct conn, ready));
    while ((n = list_pop_front(&s->dirty)))
        conn_flush(LIST_ENTRY(n, struct conn, dirty));
    if (s->shutting_down && list_empty(&s->conns))
        loop_stop(l);
    return !list_empty(&s->ready);
}

static void accept_again(struct loop *l, struct loop_timer *t)
{
    struct server *s = t->arg;
    (void)l;
    if (!s->shutting_down)
        loop_io_watch(s->loop, &s->listen_io, LOOP_READ);
}

static void refuse(struct server *s, int fd)
{
    /* Best effort: the socket is new, so its send buffer has room. */
    ssize_t w =
        send(fd, too_many, sizeof(too_many) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    close(fd);
    s->stats.rejected_connections++;
    uint64_t n = log_limit_due(&s->log_refused, loop_now(s->loop));
    if (n)
        LOG(LOG_WARN,
            "refused %llu connection%s over --max-connections (%llu) since "
            "the last report",
            (unsigned long long)n, n == 1 ? "" : "s",
            (unsigned long long)s->max_connections);
}

/* Accept failed for lack of descriptors: refuse one client using the
 * reserve, or pause the listener when even that is impossible. */
static void out_of_descriptors(struct server *s, int err)
{
    uint64_t now = loop_now(s->loop);
    s->fd_exhausted++;
    if (now - s->fd_logged_ns >= LOG_EVERY_NS || s->fd_logged_ns == 0) {
        LOG(LOG_WARN,
            "out of file descriptors (%s); refusing new connections "
            "(%llu times so far)",
            strerror(err), (unsigned long long)s->fd_exhausted);
        s->fd_logged_ns = now;
    }
    if (s->reserve_fd >= 0) {
        close(s->reserve_fd);
        s->reserve_fd = -1;
        int fd =
            accept4(s->listen_io.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            refuse(s, fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && s->reserve_fd >= 0)
            return;
    }
    loop_io_watch(s->loop, &s->listen_io, 0);
    loop_timer_start(s->loop, &s->accept_timer, now + ACCEPT_PAUSE_NS);
}

static void on_accept(struct loop *l, struct loop_io *io, unsigned events)
{
    struct server *s = io->arg;
    (void)l;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH && !s->shutting_down; i++) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                out_of_descriptors(s, e);
            else if (e != EAGAIN && e != EWOULDBLOCK)
                LOG(LOG_ERROR, "accept: %s", strerror(e));
            return;
        }
        if (s->stats.connections >= s->max_connections) {
            refuse(s, fd);
            continue;
        }
        struct conn *c;
        int rc = conn_new(s, fd, &c);
        if (rc < 0) {
            LOG(LOG_ERROR, "cannot set up a connection: %s", strerror(-rc));
            continue;
        }
        s->stats.connections++;
        s->stats.connections_total++;
    }
}

static void shutdown_expired(struct loop *l, struct loop_timer *t)
{
    (void)t;
    loop_stop(l);
}

static void shaped_ready(struct loop *l, struct loop_timer *t)
{
    struct conn *c = t->arg;
    (void)l;
    c->hold = CONN_RUNNING;
    c->srv->stats.held--;
    conn_resume(c);
}

/* The refusal path only: which bucket said no, logged once a second. */
static void log_rate_limited(struct server *s, struct conn *c, uint64_t now)
{
    bool client = bucket_wait_ns(&c->bucket, now) > 0;
    struct log_limit *l =
        client ? &s->log_client_limited : &s->log_global_limited;
    uint64_t n = log_limit_due(l, now);
    if (n)
        LOG(LOG_WARN,
            "rate limited %llu request%s by the %s bucket since the last "
            "report",
            (unsigned long long)n, n == 1 ? "" : "s",
            client ? "client" : "global");
}

bool server_run_line(struct server *s, struct conn *c, const char *line,
                     size_t len)
{
    uint64_t now = loop_now(s->loop);
    uint64_t wait = bucket_pair_admit(&c->bucket, &s->global, now);

    if (wait > 0) {
        if (s->cfg.limit_mode == LIMIT_SHAPE) {
            c->timer.fn = shaped_ready;
            if (loop_timer_start(s->loop, &c->timer, now + wait) == 0) {
                c->hold = CONN_HELD_SHAPE;
                s->stats.held++;
                s->stats.shaped++;
                return false;
            }
            /* Without a timer the request cannot be held: refuse it. */
        }
        char text[48];
        snprintf(text, sizeof(text), "ERR rate limited %llu",
                 (unsigned long long)bucket_wait_ms(wait));
        s->stats.requests++;
        s->stats.rate_limited++;
        cmd_reply_error(c, line, len, text);
        log_rate_limited(s, c, now);
        return true;
    }

    s->stats.requests++;
    switch (cmd_execute(s, c, line, len)) {
    case CMD_QUIT:
        c->quitting = true;
        break;
    case CMD_SHUTDOWN:
        server_shutdown(s, "SHUTDOWN command");
        break;
    case CMD_DONE:
    case CMD_HOLD:
        break;
    }
    server_arm_store_timer(s);
    return true;
}

void server_conn_closed(struct server *s, struct conn *c)
{
    s->stats.connections--;
    store_owner_release(s->store, &c->owner, loop_now(s->loop));
    server_arm_store_timer(s);
}

void server_shutdown(struct server *s, const char *why)
{
    if (s->shutting_down)
        return;
    s->shutting_down = true;
    LOG(LOG_INFO, "shutting down (%s)", why);
    int rc = notify_send("STOPPING=1");
    if (rc < 0)
        LOG(LOG_WARN, "cannot notify the service manager: %s", strerror(-rc));
    loop_io_close(s->loop, &s->listen_io, NULL);
    loop_timer_stop(s->loop, &s->accept_timer);
    loop_timer_stop(s->loop, &s->store_timer);

    struct list *n = s->conns.next;
    while (n != &s->conns) {
        struct conn *c = LIST_ENTRY(n, struct conn, node);
        n = n->next;
        loop_timer_stop(s->loop, &c->timer);
        if (c->out.len == 0)
            conn_close(c);
        else
            conn_update_watch(c);
    }
    loop_timer_start(s->loop, &s->shutdown_timer,
                     loop_now(s->loop) + SHUTDOWN_FLUSH_NS);
}

/* Busy polling pays only while the client runs on another CPU. With one
 * CPU it would take the very time slice the client needs to answer. */
static bool several_cpus(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 1;
}

int server_new(struct server **out, const struct config *cfg, char *err,
               size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));
    int rc;
    if (!s)
        return set_error(err, errlen, -ENOMEM, "cannot %s", "start");
    s->cfg = *cfg;
    s->reserve_fd = -1;
    s->listen_io.fd = -1;
    s->signal_io.fd = -1;
    list_init(&s->conns);
    list_init(&s->ready);
    list_init(&s->dirty);
    buf_pool_init(&s->out_pool);

    rc = loop_new(&s->loop);
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot %s", "create the event loop");
        goto out_free;
    }
    s->started_ns = loop_now(s->loop);
    loop_timer_init(&s->accept_timer, accept_again, s);
    loop_timer_init(&s->shutdown_timer, shutdown_expired, s);
    loop_timer_init(&s->store_timer, store_due, s);
    loop_set_prepare(s->loop, server_prepare, s);
    uint64_t poll_ns = cfg->busy_poll_us * 1000u;
    if (poll_ns > 0 && !several_cpus()) {
        LOG(LOG_INFO, "busy polling is off: the daemon may use one CPU only");
        poll_ns = 0;
    }
    loop_set_busy_poll(s->loop, poll_ns);

    if (cfg->auth_token_file[0]) {
        rc = auth_load(&s->auth, cfg->auth_token_file, err, errlen);
        if (rc < 0)
            goto out_loop;
    }

    s->scratch_cap = SCRATCH_SIZE;
    s->scratch = malloc(s->scratch_cap);
    struct store_limits lim = {
        .max_messages = cfg->max_messages,
        .max_bytes = cfg->max_bytes,
        .max_queues = cfg->max_queues,
        .lease_ns = cfg->lease_ms * 1000000u,
        .max_attempts = (uint32_t)cfg->max_attempts,
    };
    rc = s->scratch ? store_new(&s->store, &lim, cmd_deliver, s) : -ENOMEM;
    if (rc < 0) {
        set_error(err, errlen, rc, "cannot %s", "allocate memory");
        goto out_loop;
    }
    bucket_init(&s->global, cfg->global_rate, cfg->global_burst, s->started_ns);
    fit_file_limit(s);

    rc = open_signals(s, err, errlen);
    if (rc < 0)
        goto out_loop;
    rc = open_listener(s, err, errlen);
    if (rc < 0)
        goto out_signals;
    if (s->auth.len == 0 && !s->loopback)
        LOG(LOG_WARN,
            "%s is not a loopback address and no --auth-token-file is "
            "set: anyone who can reach it can use the daemon",
            s->addr_text);
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *out = s;
    return 0;

out_signals:
    close(s->signal_io.fd);
out_loop:
    store_free(s->store);
    free(s->scratch);
    loop_free(s->loop);
out_free:
    free(s);
    return rc;
}

int server_run(struct server *s)
{
    int rc = loop_run(s->loop);
    if (rc < 0)
        LOG(LOG_ERROR, "the event loop failed: %s", strerror(-rc));
    return rc;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    while (!list_empty(&s->conns))
        conn_close(LIST_ENTRY(s->conns.next, struct conn, node));
    if (!s->listen_io.closing && s->listen_io.fd >= 0)
        loop_io_close(s->loop, &s->listen_io, NULL);
    loop_io_close(s->loop, &s->signal_io, NULL);
    uint64_t held = store_held(s->store);
    LOG(LOG_INFO, "stopped; dropped %llu message%s still held in memory",
        (unsigned long long)held, held == 1 ? "" : "s");
    loop_free(s->loop);
    store_free(s->store);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    free(s->scratch);
    buf_pool_release(&s->out_pool);
    free(s);
}
