/*
 * Unit tests for the timer heap.
 *
 * Every lease, shaped request and idle check is a node in this heap, so a
 * wrong order fires a timer early or late and a stale index corrupts the
 * heap on the next removal. The properties checked are the ones
 * timer_heap.h promises: nodes come out by deadline, and in push order
 * when deadlines are equal (a re-pushed node counts as pushed anew); any
 * node can be removed wherever it sits, and every node always knows its
 * own index; removing a node that is not in the heap changes nothing;
 * THEAP_NONE marks a node outside the heap. After every operation the
 * whole heap is walked to check the stored indices and the heap order, and
 * a long random run is compared with a sorted array.
 *
 * Randomness comes from splitmix64 with a fixed seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "timer_heap.h"

#define SEED   UINT64_C(0x7468656170746573)
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- deterministic randomness ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* [0, n] */
static size_t rng_upto(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % ((uint64_t)n + 1));
}

/* Mostly few distinct deadlines, so ties are common; sometimes extremes. */
static uint64_t rng_deadline(uint64_t *s)
{
    switch (rng_upto(s, 7)) {
    case 0:
        return rng_next(s);
    case 1:
        return rng_upto(s, 1) ? 0 : UINT64_MAX;
    default:
        return rng_upto(s, 40);
    }
}

/* ---- checks ---- */

static bool key_before(uint64_t da, uint64_t sa, uint64_t db, uint64_t sb)
{
    return da != db ? da < db : sa < sb;
}

/* Every stored node knows its index and no child precedes its parent. */
static void check_heap(const struct theap *h)
{
    assert_true(h->len <= h->cap);
    for (size_t i = 0; i < h->len; i++) {
        const struct theap_node *n = h->v[i];

        assert_non_null(n);
        assert_int_equal(n->index, i);
        assert_true(theap_node_active(n));
        if (i > 0) {
            const struct theap_node *p = h->v[(i - 1) / 2];

            assert_false(key_before(n->deadline, n->seq, p->deadline, p->seq));
        }
    }
    assert_ptr_equal(theap_peek(h), h->len ? h->v[0] : NULL);
}

static void pop_expect(struct theap *h, const struct theap_node *want)
{
    struct theap_node *n = theap_pop(h);

    assert_ptr_equal(n, want);
    if (n) {
        assert_int_equal(n->index, THEAP_NONE);
        assert_false(theap_node_active(n));
    }
    check_heap(h);
}

static void push_ok(struct theap *h, struct theap_node *n, uint64_t deadline)
{
    assert_int_equal(theap_push(h, n, deadline), 0);
    assert_true(theap_node_active(n));
    assert_int_equal(n->deadline, deadline);
    check_heap(h);
}

static void shuffle(uint64_t *s, size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_upto(s, i - 1);
        size_t t = v[i - 1];

        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- tests ---- */

static void test_empty(void **state)
{
    struct theap h;

    theap_init(&h);
    assert_int_equal(h.len, 0);
    assert_null(theap_peek(&h));
    assert_null(theap_pop(&h));
    assert_null(theap_pop(&h));
    theap_release(&h);
    assert_int_equal(h.len, 0);
    assert_null(theap_peek(&h));
}

static void test_node_active_follows_membership(void **state)
{
    struct theap_node a, b;
    struct theap h;

    memset(&a, 0x5a, sizeof(a));
    theap_node_init(&a);
    theap_node_init(&b);
    assert_int_equal(a.index, THEAP_NONE);
    assert_false(theap_node_active(&a));

    theap_init(&h);
    push_ok(&h, &a, 10);
    assert_int_equal(a.index, 0);
    push_ok(&h, &b, 5);
    assert_int_equal(b.index, 0);
    assert_int_equal(a.index, 1);
    assert_ptr_equal(theap_peek(&h), &b);
    /* Peeking takes nothing out. */
    assert_true(theap_node_active(&b));
    assert_int_equal(h.len, 2);

    pop_expect(&h, &b);
    assert_int_equal(a.index, 0);
    theap_remove(&h, &a);
    assert_false(theap_node_active(&a));
    assert_int_equal(h.len, 0);
    theap_release(&h);
}

static void test_pops_in_deadline_order(void **state)
{
    enum { N = 1000 };
    static struct theap_node nodes[N];
    size_t order[N];
    uint64_t s = SEED ^ 1;
    struct theap h;

    for (size_t i = 0; i < N; i++) {
        theap_node_init(&nodes[i]);
        order[i] = i;
    }
    shuffle(&s, order, N);
    theap_init(&h);
    /* Node i has deadline 1000 * i + 7, pushed in a shuffled order. */
    for (size_t k = 0; k < N; k++)
        push_ok(&h, &nodes[order[k]], 1000 * (uint64_t)order[k] + 7);
    for (size_t i = 0; i < N; i++) {
        assert_ptr_equal(theap_peek(&h), &nodes[i]);
        pop_expect(&h, &nodes[i]);
    }
    pop_expect(&h, NULL);
    theap_release(&h);
}

static void test_extreme_deadlines(void **state)
{
    static const uint64_t d[] = {UINT64_MAX,        0,
                                 UINT64_MAX - 1,    1,
                                 UINT64_C(1) << 63, (UINT64_C(1) << 63) - 1};
    static const size_t want[] = {1, 3, 5, 4, 2, 0};
    struct theap_node nodes[LEN(d)];
    struct theap h;

    theap_init(&h);
    for (size_t i = 0; i < LEN(d); i++) {
        theap_node_init(&nodes[i]);
        push_ok(&h, &nodes[i], d[i]);
    }
    for (size_t i = 0; i < LEN(want); i++)
        pop_expect(&h, &nodes[want[i]]);
    pop_expect(&h, NULL);
    theap_release(&h);
}

/* Equal deadlines: first pushed, first out, whatever the node addresses. */
static void test_equal_deadlines_keep_push_order(void **state)
{
    enum { N = 300 };
    static struct theap_node nodes[N];
    size_t order[N];
    uint64_t s = SEED ^ 2;
    struct theap h;

    for (size_t i = 0; i < N; i++) {
        theap_node_init(&nodes[i]);
        order[i] = i;
    }
    shuffle(&s, order, N);
    theap_init(&h);
    for (size_t k = 0; k < N; k++)
        push_ok(&h, &nodes[order[k]], 42);
    for (size_t k = 0; k < N; k++)
        pop_expect(&h, &nodes[order[k]]);

    /* Three deadlines mixed: by deadline, then by push order. */
    size_t byd[3][N];
    size_t cnt[3] = {0, 0, 0};

    for (size_t k = 0; k < N; k++) {
        size_t d = rng_upto(&s, 2);

        push_ok(&h, &nodes[order[k]], 100 - 10 * (uint64_t)d);
        byd[d][cnt[d]++] = order[k];
    }
    for (size_t d = 3; d-- > 0;)
        for (size_t k = 0; k < cnt[d]; k++)
            pop_expect(&h, &nodes[byd[d][k]]);
    pop_expect(&h, NULL);
    theap_release(&h);
}

/* A node pushed again after a pop or a removal queues behind its ties. */
static void test_repush_goes_behind_ties(void **state)
{
    struct theap_node a, b, c, d;
    struct theap h;

    theap_node_init(&a);
    theap_node_init(&b);
    theap_node_init(&c);
    theap_node_init(&d);
    theap_init(&h);
    push_ok(&h, &a, 5);
    push_ok(&h, &b, 5);
    push_ok(&h, &c, 5);
    pop_expect(&h, &a);
    push_ok(&h, &a, 5);
    theap_remove(&h, &b);
    assert_false(theap_node_active(&b));
    check_heap(&h);
    push_ok(&h, &b, 5);
    push_ok(&h, &d, 4);
    pop_expect(&h, &d);
    pop_expect(&h, &c);
    pop_expect(&h, &a);
    pop_expect(&h, &b);
    pop_expect(&h, NULL);

    /* A re-push with a new deadline takes the new one. */
    push_ok(&h, &a, 9);
    push_ok(&h, &b, 8);
    pop_expect(&h, &b);
    push_ok(&h, &b, 10);
    pop_expect(&h, &a);
    pop_expect(&h, &b);
    theap_release(&h);
}

/*
 * Remove the node at every position of heaps of every size up to 64, then
 * check the rest still come out in order. Positions deep in the heap need
 * a sift up after the last node moves in; others a sift down.
 */
static void test_remove_every_position(void **state)
{
    enum { N = 64 };
    struct theap_node nodes[N];
    uint64_t dl[N], s = SEED ^ 3;
    struct theap h;

    for (size_t n = 1; n <= N; n++) {
        for (size_t k = 0; k < n; k++) {
            theap_init(&h);
            for (size_t i = 0; i < n; i++) {
                theap_node_init(&nodes[i]);
                dl[i] = rng_upto(&s, 3) ? rng_upto(&s, 2 * n) : 7;
                push_ok(&h, &nodes[i], dl[i]);
            }
            struct theap_node *victim = h.v[k];

            assert_int_equal(victim->index, k);
            theap_remove(&h, victim);
            assert_int_equal(victim->index, THEAP_NONE);
            assert_int_equal(h.len, n - 1);
            check_heap(&h);

            /* Expected: by deadline, then push order (node number). */
            size_t prev = SIZE_MAX;

            for (size_t out = 0; out + 1 < n; out++) {
                struct theap_node *p = theap_pop(&h);

                assert_non_null(p);
                assert_ptr_not_equal(p, victim);
                size_t i = (size_t)(p - nodes);

                if (prev != SIZE_MAX)
                    assert_true(dl[prev] < dl[i] ||
                                (dl[prev] == dl[i] && prev < i));
                prev = i;
                check_heap(&h);
            }
            pop_expect(&h, NULL);
            theap_release(&h);
        }
    }
}

static void test_remove_inactive_is_noop(void **state)
{
    enum { N = 50 };
    struct theap_node nodes[N], stranger, *before[N];
    size_t index[N];
    uint64_t s = SEED ^ 4;
    struct theap h;

    theap_init(&h);
    for (size_t i = 0; i < N; i++) {
        theap_node_init(&nodes[i]);
        push_ok(&h, &nodes[i], rng_upto(&s, 20));
    }
    theap_node_init(&stranger);
    memcpy(before, h.v, sizeof(before));
    for (size_t i = 0; i < N; i++)
        index[i] = nodes[i].index;

    theap_remove(&h, &stranger);
    assert_false(theap_node_active(&stranger));
    assert_int_equal(h.len, N);
    assert_memory_equal(h.v, before, sizeof(before));
    for (size_t i = 0; i < N; i++)
        assert_int_equal(nodes[i].index, index[i]);

    /* A popped node, removed again, and a removed one, removed twice. */
    struct theap_node *p = theap_pop(&h);

    assert_non_null(p);
    theap_remove(&h, &nodes[7] == p ? &nodes[8] : &nodes[7]);
    check_heap(&h);
    memcpy(before, h.v, (N - 2) * sizeof(before[0]));
    theap_remove(&h, p);
    theap_remove(&h, &nodes[7] == p ? &nodes[8] : &nodes[7]);
    assert_int_equal(h.len, N - 2);
    assert_memory_equal(h.v, before, (N - 2) * sizeof(before[0]));
    check_heap(&h);
    theap_release(&h);
}

static void test_release_resets_nodes(void **state)
{
    enum { N = 100 };
    struct theap_node nodes[N];
    struct theap h;

    theap_init(&h);
    for (size_t i = 0; i < N; i++) {
        theap_node_init(&nodes[i]);
        push_ok(&h, &nodes[i], N - i);
    }
    theap_release(&h);
    assert_int_equal(h.len, 0);
    assert_null(theap_peek(&h));
    for (size_t i = 0; i < N; i++)
        assert_false(theap_node_active(&nodes[i]));

    /* The heap and the nodes are reusable. */
    for (size_t i = 0; i < N; i++)
        push_ok(&h, &nodes[i], i % 3);
    for (uint64_t d = 0; d < 3; d++)
        for (size_t i = d; i < N; i += 3)
            pop_expect(&h, &nodes[i]);
    pop_expect(&h, NULL);
    theap_release(&h);
}

/* ---- random operations against a sorted array ---- */

struct key {
    uint64_t deadline;
    uint64_t stamp; /* the test's own push counter */
    size_t id;
};

struct model {
    struct key *v;
    size_t len;
    uint64_t stamp;
};

static size_t model_find(const struct model *m, size_t id)
{
    for (size_t i = 0; i < m->len; i++)
        if (m->v[i].id == id)
            return i;
    return SIZE_MAX;
}

static void model_insert(struct model *m, size_t id, uint64_t deadline)
{
    struct key k = {deadline, m->stamp++, id};
    size_t lo = 0, hi = m->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (key_before(m->v[mid].deadline, m->v[mid].stamp, k.deadline,
                       k.stamp))
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&m->v[lo + 1], &m->v[lo], (m->len - lo) * sizeof(k));
    m->v[lo] = k;
    m->len++;
}

static void model_erase(struct model *m, size_t i)
{
    memmove(&m->v[i], &m->v[i + 1], (m->len - i - 1) * sizeof(m->v[0]));
    m->len--;
}

#define CHECK(cond, op, seed)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            print_error("op %d (seed 0x%016" PRIx64 "): %s\n", (op), (seed),   \
                        #cond);                                                \
            fail();                                                            \
        }                                                                      \
    } while (0)

/*
 * Phases that mostly push alternate with phases that mostly take out, so
 * the heap is sometimes nearly full and sometimes nearly empty. Removals
 * mostly aim at a node in the heap, at any position; the rest hit nodes
 * outside it and must change nothing.
 */
static void test_random_against_model(void **state)
{
    enum { NODES = 512, OPS = 100000 };
    static struct theap_node nodes[NODES];
    static struct key keys[NODES];
    static bool in[NODES]; /* in the model */
    struct model m = {keys, 0, 0};
    uint64_t seed = SEED ^ 5, s = seed;
    size_t pops = 0, removes = 0, noops = 0, repushes = 0, ties = 0;
    size_t max_len = 0, empty = 0;
    struct theap h;

    for (size_t i = 0; i < NODES; i++)
        theap_node_init(&nodes[i]);
    theap_init(&h);
    for (int op = 0; op < OPS; op++) {
        bool filling = (op / 5000) % 2 == 0;
        unsigned what = (unsigned)rng_upto(&s, 9);
        size_t id = rng_upto(&s, NODES - 1);

        if (what < (filling ? 7u : 3u)) {
            /* Push the first node at or after id that is not in. */
            if (m.len == NODES)
                continue;
            while (in[id])
                id = (id + 1) % NODES;
            uint64_t d = rng_deadline(&s);

            CHECK(!theap_node_active(&nodes[id]), op, seed);
            ties += m.len > 0 && d == m.v[m.len - 1].deadline;
            CHECK(theap_push(&h, &nodes[id], d) == 0, op, seed);
            CHECK(nodes[id].index < h.len, op, seed);
            model_insert(&m, id, d);
            in[id] = true;
        } else if (what < 6) {
            struct theap_node *p = theap_pop(&h);

            if (m.len == 0) {
                CHECK(p == NULL, op, seed);
                empty++;
            } else {
                CHECK(p == &nodes[m.v[0].id], op, seed);
                CHECK(p->index == THEAP_NONE, op, seed);
                in[m.v[0].id] = false;
                model_erase(&m, 0);
                pops++;
            }
        } else if (what < 9) {
            if (m.len > 0 && rng_upto(&s, 3) > 0)
                id = m.v[rng_upto(&s, m.len - 1)].id;

            size_t at = in[id] ? model_find(&m, id) : SIZE_MAX;
            size_t len = h.len;

            CHECK(theap_node_active(&nodes[id]) == (at != SIZE_MAX), op, seed);
            theap_remove(&h, &nodes[id]);
            CHECK(!theap_node_active(&nodes[id]), op, seed);
            if (at == SIZE_MAX) {
                CHECK(h.len == len, op, seed);
                noops++;
            } else {
                CHECK(h.len == len - 1, op, seed);
                model_erase(&m, at);
                in[id] = false;
                removes++;
            }
        } else if (m.len > 0) {
            /* Pop and push the same node straight back. */
            struct theap_node *p = theap_pop(&h);
            size_t pid = m.v[0].id;
            uint64_t d = rng_deadline(&s);

            CHECK(p == &nodes[pid], op, seed);
            model_erase(&m, 0);
            CHECK(theap_push(&h, p, d) == 0, op, seed);
            model_insert(&m, pid, d);
            repushes++;
        }
        CHECK(h.len == m.len, op, seed);
        CHECK(theap_peek(&h) == (m.len ? &nodes[m.v[0].id] : NULL), op, seed);
        if (op % 16 == 0 || h.len < 64)
            check_heap(&h);
        if (op % 1024 == 0)
            for (size_t i = 0; i < NODES; i++)
                CHECK(theap_node_active(&nodes[i]) == in[i], op, seed);
        max_len = h.len > max_len ? h.len : max_len;
    }
    /* The run must have exercised what it claims to. */
    assert_true(pops > 5000);
    assert_true(removes > 10000);
    assert_true(noops > 1000);
    assert_true(repushes > 1000);
    assert_true(ties > 1000);
    assert_true(empty > 100);
    assert_int_equal(max_len, NODES);

    /* Drain: the rest must come out in model order. */
    while (m.len > 0) {
        pop_expect(&h, &nodes[m.v[0].id]);
        model_erase(&m, 0);
    }
    pop_expect(&h, NULL);
    theap_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_node_active_follows_membership),
        cmocka_unit_test(test_pops_in_deadline_order),
        cmocka_unit_test(test_extreme_deadlines),
        cmocka_unit_test(test_equal_deadlines_keep_push_order),
        cmocka_unit_test(test_repush_goes_behind_ties),
        cmocka_unit_test(test_remove_every_position),
        cmocka_unit_test(test_remove_inactive_is_noop),
        cmocka_unit_test(test_release_resets_nodes),
        cmocka_unit_test(test_random_against_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
