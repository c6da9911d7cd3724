/*
 * Line framing: see framer.h.
 *
 * `scanned` makes a line that arrives one byte at a time cost O(n) in total
 * rather than O(n^2): bytes already searched for LF are not searched again.
 */
#include "framer.h"

#include <string.h>

void framer_init(struct framer *f, size_t max_line)
{
    f->max_line = max_line;
    f->scanned = 0;
    f->discarding = false;
}

static bool is_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return false;
    return true;
}

struct frame framer_next(struct framer *f, const char *buf, size_t len)
{
    struct frame fr = {FRAME_NEED_MORE, 0, NULL, 0};
    size_t pos = 0; /* start of the unconsumed part */

    while (pos < len) {
        const char *start = buf + pos;
        size_t avail = len - pos;
        size_t from = f->scanned < avail ? f->scanned : avail;
        const char *lf = memchr(start + from, '\n', avail - from);

        if (f->discarding) {
            f->scanned = 0;
            if (!lf) {
                pos = len;
                break;
            }
            f->discarding = false;
            pos += (size_t)(lf - start) + 1;
            continue;
        }
        if (!lf) {
            /* Over the limit unless the one extra byte is a CR that may
             * belong to the terminator. */
            if (avail > f->max_line + 1 ||
                (avail == f->max_line + 1 && start[avail - 1] != '\r')) {
                f->discarding = true;
                f->scanned = 0;
                fr.kind = FRAME_TOO_LONG;
                fr.line = start;
                fr.len = f->max_line;
                fr.consumed = len;
                return fr;
            }
            f->scanned = avail;
            break;
        }

        size_t n = (size_t)(lf - start);
        size_t used = n + 1;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        f->scanned = 0;
        if (n > f->max_line) {
            fr.kind = FRAME_TOO_LONG;
            fr.line = start;
            fr.len = f->max_line;
            fr.consumed = pos + used;
            return fr;
        }
        if (is_blank(start, n)) {
            pos += used;
            continue;
        }
        fr.kind = FRAME_LINE;
        fr.line = start;
        fr.len = n;
        fr.consumed = pos + used;
        return fr;
    }
    fr.consumed = pos;
    return fr;
}
