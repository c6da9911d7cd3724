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

#endif
