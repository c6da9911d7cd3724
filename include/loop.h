/*
 * The reactor: one loop that owns every descriptor and timer of the daemon.
 *
 * The API is a handful of calls: watch a descriptor for reading and/or
 * writing, close it, start or stop a timer, run, stop. Which kernel
 * interface waits for events is private to loop.c; nothing here names it.
 *
 * Each iteration reads the monotonic clock once (loop_now), so every
 * callback of one iteration sees the same time. A descriptor closed with
 * loop_io_close is skipped for the rest of the iteration and its close
 * callback, where the owner frees it, runs only after the iteration's
 * events are all handled, so a later event of the same batch can never
 * reach freed memory.
 */
#ifndef RLMQ_LOOP_H
#define RLMQ_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "timer_heap.h"

struct loop;
struct loop_io;
struct loop_timer;

/* LOOP_PEER_SHUT: the peer has shut down its sending side. It can be asked
 * for without LOOP_READ, by a caller that is not reading now but must
 * know when the peer stops sending. */
enum {
    LOOP_READ = 1u,
    LOOP_WRITE = 2u,
    LOOP_ERROR = 4u,
    LOOP_PEER_SHUT = 8u,
};

/* events: LOOP_READ, LOOP_WRITE and/or LOOP_PEER_SHUT as asked for;
 * LOOP_ERROR on hang-up or error (the callback should then read or write
 * to learn what happened). */
typedef void loop_io_fn(struct loop *l, struct loop_io *io, unsigned events);
typedef void loop_close_fn(struct loop_io *io);
typedef void loop_timer_fn(struct loop *l, struct loop_timer *t);
/* Runs once per iteration before the loop waits; returns true when it
 * left work to do, so the loop polls instead of sleeping. */
typedef bool loop_prepare_fn(struct loop *l, void *arg);

struct loop_io {
    int fd;
    unsigned want;       /* events asked for */
    unsigned registered; /* events the kernel was last told */
    bool added;
    bool closing;
    loop_io_fn *fn;
    loop_close_fn *close_fn;
    struct loop_io *next_closing;
    void *arg;
};

struct loop_timer {
    struct theap_node node; /* first, so a node converts back */
    loop_timer_fn *fn;
    void *arg;
};

/* 0 or a negative errno. */
int loop_new(struct loop **out);
void loop_free(struct loop *l);

void loop_io_init(struct loop_io *io, int fd, loop_io_fn *fn, void *arg);

/* Sets the events io is watched for (0 keeps it registered but quiet).
 * 0 or a negative errno. */
int loop_io_watch(struct loop *l, struct loop_io *io, unsigned events);

/* Stops watching io, closes its descriptor now, and calls close_fn(io)
 * once the current iteration is over (or at once outside an iteration). */
void loop_io_close(struct loop *l, struct loop_io *io, loop_close_fn *fn);

void loop_timer_init(struct loop_timer *t, loop_timer_fn *fn, void *arg);

/* (Re)starts t to fire at `deadline` (monotonic ns). 0 or -ENOMEM. */
int loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t deadline);

void loop_timer_stop(struct loop *l, struct loop_timer *t);

static inline bool loop_timer_active(const struct loop_timer *t)
{
    return theap_node_active(&t->node);
}

/* The time of the current iteration, monotonic nanoseconds. */
uint64_t loop_now(const struct loop *l);

/* Reads the clock again; for code outside loop_run. */
uint64_t loop_update_now(struct loop *l);

void loop_set_prepare(struct loop *l, loop_prepare_fn *fn, void *arg);

/*
 * Busy polling: when the loop runs out of work it may poll for events
 * without sleeping for up to ns (never past a timer's deadline) before it
 * blocks in the kernel. A reply then reaches a client that answers at
 * once without the wake-up of a sleeping thread, which on a loopback
 * costs more than the request itself.
 *
 * It is adaptive: the loop polls only after a run of waits (eight) that
 * each ended within ns of the loop running out of work, that is waits
 * polling would have cut short, and stops at the first wait that was
 * longer. A steady request-reply stream keeps it polling; paced traffic
 * with a longer gap every few requests, or none, never starts it, and a
 * stream that stops costs one window. 0 turns it off.
 */
void loop_set_busy_poll(struct loop *l, uint64_t ns);

/* Runs until loop_stop. 0, or a negative errno if waiting failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/*
 * One iteration of loop_run that never blocks: the prepare hook, the events
 * already pending, then the timers due at `now`, which stands in for the
 * clock (it must not go back). The daemon never calls it; it exists so
 * that a harness can drive the real server on a fake clock, which
 * loop_run cannot do since it reads the clock and sleeps until the next
 * timer (tests/fuzz_dispatch.c). 0, or a negative errno if polling failed.
 */
int loop_run_once(struct loop *l, uint64_t now);

#endif
