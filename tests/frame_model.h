/*
 * The framing rules of protocol.md written the obvious way, as the model
 * that test_framer.c and fuzz_framer.c hold the framer to: cut at each LF,
 * drop one CR before it, and decide each line on its own. Being plain
 * enough to check by eye is the point; it is not fast.
 */
#ifndef RLMQ_FRAME_MODEL_H
#define RLMQ_FRAME_MODEL_H

#include <stdbool.h>
#include <stddef.h>

#include "framer.h"

/* One frame of the stream: s[off, off + len), FRAME_LINE or
 * FRAME_TOO_LONG (then len is max_line, the bytes the framer reports). */
typedef void frame_model_fn(void *arg, enum frame_kind kind, size_t off,
                            size_t len);

/* True when p[0, n) holds only spaces and tabs. */
static inline bool frame_model_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return false;
    return true;
}

/* Calls fn for each frame of the LF-terminated lines of s[0, n) and
 * returns where the bytes after the last LF begin. */
static inline size_t frame_model_lines(const char *s, size_t n, size_t max_line,
                                       frame_model_fn *fn, void *arg)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        size_t len = i - start;
        if (len > 0 && s[i - 1] == '\r')
            len--;
        if (len > max_line)
            fn(arg, FRAME_TOO_LONG, start, max_line);
        else if (!frame_model_blank(s + start, len))
            fn(arg, FRAME_LINE, start, len);
        start = i + 1;
    }
    return start;
}

#endif
