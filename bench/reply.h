/*
 * reply: classifies one reply line of the RateLimMQ protocol.
 *
 * A pure function over (line, len) with the terminator already removed:
 * it allocates nothing and copies nothing, so the payload of a MSG reply
 * points into the caller's read buffer and is valid only as long as that
 * buffer is. Anything that does not match the protocol's reply grammar is
 * REPLY_BAD; the bench counts those apart from ERR replies.
 */
#ifndef RLMQ_BENCH_REPLY_H
#define RLMQ_BENCH_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum reply_kind {
    REPLY_BAD,          /* does not parse */
    REPLY_PONG,         /* PONG (or +PONG from a Redis server) */
    REPLY_OK,           /* OK, or OK <id> with has_id set */
    REPLY_MSG,          /* MSG <id> <attempt> <payload> */
    REPLY_EMPTY,        /* EMPTY */
    REPLY_RATE_LIMITED, /* ERR rate limited <retry_after_ms> */
    REPLY_ERR,          /* any other ERR <reason> */
    REPLY_STATS,        /* STATS key=value ... */
    REPLY_BYE,          /* BYE */
};

struct reply {
    enum reply_kind kind;
    bool has_id;         /* OK <id> */
    uint64_t id;         /* OK <id>, MSG */
    uint64_t attempt;    /* MSG */
    const char *payload; /* MSG: into the line, not NUL-terminated */
    size_t payload_len;
};

/* Classifies line[0..len). Returns 0, or -EINVAL with kind REPLY_BAD. */
int reply_parse(const char *line, size_t len, struct reply *r);

/*
 * Reads the value of `key` from a STATS reply line. Returns true and
 * stores it in *val when key=<decimal> is one of the words.
 */
bool reply_stats_get(const char *line, size_t len, const char *key,
                     uint64_t *val);

/* Parses an unsigned decimal of 1 to 20 digits that fits in 64 bits. */
bool reply_parse_u64(const char *s, size_t len, uint64_t *val);

#endif
