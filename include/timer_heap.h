/*
 * A binary min-heap of timers ordered by (deadline, sequence number).
 *
 * Nodes are embedded in their owners and remember their own index, so any
 * timer is removed in O(log n) without a search. The sequence number makes
 * timers with equal deadlines come out in the order they were pushed. The
 * heap stores pointers and never owns the nodes.
 */
#ifndef RLMQ_TIMER_HEAP_H
#define RLMQ_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THEAP_NONE SIZE_MAX

struct theap_node {
    uint64_t deadline; /* nanoseconds, monotonic */
    uint64_t seq;
    size_t index; /* position in the heap, THEAP_NONE when not in it */
};

struct theap {
    struct theap_node **v;
    size_t len;
    size_t cap;
    uint64_t next_seq;
};

void theap_init(struct theap *h);
void theap_release(struct theap *h);

void theap_node_init(struct theap_node *n);

static inline bool theap_node_active(const struct theap_node *n)
{
    return n->index != THEAP_NONE;
}

/* Inserts n (which must not be in a heap) with the given deadline.
 * 0 or -ENOMEM, in which case n stays out of the heap. */
int theap_push(struct theap *h, struct theap_node *n, uint64_t deadline);

/* Removes n if it is in the heap; a no-op otherwise. */
void theap_remove(struct theap *h, struct theap_node *n);

/* The earliest node, or NULL when the heap is empty. */
struct theap_node *theap_peek(const struct theap *h);

/* Removes and returns the earliest node, or NULL. */
struct theap_node *theap_pop(struct theap *h);

#endif
