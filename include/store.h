/*
 * The message store: named queues of messages, leases, retries and
 * dead-letter queues, all in memory and all bounded.
 *
 * The store does no I/O and reads no clock: every call that depends on
 * time takes `now`, integer nanoseconds from a monotonic clock. It knows
 * nothing of sockets either. Whoever leases messages or waits for one is
 * a `struct store_owner` the caller embeds in its own object (the daemon
 * embeds one in each connection); a message handed to a waiting owner is
 * reported through the deliver callback given to store_new().
 *
 * The life cycle, the invariants and the per-message cost are described
 * at the head of store.c.
 */
#ifndef RLMQ_STORE_H
#define RLMQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

#define STORE_NAME_MAX   64 /* bytes of a queue name, without ".dlq" */
#define STORE_DLQ_SUFFIX ".dlq"

struct store;
struct store_queue;

/* A lease holder or waiting consumer. Embed it, store_owner_init() it,
 * and hand it to store_owner_release() before freeing what embeds it. */
struct store_owner {
    struct list leases;             /* messages leased to this owner */
    struct list waiter;             /* on the queue's list of waiters */
    struct store_queue *wait_queue; /* the queue waited on, or NULL */
};

struct store_limits {
    uint64_t max_messages; /* messages held, every state and queue */
    uint64_t max_bytes;    /* payload bytes held */
    uint64_t max_queues;   /* queues that may exist at once */
    uint64_t lease_ns;     /* how long a lease lasts */
    uint32_t max_attempts; /* deliveries before a message is dead */
};

/* A message as handed out. payload is valid until the next call into the
 * store that may free or move the message (ACK, NACK, release, expire). */
struct store_msg {
    uint64_t id;
    uint32_t attempt; /* deliveries so far, this one included */
    const char *payload;
    size_t len;
};

struct store_stats {
    uint64_t queues, messages, bytes;
    uint64_t ready, delayed, leased, dead;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
    uint64_t waiting;
};

struct store_queue_stats {
    uint64_t ready, delayed, leased;
    uint64_t put, delivered, acked, nacked, expired, dead_lettered;
    uint64_t waiting;
    uint64_t oldest_ready_age_ms; /* 0 when nothing is ready */
};

/* Called when a message is leased to an owner that was waiting for one;
 * the owner is no longer waiting when this runs. Must not call back into
 * the store. */
typedef void (*store_deliver_fn)(void *ctx, struct store_owner *o,
                                 const struct store_msg *m);

/* 0, or -ENOMEM. */
int store_new(struct store **out, const struct store_limits *lim,
              store_deliver_fn deliver, void *ctx);

/* Frees every queue and message. Owners must have been released. */
void store_free(struct store *s);

void store_owner_init(struct store_owner *o);

/* True when name[0..len) is a valid queue name: 1 to 64 bytes of
 * A-Z a-z 0-9 _ - . : or such a name followed by ".dlq". */
bool store_name_valid(const char *name, size_t len);

/*
 * Appends a ready message to queue q, creating the queue if needed, and
 * hands it at once to the first waiting owner of q, if any. Returns 0 and
 * the new id, -ENOSPC when max-messages, max-bytes or max-queues would be
 * passed (nothing changes), or -ENOMEM.
 */
int store_put(struct store *s, const char *q, size_t qlen, const char *payload,
              size_t len, uint64_t now, uint64_t *id);

/*
 * Leases the oldest ready message of q to o until now + lease. Returns 0
 * and fills *m, or -EAGAIN when none is ready (-ENOMEM or -ENOSPC when the
 * queue did not exist and could not be created: also no message).
 */
int store_get(struct store *s, struct store_owner *o, const char *q,
              size_t qlen, uint64_t now, struct store_msg *m);

/* Puts o at the back of q's waiters; the deliver callback runs when a
 * message becomes ready for it. o must not be waiting already. 0, -ENOMEM
 * or -ENOSPC (too many queues). */
int store_wait(struct store *s, struct store_owner *o, const char *q,
               size_t qlen);

/* Stops o waiting. Harmless when it was not. */
void store_cancel_wait(struct store *s, struct store_owner *o);

/* Deletes message id leased to o. 0, or -ENOENT when o does not hold it. */
int store_ack(struct store *s, struct store_owner *o, uint64_t id);

/* Ends o's lease of id: the message is retried (ready at once when
 * delay_ns is 0, delayed until now + delay_ns otherwise) or dead-lettered
 * when it has had max_attempts deliveries. 0 or -ENOENT. */
int store_nack(struct store *s, struct store_owner *o, uint64_t id,
               uint64_t delay_ns, uint64_t now);

/* Restarts o's lease of id: it now ends at now + lease. 0 or -ENOENT. */
int store_touch(struct store *s, struct store_owner *o, uint64_t id,
                uint64_t now);

/* Stops o waiting and ends each of its leases as a NACK with no delay
 * would (counted as nacked). o holds nothing afterwards. */
void store_owner_release(struct store *s, struct store_owner *o, uint64_t now);

/*
 * Ends leases and delays that are due at now, at most `max` of them, in
 * deadline order. Returns how many were handled; when that is `max`,
 * store_next_deadline() may already be due and the caller should call
 * again (after serving other work).
 */
size_t store_expire(struct store *s, uint64_t now, size_t max);

/* The earliest lease or delay deadline, or UINT64_MAX when there is none. */
uint64_t store_next_deadline(const struct store *s);

void store_stats(const struct store *s, struct store_stats *st);

/* Statistics of queue q; all zero when q does not exist (it is not
 * created). */
void store_queue_stats(const struct store *s, const char *q, size_t qlen,
                       uint64_t now, struct store_queue_stats *qs);

/* Messages held, in every state. */
uint64_t store_held(const struct store *s);

/* Walks every structure and asserts its invariants. For tests. */
void store_check(const struct store *s);

#endif
