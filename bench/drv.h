/*
 * drv: the state of one run, shared by the event loop (run.c) and the
 * workloads' protocol logic (workload.c). Nothing outside those two files
 * includes it.
 *
 * An operation is what the rate and --requests count: one request for
 * ping and put, a PUT+GET+ACK cycle, or one message of the pipeline
 * workload. It is "measured" when it starts (is due, in an open loop; is
 * sent, in a closed one) after the warmup and inside the window or the
 * --requests budget. The run ends when no more operations may start and
 * every measured one has finished (succeeded, failed or been lost with
 * its connection), or at the hard deadline. The pipeline workload then
 * drains its consumers first: the server runs a consumer's ACK only after
 * the waiting GETs pipelined before it, so closing at once would hand the
 * last messages back unacknowledged.
 *
 * Every request written is remembered in its connection's ring of pending
 * replies, in order, because the server answers in request order: the
 * ring's head is always the request the next reply line belongs to.
 */
#ifndef RLMQ_BENCH_DRV_H
#define RLMQ_BENCH_DRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"
#include "schedule.h"
#include "stats.h"

/* The request a pending reply answers. */
enum pend_kind {
    P_PING, /* ping */
    P_PUT,  /* put */
    P_CPUT, /* cycle: the PUT */
    P_CGET, /* cycle: the GET */
    P_CACK, /* cycle: the ACK of what the GET returned */
    P_PPUT, /* pipeline producer: a PUT carrying its times */
    P_GET,  /* pipeline consumer: a waiting GET */
    P_ACK,  /* pipeline consumer: the ACK of a message */
};

struct pend {
    uint64_t due;  /* ns; equals sent in a closed loop */
    uint64_t sent; /* ns */
    uint8_t kind;  /* enum pend_kind */
    bool measured;
    bool failed; /* cycle: an earlier step already failed */
};

enum conn_role { ROLE_CLIENT, ROLE_PRODUCER, ROLE_CONSUMER };

struct bconn {
    int fd;
    uint8_t role;
    bool dead;
    bool out_armed;     /* EPOLLOUT is registered */
    bool dirty;         /* on the list of connections to flush */
    unsigned in_flight; /* operations (consumer: GETs) outstanding */
    unsigned measured_in_flight;
    unsigned qnext;    /* round robin over the queues */
    struct pend *ring; /* pending replies, oldest at head */
    uint32_t head, count, mask;
    char *in; /* unparsed reply bytes */
    size_t in_len, in_cap;
    char *out; /* unsent request bytes at out + out_off */
    size_t out_off, out_len, out_cap;
};

struct drv {
    const struct bench_opts *o;
    struct stats *st;
    uint64_t rate; /* 0: closed loop */

    struct bconn *conns; /* senders first, then consumers */
    unsigned nconns;
    unsigned nsend; /* clients or producers */
    unsigned live_send, live_recv;
    unsigned *dirty; /* connections with output to flush */
    unsigned ndirty;
    int ep;             /* epoll */
    int tfd;            /* timerfd for the open-loop schedule */
    uint64_t tfd_armed; /* absolute expiry set, 0 when disarmed */

    uint64_t t0;        /* start of the run */
    uint64_t w;         /* end of warmup, start of measuring */
    uint64_t e;         /* end of the window; UINT64_MAX: --requests */
    uint64_t deadline;  /* hard end */
    uint64_t budget;    /* --requests: measured ops left to start */
    uint64_t issued;    /* measured operations started */
    uint64_t finished;  /* measured operations finished */
    uint64_t last_done; /* time of the last measured finish */
    uint64_t done_all;  /* successful operations, warmup too */
    bool stop_issuing;
    bool draining;
    int err; /* first -errno met while recording */ /* consumers: no new GET,
                                                       answers awaited */
    unsigned free_slots; /* senders' room for more operations */

    struct sched sched; /* open loop only */
    struct sched_rr rr;

    uint64_t in_transit; /* pipeline, closed loop: PUT, not yet got */
    uint64_t transit_cap;

    char (*qnames)[OPTS_MAX_QUEUE_NAME + 1];
    size_t *qlens;
    char *payload; /* size bytes of filler */
};

/* workload.c */

/* Most bytes one operation may have in a connection's output at once. */
size_t wl_out_bytes(const struct drv *d);

/* Queues the lines of a new operation on c (a GET on a consumer). */
void wl_issue(struct drv *d, struct bconn *c, uint64_t due, uint64_t sent,
              bool measured);

/* Handles one reply line (terminator removed) to the request p of c. */
void wl_reply(struct drv *d, struct bconn *c, const struct pend *p,
              const char *line, size_t len, uint64_t now);

/* run.c */

/* Reserves n bytes at the end of c's output, to be flushed soon. */
char *drv_out(struct drv *d, struct bconn *c, size_t n);

/* Remembers the reply c now expects; returns it for the caller to fill. */
struct pend *drv_push(struct drv *d, struct bconn *c);

/* Frees the slot of one of c's operations (a sender's). */
void drv_slot_free(struct drv *d, struct bconn *c, bool measured);

/* Counts a measured operation finished, with its latency when ok. */
void drv_measured_done(struct drv *d, bool ok, uint64_t due, uint64_t sent,
                       uint64_t now);

#endif
