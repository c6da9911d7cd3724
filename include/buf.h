/*
 * A growable byte buffer for connection input and output.
 *
 * Idle connections must cost little memory, so a buffer owns no storage
 * until something is appended and gives it back once it has been consumed
 * to empty. Consumed bytes are dropped from the front with one memmove per
 * call; callers consume in large batches, never byte by byte.
 */
#ifndef RLMQ_BUF_H
#define RLMQ_BUF_H

#include <stddef.h>

struct buf {
    char *data;
    size_t len; /* bytes held, from data[0] */
    size_t cap; /* bytes allocated */
};

/* An empty buffer that owns nothing. */
void buf_init(struct buf *b);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);

/* Makes room for at least `extra` more bytes. 0 or -ENOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes. 0 or -ENOMEM (then the buffer is unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);

/* Drops the first n bytes (n <= len); frees the storage when it empties. */
void buf_consume(struct buf *b, size_t n);

/*
 * Storage that emptied buffers gave back, for the next buffer to take.
 *
 * A connection's reply buffer fills and empties on every request. Freeing
 * it each time cost a malloc and a free per reply, and the freed blocks,
 * carved up for queued messages, left holes too small for any message:
 * 1.8 bytes per message with pipelining producers (bench/memory.sh).
 * Storage is kept only up to BUF_POOL_CAP bytes and BUF_POOL_SLOTS blocks,
 * so the pool holds at most 512 KiB however large replies grow.
 */
#define BUF_POOL_SLOTS 64
#define BUF_POOL_CAP   8192

struct buf_pool {
    size_t n;
    struct buf slot[BUF_POOL_SLOTS];
};

void buf_pool_init(struct buf_pool *p);

/* Frees everything the pool holds. */
void buf_pool_release(struct buf_pool *p);

/* Gives an empty buffer that owns no storage the most recently kept
 * block, if there is one; otherwise leaves it as it is. */
void buf_pool_take(struct buf_pool *p, struct buf *b);

/* Empties b and keeps its storage if the pool has a slot and the block is
 * no larger than BUF_POOL_CAP; frees it otherwise. */
void buf_pool_give(struct buf_pool *p, struct buf *b);

#endif
