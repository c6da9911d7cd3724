/*
 * Growable byte buffer, and the pool of storage that emptied buffers give
 * back: see buf.h. Growth doubles so that appending n bytes one reply at a
 * time costs O(n) copies in total. The pool is a stack, so the block taken
 * is the one used last, still warm in the cache.
 */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define BUF_MIN_CAP 256

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_release(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_release(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_pool_init(struct buf_pool *p)
{
    p->n = 0;
}

void buf_pool_release(struct buf_pool *p)
{
    while (p->n > 0)
        buf_release(&p->slot[--p->n]);
}

void buf_pool_take(struct buf_pool *p, struct buf *b)
{
    if (b->data || p->n == 0)
        return;
    *b = p->slot[--p->n];
}

void buf_pool_give(struct buf_pool *p, struct buf *b)
{
    if (!b->data)
        return;
    if (p->n == BUF_POOL_SLOTS || b->cap > BUF_POOL_CAP) {
        buf_release(b);
        return;
    }
    b->len = 0;
    p->slot[p->n++] = *b;
    buf_init(b);
}
