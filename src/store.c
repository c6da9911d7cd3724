/*
 * The message store: see store.h for the calls. This file keeps every
 * message in memory, in exactly one queue and one state, and moves it
 * between states in O(1) or O(log n). It does no I/O and reads no clock;
 * the one exception is store_check(), which names the broken invariant on
 * stderr before it aborts, as assert() would.
 *
 * Life cycle of a message (each arrow names the call behind it):
 *
 *               store_put()
 *                    |
 *                    v
 *               +---------+   store_expire(), delay due   +---------+
 *      +------> |  ready  | <---------------------------- | delayed |
 *      |        +---------+                               +---------+
 *      |             |  store_get(), or handed at once         ^
 *      |             |  to the queue's first waiter            |
 *      |             v                                         |
 *      |        +---------+ --- store_ack() ---> freed         |
 *      |        | leased  | <-- store_touch(): new deadline    |
 *      |        +---------+                                    |
 *      |             |  store_nack(), store_expire() (lease    |
 *      |             |  due) or store_owner_release()          |
 *      |             v                                         |
 *      |     attempt >= max_attempts in a queue whose name     |
 *      |     does not end in ".dlq"?                           |
 *      |       yes: ready at the tail of "<queue>.dlq"         |
 *      +------ no, and no delay: ready at the tail again       |
 *              no, NACK with delay_ns > 0 ---------------------+
 *
 * Whatever arrives in "ready" goes to the queue's first waiter instead,
 * if it has one, and is leased to it at once.
 *
 * Where a message lives in each state:
 *   ready   - on its queue's FIFO (head, tail, item->u.r.next);
 *   delayed - in the deadline heap, its entry's owner NULL;
 *   leased  - in the deadline heap, its entry naming the owner, on that
 *             owner's leases (item->u.t.link), and in the id index, the
 *             only way a caller can name a message.
 * The heap entry, not the message, records the queue and the owner of a
 * timed message: a ready message needs neither, since only its queue
 * reaches it, and so does not carry them. ACK, NACK and TOUCH find the
 * owner through id index -> item -> item->heap -> heap entry, all O(1).
 *
 * Invariants (store_check() asserts each):
 *  1. Every message is in exactly one of the places above.
 *  2. The id index holds exactly the leased messages, and it has room for
 *     every heap entry at a load of at most 3/4.
 *  3. The heap is ordered by (deadline, seq) and each entry's item->heap
 *     is its index.
 *  4. A queue with waiters has no ready message: whatever becomes ready
 *     goes to the first waiter, and store_wait() refuses while one is.
 *  5. messages <= max_messages and bytes <= max_bytes, since only
 *     store_put() admits messages; put == acked + messages.
 *  6. Every queue whose name does not end in ".dlq" has its "<name>.dlq"
 *     allocated and indexed, though it does not exist (is not counted,
 *     shows zero stats) until a message moves in or a call names it.
 *  7. Global counters are the sums of the per-queue ones; `dead` is the
 *     number of messages in .dlq queues.
 *
 * Why a lease can always end: 6 means a dead-letter move never allocates,
 * and ending a lease takes an entry out of the heap and the index before
 * at most one goes back in (the same message, delayed, or leased to a
 * waiter), so neither table grows. Only store_put() and store_get() add
 * timed messages, and they reserve room first and can fail cleanly.
 *
 * Decisions the spec leaves open:
 *  - A message moved to a dead-letter queue keeps its attempt count (so
 *    its next delivery shows max_attempts + 1); a NACK delay is dropped
 *    when the message is dead-lettered: it is ready in the .dlq at once.
 *  - Queues are never freed: max_queues bounds them. max_queues == 0 means
 *    no bound (the daemon sets no value yet). The dead-letter queues made
 *    ahead of time are at most one per queue, so at most 2 * max_queues
 *    queue objects exist.
 *  - Same-deadline ties are broken by a 32-bit push sequence compared
 *    modulo 2^32: entries with equal deadlines pushed more than 2^31
 *    pushes apart may come out in either order. Deadline order is exact.
 *  - store_wait() returns -EAGAIN when the queue has a ready message, to
 *    keep invariant 4; the caller should store_get() it instead.
 *  - Invalid names give -EINVAL; payloads over 4 GiB give -ENOSPC.
 *  - At most 2^32 - 2 messages are held, whatever max_messages says, so
 *    that heap positions fit in 32 bits.
 *
 * Memory per message, beyond its payload and malloc's own header
 * (x86-64, measured by test_store): the header before the payload is 36
 * bytes (a payload under 4 bytes is padded to sizeof = 40). That is all a
 * ready message costs. A delayed or leased message adds a 32-byte heap
 * entry, with the heap array between 1/4 and all full (typically 32-64
 * bytes), and index slots of 8 bytes sized for the heap at a load of 3/8
 * to 3/4 (11-21 bytes); so 36 ready, about 80-120 leased.
 *
 * glibc rounds header + payload + 8 up to a multiple of 16, so a 64-byte
 * payload takes a 112-byte chunk, 48 bytes beyond the payload, and that is
 * what the daemon's RSS grows by per message: 48.00 over a million 64-byte
 * messages filled by four clients pipelining 64 PUTs each, once the first
 * 1% has paid for the queue and the connections (bench/memory.sh). Reply
 * storage is reused through the server's pool (buf.h): freed after every
 * reply, its blocks would be carved into messages and leave holes worth
 * 1.8 bytes a message.
 */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STORE_NONE        UINT32_MAX
#define STORE_ITEMS_MAX   (UINT32_MAX - 1u) /* heap indices are 32-bit */
#define STORE_HEAP_MIN    16
#define STORE_IX_MIN_BITS 4
#define STORE_QV_MIN      16
#define STORE_QH_MIN      32
#define STORE_DLQ_LEN     4

struct store_item {
    uint64_t id;
    union {
        struct {                     /* ready */
            struct store_item *next; /* toward the tail */
            uint64_t since;          /* when it became ready */
        } r;
        struct {              /* delayed or leased */
            struct list link; /* on the owner's leases; alone if delayed */
        } t;
    } u;
    uint32_t len;
    uint32_t attempt; /* deliveries so far */
    uint32_t heap;    /* position in the heap while timed */
    char payload[];
};

/* A heap entry. Keeping the key here, not in the message, makes sifting
 * touch only the heap array. The owner is here too: only a timed message
 * has one, so a ready message, the common case, does not pay for it. */
struct store_timer {
    uint64_t deadline;
    struct store_item *item;
    struct store_owner *owner; /* NULL while delayed */
    uint32_t seq;              /* push order, for ties: first in, first out */
    uint32_t queue;            /* index in s->qv of the item's queue */
};

struct store_queue {
    struct store_item *head; /* oldest ready message */
    struct store_item *tail;
    struct list waiters; /* store_owner.waiter, first come first */
    uint64_t ready, delayed, leased, waiting;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
    uint32_t index; /* in s->qv */
    uint32_t dlq;   /* index of "<name>.dlq", STORE_NONE for a .dlq */
    uint32_t hash;
    bool exists; /* false for a dead-letter queue made ahead of need */
    bool is_dlq;
    uint8_t len;
    char name[];
};

struct store {
    struct store_limits lim;
    store_deliver_fn deliver;
    void *ctx;
    uint64_t next_id;

    struct store_queue **qv; /* every queue object, by index */
    size_t nq, qcap;
    struct store_queue **qh; /* by name: open addressing, load <= 1/2 */
    size_t qhcap;

    struct store_timer *heap; /* delay and lease deadlines */
    size_t hlen, hcap;
    uint32_t seq;

    struct store_item **ix; /* leased messages by id: linear probing */
    size_t ixlen, ixcap;
    unsigned ixbits;

    uint64_t queues; /* queues that exist */
    uint64_t messages, bytes, ready, delayed, leased, dead, waiting;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
};

enum store_end { STORE_END_NACK, STORE_END_EXPIRE };

/* Bytes a message costs before its payload. Declared here, not in
 * store.h, because only test_store wants it, to print the overhead. */
size_t store_item_header_size(void);

size_t store_item_header_size(void)
{
    return offsetof(struct store_item, payload);
}

static uint64_t store_after(uint64_t now, uint64_t d)
{
    return d > UINT64_MAX - now ? UINT64_MAX : now + d;
}

static bool store_is_dlq(const char *name, size_t len)
{
    return len >= STORE_DLQ_LEN && memcmp(name + len - STORE_DLQ_LEN,
                                          STORE_DLQ_SUFFIX, STORE_DLQ_LEN) == 0;
}

static bool store_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == ':';
}

bool store_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > STORE_NAME_MAX + STORE_DLQ_LEN)
        return false;
    if (len > STORE_NAME_MAX && !store_is_dlq(name, len))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!store_name_char((unsigned char)name[i]))
            return false;
    return true;
}

/* ---- the deadline heap ---- */

static bool store_timer_before(const struct store_timer *a,
                               const struct store_timer *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return (uint32_t)(a->seq - b->seq) > UINT32_C(0x7fffffff);
}

static void store_heap_place(struct store *s, size_t i,
                             const struct store_timer *t)
{
    s->heap[i] = *t;
    t->item->heap = (uint32_t)i;
}

static void store_heap_up(struct store *s, size_t i)
{
    struct store_timer t = s->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!store_timer_before(&t, &s->heap[parent]))
            break;
        store_heap_place(s, i, &s->heap[parent]);
        i = parent;
    }
    store_heap_place(s, i, &t);
}

static void store_heap_down(struct store *s, size_t i)
{
    struct store_timer t = s->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->hlen)
            break;
        if (c + 1 < s->hlen && store_timer_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!store_timer_before(&s->heap[c], &t))
            break;
        store_heap_place(s, i, &s->heap[c]);
        i = c;
    }
    store_heap_place(s, i, &t);
}

static void store_heap_fix(struct store *s, size_t i)
{
    if (i > 0 && store_timer_before(&s->heap[i], &s->heap[(i - 1) / 2]))
        store_heap_up(s, i);
    else
        store_heap_down(s, i);
}

/* Room must have been made: see the head comment. */
static void store_heap_push(struct store *s, struct store_item *m,
                            struct store_owner *o, uint64_t deadline,
                            uint32_t queue)
{
    assert(s->hlen < s->hcap);
    s->heap[s->hlen] = (struct store_timer){.deadline = deadline,
                                            .item = m,
                                            .owner = o,
                                            .seq = s->seq++,
                                            .queue = queue};
    m->heap = (uint32_t)s->hlen;
    s->hlen++;
    store_heap_up(s, s->hlen - 1);
}

static void store_heap_remove(struct store *s, size_t i)
{
    assert(i < s->hlen);
    s->heap[i].item->heap = STORE_NONE;
    s->hlen--;
    if (i == s->hlen)
        return;
    store_heap_place(s, i, &s->heap[s->hlen]);
    store_heap_fix(s, i);
}

/* ---- the id index of leased messages ---- */

static size_t store_ix_home(const struct store *s, uint64_t id)
{
    /* Fibonacci hashing: ids are consecutive, and the multiply spreads
     * them over the top bits. */
    return (size_t)((id * UINT64_C(0x9e3779b97f4a7c15)) >> (64 - s->ixbits));
}

static size_t store_ix_find(const struct store *s, uint64_t id)
{
    if (s->ixlen == 0)
        return SIZE_MAX;
    size_t mask = s->ixcap - 1;
    for (size_t i = store_ix_home(s, id);; i = (i + 1) & mask) {
        if (!s->ix[i])
            return SIZE_MAX;
        if (s->ix[i]->id == id)
            return i;
    }
}

static void store_ix_put(struct store *s, struct store_item *m)
{
    size_t mask = s->ixcap - 1;
    size_t i = store_ix_home(s, m->id);

    while (s->ix[i])
        i = (i + 1) & mask;
    s->ix[i] = m;
}

static void store_ix_insert(struct store *s, struct store_item *m)
{
    assert((s->ixlen + 1) * 4 <= s->ixcap * 3);
    store_ix_put(s, m);
    s->ixlen++;
}

/* Backward-shift deletion: no tombstones, so lookups stay short. */
static void store_ix_remove(struct store *s, size_t hole)
{
    size_t mask = s->ixcap - 1;

    for (size_t j = hole;;) {
        j = (j + 1) & mask;
        if (!s->ix[j])
            break;
        size_t k = store_ix_home(s, s->ix[j]->id);
        bool stays = hole <= j ? (hole < k && k <= j) : (hole < k || k <= j);
        if (stays)
            continue;
        s->ix[hole] = s->ix[j];
        hole = j;
    }
    s->ix[hole] = NULL;
    s->ixlen--;
}

static int store_ix_resize(struct store *s, unsigned bits)
{
    size_t cap = (size_t)1 << bits;
    struct store_item **t = calloc(cap, sizeof(*t));

    if (!t)
        return -ENOMEM;
    struct store_item **old = s->ix;
    size_t oldcap = s->ixcap;
    s->ix = t;
    s->ixcap = cap;
    s->ixbits = bits;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            store_ix_put(s, old[i]);
    free(old);
    return 0;
}

/* Makes room for one more timed message, so that the transitions which
 * follow cannot fail half way. 0 or -ENOMEM. */
static int store_reserve(struct store *s)
{
    if (s->hlen == s->hcap) {
        size_t cap = s->hcap ? 2 * s->hcap : STORE_HEAP_MIN;
        struct store_timer *v = realloc(s->heap, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->heap = v;
        s->hcap = cap;
    }
    if ((s->hlen + 1) * 4 > s->ixcap * 3) {
        unsigned bits = s->ixcap ? s->ixbits + 1 : STORE_IX_MIN_BITS;
        if (store_ix_resize(s, bits) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Gives memory back after a drain. Halving only below a quarter (heap) or
 * an eighth (index) keeps the cost amortised O(1), and leaves room for
 * what store_reserve() promised. Failing to shrink is harmless. */
static void store_trim(struct store *s)
{
    if (s->hcap > STORE_HEAP_MIN && s->hlen < s->hcap / 4) {
        size_t cap = s->hcap / 2;
        struct store_timer *v = realloc(s->heap, cap * sizeof(*v));
        if (v) {
            s->heap = v;
            s->hcap = cap;
        }
    }
    if (s->ixbits > STORE_IX_MIN_BITS && s->hlen < s->ixcap / 8)
        (void)store_ix_resize(s, s->ixbits - 1);
}

/* ---- queues ---- */

static uint32_t store_name_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h;
}

static struct store_queue *store_queue_find(const struct store *s,
                                            const char *name, size_t len)
{
    if (s->qhcap == 0)
        return NULL;
    uint32_t h = store_name_hash(name, len);
    size_t mask = s->qhcap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct store_queue *q = s->qh[i];
        if (!q)
            return NULL;
        if (q->hash == h && q->len == len && memcmp(q->name, name, len) == 0)
            return q;
    }
}

static void store_qh_put(struct store_queue **qh, size_t cap,
                         struct store_queue *q)
{
    size_t i = q->hash & (cap - 1);

    while (qh[i])
        i = (i + 1) & (cap - 1);
    qh[i] = q;
}

/* Room for n more queue objects in both tables. */
static int store_queue_room(struct store *s, size_t n)
{
    if (s->nq + n >= STORE_NONE)
        return -ENOSPC;
    if (s->nq + n > s->qcap) {
        size_t cap = s->qcap ? 2 * s->qcap : STORE_QV_MIN;
        struct store_queue **v = realloc(s->qv, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->qv = v;
        s->qcap = cap;
    }
    if ((s->nq + n) * 2 > s->qhcap) {
        size_t cap = s->qhcap ? 2 * s->qhcap : STORE_QH_MIN;
        struct store_queue **t = calloc(cap, sizeof(*t));
        if (!t)
            return -ENOMEM;
        for (size_t i = 0; i < s->nq; i++)
            store_qh_put(t, cap, s->qv[i]);
        free(s->qh);
        s->qh = t;
        s->qhcap = cap;
    }
    return 0;
}

static struct store_queue *store_queue_alloc(const char *name, size_t len)
{
    struct store_queue *q = calloc(1, sizeof(*q) + len);

    if (!q)
        return NULL;
    list_init(&q->waiters);
    q->dlq = STORE_NONE;
    q->hash = store_name_hash(name, len);
    q->is_dlq = store_is_dlq(name, len);
    q->len = (uint8_t)len;
    memcpy(q->name, name, len);
    return q;
}

static void store_queue_insert(struct store *s, struct store_queue *q)
{
    q->index = (uint32_t)s->nq;
    s->qv[s->nq++] = q;
    store_qh_put(s->qh, s->qhcap, q);
}

/* Makes the objects of queue `name` and, unless it is a .dlq, of its
 * dead-letter queue, neither existing yet. Both or neither. */
static int store_queue_create(struct store *s, const char *name, size_t len,
                              struct store_queue **out)
{
    char dname[STORE_NAME_MAX + STORE_DLQ_LEN];
    struct store_queue *q, *d = NULL;
    bool need_dlq = false;

    if (!store_is_dlq(name, len)) {
        assert(len <= STORE_NAME_MAX);
        memcpy(dname, name, len);
        memcpy(dname + len, STORE_DLQ_SUFFIX, STORE_DLQ_LEN);
        d = store_queue_find(s, dname, len + STORE_DLQ_LEN);
        need_dlq = d == NULL;
    }
    int rc = store_queue_room(s, need_dlq ? 2 : 1);
    if (rc < 0)
        return rc;
    q = store_queue_alloc(name, len);
    if (!q)
        return -ENOMEM;
    if (need_dlq) {
        d = store_queue_alloc(dname, len + STORE_DLQ_LEN);
        if (!d) {
            free(q);
            return -ENOMEM;
        }
        store_queue_insert(s, d);
    }
    store_queue_insert(s, q);
    if (d)
        q->dlq = d->index;
    *out = q;
    return 0;
}

/* Finds queue `name`, bringing it into existence if need be. 0, -EINVAL,
 * -ENOSPC (max_queues) or -ENOMEM; nothing changes on error. */
static int store_queue_open(struct store *s, const char *name, size_t len,
                            struct store_queue **out)
{
    if (!store_name_valid(name, len))
        return -EINVAL;
    struct store_queue *q = store_queue_find(s, name, len);
    if (q && q->exists) {
        *out = q;
        return 0;
    }
    if (s->lim.max_queues && s->queues >= s->lim.max_queues)
        return -ENOSPC;
    if (!q) {
        int rc = store_queue_create(s, name, len, &q);
        if (rc < 0)
            return rc;
    }
    q->exists = true;
    s->queues++;
    *out = q;
    return 0;
}

/* ---- transitions ---- */

static void store_lease(struct store *s, struct store_queue *q,
                        struct store_item *m, struct store_owner *o,
                        uint64_t now, struct store_msg *msg)
{
    if (m->attempt < UINT32_MAX)
        m->attempt++;
    list_push_back(&o->leases, &m->u.t.link);
    store_heap_push(s, m, o, store_after(now, s->lim.lease_ns), q->index);
    store_ix_insert(s, m);
    q->leased++;
    s->leased++;
    q->delivered++;
    s->delivered++;
    msg->id = m->id;
    msg->attempt = m->attempt;
    msg->payload = m->payload;
    msg->len = m->len;
}

/* m has just become ready in q: the first waiter gets it, or it joins
 * the tail. */
static void store_make_ready(struct store *s, struct store_queue *q,
                             struct store_item *m, uint64_t now)
{
    if (!list_empty(&q->waiters)) {
        struct store_owner *o =
            LIST_ENTRY(list_pop_front(&q->waiters), struct store_owner, waiter);
        struct store_msg msg;
        o->wait_queue = NULL;
        q->waiting--;
        s->waiting--;
        store_lease(s, q, m, o, now, &msg);
        if (s->deliver)
            s->deliver(s->ctx, o, &msg);
        return;
    }
    m->u.r.next = NULL;
    m->u.r.since = now;
    if (q->tail)
        q->tail->u.r.next = m;
    else
        q->head = m;
    q->tail = m;
    q->ready++;
    s->ready++;
}

/* A lease of m in q has ended without an ACK. */
static void store_retry(struct store *s, struct store_queue *q,
                        struct store_item *m, uint64_t delay, uint64_t now)
{
    if (!q->is_dlq && m->attempt >= s->lim.max_attempts) {
        struct store_queue *d = s->qv[q->dlq];
        q->dead_lettered++;
        s->dead_lettered++;
        if (!d->exists) {
            d->exists = true;
            s->queues++;
        }
        s->dead++;
        store_make_ready(s, d, m, now);
        return;
    }
    if (delay > 0) {
        list_init(&m->u.t.link);
        store_heap_push(s, m, NULL, store_after(now, delay), q->index);
        q->delayed++;
        s->delayed++;
        return;
    }
    store_make_ready(s, q, m, now);
}

static void store_lease_end(struct store *s, struct store_item *m, size_t slot,
                            uint64_t delay, uint64_t now, enum store_end why)
{
    struct store_queue *q = s->qv[s->heap[m->heap].queue];

    assert(slot < s->ixcap && s->ix[slot] == m);
    store_heap_remove(s, m->heap);
    store_ix_remove(s, slot);
    list_unlink(&m->u.t.link);
    q->leased--;
    s->leased--;
    if (why == STORE_END_EXPIRE) {
        q->expired++;
        s->expired++;
    } else {
        q->nacked++;
        s->nacked++;
    }
    store_retry(s, q, m, delay, now);
}

/* The index slot of id when o holds its lease, else SIZE_MAX. */
static size_t store_held_by(const struct store *s, const struct store_owner *o,
                            uint64_t id)
{
    size_t slot = store_ix_find(s, id);

    if (slot == SIZE_MAX || s->heap[s->ix[slot]->heap].owner != o)
        return SIZE_MAX;
    return slot;
}

/* ---- the API ---- */

int store_new(struct store **out, const struct store_limits *lim,
              store_deliver_fn deliver, void *ctx)
{
    struct store *s = calloc(1, sizeof(*s));

    if (!s)
        return -ENOMEM;
    s->lim = *lim;
    s->deliver = deliver;
    s->ctx = ctx;
    s->next_id = 1;
    *out = s;
    return 0;
}

void store_free(struct store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nq; i++) {
        struct store_queue *q = s->qv[i];
        struct store_item *m = q->head;
        while (m) {
            struct store_item *next = m->u.r.next;
            free(m);
            m = next;
        }
        struct list *n;
        while ((n = list_pop_front(&q->waiters)))
            LIST_ENTRY(n, struct store_owner, waiter)->wait_queue = NULL;
        free(q);
    }
    /* Owners should hold nothing by now; unlinking keeps them usable if
     * one still did. */
    for (size_t i = 0; i < s->hlen; i++) {
        list_unlink(&s->heap[i].item->u.t.link);
        free(s->heap[i].item);
    }
    free(s->qv);
    free(s->qh);
    free(s->heap);
    free(s->ix);
    free(s);
}

void store_owner_init(struct store_owner *o)
{
    list_init(&o->leases);
    list_init(&o->waiter);
    o->wait_queue = NULL;
}

int store_put(struct store *s, const char *q, size_t qlen, const char *payload,
              size_t len, uint64_t now, uint64_t *id)
{
    struct store_queue *sq;
    int rc;

    if (!store_name_valid(q, qlen))
        return -EINVAL;
    if (len > UINT32_MAX || s->messages >= STORE_ITEMS_MAX ||
        s->messages >= s->lim.max_messages || len > s->lim.max_bytes - s->bytes)
        return -ENOSPC;
    /* The message first, so that no error leaves a queue made for it. */
    size_t size = offsetof(struct store_item, payload) + len;
    struct store_item *m = malloc(size < sizeof(*m) ? sizeof(*m) : size);
    if (!m)
        return -ENOMEM;
    rc = store_queue_open(s, q, qlen, &sq);
    /* A queue just made has no waiters, so a failed reserve undoes
     * nothing. */
    if (rc == 0 && !list_empty(&sq->waiters))
        rc = store_reserve(s);
    if (rc < 0) {
        free(m);
        return rc;
    }
    m->id = s->next_id++;
    m->len = (uint32_t)len;
    m->attempt = 0;
    m->heap = STORE_NONE;
    memcpy(m->payload, payload, len);
    s->messages++;
    s->bytes += len;
    sq->put++;
    s->put++;
    if (sq->is_dlq)
        s->dead++;
    *id = m->id;
    store_make_ready(s, sq, m, now);
    return 0;
}

int store_get(struct store *s, struct store_owner *o, const char *q,
              size_t qlen, uint64_t now, struct store_msg *m)
{
    struct store_queue *sq;
    int rc = store_queue_open(s, q, qlen, &sq);

    if (rc < 0)
        return rc;
    if (!sq->head)
        return -EAGAIN;
    rc = store_reserve(s);
    if (rc < 0)
        return rc;
    struct store_item *it = sq->head;
    sq->head = it->u.r.next;
    if (!sq->head)
        sq->tail = NULL;
    sq->ready--;
    s->ready--;
    store_lease(s, sq, it, o, now, m);
    return 0;
}

/* Beyond store.h: -EAGAIN when q has a ready message (GET it instead),
 * -EINVAL for a bad name. Waiting again moves o to the back of q. */
int store_wait(struct store *s, struct store_owner *o, const char *q,
               size_t qlen)
{
    struct store_queue *sq;
    int rc = store_queue_open(s, q, qlen, &sq);

    if (rc < 0)
        return rc;
    if (sq->head)
        return -EAGAIN;
    store_cancel_wait(s, o);
    list_push_back(&sq->waiters, &o->waiter);
    o->wait_queue = sq;
    sq->waiting++;
    s->waiting++;
    return 0;
}

void store_cancel_wait(struct store *s, struct store_owner *o)
{
    struct store_queue *q = o->wait_queue;

    if (!q)
        return;
    list_unlink(&o->waiter);
    o->wait_queue = NULL;
    q->waiting--;
    s->waiting--;
}

int store_ack(struct store *s, struct store_owner *o, uint64_t id)
{
    size_t slot = store_held_by(s, o, id);

    if (slot == SIZE_MAX)
        return -ENOENT;
    struct store_item *m = s->ix[slot];
    struct store_queue *q = s->qv[s->heap[m->heap].queue];
    store_heap_remove(s, m->heap);
    store_ix_remove(s, slot);
    list_unlink(&m->u.t.link);
    q->leased--;
    s->leased--;
    q->acked++;
    s->acked++;
    s->messages--;
    s->bytes -= m->len;
    if (q->is_dlq)
        s->dead--;
    free(m);
    store_trim(s);
    return 0;
}

int store_nack(struct store *s, struct store_owner *o, uint64_t id,
               uint64_t delay_ns, uint64_t now)
{
    size_t slot = store_held_by(s, o, id);

    if (slot == SIZE_MAX)
        return -ENOENT;
    store_lease_end(s, s->ix[slot], slot, delay_ns, now, STORE_END_NACK);
    return 0;
}

int store_touch(struct store *s, struct store_owner *o, uint64_t id,
                uint64_t now)
{
    size_t slot = store_held_by(s, o, id);

    if (slot == SIZE_MAX)
        return -ENOENT;
    struct store_timer *t = &s->heap[s->ix[slot]->heap];
    t->deadline = store_after(now, s->lim.lease_ns);
    t->seq = s->seq++;
    store_heap_fix(s, s->ix[slot]->heap);
    return 0;
}

void store_owner_release(struct store *s, struct store_owner *o, uint64_t now)
{
    struct list *n;

    store_cancel_wait(s, o);
    while ((n = list_pop_front(&o->leases))) {
        struct store_item *m = LIST_ENTRY(n, struct store_item, u.t.link);
        store_lease_end(s, m, store_ix_find(s, m->id), 0, now, STORE_END_NACK);
    }
    store_trim(s);
}

size_t store_expire(struct store *s, uint64_t now, size_t max)
{
    size_t n = 0;

    while (n < max && s->hlen > 0 && s->heap[0].deadline <= now) {
        struct store_item *m = s->heap[0].item;
        if (s->heap[0].owner) {
            store_lease_end(s, m, store_ix_find(s, m->id), 0, now,
                            STORE_END_EXPIRE);
        } else {
            struct store_queue *q = s->qv[s->heap[0].queue];
            store_heap_remove(s, 0);
            q->delayed--;
            s->delayed--;
            store_make_ready(s, q, m, now);
        }
        n++;
    }
    store_trim(s);
    return n;
}

uint64_t store_next_deadline(const struct store *s)
{
    return s->hlen > 0 ? s->heap[0].deadline : UINT64_MAX;
}

void store_stats(const struct store *s, struct store_stats *st)
{
    *st = (struct store_stats){
        .queues = s->queues,
        .messages = s->messages,
        .bytes = s->bytes,
        .ready = s->ready,
        .delayed = s->delayed,
        .leased = s->leased,
        .dead = s->dead,
        .put = s->put,
        .delivered = s->delivered,
        .acked = s->acked,
        .nacked = s->nacked,
        .expired = s->expired,
        .dead_lettered = s->dead_lettered,
        .waiting = s->waiting,
    };
}

void store_queue_stats(const struct store *s, const char *q, size_t qlen,
                       uint64_t now, struct store_queue_stats *qs)
{
    const struct store_queue *sq = NULL;

    memset(qs, 0, sizeof(*qs));
    if (store_name_valid(q, qlen))
        sq = store_queue_find(s, q, qlen);
    if (!sq || !sq->exists)
        return;
    qs->ready = sq->ready;
    qs->delayed = sq->delayed;
    qs->leased = sq->leased;
    qs->put = sq->put;
    qs->delivered = sq->delivered;
    qs->acked = sq->acked;
    qs->nacked = sq->nacked;
    qs->expired = sq->expired;
    qs->dead_lettered = sq->dead_lettered;
    qs->waiting = sq->waiting;
    if (sq->head && now > sq->head->u.r.since)
        qs->oldest_ready_age_ms = (now - sq->head->u.r.since) / 1000000u;
}

uint64_t store_held(const struct store *s)
{
    return s->messages;
}

/* ---- store_check ---- */

/* Tests may be built with NDEBUG, and the check must not vanish with
 * assert(): a failure says which line and aborts, as assert() would. */
#define STORE_CHECK(c) ((c) ? (void)0 : store_check_failed(#c, __LINE__))

static void store_check_failed(const char *what, int line)
{
    fprintf(stderr, "store.c:%d: store_check: %s\n", line, what);
    abort();
}

struct store_tally {
    uint64_t ready, delayed, leased, waiting, bytes, dead, queues;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
};

static int store_cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void store_check_names(const struct store *s)
{
    size_t used = 0;

    STORE_CHECK(s->nq * 2 <= s->qhcap || s->nq == 0);
    for (size_t i = 0; i < s->qhcap; i++) {
        const struct store_queue *q = s->qh[i];
        if (!q)
            continue;
        used++;
        STORE_CHECK(store_queue_find(s, q->name, q->len) == q);
    }
    STORE_CHECK(used == s->nq);
}

static void store_check_queue(const struct store *s,
                              const struct store_queue *q, uint64_t *ids,
                              size_t *nids, struct store_tally *t)
{
    STORE_CHECK(store_name_valid(q->name, q->len));
    STORE_CHECK(q->hash == store_name_hash(q->name, q->len));
    STORE_CHECK(q->is_dlq == store_is_dlq(q->name, q->len));
    if (q->is_dlq) {
        STORE_CHECK(q->dlq == STORE_NONE);
    } else {
        STORE_CHECK(q->dlq < s->nq);
        const struct store_queue *d = s->qv[q->dlq];
        STORE_CHECK(d->is_dlq && d->len == q->len + STORE_DLQ_LEN);
        STORE_CHECK(memcmp(d->name, q->name, q->len) == 0);
    }

    uint64_t n = 0, bytes = 0;
    const struct store_item *last = NULL;
    for (const struct store_item *m = q->head; m; m = m->u.r.next) {
        STORE_CHECK(m->heap == STORE_NONE);
        STORE_CHECK(m->id > 0 && m->id < s->next_id);
        STORE_CHECK(*nids < s->messages);
        ids[(*nids)++] = m->id;
        bytes += m->len;
        last = m;
        n++;
    }
    STORE_CHECK(n == q->ready && last == q->tail);

    uint64_t w = 0;
    for (struct list *l = q->waiters.next; l != &q->waiters; l = l->next) {
        const struct store_owner *o = LIST_ENTRY(l, struct store_owner, waiter);
        STORE_CHECK(o->wait_queue == q && l->next->prev == l);
        w++;
    }
    STORE_CHECK(w == q->waiting);
    STORE_CHECK(w == 0 || q->ready == 0);
    if (!q->exists) {
        uint64_t used = q->ready + q->delayed + q->leased + q->waiting;
        used += q->put + q->delivered + q->acked + q->nacked + q->expired;
        STORE_CHECK(used + q->dead_lettered == 0);
    }
    t->queues += q->exists;
    t->ready += q->ready;
    t->delayed += q->delayed;
    t->leased += q->leased;
    t->waiting += q->waiting;
    t->bytes += bytes;
    t->put += q->put;
    t->delivered += q->delivered;
    t->acked += q->acked;
    t->nacked += q->nacked;
    t->expired += q->expired;
    t->dead_lettered += q->dead_lettered;
    if (q->is_dlq)
        t->dead += q->ready + q->delayed + q->leased;
}

/* Heap order and back-pointers; counts timed messages per queue into
 * cnt[2 * queue] (delayed) and cnt[2 * queue + 1] (leased). */
static void store_check_heap(const struct store *s, uint64_t *cnt,
                             uint64_t *ids, size_t *nids, uint64_t *bytes)
{
    STORE_CHECK(s->hlen <= s->hcap);
    for (size_t i = 0; i < s->hlen; i++) {
        const struct store_timer *t = &s->heap[i];
        const struct store_item *m = t->item;
        STORE_CHECK(m->heap == i);
        STORE_CHECK(t->queue < s->nq && s->qv[t->queue]->exists);
        if (i > 0)
            STORE_CHECK(!store_timer_before(t, &s->heap[(i - 1) / 2]));
        STORE_CHECK(m->id > 0 && m->id < s->next_id);
        STORE_CHECK(*nids < s->messages);
        ids[(*nids)++] = m->id;
        *bytes += m->len;
        size_t slot = store_ix_find(s, m->id);
        if (t->owner) {
            STORE_CHECK(slot != SIZE_MAX && s->ix[slot] == m);
            STORE_CHECK(m->u.t.link.next->prev == &m->u.t.link);
            STORE_CHECK(m->u.t.link.prev->next == &m->u.t.link);
            cnt[2 * t->queue + 1]++;
        } else {
            STORE_CHECK(slot == SIZE_MAX && !list_linked(&m->u.t.link));
            cnt[2 * t->queue]++;
        }
    }
}

static void store_check_index(const struct store *s)
{
    size_t used = 0, mask = s->ixcap - 1;

    STORE_CHECK(s->hlen * 4 <= s->ixcap * 3);
    for (size_t i = 0; i < s->ixcap; i++) {
        const struct store_item *m = s->ix[i];
        if (!m)
            continue;
        used++;
        STORE_CHECK(m->heap < s->hlen && s->heap[m->heap].item == m);
        STORE_CHECK(s->heap[m->heap].owner != NULL);
        /* No hole between its home and its slot, or lookups miss it. */
        for (size_t j = store_ix_home(s, m->id); j != i; j = (j + 1) & mask)
            STORE_CHECK(s->ix[j] != NULL);
    }
    STORE_CHECK(used == s->ixlen && used == s->leased);
}

void store_check(const struct store *s)
{
    struct store_tally t = {0};
    uint64_t *ids = malloc((s->messages + 1) * sizeof(*ids));
    uint64_t *cnt = calloc(2 * s->nq + 1, sizeof(*cnt));
    size_t nids = 0;
    uint64_t timed_bytes = 0;

    STORE_CHECK(ids && cnt);
    STORE_CHECK(s->hlen == s->delayed + s->leased);
    store_check_names(s);
    for (size_t i = 0; i < s->nq; i++) {
        STORE_CHECK(s->qv[i]->index == i);
        store_check_queue(s, s->qv[i], ids, &nids, &t);
    }
    store_check_heap(s, cnt, ids, &nids, &timed_bytes);
    for (size_t i = 0; i < s->nq; i++) {
        STORE_CHECK(cnt[2 * i] == s->qv[i]->delayed);
        STORE_CHECK(cnt[2 * i + 1] == s->qv[i]->leased);
    }
    store_check_index(s);

    STORE_CHECK(t.queues == s->queues);
    STORE_CHECK(t.ready == s->ready && t.delayed == s->delayed);
    STORE_CHECK(t.leased == s->leased && t.waiting == s->waiting);
    STORE_CHECK(t.dead == s->dead);
    STORE_CHECK(t.bytes + timed_bytes == s->bytes);
    STORE_CHECK(s->ready + s->delayed + s->leased == s->messages);
    STORE_CHECK(nids == s->messages);
    STORE_CHECK(s->messages <= s->lim.max_messages);
    STORE_CHECK(s->bytes <= s->lim.max_bytes);
    STORE_CHECK(t.put == s->put && t.delivered == s->delivered);
    STORE_CHECK(t.acked == s->acked && t.nacked == s->nacked);
    STORE_CHECK(t.expired == s->expired);
    STORE_CHECK(t.dead_lettered == s->dead_lettered);
    STORE_CHECK(s->put == s->acked + s->messages);
    STORE_CHECK(s->put == s->next_id - 1);

    qsort(ids, nids, sizeof(*ids), store_cmp_id);
    for (size_t i = 1; i < nids; i++)
        STORE_CHECK(ids[i - 1] < ids[i]);
    free(ids);
    free(cnt);
}
