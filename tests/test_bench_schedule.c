/*
 * Unit tests for the bench's open-loop schedule (bench/schedule.c), on a
 * fake clock.
 *
 * Beside the arithmetic (due times, due counts, no drift over an hour),
 * a small simulation drives the schedule the way the bench's driver does:
 * connections with one request in flight, a server that answers after a
 * fixed service time, and requests handed out round robin as they fall
 * due. It checks that a server stall does not thin the schedule (every
 * request missed during the stall is sent afterwards and counted from its
 * due time), and that a rate below the number of connections spreads the
 * requests over the connections without ever sending one late.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

#define US  1000ULL
#define MS  1000000ULL
#define SEC 1000000000ULL

static void test_init_rejects(void **state)
{
    struct sched s;

    assert_int_equal(sched_init(&s, 0, 0), -EINVAL);
    assert_int_equal(sched_init(&s, 0, SCHED_MAX_RATE + 1), -EINVAL);
    assert_int_equal(sched_init(&s, 0, SCHED_MAX_RATE), 0);
}

static void test_due_times(void **state)
{
    struct sched s;

    assert_int_equal(sched_init(&s, 5 * SEC, 3), 0);
    assert_int_equal(sched_due_at(&s, 0), 5 * SEC);
    assert_int_equal(sched_due_at(&s, 1), 5 * SEC + 333333333);
    assert_int_equal(sched_due_at(&s, 2), 5 * SEC + 666666666);
    assert_int_equal(sched_due_at(&s, 3), 6 * SEC);
    /* No drift: the hour's last request is due exactly an hour later. */
    assert_int_equal(sched_init(&s, 7, 999983), 0);
    assert_int_equal(sched_due_at(&s, 999983ULL * 3600), 7 + 3600 * SEC);
}

static void test_due_counts(void **state)
{
    static const uint64_t rates[] = {
        1, 3, 7, 1000, 999983, 1000000, SCHED_MAX_RATE};
    uint64_t x = 12345;

    for (size_t r = 0; r < sizeof(rates) / sizeof(*rates); r++) {
        struct sched s;
        assert_int_equal(sched_init(&s, 1000, rates[r]), 0);
        assert_int_equal(sched_due_count(&s, 999), 0);
        assert_int_equal(sched_due_count(&s, 1000), 1);
        for (int i = 0; i < 2000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t now = 1000 + (x >> 20) % (100 * SEC);
            uint64_t n = sched_due_count(&s, now);
            /* Request n-1 is due by now, request n is not. */
            assert_true(n >= 1);
            assert_true(sched_due_at(&s, n - 1) <= now);
            assert_true(sched_due_at(&s, n) > now);
        }
    }
}

static void test_take_and_backlog(void **state)
{
    struct sched s;
    uint64_t due, k;

    assert_int_equal(sched_init(&s, 0, 1000), 0);
    assert_int_equal(sched_backlog(&s, 10 * MS), 11);
    for (uint64_t i = 0; i < 11; i++) {
        assert_true(sched_take(&s, 10 * MS, &due, &k));
        assert_int_equal(k, i);
        assert_int_equal(due, i * MS);
    }
    assert_false(sched_take(&s, 10 * MS, &due, &k));
    assert_int_equal(sched_backlog(&s, 10 * MS), 0);
    assert_int_equal(sched_next_due(&s), 11 * MS);
}

static bool room_of(void *ctx, unsigned i)
{
    return ((const bool *)ctx)[i];
}

static void test_rr_pick(void **state)
{
    bool room[4] = {true, false, true, false};
    struct sched_rr rr = {.n = 4};

    assert_int_equal(sched_rr_pick(&rr, room_of, room), 0);
    assert_int_equal(sched_rr_pick(&rr, room_of, room), 2);
    assert_int_equal(sched_rr_pick(&rr, room_of, room), 0);
    memset(room, 0, sizeof(room));
    assert_int_equal(sched_rr_pick(&rr, room_of, room), -EBUSY);
}

/* ---- the simulation ---- */

#define SIM_CONNS 16
#define SIM_MAX   4096

struct sim {
    struct sched s;
    struct sched_rr rr;
    unsigned n;
    uint64_t service; /* answer time of the fake server */
    uint64_t stall_from, stall_to;
    bool busy[SIM_CONNS];
    bool room[SIM_CONNS];
    uint64_t done_at[SIM_CONNS]; /* when the request in flight ends */
    uint64_t due_of[SIM_CONNS];
    uint64_t sent_of[SIM_CONNS];
    unsigned uses[SIM_CONNS];
    size_t ndone;
    uint64_t corrected[SIM_MAX];
    uint64_t uncorrected[SIM_MAX];
    uint64_t max_late; /* worst send time minus due time */
    unsigned max_busy;
};

/* The fake server: a reply due inside the stall comes at its end. */
static uint64_t reply_time(const struct sim *m, uint64_t sent)
{
    uint64_t t = sent + m->service;

    if (t >= m->stall_from && t < m->stall_to)
        t = m->stall_to;
    return t;
}

static void sim_step(struct sim *m, uint64_t now)
{
    for (unsigned i = 0; i < m->n; i++) {
        if (m->busy[i] && m->done_at[i] <= now) {
            assert_true(m->ndone < SIM_MAX);
            m->corrected[m->ndone] = now - m->due_of[i];
            m->uncorrected[m->ndone] = now - m->sent_of[i];
            m->ndone++;
            m->busy[i] = false;
        }
        m->room[i] = !m->busy[i];
    }
    uint64_t due;
    while (sched_next_due(&m->s) <= now) {
        int i = sched_rr_pick(&m->rr, room_of, m->room);
        if (i < 0)
            break;
        assert_true(sched_take(&m->s, now, &due, NULL));
        if (now - due > m->max_late)
            m->max_late = now - due;
        m->busy[i] = true;
        m->room[i] = false;
        m->due_of[i] = due;
        m->sent_of[i] = now;
        m->done_at[i] = reply_time(m, now);
        m->uses[i]++;
    }
    unsigned busy = 0;
    for (unsigned i = 0; i < m->n; i++)
        busy += m->busy[i];
    if (busy > m->max_busy)
        m->max_busy = busy;
}

static struct sim *sim_new(unsigned n, uint64_t rate, uint64_t service)
{
    struct sim *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->n = n;
    m->rr.n = n;
    m->service = service;
    m->stall_from = m->stall_to = UINT64_MAX;
    assert_int_equal(sched_init(&m->s, 0, rate), 0);
    return m;
}

static void test_catch_up_after_stall(void **state)
{
    /* 1000/s on 2 connections; the server stalls from 100 to 300 ms. */
    struct sim *m = sim_new(2, 1000, 100 * US);
    size_t late_cor = 0, late_unc = 0;

    m->stall_from = 100 * MS;
    m->stall_to = 300 * MS;
    for (uint64_t now = 0; now <= SEC; now += 10 * US)
        sim_step(m, now);
    /* Caught up: everything due by 1 s was sent, in schedule order. */
    assert_int_equal(m->s.taken, sched_due_count(&m->s, SEC));
    assert_true(m->ndone >= m->s.taken - 2);
    for (size_t i = 0; i < m->ndone; i++) {
        late_cor += m->corrected[i] > 10 * MS;
        late_unc += m->uncorrected[i] > 10 * MS;
    }
    /*
     * The ~200 requests due during the stall count from their due times;
     * from their send times only the 2 caught in flight would look slow.
     */
    assert_true(late_cor >= 190);
    assert_true(late_unc <= 2);
    /* The worst: due at 100 ms, answered at 300 ms at the earliest. */
    uint64_t worst = 0;
    for (size_t i = 0; i < m->ndone; i++)
        if (m->corrected[i] > worst)
            worst = m->corrected[i];
    assert_true(worst >= 199 * MS);
    free(m);
}

static void test_rate_below_connections(void **state)
{
    /* 4 requests/s over 10 connections for 5 seconds. */
    struct sim *m = sim_new(10, 4, 2 * MS);

    for (uint64_t now = 0; now <= 5 * SEC; now += 10 * US)
        sim_step(m, now);
    assert_int_equal(m->s.taken, 21); /* due at 0, 250 ms, ..., 5 s */
    assert_int_equal(m->max_late, 0); /* each sent at its due time */
    assert_int_equal(m->max_busy, 1); /* never a burst */
    for (unsigned i = 0; i < m->n; i++)
        assert_true(m->uses[i] == 2 || m->uses[i] == 3);
    for (size_t i = 0; i < m->ndone; i++)
        assert_int_equal(m->corrected[i], 2 * MS);
    free(m);
}

static void test_overload_grows_backlog(void **state)
{
    /* 1000/s offered, 1 connection serving 500/s: the backlog grows. */
    struct sim *m = sim_new(1, 1000, 2 * MS);

    for (uint64_t now = 0; now <= SEC; now += 10 * US)
        sim_step(m, now);
    assert_true(sched_backlog(&m->s, SEC) >= 490);
    /* Corrected latency grows with the backlog; uncorrected does not. */
    assert_true(m->corrected[m->ndone - 1] > 400 * MS);
    assert_int_equal(m->uncorrected[m->ndone - 1], 2 * MS);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects),
        cmocka_unit_test(test_due_times),
        cmocka_unit_test(test_due_counts),
        cmocka_unit_test(test_take_and_backlog),
        cmocka_unit_test(test_rr_pick),
        cmocka_unit_test(test_catch_up_after_stall),
        cmocka_unit_test(test_rate_below_connections),
        cmocka_unit_test(test_overload_grows_backlog),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
