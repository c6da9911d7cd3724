/*
 * The daemon's one logging facility: lines on stderr with an RFC 3339 UTC
 * timestamp, the level and the message.
 *
 * Lower layers (framer, buckets, store, reactor) never log; they return
 * errors and the server decides what is worth a line. The LOG macro tests
 * the level before it evaluates its arguments, so a debug line costs one
 * comparison when debug is off.
 */
#ifndef RLMQ_LOG_H
#define RLMQ_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

/* Parses "error", "warn", "info" or "debug". 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps an event that may happen once per request from flooding the log:
 * one line per second at most, carrying how many happened. */
struct log_limit {
    uint64_t last_ns; /* when the last line was written; 0: never */
    uint64_t count;   /* events since then */
};

/*
 * Counts one event at now (monotonic ns). Returns how many events the
 * caller should report in a line now: all those since the previous line,
 * this one included, when a second has passed since it (or there was
 * none); 0 otherwise.
 */
uint64_t log_limit_due(struct log_limit *l, uint64_t now);

#define LOG(level, ...)                                                        \
    do {                                                                       \
        if ((level) <= log_threshold)                                          \
            log_write((level), __VA_ARGS__);                                   \
    } while (0)

#endif
