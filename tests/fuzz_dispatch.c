/*
 * libFuzzer target for the request path: the real server, its connections,
 * the dispatcher, the store and the buckets, driven by arbitrary client
 * bytes on a fake clock, with the daemon's state checked after every step.
 *
 * Each input gets a fresh server (server_new on 127.0.0.1, port 0), so a
 * crash reproduces from its input alone. Clients are socketpairs handed to
 * conn_new, the way the accept callback hands over accepted sockets, and
 * the loop runs through loop_run_once() with the harness's clock, so
 * bytes travel the daemon's own path: epoll, recv, framer, rate limits,
 * command table, store, timers and send. Limits are tiny so that bounds,
 * leases, delays, waits and rate limits are all reached.
 *
 * Input layout:
 *   byte 0  settings: bit 0 shape mode, bit 1 --no-shutdown, bit 2 an AUTH
 *           token (FUZZ_TOKEN), bits 3-4 the client rate, bits 5-6 the
 *           global rate, bit 7 max-attempts 1 instead of 3
 *   byte 1  max-line, 64 + byte % 137
 *   byte 2  bits 0-1 max-messages, 2-3 max-bytes, 4-5 lease-ms, 6-7
 *           max-queues, each an index into a small table below
 *   byte 3  seeds the points where client bytes are cut into writes
 *   rest    client bytes for the current connection, where 0xff starts a
 *           two-byte control: 0xff 0xff is a literal 0xff; 0xff 't' N
 *           advances the clock (fuzz_advance_ns); 0xff 'c' N switches to
 *           connection N % FUZZ_CONNS; 0xff 'e' shuts the client's write
 *           side (the server reads to the end, then sees EOF); 0xff 'x'
 *           closes the client (the server sees a hang-up, as after a TCP
 *           reset, and drops what it has not read); 0xff 'h' stops or
 *           resumes reading replies; any other 0xff X lets the server
 *           catch up. Each control first sends the bytes before it and
 *           lets the server serve them at the current time.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "cmd.h"
#include "config.h"
#include "conn.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "server.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CONNS 4
#define FUZZ_ESC   0xff
#define FUZZ_TOKEN "fuzz-token"
/* The longest reply: a STATS line is built in 1024 bytes, a MSG line is
 * under 100 bytes plus a payload of at most 200; either may carry a tag. */
#define FUZZ_REPLY_MAX (1024 + 1 + CMD_TAG_MAX + 1 + 1)
/* Iterations to let the server catch up; far more than it ever needs. */
#define FUZZ_SETTLE_MAX 64

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            __builtin_trap();                                                  \
    } while (0)

struct fuzz_client {
    int fd;             /* the client's end of the socketpair, or -1 */
    bool shut;          /* its write side is shut */
    bool hold;          /* not reading replies, so the server's output fills */
    struct buf pending; /* bytes the socket would not take yet */
    char line[FUZZ_REPLY_MAX];
    size_t line_len; /* a reply line read in part */
};

struct fuzz_run {
    struct server *srv;
    uint64_t now;
    size_t cur;        /* the client that bytes go to */
    struct buf chunk;  /* bytes for it not yet written */
    size_t chunk_goal; /* write once the chunk is this long */
    uint32_t rng;
    bool rate_on, shape, auth, no_shutdown;
    struct fuzz_client clients[FUZZ_CONNS];
};

static char token_path[64];

static const uint64_t advance_ns[16] = {
    0,           1,           1000,         999999,
    1000000,     5000000,     20000000,     100000000,
    250000000,   500000000,   999999999,    1000000000,
    3000000000u, 30000000000, 600000000000, 3600000000000,
};

/* A clock step: one of 16 sizes from 1 ns to an hour, times 1 to 16. */
static uint64_t fuzz_advance_ns(uint8_t n)
{
    return advance_ns[n & 15] * (uint64_t)((n >> 4) + 1);
}

static char *const max_messages[4] = {"1", "4", "16", "64"};
static char *const max_bytes[4] = {"16", "64", "256", "4096"};
static char *const lease_ms[4] = {"1", "50", "1000", "30000"};
static char *const max_queues[4] = {"1", "2", "4", "16"};
static char *const client_rate[4][2] = {
    {"0", "0"}, {"2", "1"}, {"10", "3"}, {"1000", "100"}};
static char *const global_rate[4][2] = {
    {"0", "0"}, {"5", "2"}, {"50", "10"}, {"1", "1"}};

/* The environment must not change what an input does. */
static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* As in main(): a peer gone mid-reply costs a connection only. */
    signal(SIGPIPE, SIG_IGN);
    log_threshold = LOG_ERROR;
    /* The token file lives in memory, so no run leaves a file behind. */
    int fd = memfd_create("rlmq-fuzz-token", MFD_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(write(fd, FUZZ_TOKEN "\n", sizeof(FUZZ_TOKEN)) ==
          (ssize_t)sizeof(FUZZ_TOKEN));
    snprintf(token_path, sizeof(token_path), "/proc/self/fd/%d", fd);
    return 0;
}

static uint32_t fuzz_rand(struct fuzz_run *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 17;
    r->rng ^= r->rng << 5;
    return r->rng;
}

/* Writes are mostly a few bytes, sometimes a few hundred. */
static size_t fuzz_chunk_goal(struct fuzz_run *r)
{
    uint32_t x = fuzz_rand(r);
    return 1 + (x & 0x10000 ? (x >> 17) % 400 : (x >> 17) % 24);
}

static struct server *fuzz_server_new(struct fuzz_run *r, const uint8_t *h)
{
    struct config cfg;
    char err[512], line[16];
    char *argv[40];
    int argc = 0;

    snprintf(line, sizeof(line), "%d", 64 + h[1] % 137);
    argv[argc++] = "ratelimmqd";
    argv[argc++] = "--port=0";
    argv[argc++] = "--max-connections=8";
    argv[argc++] = "--max-output=1024";
    argv[argc++] = "--max-line";
    argv[argc++] = line;
    argv[argc++] = h[0] & 1 ? "--limit-mode=shape" : "--limit-mode=reject";
    if (h[0] & 2)
        argv[argc++] = "--no-shutdown";
    if (h[0] & 4) {
        argv[argc++] = "--auth-token-file";
        argv[argc++] = token_path;
    }
    argv[argc++] = "--client-rate";
    argv[argc++] = client_rate[(h[0] >> 3) & 3][0];
    argv[argc++] = "--client-burst";
    argv[argc++] = client_rate[(h[0] >> 3) & 3][1];
    argv[argc++] = "--global-rate";
    argv[argc++] = global_rate[(h[0] >> 5) & 3][0];
    argv[argc++] = "--global-burst";
    argv[argc++] = global_rate[(h[0] >> 5) & 3][1];
    argv[argc++] = "--max-attempts";
    argv[argc++] = h[0] & 128 ? "1" : "3";
    argv[argc++] = "--max-messages";
    argv[argc++] = max_messages[h[2] & 3];
    argv[argc++] = "--max-bytes";
    argv[argc++] = max_bytes[(h[2] >> 2) & 3];
    argv[argc++] = "--lease-ms";
    argv[argc++] = lease_ms[(h[2] >> 4) & 3];
    argv[argc++] = "--max-queues";
    argv[argc++] = max_queues[(h[2] >> 6) & 3];

    CHECK(config_parse(&cfg, argc, argv, no_env, err, sizeof(err)) == 0);
    struct server *s;
    CHECK(server_new(&s, &cfg, err, sizeof(err)) == 0);

    /* server_new blocks SIGINT and SIGTERM for its signalfd; give them
     * back to libFuzzer, which stops a run on them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    r->shape = h[0] & 1;
    r->no_shutdown = h[0] & 2;
    r->auth = h[0] & 4;
    r->rate_on = ((h[0] >> 3) & 3) != 0 || ((h[0] >> 5) & 3) != 0;
    return s;
}

/* A new client, set up the way the accept callback sets one up. The
 * server's end gets a small send buffer so that unread replies back up
 * into the connection's output soon. */
static void fuzz_client_open(struct fuzz_run *r, struct fuzz_client *cl)
{
    struct server *s = r->srv;
    int sv[2], small = 4096;
    struct conn *c;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    CHECK(conn_new(s, sv[0], &c) == 0);
    s->stats.connections++;
    s->stats.connections_total++;
    cl->fd = sv[1];
    cl->shut = false;
    cl->line_len = 0;
}

static void fuzz_client_close(struct fuzz_client *cl)
{
    if (cl->fd >= 0)
        close(cl->fd);
    cl->fd = -1;
    buf_release(&cl->pending);
}

/* Writes what the client has pending; true when some of it went. */
static bool fuzz_client_write(struct fuzz_client *cl)
{
    if (cl->fd < 0 || cl->pending.len == 0)
        return false;
    ssize_t n = send(cl->fd, cl->pending.data, cl->pending.len,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
        buf_consume(&cl->pending, (size_t)n);
        return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        buf_release(&cl->pending); /* the server closed: nobody reads */
    return false;
}

static bool all_digits(const char *p, size_t n)
{
    if (n == 0 || n > 20)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static uint64_t to_u64(const char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

static bool is_tag_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.' ||
           ch == ':';
}

static bool text_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static bool text_starts(const char *p, size_t n, const char *want)
{
    return n >= strlen(want) && memcmp(p, want, strlen(want)) == 0;
}

/* Checks "MSG <id> <attempt> <payload>": an id the store has handed out,
 * an attempt of at least 1, a payload of at least one byte. */
static void check_msg(const struct fuzz_run *r, const char *p, size_t n)
{
    struct store_stats st;
    size_t i = 4, a;

    store_stats(r->srv->store, &st);
    for (a = i; i < n && p[i] != ' '; i++)
        ;
    CHECK(all_digits(p + a, i - a));
    uint64_t id = to_u64(p + a, i - a);
    CHECK(id >= 1 && id <= st.put);
    for (a = ++i; i < n && p[i] != ' '; i++)
        ;
    CHECK(all_digits(p + a, i - a) && to_u64(p + a, i - a) >= 1);
    CHECK(i + 1 < n);
}

/* Every reply must be one of the protocol's, and the ones that depend on
 * a setting may only come when it is on. */
static void check_reply(const struct fuzz_run *r, const char *p, size_t n)
{
    static const char *const errors[] = {
        "ERR unknown command", "ERR bad argument", "ERR line too long",
        "ERR bad tag",         "ERR queue full",   "ERR not found",
    };

    if (n > 0 && p[0] == '@') {
        size_t i = 1;
        while (i < n && is_tag_char(p[i]))
            i++;
        CHECK(i >= 2 && i <= 1 + CMD_TAG_MAX && i < n && p[i] == ' ');
        p += i + 1;
        n -= i + 1;
    }
    if (text_is(p, n, "PONG") || text_is(p, n, "BYE") || text_is(p, n, "OK") ||
        text_is(p, n, "EMPTY"))
        return;
    if (text_starts(p, n, "OK ")) {
        if (all_digits(p + 3, n - 3)) {
            struct store_stats st;
            store_stats(r->srv->store, &st);
            uint64_t id = to_u64(p + 3, n - 3);
            CHECK(id >= 1 && id <= st.put);
        } else {
            CHECK(text_is(p, n,
                          "OK PING QUIT SHUTDOWN HELP AUTH STATS PUT GET ACK "
                          "NACK TOUCH"));
        }
        return;
    }
    if (text_starts(p, n, "MSG ")) {
        check_msg(r, p, n);
        return;
    }
    if (text_starts(p, n, "STATS "))
        return;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (text_is(p, n, errors[i]))
            return;
    if (text_starts(p, n, "ERR rate limited ")) {
        CHECK(r->rate_on && !r->shape);
        CHECK(all_digits(p + 17, n - 17));
        return;
    }
    if (text_is(p, n, "ERR auth required") ||
        text_is(p, n, "ERR auth failed")) {
        CHECK(r->auth);
        return;
    }
    if (text_is(p, n, "ERR shutdown disabled")) {
        CHECK(r->no_shutdown);
        return;
    }
    CHECK(false);
}

/* Reads and checks the client's replies; true when any arrived. */
static bool fuzz_client_read(struct fuzz_run *r, struct fuzz_client *cl)
{
    char in[4096];
    bool got = false;

    while (cl->fd >= 0 && !cl->hold) {
        ssize_t n = recv(cl->fd, in, sizeof(in), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            /* The server closes only once its replies are all out, and
             * it writes whole lines. */
            CHECK(cl->line_len == 0);
            fuzz_client_close(cl);
            return true;
        }
        got = true;
        for (ssize_t i = 0; i < n; i++) {
            if (in[i] != '\n') {
                CHECK(cl->line_len < sizeof(cl->line));
                cl->line[cl->line_len++] = in[i];
                continue;
            }
            check_reply(r, cl->line, cl->line_len);
            cl->line_len = 0;
        }
    }
    return got;
}

/* What must hold between steps, whatever the clients sent. */
static void fuzz_check(const struct fuzz_run *r)
{
    struct server *s = r->srv;
    uint64_t n = 0, shaped = 0;
    /* conn.c keeps at most one read into the server's 64 KiB scratch
     * buffer, or one partial line plus one 16 KiB read of its own. */
    size_t in_max = 65536 + 16384 + s->cfg.max_line + 1;

    for (struct list *l = s->conns.next; l != &s->conns; l = l->next) {
        struct conn *c = LIST_ENTRY(l, struct conn, node);
        n++;
        /* Reading stops at max-output; one more reply may follow, and
         * one more for a GET that was waiting. */
        CHECK(c->out.len < s->cfg.max_output + 2 * FUZZ_REPLY_MAX);
        CHECK(c->in.len <= in_max);
        CHECK((c->hold == CONN_HELD_WAIT) == (c->owner.wait_queue != NULL));
        if (c->hold == CONN_HELD_SHAPE)
            shaped++;
        if (c->hold != CONN_RUNNING && !s->shutting_down)
            CHECK(loop_timer_active(&c->timer));
    }
    CHECK(n == s->stats.connections);
    CHECK(shaped == s->stats.held);
    if (!r->rate_on)
        CHECK(s->stats.rate_limited == 0 && s->stats.shaped == 0);
    if (r->shape)
        CHECK(s->stats.rate_limited == 0);
    store_check(s->store);
}

/* One loop iteration at the harness's time, then the replies. */
static bool fuzz_iterate(struct fuzz_run *r)
{
    bool moved = false;

    for (size_t i = 0; i < FUZZ_CONNS; i++)
        moved |= fuzz_client_write(&r->clients[i]);
    CHECK(loop_run_once(r->srv->loop, r->now) == 0);
    for (size_t i = 0; i < FUZZ_CONNS; i++)
        moved |= fuzz_client_read(r, &r->clients[i]);
    return moved;
}

/* Runs the loop until the server has nothing left to do at this time. */
static void fuzz_settle(struct fuzz_run *r)
{
    for (int i = 0; i < FUZZ_SETTLE_MAX; i++) {
        bool moved = fuzz_iterate(r);
        if (i >= 2 && !moved && list_empty(&r->srv->ready) &&
            list_empty(&r->srv->dirty))
            break;
    }
    fuzz_check(r);
}

/* Hands the buffered bytes to the current client's socket; true when
 * there were any. A client that is gone is replaced by a new connection,
 * unless the server is shutting down and so no longer accepting. */
static bool fuzz_send_chunk(struct fuzz_run *r)
{
    struct fuzz_client *cl = &r->clients[r->cur];

    if (r->chunk.len == 0)
        return false;
    if (cl->fd < 0 && !r->srv->shutting_down)
        fuzz_client_open(r, cl);
    if (cl->fd >= 0 && !cl->shut)
        CHECK(buf_append(&cl->pending, r->chunk.data, r->chunk.len) == 0);
    buf_consume(&r->chunk, r->chunk.len);
    r->chunk_goal = fuzz_chunk_goal(r);
    fuzz_client_write(cl);
    return true;
}

static void fuzz_control(struct fuzz_run *r, uint8_t op, uint8_t arg)
{
    struct fuzz_client *cl = &r->clients[r->cur];

    /* What was sent before the control is served before it acts, at the
     * time it was sent. */
    if (fuzz_send_chunk(r))
        fuzz_settle(r);
    switch (op) {
    case 't':
        r->now += fuzz_advance_ns(arg);
        break;
    case 'c':
        r->cur = arg % FUZZ_CONNS;
        break;
    case 'e':
        if (cl->fd >= 0 && !cl->shut) {
            shutdown(cl->fd, SHUT_WR);
            cl->shut = true;
        }
        break;
    case 'x':
        fuzz_client_close(cl);
        break;
    case 'h':
        cl->hold = !cl->hold;
        break;
    default:
        break;
    }
    fuzz_settle(r);
}

/* Every client goes away. Unless the server is shutting down, nothing may
 * then be leased or waited for: a closing connection releases all. */
static void fuzz_finish(struct fuzz_run *r)
{
    fuzz_send_chunk(r);
    fuzz_settle(r);
    for (size_t i = 0; i < FUZZ_CONNS; i++)
        fuzz_client_close(&r->clients[i]);
    fuzz_settle(r);
    if (!r->srv->shutting_down) {
        struct store_stats st;
        store_stats(r->srv->store, &st);
        CHECK(list_empty(&r->srv->conns) && r->srv->stats.connections == 0);
        CHECK(st.leased == 0 && st.waiting == 0);
    }
    server_free(r->srv);
    buf_release(&r->chunk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_run r;

    if (size < 4)
        return 0;
    memset(&r, 0, sizeof(r));
    r.srv = fuzz_server_new(&r, data);
    r.now = loop_now(r.srv->loop);
    r.rng = 0x2545f491u ^ ((uint32_t)data[3] << 16) ^ (uint32_t)size;
    r.chunk_goal = fuzz_chunk_goal(&r);
    buf_init(&r.chunk);
    for (size_t i = 0; i < FUZZ_CONNS; i++) {
        r.clients[i].fd = -1;
        buf_init(&r.clients[i].pending);
    }

    for (size_t i = 4; i < size; i++) {
        uint8_t b = data[i];
        if (b == FUZZ_ESC && i + 1 < size && data[i + 1] != FUZZ_ESC) {
            uint8_t op = data[i + 1];
            uint8_t arg = i + 2 < size ? data[i + 2] : 0;
            i += op == 't' || op == 'c' ? 2 : 1;
            fuzz_control(&r, op, arg);
            continue;
        }
        if (b == FUZZ_ESC)
            i++;
        CHECK(buf_append(&r.chunk, &b, 1) == 0);
        if (r.chunk.len >= r.chunk_goal) {
            fuzz_send_chunk(&r);
            fuzz_iterate(&r);
        }
    }
    fuzz_finish(&r);
    return 0;
}
