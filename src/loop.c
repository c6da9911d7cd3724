/*
 * The reactor on epoll: see loop.h. This is the only file that knows epoll.
 *
 * Level-triggered: a descriptor that still has bytes is reported again on
 * the next iteration, so a callback may do one bounded piece of work per
 * event and stay fair to the others. Events are fetched in batches of
 * LOOP_BATCH. Timers live in a heap; the wait is rounded up to the next
 * whole millisecond so a timer never fires early and never spins the loop
 * waking a fraction of a millisecond before its deadline. With busy polling
 * on, the loop may poll with a zero timeout for a while before it blocks;
 * see loop_set_busy_poll().
 */
#include "loop.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256
/* Busy polling starts after this many waits in a row that polling would
 * have cut short: see loop_set_busy_poll(). */
#define LOOP_POLL_AFTER 8

struct loop {
    int epfd;
    bool stop;
    bool in_iteration;
    uint64_t now;
    uint64_t busy_poll_ns;
    unsigned short_waits; /* waits in a row that ended within busy_poll_ns */
    struct theap timers;
    struct loop_io *closing;
    loop_prepare_fn *prepare;
    void *prepare_arg;
    struct epoll_event events[LOOP_BATCH];
};

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int loop_new(struct loop **out)
{
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int err = -errno;
        free(l);
        return err;
    }
    theap_init(&l->timers);
    l->now = clock_ns();
    *out = l;
    return 0;
}

static void run_closing(struct loop *l)
{
    while (l->closing) {
        struct loop_io *io = l->closing;
        l->closing = io->next_closing;
        if (io->close_fn)
            io->close_fn(io);
    }
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    run_closing(l);
    theap_release(&l->timers);
    close(l->epfd);
    free(l);
}

void loop_io_init(struct loop_io *io, int fd, loop_io_fn *fn, void *arg)
{
    io->fd = fd;
    io->want = 0;
    io->registered = 0;
    io->added = false;
    io->closing = false;
    io->fn = fn;
    io->close_fn = NULL;
    io->next_closing = NULL;
    io->arg = arg;
}

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & LOOP_READ)
        e |= EPOLLIN;
    if (events & LOOP_WRITE)
        e |= EPOLLOUT;
    if (events & LOOP_PEER_SHUT)
        e |= EPOLLRDHUP;
    return e;
}

int loop_io_watch(struct loop *l, struct loop_io *io, unsigned events)
{
    assert(!io->closing);
    io->want = events;
    if (io->added && io->registered == events)
        return 0;
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    int op = io->added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(l->epfd, op, io->fd, &ev) < 0)
        return -errno;
    io->added = true;
    io->registered = events;
    return 0;
}

void loop_io_close(struct loop *l, struct loop_io *io, loop_close_fn *fn)
{
    assert(!io->closing);
    /* Closing the descriptor removes it from the epoll set as long as no
     * duplicate of it exists; the daemon never duplicates one. */
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
    io->closing = true;
    io->close_fn = fn;
    io->next_closing = l->closing;
    l->closing = io;
    if (!l->in_iteration)
        run_closing(l);
}

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg)
{
    theap_node_init(&t->node);
    t->fn = fn;
    t->arg = arg;
}

int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t deadline)
{
    theap_remove(&l->timers, &t->node);
    return theap_push(&l->timers, &t->node, deadline);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    theap_remove(&l->timers, &t->node);
}

uint64_t loop_now(const struct loop *l)
{
    return l->now;
}

uint64_t loop_update_now(struct loop *l)
{
    l->now = clock_ns();
    return l->now;
}

void loop_set_prepare(struct loop *l, loop_prepare_fn *fn, void *arg)
{
    l->prepare = fn;
    l->prepare_arg = arg;
}

void loop_set_busy_poll(struct loop *l, uint64_t ns)
{
    l->busy_poll_ns = ns;
}

void loop_stop(struct loop *l)
{
    l->stop = true;
}

/* Fires the timers that are due. A timer started from a callback with a
 * deadline already passed waits for the next iteration, so a timer that
 * re-arms itself at `now` cannot hold the loop here forever. */
static void run_timers(struct loop *l)
{
    uint64_t limit = l->timers.next_seq;
    for (;;) {
        struct theap_node *n = theap_peek(&l->timers);
        if (!n || n->deadline > l->now || n->seq >= limit)
            break;
        theap_remove(&l->timers, n);
        struct loop_timer *t = (struct loop_timer *)n;
        t->fn(l, t);
        if (l->stop)
            break;
    }
}

static int wait_ms(const struct loop *l, bool busy)
{
    if (busy)
        return 0;
    const struct theap_node *n = theap_peek(&l->timers);
    if (!n)
        return -1;
    if (n->deadline <= l->now)
        return 0;
    uint64_t ms = (n->deadline - l->now + 999999) / 1000000;
    return ms > 3600000 ? 3600000 : (int)ms;
}

/* Polls without sleeping until an event arrives, busy_poll_ns after
 * `idle` (when the loop ran out of work), or the next timer's deadline,
 * whichever is first. Returns what epoll_wait last returned: events, 0, or
 * -1 with errno set. */
static int busy_poll(struct loop *l, uint64_t idle)
{
    uint64_t t = idle;
    uint64_t until = idle + l->busy_poll_ns;
    const struct theap_node *next = theap_peek(&l->timers);
    int n = 0;

    if (next && next->deadline < until)
        until = next->deadline;
    while (t < until) {
        n = epoll_wait(l->epfd, l->events, LOOP_BATCH, 0);
        if (n != 0)
            break;
        t = clock_ns();
    }
    l->now = t;
    return n;
}

/* One iteration: the prepare hook, one wait for events, the events, then
 * the timers due. With fake_now NULL the wait lasts until the next timer
 * and the clock is read after it; otherwise the wait only polls and
 * *fake_now is the iteration's time. */
static int loop_iterate(struct loop *l, const uint64_t *fake_now)
{
    /* The prepare hook may close descriptors too; they are freed only
     * after it returns, like those closed by event callbacks. */
    l->in_iteration = true;
    bool busy = l->prepare ? l->prepare(l, l->prepare_arg) : false;
    l->in_iteration = false;
    run_closing(l);
    if (l->stop)
        return 0;
    int timeout = fake_now ? 0 : wait_ms(l, busy);
    uint64_t idle = 0;
    int n = 0;
    if (timeout != 0 && l->busy_poll_ns > 0) {
        idle = clock_ns();
        if (l->short_waits >= LOOP_POLL_AFTER) {
            n = busy_poll(l, idle);
            if (n == 0)
                timeout = wait_ms(l, false); /* the clock moved on */
        }
    }
    if (n == 0)
        n = epoll_wait(l->epfd, l->events, LOOP_BATCH, timeout);
    if (n < 0 && errno != EINTR)
        return -errno;
    l->now = fake_now ? *fake_now : clock_ns();
    /* Poll only after a run of waits that polling would have caught: the
     * steady request-reply stream it helps. Paced traffic, where every
     * few requests a gap is longer than the window, then never polls, so
     * it never pays a window for nothing. */
    if (idle && n > 0) {
        if (l->now - idle > l->busy_poll_ns)
            l->short_waits = 0;
        else if (l->short_waits < LOOP_POLL_AFTER)
            l->short_waits++;
    }
    l->in_iteration = true;
    for (int i = 0; i < n && !l->stop; i++) {
        struct loop_io *io = l->events[i].data.ptr;
        uint32_t e = l->events[i].events;
        if (io->closing)
            continue;
        unsigned ev = 0;
        if (e & EPOLLIN)
            ev |= LOOP_READ;
        if (e & EPOLLOUT)
            ev |= LOOP_WRITE;
        if ((e & EPOLLRDHUP) && (io->want & LOOP_PEER_SHUT))
            ev |= LOOP_PEER_SHUT;
        if (e & (EPOLLERR | EPOLLHUP))
            ev |= LOOP_ERROR;
        io->fn(l, io, ev);
    }
    if (!l->stop)
        run_timers(l);
    l->in_iteration = false;
    run_closing(l);
    return 0;
}

int loop_run(struct loop *l)
{
    l->stop = false;
    while (!l->stop) {
        int rc = loop_iterate(l, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int loop_run_once(struct loop *l, uint64_t now)
{
    return loop_iterate(l, &now);
}
