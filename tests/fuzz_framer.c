/*
 * libFuzzer target for the framer: whatever the bytes and however they
 * are cut into reads, the framer must report the lines the protocol's
 * framing rules define, in order, and never make its caller hold more than
 * one partial line.
 *
 * Input: byte 0 picks max_line (1 to 200; the daemon's minimum is 64, but
 * the framer takes any maximum and small ones reach the over-long paths
 * with short inputs), byte 1 seeds the cut points, the rest is the stream.
 * The stream is framed by a plain model of the rules, then fed to the
 * framer whole, one byte at a time and in chunks of varying size; every
 * pass must report exactly the model's frames and leave the same tail.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame_model.h"
#include "framer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_LINE  200
#define FUZZ_MAX_INPUT 65536

/* A frame as the model sees it: a piece of the stream. */
struct model_frame {
    enum frame_kind kind; /* FRAME_LINE or FRAME_TOO_LONG */
    size_t off;
    size_t len;
};

struct model {
    struct model_frame *frames;
    size_t nframes;
    size_t tail_off; /* the unfinished line the caller must keep */
    size_t tail_len;
    bool discarding; /* the stream ends inside an over-long line */
};

/* libFuzzer reports a crash with its input; no message is needed. */
#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c))                                                              \
            __builtin_trap();                                                  \
    } while (0)

static void model_push(void *arg, enum frame_kind kind, size_t off, size_t len)
{
    struct model *m = arg;
    m->frames[m->nframes++] = (struct model_frame){kind, off, len};
}

/* The frames of frame_model.h, then the rule for an unfinished line: it is
 * over-long once it holds more than max_line bytes, not counting a last
 * CR that may yet turn out to be part of its terminator. */
static void model_frame_stream(struct model *m, const char *s, size_t n,
                               size_t max_line)
{
    m->nframes = 0;
    m->discarding = false;
    size_t start = frame_model_lines(s, n, max_line, model_push, m);
    size_t rest = n - start;
    size_t counted = rest > 0 && s[n - 1] == '\r' ? rest - 1 : rest;
    if (counted > max_line) {
        m->frames[m->nframes++] =
            (struct model_frame){FRAME_TOO_LONG, start, max_line};
        m->discarding = true;
        rest = 0;
    }
    m->tail_off = start;
    m->tail_len = rest;
}

/* The caller's side of one pass: the bytes it keeps between reads, as
 * conn.c keeps them, and how far through the model's frames it is. The
 * kept bytes always end where the heap block `mem` ends, so a read past
 * them is an AddressSanitizer report, and dropping consumed bytes from
 * the front moves nothing. */
#define PASS_CAP (FUZZ_MAX_LINE + 2 + FUZZ_MAX_INPUT)

struct pass {
    const struct model *m;
    const char *stream;
    struct framer f;
    char *mem; /* PASS_CAP bytes */
    size_t held_len;
    size_t next; /* the model frame the framer must report next */
};

static char *pass_held(const struct pass *p)
{
    return p->mem + PASS_CAP - p->held_len;
}

/* Shows the held bytes to the framer until it needs more, as conn.c does
 * after each read. */
static void pass_drain(struct pass *p)
{
    size_t max_line = p->f.max_line;

    for (;;) {
        const char *buf = pass_held(p);
        size_t len = p->held_len;
        struct frame fr = framer_next(&p->f, buf, len);
        CHECK(fr.consumed <= len);
        p->held_len -= fr.consumed;
        if (fr.kind == FRAME_NEED_MORE) {
            /* What is kept is part of one line, never over its bound. */
            CHECK(p->held_len <= max_line + 1);
            CHECK(!memchr(pass_held(p), '\n', p->held_len));
            return;
        }
        CHECK(fr.kind == FRAME_LINE || fr.kind == FRAME_TOO_LONG);
        CHECK(fr.line >= buf && fr.len <= max_line);
        CHECK(fr.line + fr.len <= buf + len);
        CHECK(!memchr(fr.line, '\n', fr.len));
        if (fr.kind == FRAME_LINE)
            CHECK((size_t)(fr.line - buf) + fr.len < fr.consumed);
        else
            CHECK(fr.len == max_line);

        CHECK(p->next < p->m->nframes);
        const struct model_frame *want = &p->m->frames[p->next++];
        CHECK(fr.kind == want->kind && fr.len == want->len);
        CHECK(memcmp(fr.line, p->stream + want->off, fr.len) == 0);
    }
}

static void pass_feed(struct pass *p, const char *chunk, size_t n)
{
    CHECK(p->held_len + n <= PASS_CAP);
    char *held = pass_held(p);
    memmove(held - n, held, p->held_len);
    memcpy(p->mem + PASS_CAP - n, chunk, n);
    p->held_len += n;
    pass_drain(p);
}

/* Everything has been fed: the frames, the kept tail and the discard state
 * must be the model's, and showing the same bytes again changes nothing. */
static void pass_finish(struct pass *p)
{
    const struct model *m = p->m;

    CHECK(p->next == m->nframes);
    CHECK(p->held_len == m->tail_len);
    CHECK(memcmp(pass_held(p), p->stream + m->tail_off, m->tail_len) == 0);
    CHECK(p->f.discarding == m->discarding);
    pass_drain(p);
    CHECK(p->next == m->nframes && p->held_len == m->tail_len);
}

static void pass_begin(struct pass *p, const struct model *m,
                       const char *stream, size_t max_line)
{
    if (!p->mem)
        p->mem = malloc(PASS_CAP);
    CHECK(p->mem);
    p->m = m;
    p->stream = stream;
    framer_init(&p->f, max_line);
    p->held_len = 0;
    p->next = 0;
}

/* Chunk sizes: mostly short, sometimes long, from a generator seeded by
 * the input so the fuzzer can steer them. */
static size_t next_chunk(uint32_t *x, size_t left)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    size_t n = *x & 0x100 ? (*x >> 9) % 300 : (*x >> 9) % 8;
    n += 1;
    return n < left ? n : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pass p;

    if (size < 2 || size - 2 > FUZZ_MAX_INPUT)
        return 0;
    size_t max_line = 1 + data[0] % FUZZ_MAX_LINE;
    uint32_t seed = 0x9e3779b9u ^ ((uint32_t)data[1] << 8) ^ (uint32_t)size;
    const char *s = (const char *)data + 2;
    size_t n = size - 2;

    struct model m;
    m.frames = malloc((n + 1) * sizeof(*m.frames));
    CHECK(m.frames);
    model_frame_stream(&m, s, n, max_line);

    pass_begin(&p, &m, s, max_line);
    pass_feed(&p, s, n);
    pass_finish(&p);

    pass_begin(&p, &m, s, max_line);
    for (size_t i = 0; i < n; i++)
        pass_feed(&p, s + i, 1);
    pass_finish(&p);

    pass_begin(&p, &m, s, max_line);
    for (size_t i = 0; i < n;) {
        size_t k = next_chunk(&seed, n - i);
        pass_feed(&p, s + i, k);
        i += k;
    }
    pass_finish(&p);

    free(m.frames);
    return 0;
}
