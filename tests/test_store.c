/*
 * Unit tests for the message store, on a fake clock.
 *
 * The main test drives the store with random operations and holds every
 * reply, every delivery to a waiter and every statistic against a small
 * model written for obviousness, not speed: arrays and linear scans. The
 * limits are tiny so that every bound is hit often. The other tests pin
 * one transition or one edge each, so that a failure names what broke.
 *
 * Randomness comes from splitmix64 with a fixed seed, printed on failure;
 * RLMQ_TEST_SEED=<number> in the environment runs other seeds, and
 * RLMQ_TEST_STEPS=<number> changes the steps per seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Defined in store.c for this test only. */
size_t store_item_header_size(void);

#define MS      UINT64_C(1000000)
#define T0      (UINT64_C(1000) * MS) /* an arbitrary start time */
#define LEN(a)  (sizeof(a) / sizeof((a)[0]))
#define Q(name) (name), strlen(name)

/* ---- deterministic randomness ---- */

struct rng {
    uint64_t seed;
    uint64_t state;
};

static uint64_t base_seed(void)
{
    const char *s = getenv("RLMQ_TEST_SEED");

    return s != NULL ? strtoull(s, NULL, 0) : UINT64_C(0x73746f7265);
}

static void rng_init(struct rng *r, uint64_t salt)
{
    r->seed = base_seed() ^ salt;
    r->state = r->seed;
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* In [0, n). */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* ---- what the deliver callback saw ---- */

#define DLOG_MAX 64
#define PAY_MAX  16

struct delivery {
    struct store_owner *o;
    uint64_t id;
    uint32_t attempt;
    size_t len;
    char payload[PAY_MAX];
};

struct dlog {
    struct delivery d[DLOG_MAX];
    size_t n;
    bool overflow;
    bool still_waiting; /* the owner was on a wait list during the call */
};

static void on_deliver(void *ctx, struct store_owner *o,
                       const struct store_msg *m)
{
    struct dlog *l = ctx;

    if (o->wait_queue != NULL || list_linked(&o->waiter))
        l->still_waiting = true;
    if (l->n == DLOG_MAX || m->len > PAY_MAX) {
        l->overflow = true;
        return;
    }
    struct delivery *d = &l->d[l->n++];
    d->o = o;
    d->id = m->id;
    d->attempt = m->attempt;
    d->len = m->len;
    memcpy(d->payload, m->payload, m->len);
}

/* ---- helpers for the unit tests ---- */

static struct store *mk(const struct store_limits *lim, struct dlog *l)
{
    struct store *s = NULL;

    if (l)
        memset(l, 0, sizeof(*l));
    assert_int_equal(store_new(&s, lim, on_deliver, l), 0);
    assert_non_null(s);
    return s;
}

static const struct store_limits roomy = {
    .max_messages = 1000,
    .max_bytes = 100000,
    .max_queues = 100,
    .lease_ns = 1000 * MS,
    .max_attempts = 3,
};

static uint64_t put_ok(struct store *s, const char *q, const char *p,
                       uint64_t now)
{
    uint64_t id = 0;

    assert_int_equal(store_put(s, Q(q), p, strlen(p), now, &id), 0);
    assert_true(id != 0);
    return id;
}

static struct store_msg get_ok(struct store *s, struct store_owner *o,
                               const char *q, uint64_t now)
{
    struct store_msg m;

    assert_int_equal(store_get(s, o, Q(q), now, &m), 0);
    return m;
}

static void assert_msg(const struct store_msg *m, uint64_t id, uint32_t attempt,
                       const char *payload)
{
    assert_int_equal(m->id, id);
    assert_int_equal(m->attempt, attempt);
    assert_int_equal(m->len, strlen(payload));
    assert_memory_equal(m->payload, payload, m->len);
}

static struct store_queue_stats qst(struct store *s, const char *q,
                                    uint64_t now)
{
    struct store_queue_stats qs;

    store_queue_stats(s, Q(q), now, &qs);
    return qs;
}

static struct store_stats gst(struct store *s)
{
    struct store_stats st;

    store_stats(s, &st);
    return st;
}

static bool queue_stats_zero(const struct store_queue_stats *qs)
{
    static const struct store_queue_stats zero;

    return memcmp(qs, &zero, sizeof(zero)) == 0;
}

static void release_all(struct store *s, struct store_owner *o, size_t n,
                        uint64_t now)
{
    for (size_t i = 0; i < n; i++)
        store_owner_release(s, &o[i], now);
}

/* ---- unit tests ---- */

static void test_header_size(void **state)
{
    size_t h = store_item_header_size();

    (void)state;
    print_message("store: message header %zu bytes before the payload\n", h);
    /* Over 40, a 64-byte message no longer fits a 112-byte malloc chunk
     * (see the head of store.c). */
    assert_true(h <= 40);
    assert_true(h >= sizeof(uint64_t) + 2 * sizeof(void *));
}

static void test_put_get_ack(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o, other;

    (void)state;
    store_owner_init(&o);
    store_owner_init(&other);
    assert_int_equal(store_next_deadline(s), UINT64_MAX);
    assert_int_equal(put_ok(s, "q", "a", T0), 1);
    assert_int_equal(put_ok(s, "q", "bb", T0), 2);
    assert_int_equal(put_ok(s, "q", "ccc", T0), 3);
    struct store_stats st = gst(s);
    assert_int_equal(st.queues, 1);
    assert_int_equal(st.messages, 3);
    assert_int_equal(st.bytes, 6);
    assert_int_equal(st.ready, 3);
    assert_int_equal(st.put, 3);
    assert_int_equal(store_held(s), 3);
    store_check(s);

    struct store_msg m = get_ok(s, &o, "q", T0 + 5);
    assert_msg(&m, 1, 1, "a");
    assert_int_equal(store_next_deadline(s), T0 + 5 + roomy.lease_ns);
    st = gst(s);
    assert_int_equal(st.ready, 2);
    assert_int_equal(st.leased, 1);
    assert_int_equal(st.delivered, 1);
    store_check(s);

    assert_int_equal(store_ack(s, &other, 1), -ENOENT);
    assert_int_equal(store_ack(s, &o, 99), -ENOENT);
    assert_int_equal(store_ack(s, &o, 0), -ENOENT);
    assert_int_equal(store_ack(s, &o, 2), -ENOENT); /* ready, not held */
    assert_int_equal(store_nack(s, &other, 1, 0, T0), -ENOENT);
    assert_int_equal(store_touch(s, &other, 1, T0), -ENOENT);
    assert_int_equal(store_ack(s, &o, 1), 0);
    assert_int_equal(store_ack(s, &o, 1), -ENOENT);
    assert_true(list_empty(&o.leases));
    st = gst(s);
    assert_int_equal(st.messages, 2);
    assert_int_equal(st.bytes, 5);
    assert_int_equal(st.leased, 0);
    assert_int_equal(st.acked, 1);
    assert_int_equal(store_next_deadline(s), UINT64_MAX);
    struct store_queue_stats qs = qst(s, "q", T0);
    assert_int_equal(qs.ready, 2);
    assert_int_equal(qs.put, 3);
    assert_int_equal(qs.delivered, 1);
    assert_int_equal(qs.acked, 1);
    store_check(s);

    m = get_ok(s, &o, "q", T0);
    assert_msg(&m, 2, 1, "bb");
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_get_empty_and_queue_creation(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o;
    struct store_msg m;

    (void)state;
    store_owner_init(&o);
    assert_int_equal(store_get(s, &o, Q("new"), T0, &m), -EAGAIN);
    assert_int_equal(gst(s).queues, 1); /* GET made it */
    struct store_queue_stats qs = qst(s, "unknown", T0);
    assert_true(queue_stats_zero(&qs));
    assert_int_equal(gst(s).queues, 1); /* STATS did not */
    assert_int_equal(store_wait(s, &o, Q("other")), 0);
    assert_int_equal(gst(s).queues, 2); /* wait did */
    assert_int_equal(qst(s, "other", T0).waiting, 1);
    assert_int_equal(gst(s).waiting, 1);
    store_cancel_wait(s, &o);
    store_cancel_wait(s, &o); /* harmless */
    assert_int_equal(gst(s).waiting, 0);
    /* A queue made for its dead letters does not exist yet. */
    qs = qst(s, "new.dlq", T0);
    assert_true(queue_stats_zero(&qs));
    assert_int_equal(store_put(s, Q("bad name"), "x", 1, T0, &(uint64_t){0}),
                     -EINVAL);
    assert_int_equal(store_get(s, &o, Q(""), T0, &m), -EINVAL);
    assert_int_equal(store_wait(s, &o, Q("a/b")), -EINVAL);
    assert_int_equal(gst(s).queues, 2);
    store_check(s);
    store_free(s);
}

static void test_nack_requeues_at_tail(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o;

    (void)state;
    store_owner_init(&o);
    put_ok(s, "q", "one", T0);
    put_ok(s, "q", "two", T0);
    struct store_msg m = get_ok(s, &o, "q", T0);
    assert_msg(&m, 1, 1, "one");
    assert_int_equal(store_nack(s, &o, 1, 0, T0 + 1), 0);
    assert_int_equal(store_nack(s, &o, 1, 0, T0 + 1), -ENOENT);
    assert_int_equal(qst(s, "q", T0).nacked, 1);
    assert_int_equal(gst(s).nacked, 1);
    assert_int_equal(store_next_deadline(s), UINT64_MAX);
    store_check(s);
    m = get_ok(s, &o, "q", T0 + 2);
    assert_msg(&m, 2, 1, "two");
    m = get_ok(s, &o, "q", T0 + 2);
    assert_msg(&m, 1, 2, "one");
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_nack_with_delay(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o;
    struct store_msg m;

    (void)state;
    store_owner_init(&o);
    put_ok(s, "q", "p", T0);
    get_ok(s, &o, "q", T0);
    assert_int_equal(store_nack(s, &o, 1, 500, T0 + 100), 0);
    struct store_stats st = gst(s);
    assert_int_equal(st.delayed, 1);
    assert_int_equal(st.ready, 0);
    assert_int_equal(st.leased, 0);
    assert_int_equal(qst(s, "q", T0).delayed, 1);
    assert_int_equal(store_next_deadline(s), T0 + 600);
    assert_int_equal(store_get(s, &o, Q("q"), T0 + 599, &m), -EAGAIN);
    assert_int_equal(store_ack(s, &o, 1), -ENOENT); /* delayed: not held */
    assert_int_equal(store_expire(s, T0 + 599, 100), 0);
    store_check(s);
    assert_int_equal(store_expire(s, T0 + 600, 100), 1);
    st = gst(s);
    assert_int_equal(st.delayed, 0);
    assert_int_equal(st.ready, 1);
    assert_int_equal(st.expired, 0); /* a delay is not a lease */
    m = get_ok(s, &o, "q", T0 + 700);
    assert_msg(&m, 1, 2, "p");
    assert_int_equal(store_next_deadline(s), T0 + 700 + roomy.lease_ns);
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_touch_and_lease_expiry(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o, other;

    (void)state;
    lim.lease_ns = 1000;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    store_owner_init(&other);
    put_ok(s, "q", "p", T0);
    put_ok(s, "q", "r", T0);
    get_ok(s, &o, "q", T0);      /* id 1, due T0 + 1000 */
    get_ok(s, &o, "q", T0 + 10); /* id 2, due T0 + 1010 */
    assert_int_equal(store_touch(s, &o, 1, T0 + 700), 0); /* T0 + 1700 */
    assert_int_equal(store_touch(s, &other, 1, T0 + 700), -ENOENT);
    assert_int_equal(store_next_deadline(s), T0 + 1010);
    assert_int_equal(store_expire(s, T0 + 1009, 10), 0);
    assert_int_equal(store_expire(s, T0 + 1500, 10), 1); /* only id 2 */
    struct store_stats st = gst(s);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.leased, 1);
    assert_int_equal(st.ready, 1);
    assert_int_equal(store_ack(s, &o, 2), -ENOENT); /* lost its lease */
    assert_int_equal(store_next_deadline(s), T0 + 1700);
    assert_int_equal(store_expire(s, T0 + 1700, 10), 1);
    assert_int_equal(qst(s, "q", T0).expired, 2);
    assert_int_equal(gst(s).ready, 2);
    assert_true(list_empty(&o.leases));
    /* Expired messages are ready in expiry order, attempts kept. */
    struct store_msg m = get_ok(s, &o, "q", T0 + 2000);
    assert_msg(&m, 2, 2, "r");
    m = get_ok(s, &o, "q", T0 + 2000);
    assert_msg(&m, 1, 2, "p");
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_owner_release(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o, w;

    (void)state;
    store_owner_init(&o);
    store_owner_init(&w);
    put_ok(s, "q", "1", T0);
    put_ok(s, "q", "2", T0);
    put_ok(s, "q", "3", T0);
    get_ok(s, &o, "q", T0);
    get_ok(s, &o, "q", T0);
    assert_int_equal(store_wait(s, &o, Q("elsewhere")), 0);
    store_owner_release(s, &o, T0 + 5);
    assert_true(list_empty(&o.leases));
    assert_null(o.wait_queue);
    struct store_stats st = gst(s);
    assert_int_equal(st.nacked, 2);
    assert_int_equal(st.leased, 0);
    assert_int_equal(st.ready, 3);
    assert_int_equal(st.waiting, 0);
    store_check(s);
    /* Back at the tail, in the order they were leased. */
    struct store_msg m = get_ok(s, &o, "q", T0);
    assert_msg(&m, 3, 1, "3");
    m = get_ok(s, &o, "q", T0);
    assert_msg(&m, 1, 2, "1");
    m = get_ok(s, &o, "q", T0);
    assert_msg(&m, 2, 2, "2");
    /* A waiter gets what a release hands back. */
    assert_int_equal(store_wait(s, &w, Q("q")), 0);
    store_owner_release(s, &o, T0 + 6);
    assert_int_equal(l.n, 1);
    assert_ptr_equal(l.d[0].o, &w);
    assert_int_equal(l.d[0].id, 3);
    assert_int_equal(l.d[0].attempt, 2);
    assert_false(l.still_waiting);
    assert_int_equal(gst(s).ready, 2);
    assert_int_equal(gst(s).leased, 1);
    store_check(s);
    release_all(s, &w, 1, T0);
    store_owner_release(s, &w, T0); /* twice is harmless */
    store_check(s);
    store_free(s);
}

static void test_dead_letter(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o;
    struct store_msg m;

    (void)state;
    lim.max_attempts = 2;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    put_ok(s, "jobs", "work", T0);
    get_ok(s, &o, "jobs", T0);
    assert_int_equal(store_nack(s, &o, 1, 0, T0), 0);
    assert_int_equal(gst(s).dead_lettered, 0);
    m = get_ok(s, &o, "jobs", T0);
    assert_msg(&m, 1, 2, "work");
    /* The second failure is the last: the delay is dropped and the
     * message is ready in jobs.dlq at once. */
    assert_int_equal(store_nack(s, &o, 1, 5 * MS, T0 + 1), 0);
    struct store_stats st = gst(s);
    assert_int_equal(st.queues, 2);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.ready, 1);
    assert_int_equal(st.delayed, 0);
    struct store_queue_stats qs = qst(s, "jobs", T0 + 1);
    assert_int_equal(qs.dead_lettered, 1);
    assert_int_equal(qs.ready, 0);
    qs = qst(s, "jobs.dlq", T0 + 1);
    assert_int_equal(qs.ready, 1);
    assert_int_equal(qs.put, 0);
    assert_int_equal(qs.dead_lettered, 0);
    assert_int_equal(store_get(s, &o, Q("jobs"), T0, &m), -EAGAIN);
    store_check(s);

    /* A dead-letter queue retries forever and has no .dlq of its own. */
    for (uint32_t i = 0; i < 10; i++) {
        m = get_ok(s, &o, "jobs.dlq", T0 + 2);
        assert_msg(&m, 1, 3 + i, "work");
        if (i % 2)
            assert_int_equal(store_nack(s, &o, 1, 0, T0 + 2), 0);
        else
            assert_int_equal(store_expire(s, T0 + 2 + lim.lease_ns, 5), 1);
        store_check(s);
    }
    st = gst(s);
    assert_int_equal(st.queues, 2);
    assert_int_equal(st.dead_lettered, 1);
    assert_int_equal(st.dead, 1);
    qs = qst(s, "jobs.dlq.dlq", T0);
    assert_true(queue_stats_zero(&qs));
    assert_int_equal(qst(s, "jobs.dlq", T0).expired, 5);
    assert_int_equal(qst(s, "jobs.dlq", T0).nacked, 5);

    /* Lease expiry and owner release dead-letter too. */
    put_ok(s, "b", "x", T0);
    put_ok(s, "c", "y", T0);
    for (int i = 0; i < 2; i++) {
        get_ok(s, &o, "b", T0 + 10);
        assert_int_equal(store_expire(s, T0 + 10 + lim.lease_ns, 5), 1);
        get_ok(s, &o, "c", T0 + 10);
        store_owner_release(s, &o, T0 + 10);
    }
    assert_int_equal(qst(s, "b.dlq", T0).ready, 1);
    assert_int_equal(qst(s, "b", T0).dead_lettered, 1);
    assert_int_equal(qst(s, "b", T0).expired, 2);
    assert_int_equal(qst(s, "c.dlq", T0).ready, 1);
    assert_int_equal(qst(s, "c", T0).dead_lettered, 1);
    assert_int_equal(gst(s).dead, 3);
    assert_int_equal(gst(s).queues, 6);
    store_check(s);

    /* ACK in a .dlq deletes a dead message. */
    m = get_ok(s, &o, "jobs.dlq", T0);
    assert_int_equal(store_ack(s, &o, m.id), 0);
    assert_int_equal(gst(s).dead, 2);
    /* A PUT straight into a .dlq counts as dead and never moves on. */
    uint64_t id = put_ok(s, "x.dlq", "z", T0);
    assert_int_equal(gst(s).dead, 3);
    m = get_ok(s, &o, "x.dlq", T0);
    assert_msg(&m, id, 1, "z");
    assert_int_equal(store_nack(s, &o, id, 0, T0), 0);
    m = get_ok(s, &o, "x.dlq", T0);
    assert_msg(&m, id, 2, "z");
    assert_int_equal(store_nack(s, &o, id, 0, T0), 0);
    assert_int_equal(qst(s, "x.dlq", T0).ready, 1);
    qs = qst(s, "x.dlq.dlq", T0);
    assert_true(queue_stats_zero(&qs));
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_dead_letter_ignores_bounds(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o, w;
    struct store_msg m;
    uint64_t id;

    (void)state;
    lim.max_messages = 1;
    lim.max_bytes = 3;
    lim.max_queues = 1;
    lim.max_attempts = 1;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    store_owner_init(&w);
    put_ok(s, "a", "abc", T0);
    assert_int_equal(store_put(s, Q("a"), "d", 1, T0, &id), -ENOSPC);
    get_ok(s, &o, "a", T0);
    assert_int_equal(store_nack(s, &o, 1, 0, T0), 0);
    struct store_stats st = gst(s);
    assert_int_equal(st.queues, 2); /* past max_queues */
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.messages, 1);
    assert_int_equal(qst(s, "a.dlq", T0).ready, 1);
    store_check(s);
    /* Creating a queue is still refused; the dlq works as any queue. */
    assert_int_equal(store_get(s, &o, Q("b"), T0, &m), -ENOSPC);
    assert_int_equal(store_wait(s, &w, Q("b")), -ENOSPC);
    m = get_ok(s, &o, "a.dlq", T0);
    assert_int_equal(store_nack(s, &o, 1, 0, T0), 0);
    assert_int_equal(qst(s, "a.dlq", T0).nacked, 1);
    assert_int_equal(gst(s).queues, 2);
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_bound_messages(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o;
    uint64_t id = 77;

    (void)state;
    lim.max_messages = 3;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    put_ok(s, "q", "1", T0);
    put_ok(s, "r", "2", T0);
    get_ok(s, &o, "q", T0); /* leased messages count too */
    assert_int_equal(put_ok(s, "q", "3", T0), 3); /* exactly max */
    struct store_stats before = gst(s);
    struct store_queue_stats qbefore = qst(s, "q", T0);
    assert_int_equal(store_put(s, Q("q"), "4", 1, T0, &id), -ENOSPC);
    assert_int_equal(store_put(s, Q("new"), "4", 1, T0, &id), -ENOSPC);
    assert_int_equal(id, 77);
    struct store_stats after = gst(s);
    struct store_queue_stats qafter = qst(s, "q", T0);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_memory_equal(&qbefore, &qafter, sizeof(qbefore));
    struct store_queue_stats qs = qst(s, "new", T0);
    assert_true(queue_stats_zero(&qs));
    store_check(s);
    /* Room again after an ACK; the refused PUTs used no id. */
    assert_int_equal(store_ack(s, &o, 1), 0);
    assert_int_equal(put_ok(s, "q", "5", T0), 4);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_bound_bytes(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o;
    uint64_t id;

    (void)state;
    lim.max_bytes = 10;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    assert_int_equal(store_put(s, Q("q"), "01234567890", 11, T0, &id), -ENOSPC);
    assert_int_equal(gst(s).queues, 0); /* nothing changed */
    put_ok(s, "q", "0123", T0);
    get_ok(s, &o, "q", T0);
    put_ok(s, "q", "456789", T0); /* exactly max_bytes */
    assert_int_equal(gst(s).bytes, 10);
    struct store_stats before = gst(s);
    assert_int_equal(store_put(s, Q("q"), "x", 1, T0, &id), -ENOSPC);
    struct store_stats after = gst(s);
    assert_memory_equal(&before, &after, sizeof(before));
    store_check(s);
    assert_int_equal(store_ack(s, &o, 1), 0);
    assert_int_equal(gst(s).bytes, 6);
    assert_int_equal(put_ok(s, "q", "abcd", T0), 3);
    assert_int_equal(store_put(s, Q("q"), "x", 1, T0, &id), -ENOSPC);
    store_check(s);
    store_free(s);

    /* One message of exactly max_bytes on an empty store. */
    s = mk(&lim, &l);
    assert_int_equal(store_put(s, Q("q"), "0123456789", 10, T0, &id), 0);
    store_check(s);
    store_free(s);
}

static void test_bound_queues(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o;
    struct store_msg m;
    uint64_t id;
    char name[16];

    (void)state;
    lim.max_queues = 2;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    put_ok(s, "a", "x", T0);
    assert_int_equal(store_get(s, &o, Q("b"), T0, &m), -EAGAIN);
    assert_int_equal(gst(s).queues, 2); /* exactly max_queues */
    struct store_stats before = gst(s);
    assert_int_equal(store_put(s, Q("c"), "x", 1, T0, &id), -ENOSPC);
    assert_int_equal(store_get(s, &o, Q("c"), T0, &m), -ENOSPC);
    assert_int_equal(store_wait(s, &o, Q("c")), -ENOSPC);
    /* a.dlq is made ahead of need, but naming it still creates it. */
    assert_int_equal(store_put(s, Q("a.dlq"), "x", 1, T0, &id), -ENOSPC);
    struct store_stats after = gst(s);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_null(o.wait_queue);
    struct store_queue_stats qs = qst(s, "c", T0);
    assert_true(queue_stats_zero(&qs));
    put_ok(s, "a", "y", T0); /* existing queues still work */
    put_ok(s, "b", "y", T0);
    store_check(s);
    store_free(s);

    /* max_queues 0: no bound. */
    lim.max_queues = 0;
    s = mk(&lim, &l);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "q%d", i);
        put_ok(s, name, "x", T0);
    }
    assert_int_equal(gst(s).queues, 300);
    store_check(s);
    store_free(s);
}

static void test_waiters_fifo(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner w[3], o;

    (void)state;
    store_owner_init(&o);
    for (int i = 0; i < 3; i++) {
        store_owner_init(&w[i]);
        assert_int_equal(store_wait(s, &w[i], Q("q")), 0);
        assert_ptr_not_equal(w[i].wait_queue, NULL);
    }
    assert_int_equal(gst(s).waiting, 3);
    assert_int_equal(qst(s, "q", T0).waiting, 3);
    store_check(s);
    for (int i = 0; i < 3; i++) {
        char p[2] = {(char)('a' + i), 0};
        assert_int_equal(put_ok(s, "q", p, T0 + (uint64_t)i), i + 1);
        assert_int_equal(l.n, (size_t)i + 1);
        assert_ptr_equal(l.d[i].o, &w[i]);
        assert_int_equal(l.d[i].id, i + 1);
        assert_int_equal(l.d[i].attempt, 1);
        assert_memory_equal(l.d[i].payload, p, 1);
        assert_null(w[i].wait_queue);
        store_check(s);
    }
    assert_false(l.still_waiting);
    struct store_stats st = gst(s);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.leased, 3);
    assert_int_equal(st.ready, 0);
    assert_int_equal(st.delivered, 3);
    assert_int_equal(store_ack(s, &w[0], 2), -ENOENT);
    assert_int_equal(store_ack(s, &w[1], 2), 0);
    /* The next PUT, with no one waiting, is ready. */
    put_ok(s, "q", "d", T0);
    assert_int_equal(l.n, 3);
    assert_int_equal(gst(s).ready, 1);
    /* Waiting while a message is ready is refused: GET it instead. */
    assert_int_equal(store_wait(s, &o, Q("q")), -EAGAIN);
    assert_null(o.wait_queue);
    get_ok(s, &o, "q", T0);

    /* Cancel takes one out of the line and keeps the order of the rest. */
    l.n = 0;
    assert_int_equal(store_wait(s, &o, Q("q")), 0);
    assert_int_equal(store_wait(s, &w[1], Q("q")), 0);
    assert_int_equal(store_wait(s, &w[0], Q("q")), 0);
    store_cancel_wait(s, &o);
    assert_int_equal(qst(s, "q", T0).waiting, 2);
    put_ok(s, "q", "e", T0);
    put_ok(s, "q", "f", T0);
    assert_int_equal(l.n, 2);
    assert_ptr_equal(l.d[0].o, &w[1]);
    assert_ptr_equal(l.d[1].o, &w[0]);
    store_check(s);
    release_all(s, w, 3, T0);
    release_all(s, &o, 1, T0);
    store_check(s);
    store_free(s);
}

/* Every way a message becomes ready serves a waiter. */
static void test_waiter_served_by_each_source(void **state)
{
    struct store_limits lim = roomy;
    struct dlog l;
    struct store_owner o, w;
    uint64_t now = T0;

    (void)state;
    lim.lease_ns = 100;
    lim.max_attempts = 4;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    store_owner_init(&w);
    put_ok(s, "q", "m", now);

    /* NACK without delay. */
    get_ok(s, &o, "q", now);
    assert_int_equal(store_wait(s, &w, Q("q")), 0);
    assert_int_equal(store_nack(s, &o, 1, 0, now), 0);
    assert_int_equal(l.n, 1);
    assert_ptr_equal(l.d[0].o, &w);
    assert_int_equal(l.d[0].attempt, 2);
    store_check(s);

    /* Lease expiry: w's lease runs out while o waits. */
    assert_int_equal(store_wait(s, &o, Q("q")), 0);
    now += 100;
    assert_int_equal(store_expire(s, now, 10), 1);
    assert_int_equal(l.n, 2);
    assert_ptr_equal(l.d[1].o, &o);
    assert_int_equal(l.d[1].attempt, 3);
    assert_int_equal(gst(s).expired, 1);
    assert_int_equal(store_next_deadline(s), now + 100);
    store_check(s);

    /* Delay expiry. */
    assert_int_equal(store_nack(s, &o, 1, 50, now), 0);
    assert_int_equal(store_wait(s, &w, Q("q")), 0);
    assert_int_equal(store_expire(s, now + 49, 10), 0);
    assert_int_equal(store_expire(s, now + 50, 10), 1);
    assert_int_equal(l.n, 3);
    assert_ptr_equal(l.d[2].o, &w);
    assert_int_equal(l.d[2].attempt, 4);
    store_check(s);

    /* The dead-letter move, to a waiter on the .dlq. */
    assert_int_equal(store_wait(s, &o, Q("q.dlq")), 0);
    store_owner_release(s, &w, now + 60);
    assert_int_equal(l.n, 4);
    assert_ptr_equal(l.d[3].o, &o);
    assert_int_equal(l.d[3].id, 1);
    assert_int_equal(l.d[3].attempt, 5);
    assert_int_equal(qst(s, "q.dlq", now).leased, 1);
    assert_int_equal(gst(s).dead, 1);
    assert_false(l.still_waiting);
    assert_false(l.overflow);
    store_check(s);
    release_all(s, &o, 1, now);
    store_free(s);
}

static void test_ids_unique(void **state)
{
    struct store_limits lim = roomy;
    struct store_owner o;
    uint64_t want = 1;
    char name[16];

    (void)state;
    lim.max_messages = 20000;
    struct store *s = mk(&lim, NULL);
    store_owner_init(&o);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(name, sizeof(name), "q%d", i % 7);
            assert_int_equal(put_ok(s, name, "x", T0), want++);
        }
        /* Lease and ACK half of what is held, from every queue. */
        for (int i = 0; i < 7; i++) {
            struct store_msg m;
            snprintf(name, sizeof(name), "q%d", i);
            for (int k = 0; k < 300; k++) {
                assert_int_equal(store_get(s, &o, Q(name), T0, &m), 0);
                if (k % 2 == 0)
                    assert_int_equal(store_ack(s, &o, m.id), 0);
            }
        }
        store_check(s); /* includes: every id held is distinct */
    }
    release_all(s, &o, 1, T0);
    store_check(s);
    store_free(s);
}

static void test_expire_slicing(void **state)
{
    enum { N = 100000, SLICE = 1024 };
    struct store_limits lim = roomy;
    struct store_owner o;
    struct store_msg m;

    (void)state;
    lim.max_messages = N;
    lim.max_bytes = N;
    lim.lease_ns = 30000 * MS;
    struct store *s = mk(&lim, NULL);
    store_owner_init(&o);
    for (uint64_t i = 1; i <= N; i++)
        assert_int_equal(put_ok(s, "q", "x", T0), i);
    for (int i = 0; i < N; i++)
        assert_int_equal(store_get(s, &o, Q("q"), T0 + 1, &m), 0);
    uint64_t due = T0 + 1 + lim.lease_ns;
    assert_int_equal(store_next_deadline(s), due);
    assert_int_equal(store_expire(s, due - 1, SLICE), 0);
    store_check(s);

    size_t total = 0, calls = 0, got;
    while ((got = store_expire(s, due, SLICE)) == SLICE) {
        total += got;
        calls++;
        assert_int_equal(store_next_deadline(s), due); /* more are due */
    }
    total += got;
    assert_int_equal(calls, N / SLICE);
    assert_int_equal(got, N % SLICE);
    assert_int_equal(total, N);
    assert_int_equal(store_expire(s, due, SLICE), 0);
    assert_int_equal(store_next_deadline(s), UINT64_MAX);
    struct store_stats st = gst(s);
    assert_int_equal(st.expired, N);
    assert_int_equal(st.ready, N);
    assert_int_equal(st.leased, 0);
    assert_true(list_empty(&o.leases));
    store_check(s);
    /* Equal deadlines come out in lease order. */
    for (uint64_t i = 1; i <= N; i++) {
        assert_int_equal(store_get(s, &o, Q("q"), due, &m), 0);
        if (m.id != i || m.attempt != 2)
            fail_msg("expiry %" PRIu64 " out of order: id %" PRIu64, i, m.id);
    }
    release_all(s, &o, 1, due);
    store_free(s);
}

static void test_oldest_ready_age(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o;

    (void)state;
    store_owner_init(&o);
    assert_int_equal(qst(s, "q", T0).oldest_ready_age_ms, 0);
    put_ok(s, "q", "1", T0 + 1 * MS);
    assert_int_equal(qst(s, "q", T0).oldest_ready_age_ms, 0); /* future */
    assert_int_equal(qst(s, "q", T0 + 1 * MS).oldest_ready_age_ms, 0);
    assert_int_equal(qst(s, "q", T0 + 3 * MS + MS / 2).oldest_ready_age_ms, 2);
    put_ok(s, "q", "2", T0 + 4 * MS);
    get_ok(s, &o, "q", T0 + 5 * MS);
    assert_int_equal(qst(s, "q", T0 + 10 * MS).oldest_ready_age_ms, 6);
    /* A message made ready again counts from then. */
    assert_int_equal(store_nack(s, &o, 1, 0, T0 + 8 * MS), 0);
    get_ok(s, &o, "q", T0 + 9 * MS);
    assert_int_equal(qst(s, "q", T0 + 10 * MS).oldest_ready_age_ms, 2);
    get_ok(s, &o, "q", T0 + 10 * MS);
    assert_int_equal(qst(s, "q", T0 + 20 * MS).oldest_ready_age_ms, 0);
    assert_int_equal(qst(s, "q", T0 + 20 * MS).leased, 2);
    release_all(s, &o, 1, T0);
    store_free(s);
}

static void test_names(void **state)
{
    char n[80];
    struct dlog l;
    struct store_owner o;
    struct store_limits lim = roomy;

    (void)state;
    memset(n, 'a', sizeof(n));
    assert_true(store_name_valid(n, 1));
    assert_true(store_name_valid(n, 64));
    assert_false(store_name_valid(n, 65));
    assert_false(store_name_valid(n, 0));
    assert_false(store_name_valid("", 0));
    memcpy(n + 64, ".dlq", 4);
    assert_true(store_name_valid(n, 68));
    memcpy(n + 65, ".dlq", 4);
    assert_false(store_name_valid(n, 69));
    memcpy(n + 64, ".dlx", 4);
    assert_false(store_name_valid(n, 68));
    memcpy(n + 60, ".dlq", 4);
    assert_true(store_name_valid(n, 64));
    assert_true(store_name_valid(Q("AZaz09_-.:")));
    assert_true(store_name_valid(Q(".dlq")));
    assert_true(store_name_valid(Q("a.dlq.dlq")));
    assert_false(store_name_valid(Q("a b")));
    assert_false(store_name_valid(Q("a/b")));
    assert_false(store_name_valid(Q("a\tb")));
    assert_false(store_name_valid(Q("caf\xc3\xa9")));
    assert_false(store_name_valid("a\0b", 3));
    assert_false(store_name_valid(Q("a*")));

    /* The .dlq of a 64-byte name is a 68-byte name. */
    lim.max_attempts = 1;
    struct store *s = mk(&lim, &l);
    store_owner_init(&o);
    memset(n, 'z', 64);
    memcpy(n + 64, ".dlq", 4);
    uint64_t id = 0;
    assert_int_equal(store_put(s, n, 64, "p", 1, T0, &id), 0);
    struct store_msg m;
    assert_int_equal(store_get(s, &o, n, 64, T0, &m), 0);
    assert_int_equal(store_nack(s, &o, id, 0, T0), 0);
    struct store_queue_stats qs;
    store_queue_stats(s, n, 68, T0, &qs);
    assert_int_equal(qs.ready, 1);
    store_queue_stats(s, n, 64, T0, &qs);
    assert_int_equal(qs.dead_lettered, 1);
    assert_int_equal(store_get(s, &o, n, 68, T0, &m), 0);
    assert_int_equal(m.id, id);
    store_check(s);
    release_all(s, &o, 1, T0);
    store_free(s);
}

/* store_free() takes whatever is left: ready, delayed and leased
 * messages, waiters, dead-letter queues never used. ASan finds leaks. */
static void test_free_everything(void **state)
{
    struct dlog l;
    struct store *s = mk(&roomy, &l);
    struct store_owner o, w;

    (void)state;
    store_owner_init(&o);
    store_owner_init(&w);
    for (int i = 0; i < 50; i++)
        put_ok(s, i % 2 ? "a" : "b", "payload", T0);
    for (int i = 0; i < 20; i++)
        get_ok(s, &o, "a", T0);
    for (uint64_t id = 2; id < 40; id += 8) /* "a" holds the even ids */
        assert_int_equal(store_nack(s, &o, id, 1000, T0), 0);
    assert_int_equal(store_wait(s, &w, Q("empty")), 0);
    store_check(s);
    store_free(s);
    assert_true(list_empty(&o.leases));
    assert_null(w.wait_queue);
    store_free(NULL);
}

/* ---- the model ---- */

enum { M_READY, M_DELAYED, M_LEASED };

#define M_OWNERS 4
#define M_MSGS   32

static const char *const m_names[] = {
    "a", "b", "a.dlq", "b.dlq", "z.dlq", "a.dlq.dlq",
};
#define M_QUEUES ((int)LEN(m_names))
static const int m_dlq_of[M_QUEUES] = {2, 3, -1, -1, -1, -1};

struct mmsg {
    bool live;
    int state;
    int q;
    int owner;
    uint64_t id;
    uint32_t attempt;
    uint64_t deadline, seq; /* when delayed or leased */
    uint64_t since, rseq;   /* when ready: FIFO order */
    uint64_t lseq;          /* when leased: order on the owner's list */
    size_t len;
    char payload[PAY_MAX];
};

struct mqueue {
    bool exists;
    int waiters[M_OWNERS];
    int nwait;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
};

struct model {
    struct store_limits lim;
    struct mmsg m[M_MSGS];
    struct mqueue q[M_QUEUES];
    int wait_q[M_OWNERS];
    uint64_t next_id, seq, rseq, lseq, queues, messages, bytes;
    struct dlog expect; /* deliveries the store should have made */
};

static void m_init(struct model *M, const struct store_limits *lim)
{
    memset(M, 0, sizeof(*M));
    M->lim = *lim;
    M->next_id = 1;
    for (int i = 0; i < M_OWNERS; i++)
        M->wait_q[i] = -1;
}

static uint64_t m_after(uint64_t now, uint64_t d)
{
    return d > UINT64_MAX - now ? UINT64_MAX : now + d;
}

static int m_open(struct model *M, int qi)
{
    if (M->q[qi].exists)
        return 0;
    if (M->lim.max_queues && M->queues >= M->lim.max_queues)
        return -ENOSPC;
    M->q[qi].exists = true;
    M->queues++;
    return 0;
}

static void m_lease(struct model *M, int qi, struct mmsg *x, int o,
                    uint64_t now)
{
    x->attempt++;
    x->state = M_LEASED;
    x->q = qi;
    x->owner = o;
    x->deadline = m_after(now, M->lim.lease_ns);
    x->seq = ++M->seq;
    x->lseq = ++M->lseq;
    M->q[qi].delivered++;
}

static void m_ready(struct model *M, int qi, struct mmsg *x, uint64_t now,
                    struct store_owner *owners)
{
    struct mqueue *q = &M->q[qi];

    x->q = qi;
    if (q->nwait > 0) {
        int o = q->waiters[0];
        memmove(q->waiters, q->waiters + 1,
                (size_t)(q->nwait - 1) * sizeof(int));
        q->nwait--;
        M->wait_q[o] = -1;
        m_lease(M, qi, x, o, now);
        struct delivery *d = &M->expect.d[M->expect.n++];
        d->o = &owners[o];
        d->id = x->id;
        d->attempt = x->attempt;
        d->len = x->len;
        memcpy(d->payload, x->payload, x->len);
        return;
    }
    x->state = M_READY;
    x->since = now;
    x->rseq = ++M->rseq;
}

static void m_retry(struct model *M, struct mmsg *x, uint64_t delay,
                    uint64_t now, struct store_owner *owners)
{
    int qi = x->q;

    if (m_dlq_of[qi] >= 0 && x->attempt >= M->lim.max_attempts) {
        int d = m_dlq_of[qi];
        M->q[qi].dead_lettered++;
        if (!M->q[d].exists) {
            M->q[d].exists = true;
            M->queues++;
        }
        m_ready(M, d, x, now, owners);
        return;
    }
    if (delay > 0) {
        x->state = M_DELAYED;
        x->deadline = m_after(now, delay);
        x->seq = ++M->seq;
        return;
    }
    m_ready(M, qi, x, now, owners);
}

static void m_end(struct model *M, struct mmsg *x, uint64_t delay, uint64_t now,
                  bool expired, struct store_owner *owners)
{
    if (expired)
        M->q[x->q].expired++;
    else
        M->q[x->q].nacked++;
    m_retry(M, x, delay, now, owners);
}

static struct mmsg *m_oldest_ready(struct model *M, int qi)
{
    struct mmsg *best = NULL;

    for (int i = 0; i < M_MSGS; i++) {
        struct mmsg *x = &M->m[i];
        if (x->live && x->state == M_READY && x->q == qi &&
            (!best || x->rseq < best->rseq))
            best = x;
    }
    return best;
}

static struct mmsg *m_held(struct model *M, int o, uint64_t id)
{
    for (int i = 0; i < M_MSGS; i++) {
        struct mmsg *x = &M->m[i];
        if (x->live && x->id == id)
            return x->state == M_LEASED && x->owner == o ? x : NULL;
    }
    return NULL;
}

static int m_put(struct model *M, int qi, const char *p, size_t len,
                 uint64_t now, uint64_t *id, struct store_owner *owners)
{
    if (M->messages >= M->lim.max_messages || len > M->lim.max_bytes - M->bytes)
        return -ENOSPC;
    int rc = m_open(M, qi);
    if (rc < 0)
        return rc;
    struct mmsg *x = NULL;
    for (int i = 0; i < M_MSGS && !x; i++)
        if (!M->m[i].live)
            x = &M->m[i];
    if (!x) { /* cannot happen: M_MSGS >= max_messages */
        fail_msg("model out of message slots");
        return -ENOMEM;
    }
    memset(x, 0, sizeof(*x));
    x->live = true;
    x->id = *id = M->next_id++;
    x->len = len;
    memcpy(x->payload, p, len);
    M->messages++;
    M->bytes += len;
    M->q[qi].put++;
    m_ready(M, qi, x, now, owners);
    return 0;
}

static int m_get(struct model *M, int o, int qi, uint64_t now,
                 struct mmsg **out)
{
    int rc = m_open(M, qi);

    if (rc < 0)
        return rc;
    struct mmsg *x = m_oldest_ready(M, qi);
    if (!x)
        return -EAGAIN;
    m_lease(M, qi, x, o, now);
    *out = x;
    return 0;
}

static void m_cancel(struct model *M, int o)
{
    int qi = M->wait_q[o];

    if (qi < 0)
        return;
    struct mqueue *q = &M->q[qi];
    for (int i = 0; i < q->nwait; i++) {
        if (q->waiters[i] != o)
            continue;
        memmove(q->waiters + i, q->waiters + i + 1,
                (size_t)(q->nwait - i - 1) * sizeof(int));
        q->nwait--;
        break;
    }
    M->wait_q[o] = -1;
}

static int m_wait(struct model *M, int o, int qi)
{
    int rc = m_open(M, qi);

    if (rc < 0)
        return rc;
    if (m_oldest_ready(M, qi))
        return -EAGAIN;
    m_cancel(M, o);
    M->q[qi].waiters[M->q[qi].nwait++] = o;
    M->wait_q[o] = qi;
    return 0;
}

static int m_ack(struct model *M, int o, uint64_t id)
{
    struct mmsg *x = m_held(M, o, id);

    if (!x)
        return -ENOENT;
    M->q[x->q].acked++;
    M->messages--;
    M->bytes -= x->len;
    x->live = false;
    return 0;
}

static void m_release(struct model *M, int o, uint64_t now,
                      struct store_owner *owners)
{
    m_cancel(M, o);
    for (;;) {
        struct mmsg *first = NULL;
        for (int i = 0; i < M_MSGS; i++) {
            struct mmsg *x = &M->m[i];
            if (x->live && x->state == M_LEASED && x->owner == o &&
                (!first || x->lseq < first->lseq))
                first = x;
        }
        if (!first)
            return;
        m_end(M, first, 0, now, false, owners);
    }
}

static struct mmsg *m_first_due(struct model *M, uint64_t now)
{
    struct mmsg *best = NULL;

    for (int i = 0; i < M_MSGS; i++) {
        struct mmsg *x = &M->m[i];
        if (!x->live || x->state == M_READY || x->deadline > now)
            continue;
        if (!best || x->deadline < best->deadline ||
            (x->deadline == best->deadline && x->seq < best->seq))
            best = x;
    }
    return best;
}

static size_t m_expire(struct model *M, uint64_t now, size_t max,
                       struct store_owner *owners)
{
    size_t n = 0;
    struct mmsg *x;

    while (n < max && (x = m_first_due(M, now))) {
        if (x->state == M_DELAYED)
            m_ready(M, x->q, x, now, owners);
        else
            m_end(M, x, 0, now, true, owners);
        n++;
    }
    return n;
}

static uint64_t m_next_deadline(const struct model *M)
{
    uint64_t d = UINT64_MAX;

    for (int i = 0; i < M_MSGS; i++) {
        const struct mmsg *x = &M->m[i];
        if (x->live && x->state != M_READY && x->deadline < d)
            d = x->deadline;
    }
    return d;
}

static void m_queue_stats(const struct model *M, int qi, uint64_t now,
                          struct store_queue_stats *qs)
{
    const struct mqueue *q = &M->q[qi];
    const struct mmsg *oldest = NULL;

    memset(qs, 0, sizeof(*qs));
    for (int i = 0; i < M_MSGS; i++) {
        const struct mmsg *x = &M->m[i];
        if (!x->live || x->q != qi)
            continue;
        if (x->state == M_READY) {
            qs->ready++;
            if (!oldest || x->rseq < oldest->rseq)
                oldest = x;
        }
        qs->delayed += x->state == M_DELAYED;
        qs->leased += x->state == M_LEASED;
    }
    qs->put = q->put;
    qs->delivered = q->delivered;
    qs->acked = q->acked;
    qs->nacked = q->nacked;
    qs->expired = q->expired;
    qs->dead_lettered = q->dead_lettered;
    qs->waiting = (uint64_t)q->nwait;
    if (oldest && now > oldest->since)
        qs->oldest_ready_age_ms = (now - oldest->since) / MS;
}

static void m_stats(const struct model *M, uint64_t now, struct store_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->queues = M->queues;
    st->messages = M->messages;
    st->bytes = M->bytes;
    for (int qi = 0; qi < M_QUEUES; qi++) {
        struct store_queue_stats qs;
        m_queue_stats(M, qi, now, &qs);
        st->ready += qs.ready;
        st->delayed += qs.delayed;
        st->leased += qs.leased;
        if (m_dlq_of[qi] < 0)
            st->dead += qs.ready + qs.delayed + qs.leased;
        st->put += qs.put;
        st->delivered += qs.delivered;
        st->acked += qs.acked;
        st->nacked += qs.nacked;
        st->expired += qs.expired;
        st->dead_lettered += qs.dead_lettered;
        st->waiting += qs.waiting;
    }
}

/* ---- the model-based run ---- */

/* What the random runs reached, so that a change of weights that stops
 * them reaching an outcome fails instead of passing vacuously. */
enum { SEEN_OK, SEEN_EAGAIN, SEEN_ENOSPC, SEEN_ENOENT, SEEN_N };
enum { OP_PUT, OP_GET, OP_WAIT, OP_ACK, OP_NACK, OP_TOUCH, OP_N };

static const char *const op_names[OP_N] = {
    "PUT", "GET", "WAIT", "ACK", "NACK", "TOUCH",
};

struct coverage {
    uint64_t seen[OP_N][SEEN_N];
    uint64_t expire_none, expire_some, expire_max;
    uint64_t to_waiters, dead_lettered;
};

struct run {
    struct rng r;
    uint64_t step;
    struct store *s;
    struct model M;
    struct store_owner own[M_OWNERS];
    struct dlog got;
    uint64_t now;
    struct coverage cov;
};

static void seen(struct run *u, int op, int rc)
{
    int k = rc == 0         ? SEEN_OK
            : rc == -EAGAIN ? SEEN_EAGAIN
            : rc == -ENOSPC ? SEEN_ENOSPC
                            : SEEN_ENOENT;
    u->cov.seen[op][k]++;
}

#define CHECK(run, cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("seed 0x%016" PRIx64 " step %" PRIu64 ": ",            \
                        (run)->r.seed, (run)->step);                           \
            print_error(__VA_ARGS__);                                          \
            print_error("\n");                                                 \
            fail();                                                            \
        }                                                                      \
    } while (0)

#define CMP_FIELD(run, what, a, b, f)                                          \
    CHECK(run, (a).f == (b).f, "%s.%s: store %" PRIu64 ", model %" PRIu64,     \
          what, #f, (uint64_t)(a).f, (uint64_t)(b).f)

static void compare_deliveries(struct run *u)
{
    struct dlog *g = &u->got, *e = &u->M.expect;

    u->cov.to_waiters += g->n;
    CHECK(u, !g->overflow && !g->still_waiting, "bad delivery callback");
    CHECK(u, g->n == e->n, "%zu deliveries, model %zu", g->n, e->n);
    for (size_t i = 0; i < g->n; i++) {
        const struct delivery *a = &g->d[i], *b = &e->d[i];
        CHECK(u, a->o == b->o, "delivery %zu went to owner %td, model %td", i,
              a->o - u->own, b->o - u->own);
        CMP_FIELD(u, "delivery", *a, *b, id);
        CMP_FIELD(u, "delivery", *a, *b, attempt);
        CMP_FIELD(u, "delivery", *a, *b, len);
        CHECK(u, memcmp(a->payload, b->payload, a->len) == 0,
              "delivery payload");
    }
    g->n = 0;
    e->n = 0;
}

static void compare_all(struct run *u)
{
    struct store_stats a, b;

    compare_deliveries(u);
    store_stats(u->s, &a);
    m_stats(&u->M, u->now, &b);
    CMP_FIELD(u, "stats", a, b, queues);
    CMP_FIELD(u, "stats", a, b, messages);
    CMP_FIELD(u, "stats", a, b, bytes);
    CMP_FIELD(u, "stats", a, b, ready);
    CMP_FIELD(u, "stats", a, b, delayed);
    CMP_FIELD(u, "stats", a, b, leased);
    CMP_FIELD(u, "stats", a, b, dead);
    CMP_FIELD(u, "stats", a, b, put);
    CMP_FIELD(u, "stats", a, b, delivered);
    CMP_FIELD(u, "stats", a, b, acked);
    CMP_FIELD(u, "stats", a, b, nacked);
    CMP_FIELD(u, "stats", a, b, expired);
    CMP_FIELD(u, "stats", a, b, dead_lettered);
    CMP_FIELD(u, "stats", a, b, waiting);
    CHECK(u, store_held(u->s) == b.messages, "store_held");
    for (int qi = 0; qi < M_QUEUES; qi++) {
        struct store_queue_stats x, y;
        store_queue_stats(u->s, Q(m_names[qi]), u->now, &x);
        m_queue_stats(&u->M, qi, u->now, &y);
        const char *n = m_names[qi];
        CMP_FIELD(u, n, x, y, ready);
        CMP_FIELD(u, n, x, y, delayed);
        CMP_FIELD(u, n, x, y, leased);
        CMP_FIELD(u, n, x, y, put);
        CMP_FIELD(u, n, x, y, delivered);
        CMP_FIELD(u, n, x, y, acked);
        CMP_FIELD(u, n, x, y, nacked);
        CMP_FIELD(u, n, x, y, expired);
        CMP_FIELD(u, n, x, y, dead_lettered);
        CMP_FIELD(u, n, x, y, waiting);
        CMP_FIELD(u, n, x, y, oldest_ready_age_ms);
    }
    CHECK(u, store_next_deadline(u->s) == m_next_deadline(&u->M),
          "next deadline %" PRIu64 ", model %" PRIu64,
          store_next_deadline(u->s), m_next_deadline(&u->M));
    for (int o = 0; o < M_OWNERS; o++) {
        int qi = u->M.wait_q[o];
        CHECK(u, (u->own[o].wait_queue != NULL) == (qi >= 0),
              "owner %d waiting", o);
    }
    store_check(u->s);
}

/* An id to ACK, NACK or TOUCH, and who asks: mostly a lease and its
 * holder, sometimes someone else or an id that is not leased at all. */
static void pick_lease(struct run *u, int *o, uint64_t *id)
{
    struct mmsg *leased[M_MSGS];
    int n = 0;

    for (int i = 0; i < M_MSGS; i++)
        if (u->M.m[i].live && u->M.m[i].state == M_LEASED)
            leased[n++] = &u->M.m[i];
    *o = (int)rng_below(&u->r, M_OWNERS);
    if (n > 0 && rng_below(&u->r, 10) < 9) {
        struct mmsg *x = leased[rng_below(&u->r, (uint64_t)n)];
        *id = x->id;
        if (rng_below(&u->r, 4) != 0)
            *o = x->owner;
        return;
    }
    *id = rng_below(&u->r, u->M.next_id + 2);
}

/* Mostly the two ordinary queues, so that dead letters happen. */
static int pick_queue(struct run *u)
{
    static const int weights[M_QUEUES] = {30, 25, 15, 10, 10, 10};
    int k = (int)rng_below(&u->r, 100);

    for (int qi = 0; qi < M_QUEUES; qi++) {
        if (k < weights[qi])
            return qi;
        k -= weights[qi];
    }
    return 0;
}

static void op_put(struct run *u)
{
    int qi = pick_queue(u);
    uint64_t most = rng_below(&u->r, 4) ? 4 : PAY_MAX; /* mostly short */
    size_t len = 1 + (size_t)rng_below(&u->r, most);
    char p[PAY_MAX];
    uint64_t a = 0, b = 0;

    for (size_t i = 0; i < len; i++)
        p[i] = (char)('!' + rng_below(&u->r, 94));
    int ra = store_put(u->s, Q(m_names[qi]), p, len, u->now, &a);
    int rb = m_put(&u->M, qi, p, len, u->now, &b, u->own);
    CHECK(u, ra == rb, "PUT %s: %d, model %d", m_names[qi], ra, rb);
    seen(u, OP_PUT, ra);
    CHECK(u, ra < 0 || a == b, "PUT id %" PRIu64 ", model %" PRIu64, a, b);
}

static void op_get(struct run *u)
{
    int qi = pick_queue(u);
    int o = (int)rng_below(&u->r, M_OWNERS);
    struct store_msg a;
    struct mmsg *b = NULL;

    int ra = store_get(u->s, &u->own[o], Q(m_names[qi]), u->now, &a);
    int rb = m_get(&u->M, o, qi, u->now, &b);
    CHECK(u, ra == rb, "GET %s: %d, model %d", m_names[qi], ra, rb);
    seen(u, OP_GET, ra);
    if (ra < 0)
        return;
    CHECK(u, a.id == b->id, "GET id %" PRIu64 ", model %" PRIu64, a.id, b->id);
    CHECK(u, a.attempt == b->attempt, "GET attempt %u, model %u", a.attempt,
          b->attempt);
    CHECK(u, a.len == b->len && memcmp(a.payload, b->payload, a.len) == 0,
          "GET payload");
}

static void op_wait(struct run *u)
{
    int qi = pick_queue(u);
    int o = (int)rng_below(&u->r, M_OWNERS);

    int ra = store_wait(u->s, &u->own[o], Q(m_names[qi]));
    int rb = m_wait(&u->M, o, qi);
    CHECK(u, ra == rb, "WAIT %s: %d, model %d", m_names[qi], ra, rb);
    seen(u, OP_WAIT, ra);
}

static void op_cancel(struct run *u)
{
    int o = (int)rng_below(&u->r, M_OWNERS);

    store_cancel_wait(u->s, &u->own[o]);
    m_cancel(&u->M, o);
}

static void op_ack(struct run *u)
{
    int o;
    uint64_t id;

    pick_lease(u, &o, &id);
    int ra = store_ack(u->s, &u->own[o], id);
    int rb = m_ack(&u->M, o, id);
    CHECK(u, ra == rb, "ACK %" PRIu64 ": %d, model %d", id, ra, rb);
    seen(u, OP_ACK, ra);
}

static void op_nack(struct run *u)
{
    int o;
    uint64_t id;
    uint64_t delay = rng_below(&u->r, 2) ? 0 : rng_below(&u->r, 10 * MS);

    pick_lease(u, &o, &id);
    int ra = store_nack(u->s, &u->own[o], id, delay, u->now);
    struct mmsg *x = m_held(&u->M, o, id);
    int rb = x ? 0 : -ENOENT;
    if (x)
        m_end(&u->M, x, delay, u->now, false, u->own);
    CHECK(u, ra == rb, "NACK %" PRIu64 ": %d, model %d", id, ra, rb);
    seen(u, OP_NACK, ra);
}

static void op_touch(struct run *u)
{
    int o;
    uint64_t id;

    pick_lease(u, &o, &id);
    int ra = store_touch(u->s, &u->own[o], id, u->now);
    struct mmsg *x = m_held(&u->M, o, id);
    int rb = x ? 0 : -ENOENT;
    if (x) {
        x->deadline = m_after(u->now, u->M.lim.lease_ns);
        x->seq = ++u->M.seq;
    }
    CHECK(u, ra == rb, "TOUCH %" PRIu64 ": %d, model %d", id, ra, rb);
    seen(u, OP_TOUCH, ra);
}

static void op_release(struct run *u)
{
    int o = (int)rng_below(&u->r, M_OWNERS);

    store_owner_release(u->s, &u->own[o], u->now);
    m_release(&u->M, o, u->now, u->own);
    CHECK(u, list_empty(&u->own[o].leases), "leases after release");
}

static void op_time(struct run *u)
{
    static const size_t maxes[] = {1, 2, 3, 1024};
    uint64_t lease = u->M.lim.lease_ns;

    switch (rng_below(&u->r, 4)) {
    case 0:
        break; /* expire at the same instant */
    case 1:
        u->now += rng_below(&u->r, 1000); /* sub-millisecond */
        break;
    case 2:
        u->now += rng_below(&u->r, lease / 2);
        break;
    default:
        u->now += rng_below(&u->r, 2 * lease);
        break;
    }
    /* Sometimes land exactly on the next deadline, to test "<= now". */
    uint64_t next = m_next_deadline(&u->M);
    if (next != UINT64_MAX && next > u->now && rng_below(&u->r, 4) == 0)
        u->now = next;
    size_t max = maxes[rng_below(&u->r, LEN(maxes))];
    size_t a = store_expire(u->s, u->now, max);
    size_t b = m_expire(&u->M, u->now, max, u->own);
    CHECK(u, a == b, "EXPIRE(%zu): %zu, model %zu", max, a, b);
    if (a == 0)
        u->cov.expire_none++;
    else if (a < max)
        u->cov.expire_some++;
    else
        u->cov.expire_max++;
}

/* The operations and how often each runs, in percent. */
static const struct {
    void (*fn)(struct run *u);
    int weight;
} run_ops[] = {
    {op_put, 18},  {op_get, 20},  {op_wait, 6},    {op_cancel, 3}, {op_ack, 15},
    {op_nack, 12}, {op_touch, 5}, {op_release, 2}, {op_time, 19},
};

static void run_op(struct run *u)
{
    int k = (int)rng_below(&u->r, 100);

    for (size_t i = 0; i < LEN(run_ops); i++) {
        if (k < run_ops[i].weight) {
            run_ops[i].fn(u);
            return;
        }
        k -= run_ops[i].weight;
    }
    fail_msg("operation weights do not add up to 100");
}

static void run_seed(uint64_t salt, uint64_t steps, struct coverage *total)
{
    static const uint64_t max_messages[] = {4, 8, 16, 24};
    static const uint64_t max_bytes[] = {24, 60, 1000};
    static const uint64_t max_queues[] = {0, 2, 3, 6};
    static const uint32_t max_attempts[] = {1, 2, 3, 5};
    struct run *u = calloc(1, sizeof(*u));
    struct store_limits lim;

    assert_non_null(u);
    rng_init(&u->r, salt);
    lim.max_messages = max_messages[rng_below(&u->r, LEN(max_messages))];
    lim.max_bytes = max_bytes[rng_below(&u->r, LEN(max_bytes))];
    lim.max_queues = max_queues[rng_below(&u->r, LEN(max_queues))];
    lim.max_attempts = max_attempts[rng_below(&u->r, LEN(max_attempts))];
    lim.lease_ns = (1 + rng_below(&u->r, 8)) * MS;
    assert_true(lim.max_messages <= M_MSGS);
    u->now = T0;
    m_init(&u->M, &lim);
    assert_int_equal(store_new(&u->s, &lim, on_deliver, &u->got), 0);
    for (int i = 0; i < M_OWNERS; i++)
        store_owner_init(&u->own[i]);

    for (u->step = 0; u->step < steps; u->step++) {
        run_op(u);
        compare_all(u);
    }
    for (int o = 0; o < M_OWNERS; o++) {
        store_owner_release(u->s, &u->own[o], u->now);
        m_release(&u->M, o, u->now, u->own);
    }
    compare_all(u);
    struct store_stats st;
    store_stats(u->s, &st);
    u->cov.dead_lettered = st.dead_lettered;
    print_message(
        "seed 0x%016" PRIx64 ": messages %" PRIu64 " bytes %" PRIu64
        " queues %" PRIu64 " attempts %u; put %" PRIu64 " delivered %" PRIu64
        " expired %" PRIu64 " dead-lettered %" PRIu64 "\n",
        u->r.seed, lim.max_messages, lim.max_bytes, lim.max_queues,
        lim.max_attempts, st.put, st.delivered, st.expired, st.dead_lettered);
    for (int op = 0; op < OP_N; op++) {
        const uint64_t *n = u->cov.seen[op];
        total->seen[op][SEEN_OK] += n[SEEN_OK];
        total->seen[op][SEEN_EAGAIN] += n[SEEN_EAGAIN];
        total->seen[op][SEEN_ENOSPC] += n[SEEN_ENOSPC];
        total->seen[op][SEEN_ENOENT] += n[SEEN_ENOENT];
    }
    total->expire_none += u->cov.expire_none;
    total->expire_some += u->cov.expire_some;
    total->expire_max += u->cov.expire_max;
    total->to_waiters += u->cov.to_waiters;
    total->dead_lettered += u->cov.dead_lettered;
    store_free(u->s);
    free(u);
}

static uint64_t steps_per_seed(void)
{
    const char *s = getenv("RLMQ_TEST_STEPS");

    return s != NULL ? strtoull(s, NULL, 0) : 40000;
}

static void test_model(void **state)
{
    struct coverage c = {0};
    uint64_t seeds = 16, steps = steps_per_seed();

    (void)state;
    for (uint64_t salt = 1; salt <= seeds; salt++)
        run_seed(salt * UINT64_C(0x1000193), steps, &c);
    print_message("%" PRIu64 " steps; ok/EAGAIN/ENOSPC/ENOENT:", seeds * steps);
    for (int op = 0; op < OP_N; op++)
        print_message(" %s %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
                      op_names[op], c.seen[op][SEEN_OK],
                      c.seen[op][SEEN_EAGAIN], c.seen[op][SEEN_ENOSPC],
                      c.seen[op][SEEN_ENOENT]);
    print_message("\nexpire none/some/max %" PRIu64 "/%" PRIu64 "/%" PRIu64
                  ", to waiters %" PRIu64 ", dead-lettered %" PRIu64 "\n",
                  c.expire_none, c.expire_some, c.expire_max, c.to_waiters,
                  c.dead_lettered);
    if (steps < 10000)
        return; /* a short run proves nothing about reach */
    assert_true(c.seen[OP_PUT][SEEN_OK] && c.seen[OP_PUT][SEEN_ENOSPC]);
    assert_true(c.seen[OP_GET][SEEN_OK] && c.seen[OP_GET][SEEN_EAGAIN]);
    assert_true(c.seen[OP_GET][SEEN_ENOSPC]);
    assert_true(c.seen[OP_WAIT][SEEN_OK] && c.seen[OP_WAIT][SEEN_EAGAIN]);
    assert_true(c.seen[OP_WAIT][SEEN_ENOSPC]);
    for (int op = OP_ACK; op <= OP_TOUCH; op++)
        assert_true(c.seen[op][SEEN_OK] && c.seen[op][SEEN_ENOENT]);
    assert_true(c.expire_some && c.expire_max);
    assert_true(c.to_waiters && c.dead_lettered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_size),
        cmocka_unit_test(test_put_get_ack),
        cmocka_unit_test(test_get_empty_and_queue_creation),
        cmocka_unit_test(test_nack_requeues_at_tail),
        cmocka_unit_test(test_nack_with_delay),
        cmocka_unit_test(test_touch_and_lease_expiry),
        cmocka_unit_test(test_owner_release),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_dead_letter_ignores_bounds),
        cmocka_unit_test(test_bound_messages),
        cmocka_unit_test(test_bound_bytes),
        cmocka_unit_test(test_bound_queues),
        cmocka_unit_test(test_waiters_fifo),
        cmocka_unit_test(test_waiter_served_by_each_source),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test(test_expire_slicing),
        cmocka_unit_test(test_oldest_ready_age),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_free_everything),
        cmocka_unit_test(test_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
