/*
 * run: the event loop of one run; see run.h, and drv.h for the state.
 *
 * The loop is built so that the bench costs less per request than the
 * server it measures: level-triggered epoll, one recv() per readable
 * connection per iteration, replies parsed in place, the next requests of
 * a closed loop appended and sent with one send() right after the replies
 * that freed their slots. The clock is read once per recv() (the reply
 * time of every reply in it) and once per batch of sends.
 *
 * The open-loop schedule is kept by a timerfd armed SPIN_NS before the
 * next due time, with the process's timer slack lowered to 1 ns; the last
 * SPIN_NS are spent polling epoll without sleeping. Waking from a timer
 * takes 50 to 100 us on a virtual machine, and every microsecond the bench
 * sends late is charged to the server in the corrected latency. The price
 * is a busy core at rates above 1 / SPIN_NS (20000/s), where the bench is
 * mostly awake anyway.
 */
#include "run.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "drv.h"
#include "net.h"

#define CONNECT_TIMEOUT_MS 5000
#define MAX_EVENTS         256
#define TIMER_TAG          UINT32_MAX
#define MIN_IN_CAP         16384
#define NS_PER_MS          1000000ULL
#define SPIN_NS            50000ULL

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* ---- the calls workload.c makes ---- */

char *drv_out(struct drv *d, struct bconn *c, size_t n)
{
    if (c->out_off + c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len);
        c->out_off = 0;
    }
    /* out_cap holds --pipeline operations' worth: see conn_alloc(). */
    assert(c->out_len + n <= c->out_cap);
    char *p = c->out + c->out_off + c->out_len;
    c->out_len += n;
    if (!c->dirty) {
        c->dirty = true;
        d->dirty[d->ndirty++] = (unsigned)(c - d->conns);
    }
    return p;
}

struct pend *drv_push(struct drv *d, struct bconn *c)
{
    assert(c->count <= c->mask);
    struct pend *p = &c->ring[(c->head + c->count) & c->mask];
    c->count++;
    d->st->lines_sent++;
    return p;
}

void drv_slot_free(struct drv *d, struct bconn *c, bool measured)
{
    c->in_flight--;
    c->measured_in_flight -= measured;
    d->free_slots++;
}

void drv_measured_done(struct drv *d, bool ok, uint64_t due, uint64_t sent,
                       uint64_t now)
{
    d->finished++;
    if (now > d->last_done)
        d->last_done = now;
    if (ok) {
        d->done_all++;
        int rc = stats_latency(d->st, now, due, sent);
        if (rc && !d->err)
            d->err = rc;
    }
}

/* ---- starting operations ---- */

/*
 * Whether an operation starting (due) at t may start: -1 no, 0 yes and
 * unmeasured (warmup), 1 yes and measured. Counts it when measured.
 */
static int admit(struct drv *d, uint64_t t)
{
    if (d->stop_issuing)
        return -1;
    if (t < d->w)
        return 0;
    if (t >= d->e) {
        d->stop_issuing = true;
        return -1;
    }
    if (d->o->requests && --d->budget == 0)
        d->stop_issuing = true;
    d->issued++;
    return 1;
}

static void start(struct drv *d, struct bconn *c, uint64_t due, uint64_t sent,
                  bool measured)
{
    c->in_flight++;
    c->measured_in_flight += measured;
    d->free_slots--;
    wl_issue(d, c, due, sent, measured);
}

static bool has_room(void *ctx, unsigned i)
{
    const struct drv *d = ctx;
    const struct bconn *c = &d->conns[i];

    return !c->dead && c->in_flight < d->o->pipeline;
}

/* Closed loop: fills c's free slots. */
static void fill(struct drv *d, struct bconn *c, uint64_t now)
{
    while (c->in_flight < d->o->pipeline) {
        int m = admit(d, now);
        if (m < 0)
            return;
        start(d, c, now, now, m);
    }
}

/*
 * Closed-loop pipeline: producers may start a message only while fewer
 * than connections * pipeline are between PUT and MSG, or the queue
 * would grow for as long as producers outrun consumers.
 */
static void fill_producers(struct drv *d, uint64_t now)
{
    while (d->free_slots && d->in_transit < d->transit_cap) {
        int i = sched_rr_pick(&d->rr, has_room, d);
        if (i < 0)
            return;
        int m = admit(d, now);
        if (m < 0)
            return;
        start(d, &d->conns[i], now, now, m);
    }
}

/* Open loop: hands every due operation to a connection with room. */
static void dispatch(struct drv *d, uint64_t now)
{
    while (d->free_slots && !d->stop_issuing) {
        uint64_t due = sched_next_due(&d->sched);
        if (due > now)
            return;
        int i = sched_rr_pick(&d->rr, has_room, d);
        if (i < 0)
            return;
        int m = admit(d, due);
        if (m < 0)
            return;
        sched_take(&d->sched, now, NULL, NULL);
        start(d, &d->conns[i], due, now, m);
    }
}

/* ---- connections ---- */

static void lose(struct drv *d, struct bconn *c)
{
    if (c->dead)
        return;
    epoll_ctl(d->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    d->st->resets++;
    if (c->role == ROLE_CONSUMER) {
        d->live_recv--;
    } else {
        d->live_send--;
        d->free_slots -= d->o->pipeline - c->in_flight;
        /* Unknown whether the server took them: stop waiting for them. */
        if (c->role == ROLE_PRODUCER)
            d->in_transit -= min_u64(d->in_transit, c->in_flight);
    }
    d->st->lost += c->measured_in_flight;
    d->finished += c->measured_in_flight;
    c->measured_in_flight = 0;
    c->count = 0;
    c->out_len = 0;
}

static void flush(struct drv *d, struct bconn *c)
{
    if (c->dead || c->out_len == 0)
        return;
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) {
            lose(d, c);
            return;
        }
        n = 0;
    }
    c->out_off += (size_t)n;
    c->out_len -= (size_t)n;
    if (c->out_len == 0)
        c->out_off = 0;
    bool want = c->out_len > 0;
    if (want != c->out_armed) {
        struct epoll_event ev = {
            .events = EPOLLIN | (want ? EPOLLOUT : 0),
            .data.u32 = (uint32_t)(c - d->conns),
        };
        epoll_ctl(d->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->out_armed = want;
    }
}

/*
 * Only this clears the dirty flags, so a connection is listed at most
 * once however often it is flushed directly in between.
 */
static void flush_dirty(struct drv *d)
{
    for (unsigned i = 0; i < d->ndirty; i++) {
        struct bconn *c = &d->conns[d->dirty[i]];
        c->dirty = false;
        flush(d, c);
    }
    d->ndirty = 0;
}

static void read_conn(struct drv *d, struct bconn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            lose(d, c);
        return;
    }
    uint64_t now = now_ns();
    c->in_len += (size_t)n;
    char *p = c->in;
    char *end = c->in + c->in_len;
    char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (c->count == 0) {
            d->st->bad_replies++; /* a reply to nothing we sent */
        } else {
            struct pend pd = c->ring[c->head];
            c->head = (c->head + 1) & c->mask;
            c->count--;
            wl_reply(d, c, &pd, p, len, now);
        }
        p = nl + 1;
    }
    size_t rest = (size_t)(end - p);
    if (rest == c->in_cap) {
        /* A reply line longer than any reply this bench asks for. */
        d->st->bad_replies++;
        lose(d, c);
        return;
    }
    memmove(c->in, p, rest);
    c->in_len = rest;
    if (!d->rate && c->role == ROLE_CLIENT)
        fill(d, c, now_ns());
    flush(d, c);
}

static void on_event(struct drv *d, const struct epoll_event *ev)
{
    if (ev->data.u32 == TIMER_TAG) {
        uint64_t ticks;
        if (read(d->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
            return;
        d->tfd_armed = 0;
        return;
    }
    struct bconn *c = &d->conns[ev->data.u32];
    /* A connection lost earlier in this batch is skipped, not reused. */
    if (c->dead)
        return;
    if (ev->events & EPOLLOUT)
        flush(d, c);
    if (!c->dead && (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        read_conn(d, c);
}

/* ---- set-up and tear-down ---- */

static uint32_t pow2_at_least(uint32_t x)
{
    uint32_t p = 1;

    while (p < x)
        p <<= 1;
    return p;
}

static int conn_alloc(struct drv *d, struct bconn *c, uint8_t role)
{
    const struct bench_opts *o = d->o;
    /* At most PUT+GET, then one ACK, per operation of a pipeline. */
    uint32_t ring = pow2_at_least(2 * o->pipeline + 2);
    size_t reply_max = o->size + 64;

    c->fd = -1;
    c->role = role;
    c->mask = ring - 1;
    c->ring = calloc(ring, sizeof(*c->ring));
    c->in_cap = 2 * reply_max > MIN_IN_CAP ? 2 * reply_max : MIN_IN_CAP;
    c->in = malloc(c->in_cap);
    c->out_cap = o->pipeline * wl_out_bytes(d);
    c->out = malloc(c->out_cap);
    if (!c->ring || !c->in || !c->out)
        return -ENOMEM;
    return 0;
}

static int queues_alloc(struct drv *d)
{
    const struct bench_opts *o = d->o;

    d->qnames = calloc(o->queues, sizeof(*d->qnames));
    d->qlens = calloc(o->queues, sizeof(*d->qlens));
    d->payload = malloc(o->size);
    if (!d->qnames || !d->qlens || !d->payload)
        return -ENOMEM;
    for (unsigned i = 0; i < o->queues; i++) {
        int n =
            snprintf(d->qnames[i], sizeof(d->qnames[i]), "%s%u", o->prefix, i);
        d->qlens[i] = (size_t)n;
    }
    memset(d->payload, 'x', o->size);
    return 0;
}

static int setup(struct drv *d, enum run_stage *stage)
{
    const struct bench_opts *o = d->o;
    bool pipe = o->workload == WL_PIPELINE;
    int rc;

    *stage = RUN_SETUP;
    d->nsend = o->connections;
    d->nconns = o->connections + (pipe ? o->consumers : 0);
    d->conns = calloc(d->nconns, sizeof(*d->conns));
    d->dirty = calloc(d->nconns, sizeof(*d->dirty));
    d->ep = epoll_create1(EPOLL_CLOEXEC);
    d->tfd = -1;
    if (!d->conns || !d->dirty)
        return -ENOMEM;
    if (d->ep < 0)
        return -errno;
    if ((rc = queues_alloc(d)) != 0)
        return rc;
    for (unsigned i = 0; i < d->nconns; i++) {
        uint8_t role = i >= d->nsend ? ROLE_CONSUMER
                       : pipe        ? ROLE_PRODUCER
                                     : ROLE_CLIENT;
        if ((rc = conn_alloc(d, &d->conns[i], role)) != 0)
            return rc;
        d->conns[i].qnext = (i >= d->nsend ? i - d->nsend : i) % o->queues;
    }
    if (d->rate) {
        d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = TIMER_TAG};
        if (d->tfd < 0 || epoll_ctl(d->ep, EPOLL_CTL_ADD, d->tfd, &ev) < 0)
            return -errno;
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    }
    *stage = RUN_CONNECT;
    for (unsigned i = 0; i < d->nconns; i++) {
        struct bconn *c = &d->conns[i];
        c->fd = net_connect(o->host, o->port, CONNECT_TIMEOUT_MS);
        if (c->fd < 0)
            return c->fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (epoll_ctl(d->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            return -errno;
    }
    d->live_send = d->nsend;
    d->live_recv = d->nconns - d->nsend;
    d->free_slots = d->nsend * o->pipeline;
    d->transit_cap = (uint64_t)d->nsend * o->pipeline;
    d->rr.n = d->nsend;
    return 0;
}

static void teardown(struct drv *d)
{
    for (unsigned i = 0; d->conns && i < d->nconns; i++) {
        struct bconn *c = &d->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->ring);
        free(c->in);
        free(c->out);
    }
    free(d->conns);
    free(d->dirty);
    free(d->qnames);
    free(d->qlens);
    free(d->payload);
    if (d->tfd >= 0)
        close(d->tfd);
    if (d->ep >= 0)
        close(d->ep);
}

/* ---- the loop ---- */

/* Arms the timerfd at the next due time when one may be sent then. */
static void arm_timer(struct drv *d, uint64_t now)
{
    if (!d->rate || d->stop_issuing || !d->free_slots)
        return;
    uint64_t due = sched_next_due(&d->sched);
    if (due <= now + SPIN_NS)
        return; /* wait_ms() polls instead */
    due -= SPIN_NS;
    if (due == d->tfd_armed)
        return;
    struct itimerspec its = {
        .it_value.tv_sec = (time_t)(due / 1000000000ULL),
        .it_value.tv_nsec = (long)(due % 1000000000ULL),
    };
    if (timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        d->tfd_armed = due;
}

/* epoll_wait's timeout: until the next second, phase change or deadline. */
static int wait_ms(struct drv *d, uint64_t now)
{
    uint64_t until = d->deadline;

    if (now < d->w)
        until = min_u64(until, d->w);
    else
        until = min_u64(until, d->st->sec_start + STATS_SECOND_NS);
    if (now < d->e)
        until = min_u64(until, d->e);
    if (d->rate && !d->stop_issuing && d->free_slots &&
        sched_next_due(&d->sched) <= now + SPIN_NS)
        return 0;
    if (until <= now)
        return 0;
    return (int)((until - now + NS_PER_MS - 1) / NS_PER_MS);
}

struct progress {
    bool on;
    uint64_t next;
    uint64_t last_done;
};

static void progress(struct drv *d, struct progress *pg, uint64_t now)
{
    if (!pg->on || now < pg->next)
        return;
    uint64_t sec = (now - d->t0) / 1000000000ULL;
    const struct stats *st = d->st;
    double p99 =
        st->nseries ? (double)st->series[st->nseries - 1].p99 / 1e6 : 0.0;
    fprintf(stderr,
            "\r%s %3llus  %10llu %ss/s  p99 %9.3f ms  errors %llu"
            "  rate limited %llu   ",
            now < d->w ? "warmup" : "run   ", (unsigned long long)sec,
            (unsigned long long)(d->done_all - pg->last_done),
            opts_op_unit(d->o->workload), p99,
            (unsigned long long)stats_errors(st),
            (unsigned long long)st->rate_limited);
    pg->last_done = d->done_all;
    pg->next += 1000000000ULL;
}

/* At the deadline: what was measured but will never finish is lost. */
static void count_unfinished(struct drv *d, uint64_t now)
{
    uint64_t unsent = 0;

    if (d->rate && now > d->w && !d->stop_issuing) {
        uint64_t upto = min_u64(now, d->e) - 1;
        uint64_t due = sched_due_count(&d->sched, upto) -
                       sched_due_count(&d->sched, d->w - 1);
        unsent = due > d->issued ? due - d->issued : 0;
        if (d->o->requests)
            unsent = min_u64(unsent, d->budget);
    }
    d->st->lost += d->issued - d->finished + unsent;
    d->st->complete = false;
}

/* Whether every consumer has had all its replies (bounded by wait_ms). */
static bool drained(const struct drv *d)
{
    for (unsigned i = d->nsend; i < d->nconns; i++)
        if (!d->conns[i].dead && d->conns[i].count)
            return false;
    return true;
}

static int loop(struct drv *d, enum run_stage *stage)
{
    const struct bench_opts *o = d->o;
    struct epoll_event evs[MAX_EVENTS];
    struct progress pg = {
        .on = !o->quiet && isatty(STDERR_FILENO),
        .next = d->t0 + 1000000000ULL,
    };
    int rc = 0;

    for (;;) {
        uint64_t now = now_ns();
        if (!o->requests && now >= d->e &&
            (!d->rate || sched_next_due(&d->sched) >= d->e))
            d->stop_issuing = true;
        if (d->stop_issuing && d->finished >= d->issued) {
            if (drained(d))
                break;
            d->draining = true;
        }
        if (now >= d->deadline) {
            count_unfinished(d, now);
            break;
        }
        if (d->live_send == 0 ||
            (o->workload == WL_PIPELINE && d->live_recv == 0)) {
            *stage = RUN_LOST;
            rc = -ECONNRESET;
            break;
        }
        if (d->rate)
            dispatch(d, now);
        else if (o->workload == WL_PIPELINE)
            fill_producers(d, now);
        flush_dirty(d);
        if (now >= d->w && !d->err)
            d->err = stats_tick(d->st, now);
        if (d->err) {
            *stage = RUN_SETUP;
            rc = d->err;
            break;
        }
        progress(d, &pg, now);
        arm_timer(d, now);
        int n = epoll_wait(d->ep, evs, MAX_EVENTS, wait_ms(d, now));
        if (n < 0 && errno != EINTR) {
            *stage = RUN_SETUP;
            rc = -errno;
            break;
        }
        for (int i = 0; i < n; i++)
            on_event(d, &evs[i]);
    }
    if (pg.on)
        fprintf(stderr, "\r%*s\r", 78, "");
    return rc;
}

int run_bench(const struct bench_opts *o, uint64_t rate, struct stats *st,
              enum run_stage *stage)
{
    struct drv d = {.o = o, .st = st, .rate = rate, .ep = -1, .tfd = -1};
    int rc = setup(&d, stage);

    st->target_rate = rate;
    st->duration_ns = o->requests ? 0 : o->duration_ns;
    st->warmup_ns = o->warmup_ns;
    if (rc == 0) {
        d.t0 = now_ns();
        d.w = d.t0 + o->warmup_ns;
        d.e = o->requests ? UINT64_MAX : d.w + o->duration_ns;
        d.deadline = d.t0 + o->timeout_ns;
        d.budget = o->requests;
        stats_begin(st, d.w);
        if (rate)
            sched_init(&d.sched, d.t0, rate);
        for (unsigned i = d.nsend; i < d.nconns; i++)
            for (unsigned k = 0; k < o->pipeline; k++)
                wl_issue(&d, &d.conns[i], 0, 0, false);
        for (unsigned i = 0; !rate && i < d.nsend; i++)
            if (d.conns[i].role == ROLE_CLIENT)
                fill(&d, &d.conns[i], d.t0);
        rc = loop(&d, stage);
        st->elapsed_ns = d.last_done > d.w ? d.last_done - d.w : 0;
        stats_end(st);
    }
    teardown(&d);
    return rc;
}
