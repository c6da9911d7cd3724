/*
 * The framer cuts a byte stream into request lines.
 *
 * It is a pure function of the bytes it is shown and its small state: it
 * allocates nothing, does no I/O and never copies. The caller keeps the
 * unconsumed bytes and shows them again, with more appended, on the next
 * call. A line ends at LF; one CR right before the LF is dropped. Lines that
 * are empty or only spaces and tabs are skipped. A line longer than max_line
 * bytes (terminator excluded) is reported once as FRAME_TOO_LONG as soon as
 * that is certain, and the rest of it is discarded up to its LF, so the
 * caller never has to hold more than max_line + 1 bytes of one line (the
 * extra byte is a CR that may turn out to be part of the terminator).
 */
#ifndef RLMQ_FRAMER_H
#define RLMQ_FRAMER_H

#include <stdbool.h>
#include <stddef.h>

struct framer {
    size_t max_line;
    size_t scanned;  /* leading bytes already known to hold no LF */
    bool discarding; /* inside an over-long line, dropping to its LF */
};

enum frame_kind {
    FRAME_NEED_MORE, /* no complete line: keep the rest, read more */
    FRAME_LINE,      /* line/len is a request line */
    FRAME_TOO_LONG,  /* a line passed max_line; line/len is its start */
};

struct frame {
    enum frame_kind kind;
    size_t consumed;  /* bytes of the buffer this call used up */
    const char *line; /* points into the buffer; valid until it changes */
    size_t len;
};

void framer_init(struct framer *f, size_t max_line);

/*
 * Looks for the next frame in buf[0..len). The caller drops `consumed`
 * bytes from the front before the next call; with FRAME_NEED_MORE they are
 * skipped or discarded bytes, and the rest must be kept.
 */
struct frame framer_next(struct framer *f, const char *buf, size_t len);

#endif
