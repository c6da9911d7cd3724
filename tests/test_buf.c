/*
 * Unit tests for the growable byte buffer.
 *
 * Every connection holds two of these, so the properties checked are the
 * ones buf.h promises and the daemon leans on: bytes come out in the order
 * they went in however appends and consumes interleave; an idle buffer owns
 * no storage, before the first append and again once consumed to empty;
 * buf_reserve really makes room, so appends within it do not move the data;
 * growth is geometric, so a long run of small appends stays cheap; and a
 * request for more than memory can hold fails with -ENOMEM, leaving the
 * buffer as it was, instead of wrapping round to a small allocation.
 * The pool hands back the storage it was given, most recent first, and
 * never holds more than BUF_POOL_SLOTS blocks of BUF_POOL_CAP bytes.
 *
 * Randomness comes from splitmix64 with a fixed seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define SEED UINT64_C(0x6275665f74657374)

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

/* ---- helpers ---- */

/* A buffer that owns nothing, as buf.h defines "empty". */
static void assert_owns_nothing(const struct buf *b)
{
    assert_null(b->data);
    assert_int_equal(b->len, 0);
    assert_int_equal(b->cap, 0);
}

static void assert_holds(const struct buf *b, const void *p, size_t n)
{
    assert_int_equal(b->len, n);
    assert_true(b->cap >= b->len);
    if (n > 0) {
        assert_non_null(b->data);
        assert_memory_equal(b->data, p, n);
    }
}

/* ---- tests ---- */

static void test_init_owns_nothing(void **state)
{
    struct buf b;

    memset(&b, 0xa5, sizeof(b));
    buf_init(&b);
    assert_owns_nothing(&b);
    buf_release(&b);
    assert_owns_nothing(&b);
}

static void test_append_then_consume(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_append(&b, "hello ", 6), 0);
    assert_int_equal(buf_append(&b, "world", 5), 0);
    assert_holds(&b, "hello world", 11);

    buf_consume(&b, 6);
    assert_holds(&b, "world", 5);
    assert_int_equal(buf_append(&b, "!\n", 2), 0);
    assert_holds(&b, "world!\n", 7);

    buf_consume(&b, 0);
    assert_holds(&b, "world!\n", 7);
    buf_consume(&b, 1);
    assert_holds(&b, "orld!\n", 6);
    buf_release(&b);
    assert_owns_nothing(&b);
}

/* An idle connection must cost nothing: consuming everything frees. */
static void test_consume_to_empty_frees(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_non_null(b.data);
    buf_consume(&b, 3);
    assert_owns_nothing(&b);

    /* In two steps, the second emptying it. */
    assert_int_equal(buf_append(&b, "abcdef", 6), 0);
    buf_consume(&b, 4);
    assert_holds(&b, "ef", 2);
    buf_consume(&b, 2);
    assert_owns_nothing(&b);

    /* Reusable afterwards. */
    assert_int_equal(buf_append(&b, "xyz", 3), 0);
    assert_holds(&b, "xyz", 3);
    buf_release(&b);
}

/* Appending nothing is not "something appended": still no storage. */
static void test_empty_append_allocates_nothing(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_owns_nothing(&b);
    assert_int_equal(buf_reserve(&b, 0), 0);
    assert_owns_nothing(&b);
    buf_consume(&b, 0);
    assert_owns_nothing(&b);
}

/* After buf_reserve(n), n bytes of appends fit without moving the data. */
static void test_reserve_makes_room(void **state)
{
    static const size_t sizes[] = {1, 255, 256, 257, 4096, 100000, 1 << 20};
    char chunk[97];
    struct buf b;

    memset(chunk, 'r', sizeof(chunk));
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k];

        buf_init(&b);
        assert_int_equal(buf_append(&b, "head", 4), 0);
        assert_int_equal(buf_reserve(&b, n), 0);
        assert_true(b.cap - b.len >= n);
        assert_holds(&b, "head", 4);

        char *data = b.data;
        size_t cap = b.cap;

        for (size_t done = 0; done < n;) {
            size_t m = n - done < sizeof(chunk) ? n - done : sizeof(chunk);

            assert_int_equal(buf_append(&b, chunk, m), 0);
            done += m;
        }
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
        assert_int_equal(b.len, 4 + n);
        assert_memory_equal(b.data, "head", 4);
        for (size_t i = 4; i < b.len; i++)
            assert_int_equal(b.data[i], 'r');

        /* Room already there: reserving it again changes nothing. */
        assert_int_equal(buf_reserve(&b, b.cap - b.len), 0);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
        buf_release(&b);
    }
}

/*
 * A million one-byte appends must not mean a million reallocations: count
 * how often the capacity changes. Doubling gives about log2(10^6) = 20.
 */
static void test_growth_is_geometric(void **state)
{
    const size_t n = 1000000;
    size_t changes = 0, cap = 0;
    struct buf b;

    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);

        assert_int_equal(buf_append(&b, &c, 1), 0);
        if (b.cap != cap) {
            assert_true(b.cap > cap);
            changes++;
            cap = b.cap;
        }
    }
    assert_int_equal(b.len, n);
    assert_true(changes <= 40);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(b.data[i], (char)('a' + i % 26));
    buf_release(&b);
}

/* Tens of megabytes in and out in read-sized batches, content intact. */
static void test_large_sizes(void **state)
{
    const size_t total = 48u << 20;
    const size_t chunk = 1u << 20;
    uint64_t s = SEED ^ 1;
    unsigned char *src = malloc(chunk);
    struct buf b;

    assert_non_null(src);
    buf_init(&b);
    for (size_t off = 0; off < total; off += chunk) {
        for (size_t i = 0; i < chunk; i++)
            src[i] = (unsigned char)((off + i) * 2654435761u >> 13);
        assert_int_equal(buf_append(&b, src, chunk), 0);
    }
    assert_int_equal(b.len, total);
    assert_true(b.cap >= total);

    /* Consume in uneven batches and check what is left at the front. */
    size_t gone = 0;

    while (b.len > 0) {
        size_t n = 1 + rng_upto(&s, 3 * chunk);

        if (n > b.len)
            n = b.len;
        buf_consume(&b, n);
        gone += n;
        if (b.len == 0)
            break;
        for (size_t i = 0; i < 64 && i < b.len; i++) {
            unsigned char want =
                (unsigned char)((gone + i) * 2654435761u >> 13);

            assert_int_equal((unsigned char)b.data[i], want);
        }
        unsigned char last = (unsigned char)b.data[b.len - 1];

        assert_int_equal(last,
                         (unsigned char)((total - 1) * 2654435761u >> 13));
    }
    assert_int_equal(gone, total);
    assert_owns_nothing(&b);
    free(src);
}

/*
 * Random appends and consumes against a plain array. Whenever the model is
 * empty the buffer must own nothing.
 */
static void test_random_against_model(void **state)
{
    const size_t model_cap = 1u << 20;
    unsigned char *model = malloc(model_cap);
    unsigned char piece[5000];
    uint64_t s = SEED ^ 2;
    size_t mlen = 0, empties = 0;
    struct buf b;

    assert_non_null(model);
    buf_init(&b);
    for (int op = 0; op < 20000; op++) {
        if (rng_upto(&s, 2) > 0 && mlen + sizeof(piece) <= model_cap) {
            size_t n = rng_upto(&s, 1) ? rng_upto(&s, 16)
                                       : rng_upto(&s, sizeof(piece));

            for (size_t i = 0; i < n; i++)
                piece[i] = (unsigned char)rng_next(&s);
            assert_int_equal(buf_append(&b, piece, n), 0);
            memcpy(model + mlen, piece, n);
            mlen += n;
        } else {
            size_t n = rng_upto(&s, 3) ? rng_upto(&s, mlen) : mlen;

            buf_consume(&b, n);
            memmove(model, model + n, mlen - n);
            mlen -= n;
        }
        assert_holds(&b, model, mlen);
        if (mlen == 0) {
            assert_null(b.data);
            assert_int_equal(b.cap, 0);
            empties++;
        }
    }
    assert_true(empties > 100);
    buf_release(&b);
    free(model);
}

/*
 * Sizes near SIZE_MAX must be refused before len + extra wraps round, and
 * the refusal leaves the buffer untouched. The requests just past the guard
 * are used, not the ones just under it, which would reach the allocator.
 */
static void test_reserve_overflow_guard(void **state)
{
    static const char text[] = "keep me";
    const size_t n = sizeof(text) - 1;
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_owns_nothing(&b);
    assert_int_equal(buf_reserve(&b, SIZE_MAX / 2 + 1), -ENOMEM);
    assert_owns_nothing(&b);
    assert_int_equal(buf_append(&b, text, SIZE_MAX), -ENOMEM);
    assert_owns_nothing(&b);

    assert_int_equal(buf_append(&b, text, n), 0);
    char *data = b.data;
    size_t cap = b.cap;
    const size_t bad[] = {
        SIZE_MAX,             /* the largest request there is */
        SIZE_MAX - n,         /* len + extra == SIZE_MAX */
        SIZE_MAX - n + 1,     /* len + extra wraps to 0 */
        SIZE_MAX - n + 2,     /* wraps to 1 */
        SIZE_MAX / 2 + 1,     /* past half the address space */
        SIZE_MAX / 2 - n + 1, /* len + extra just past it */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(buf_reserve(&b, bad[i]), -ENOMEM);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
        assert_holds(&b, text, n);
        assert_int_equal(buf_append(&b, text, bad[i]), -ENOMEM);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
        assert_holds(&b, text, n);
    }

    /* Still usable after the refusals. */
    assert_int_equal(buf_append(&b, "!", 1), 0);
    assert_holds(&b, "keep me!", n + 1);
    buf_release(&b);
}

static void test_release_then_reuse(void **state)
{
    struct buf b;

    buf_init(&b);
    assert_int_equal(buf_append(&b, "one", 3), 0);
    buf_release(&b);
    assert_owns_nothing(&b);
    assert_int_equal(buf_append(&b, "two", 3), 0);
    assert_holds(&b, "two", 3);
    buf_release(&b);
    assert_owns_nothing(&b);
    buf_release(&b);
    assert_owns_nothing(&b);
}

/* Given storage comes back, last in first out, with its capacity; a
 * buffer that already owns storage keeps it. */
static void test_pool_reuses_storage(void **state)
{
    struct buf_pool p;
    struct buf a, b;

    buf_pool_init(&p);
    buf_init(&a);
    buf_pool_take(&p, &a);
    assert_owns_nothing(&a);

    assert_int_equal(buf_append(&a, "one", 3), 0);
    assert_int_equal(buf_reserve(&a, 1000), 0);
    char *da = a.data;
    size_t ca = a.cap;
    buf_init(&b);
    assert_int_equal(buf_append(&b, "two", 3), 0);
    char *db = b.data;

    buf_pool_give(&p, &a);
    assert_owns_nothing(&a);
    buf_pool_give(&p, &b);
    assert_owns_nothing(&b);
    assert_int_equal(p.n, 2);

    buf_pool_take(&p, &a);
    assert_ptr_equal(a.data, db);
    assert_int_equal(a.len, 0);
    buf_pool_take(&p, &a); /* owns storage already: nothing happens */
    assert_ptr_equal(a.data, db);
    assert_int_equal(p.n, 1);
    buf_pool_take(&p, &b);
    assert_ptr_equal(b.data, da);
    assert_int_equal(b.cap, ca);
    assert_int_equal(b.len, 0);
    assert_int_equal(p.n, 0);

    /* Taken storage works like any other. */
    assert_int_equal(buf_append(&b, "three", 5), 0);
    assert_holds(&b, "three", 5);
    buf_pool_give(&p, &a);
    buf_pool_give(&p, &b);
    buf_pool_give(&p, &b); /* owns nothing now: nothing happens */
    assert_int_equal(p.n, 2);
    buf_pool_release(&p);
    assert_int_equal(p.n, 0);
}

/* The bounds, at their edges: a block of exactly BUF_POOL_CAP bytes is
 * kept and one byte more is freed; the pool fills to BUF_POOL_SLOTS and
 * frees the rest. ASan's leak check sees anything lost on the way. */
static void test_pool_bounds(void **state)
{
    struct buf_pool p;
    struct buf b;

    buf_pool_init(&p);
    buf_init(&b);
    assert_int_equal(buf_reserve(&b, BUF_POOL_CAP), 0);
    assert_int_equal(b.cap, BUF_POOL_CAP);
    buf_pool_give(&p, &b);
    assert_owns_nothing(&b);
    assert_int_equal(p.n, 1);

    assert_int_equal(buf_reserve(&b, BUF_POOL_CAP + 1), 0);
    assert_true(b.cap > BUF_POOL_CAP);
    buf_pool_give(&p, &b);
    assert_owns_nothing(&b);
    assert_int_equal(p.n, 1);

    for (int i = 0; i < BUF_POOL_SLOTS + 10; i++) {
        assert_int_equal(buf_append(&b, "x", 1), 0);
        buf_pool_give(&p, &b);
        assert_owns_nothing(&b);
        assert_int_equal(p.n, i + 2 < BUF_POOL_SLOTS ? i + 2 : BUF_POOL_SLOTS);
    }
    for (int i = BUF_POOL_SLOTS; i > 0; i--) {
        buf_pool_take(&p, &b);
        assert_non_null(b.data);
        assert_int_equal(p.n, i - 1);
        buf_release(&b);
    }
    buf_pool_take(&p, &b);
    assert_owns_nothing(&b);
    buf_pool_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_owns_nothing),
        cmocka_unit_test(test_append_then_consume),
        cmocka_unit_test(test_consume_to_empty_frees),
        cmocka_unit_test(test_empty_append_allocates_nothing),
        cmocka_unit_test(test_reserve_makes_room),
        cmocka_unit_test(test_growth_is_geometric),
        cmocka_unit_test(test_large_sizes),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_reserve_overflow_guard),
        cmocka_unit_test(test_release_then_reuse),
        cmocka_unit_test(test_pool_reuses_storage),
        cmocka_unit_test(test_pool_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
