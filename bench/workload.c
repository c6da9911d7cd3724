/*
 * workload: what each workload sends and how it reads the replies.
 *
 * The request lines are written straight into the connection's output
 * buffer, and the payload filler is built once per run, so starting an
 * operation costs a few memcpy calls. A reply that is not the one the
 * request calls for is counted as an error of its kind (ERR rate limited,
 * other ERR, or bad) and its operation fails; it never reaches a latency.
 *
 * The pipeline workload carries its times in the payload, so whichever
 * consumer gets a message can time it:
 *
 *     byte 0       'm' when the message is measured, 'w' when not
 *     bytes 1-15   due time, ns, 15 hex digits
 *     bytes 16-30  send time, ns, 15 hex digits
 *     the rest     filler up to --size
 *
 * 15 hex digits hold 36 years of CLOCK_MONOTONIC, which starts at boot.
 */
#include "drv.h"

#include <string.h>

#include "reply.h"

#define STAMP_DIGITS 15
#define STAMP_LEN    (1 + 2 * STAMP_DIGITS)
#define U64_DIGITS   20

static const char hexdig[] = "0123456789abcdef";

static size_t qmax(const struct drv *d)
{
    size_t m = 0;

    for (unsigned i = 0; i < d->o->queues; i++)
        if (d->qlens[i] > m)
            m = d->qlens[i];
    return m;
}

size_t wl_out_bytes(const struct drv *d)
{
    size_t q = qmax(d);
    size_t put = 4 + q + 1 + d->o->size + 1;
    size_t get = 4 + q + 1 + 7 + 1; /* GET q <wait_ms> */
    size_t ack = 4 + U64_DIGITS + 1;

    switch (d->o->workload) {
    case WL_PING:
        return 5;
    case WL_PUT:
        return put;
    case WL_CYCLE:
        return put + get + ack;
    case WL_PIPELINE:
        return put > get + ack ? put : get + ack;
    }
    return put + get + ack;
}

static void put_u64(char *p, uint64_t v, size_t digits)
{
    for (size_t i = digits; i-- > 0; v >>= 4)
        p[i] = hexdig[v & 15];
}

static bool get_hex(const char *p, size_t digits, uint64_t *v)
{
    uint64_t x = 0;

    for (size_t i = 0; i < digits; i++) {
        char ch = p[i];
        unsigned dig;
        if (ch >= '0' && ch <= '9')
            dig = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            dig = (unsigned)(ch - 'a' + 10);
        else
            return false;
        x = x << 4 | dig;
    }
    *v = x;
    return true;
}

/* "PUT <queue> <payload>\n"; returns the payload's place in the output. */
static char *queue_put(struct drv *d, struct bconn *c, unsigned q)
{
    size_t ql = d->qlens[q];
    size_t n = d->o->size;
    char *p = drv_out(d, c, 4 + ql + 1 + n + 1);

    memcpy(p, "PUT ", 4);
    memcpy(p + 4, d->qnames[q], ql);
    p[4 + ql] = ' ';
    char *payload = p + 4 + ql + 1;
    memcpy(payload, d->payload, n);
    payload[n] = '\n';
    return payload;
}

/* "GET <queue>\n", or with the consumers' wait. */
static void queue_get(struct drv *d, struct bconn *c, unsigned q, bool wait)
{
    char tail[16];
    size_t ql = d->qlens[q];
    size_t tn =
        wait ? (size_t)snprintf(tail, sizeof(tail), " %u\n", d->o->wait_ms)
             : (size_t)snprintf(tail, sizeof(tail), "\n");
    char *p = drv_out(d, c, 4 + ql + tn);

    memcpy(p, "GET ", 4);
    memcpy(p + 4, d->qnames[q], ql);
    memcpy(p + 4 + ql, tail, tn);
}

static void queue_ack(struct drv *d, struct bconn *c, uint64_t id)
{
    char num[U64_DIGITS];
    size_t n = 0;

    do {
        num[sizeof(num) - 1 - n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    char *p = drv_out(d, c, 4 + n + 1);
    memcpy(p, "ACK ", 4);
    memcpy(p + 4, num + sizeof(num) - n, n);
    p[4 + n] = '\n';
}

static unsigned next_queue(struct drv *d, struct bconn *c)
{
    unsigned q = c->qnext;

    c->qnext = q + 1 == d->o->queues ? 0 : q + 1;
    return q;
}

static void push(struct drv *d, struct bconn *c, enum pend_kind kind,
                 uint64_t due, uint64_t sent, bool measured)
{
    struct pend *p = drv_push(d, c);

    *p = (struct pend){
        .due = due,
        .sent = sent,
        .kind = (uint8_t)kind,
        .measured = measured,
    };
}

void wl_issue(struct drv *d, struct bconn *c, uint64_t due, uint64_t sent,
              bool measured)
{
    if (c->role == ROLE_CONSUMER) {
        /* A consumer serves one queue, so a waiting GET never blocks it. */
        queue_get(d, c, c->qnext, true);
        push(d, c, P_GET, 0, 0, false);
        return;
    }
    switch (d->o->workload) {
    case WL_PING:
        memcpy(drv_out(d, c, 5), "PING\n", 5);
        push(d, c, P_PING, due, sent, measured);
        break;
    case WL_PUT:
        queue_put(d, c, next_queue(d, c));
        push(d, c, P_PUT, due, sent, measured);
        break;
    case WL_CYCLE: {
        /* PUT and GET go together; the ACK needs the GET's reply. */
        unsigned q = next_queue(d, c);
        queue_put(d, c, q);
        queue_get(d, c, q, false);
        push(d, c, P_CPUT, due, sent, measured);
        push(d, c, P_CGET, due, sent, measured);
        break;
    }
    case WL_PIPELINE: {
        char *pl = queue_put(d, c, next_queue(d, c));
        pl[0] = measured ? 'm' : 'w';
        put_u64(pl + 1, due, STAMP_DIGITS);
        put_u64(pl + 1 + STAMP_DIGITS, sent, STAMP_DIGITS);
        push(d, c, P_PPUT, due, sent, measured);
        d->in_transit++;
        break;
    }
    }
}

static void count_error(struct drv *d, const struct reply *r)
{
    if (r->kind == REPLY_RATE_LIMITED)
        d->st->rate_limited++;
    else if (r->kind == REPLY_ERR)
        d->st->err_replies++;
    else
        d->st->bad_replies++;
}

/* Ends an operation of a sender. */
static void finish(struct drv *d, struct bconn *c, const struct pend *p,
                   bool ok, uint64_t now)
{
    drv_slot_free(d, c, p->measured);
    if (p->measured)
        drv_measured_done(d, ok, p->due, p->sent, now);
    else if (ok)
        d->done_all++;
}

/* A message reached a consumer: time it when this run measures it. */
static void consume(struct drv *d, const struct reply *r, uint64_t now)
{
    const char *pl = r->payload;
    uint64_t due, sent;

    if (r->payload_len < STAMP_LEN || (pl[0] != 'm' && pl[0] != 'w') ||
        !get_hex(pl + 1, STAMP_DIGITS, &due) ||
        !get_hex(pl + 1 + STAMP_DIGITS, STAMP_DIGITS, &sent)) {
        d->st->bad_replies++;
        return;
    }
    /*
     * Messages left in the queue by an earlier run are older than this
     * run's start, and a redelivered one was timed (or lost) already.
     */
    if (due < d->t0 || r->attempt != 1)
        return;
    if (d->in_transit)
        d->in_transit--;
    if (pl[0] == 'm' && due >= d->w)
        drv_measured_done(d, true, due, sent, now);
    else
        d->done_all++;
}

static void consumer_reply(struct drv *d, struct bconn *c, const struct pend *p,
                           const struct reply *r, uint64_t now)
{
    if (p->kind == P_ACK) {
        if (r->kind != REPLY_OK || r->has_id)
            count_error(d, r);
        return;
    }
    if (r->kind == REPLY_MSG) {
        consume(d, r, now);
        /* ACK whatever came, ours or not, so nothing stays leased. */
        queue_ack(d, c, r->id);
        push(d, c, P_ACK, 0, 0, false);
    } else if (r->kind != REPLY_EMPTY) {
        count_error(d, r);
    }
    if (!d->draining)
        wl_issue(d, c, 0, 0, false);
}

void wl_reply(struct drv *d, struct bconn *c, const struct pend *p,
              const char *line, size_t len, uint64_t now)
{
    struct reply r;
    bool ok;

    reply_parse(line, len, &r);
    switch (p->kind) {
    case P_PING:
        ok = r.kind == REPLY_PONG;
        break;
    case P_PUT:
        ok = r.kind == REPLY_OK && r.has_id;
        break;
    case P_CPUT:
        if (r.kind == REPLY_OK && r.has_id)
            return;
        /* The GET that follows may still lease something: ACK it. */
        count_error(d, &r);
        c->ring[c->head].failed = true;
        return;
    case P_CGET:
        if (r.kind == REPLY_MSG) {
            queue_ack(d, c, r.id);
            struct pend *a = drv_push(d, c);
            *a = *p;
            a->kind = P_CACK;
            return;
        }
        if (!p->failed)
            count_error(d, &r);
        finish(d, c, p, false, now);
        return;
    case P_CACK:
        ok = r.kind == REPLY_OK && !r.has_id;
        if (!ok)
            count_error(d, &r);
        finish(d, c, p, ok && !p->failed, now);
        return;
    case P_PPUT:
        if (r.kind == REPLY_OK && r.has_id) {
            /* The message's fate is now the consumers' to count. */
            drv_slot_free(d, c, p->measured);
            return;
        }
        count_error(d, &r);
        if (d->in_transit)
            d->in_transit--;
        finish(d, c, p, false, now);
        return;
    default:
        consumer_reply(d, c, p, &r, now);
        return;
    }
    if (!ok)
        count_error(d, &r);
    finish(d, c, p, ok, now);
}
