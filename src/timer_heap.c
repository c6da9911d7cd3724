/*
 * Timer heap: see timer_heap.h. Index 0 is the root; the children of i are
 * 2i+1 and 2i+2. Every move writes the node's new index back into it.
 */
#include "timer_heap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

void theap_init(struct theap *h)
{
    h->v = NULL;
    h->len = 0;
    h->cap = 0;
    h->next_seq = 0;
}

void theap_release(struct theap *h)
{
    for (size_t i = 0; i < h->len; i++)
        h->v[i]->index = THEAP_NONE;
    free(h->v);
    theap_init(h);
}

void theap_node_init(struct theap_node *n)
{
    n->deadline = 0;
    n->seq = 0;
    n->index = THEAP_NONE;
}

static bool before(const struct theap_node *a, const struct theap_node *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

static void place(struct theap *h, size_t i, struct theap_node *n)
{
    h->v[i] = n;
    n->index = i;
}

static void sift_up(struct theap *h, size_t i)
{
    struct theap_node *n = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(n, h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, n);
}

static void sift_down(struct theap *h, size_t i)
{
    struct theap_node *n = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && before(h->v[c + 1], h->v[c]))
            c++;
        if (!before(h->v[c], n))
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, n);
}

int theap_push(struct theap *h, struct theap_node *n, uint64_t deadline)
{
    assert(n->index == THEAP_NONE);
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct theap_node **v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    n->deadline = deadline;
    n->seq = h->next_seq++;
    h->v[h->len] = n;
    n->index = h->len;
    h->len++;
    sift_up(h, h->len - 1);
    return 0;
}

void theap_remove(struct theap *h, struct theap_node *n)
{
    size_t i = n->index;
    if (i == THEAP_NONE)
        return;
    assert(i < h->len && h->v[i] == n);
    n->index = THEAP_NONE;
    h->len--;
    if (i == h->len)
        return;
    place(h, i, h->v[h->len]);
    if (i > 0 && before(h->v[i], h->v[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

struct theap_node *theap_peek(const struct theap *h)
{
    return h->len ? h->v[0] : NULL;
}

struct theap_node *theap_pop(struct theap *h)
{
    struct theap_node *n = theap_peek(h);
    if (n)
        theap_remove(h, n);
    return n;
}
