/*
 * Unit tests for the line framer.
 *
 * The framer stands between a peer's bytes and the dispatcher, so the
 * properties checked are the ones framer.h and the "Framing" section of
 * protocol.md promise: LF or CRLF ends a line and only one CR is dropped;
 * lines that are empty or only spaces and tabs never reach the dispatcher,
 * while any other byte, NUL included, is kept; a line of max_line bytes
 * passes with either terminator and one more byte makes it FRAME_TOO_LONG,
 * reported once and as soon as that is certain, with the rest discarded up
 * to its LF and the next line framed as usual; the caller never holds more
 * than max_line + 1 bytes of a line; and where the stream is cut into reads
 * changes nothing. The last is checked by driving the framer the way
 * conn.c does, at every cut point, every pair of cut points, byte by byte
 * and at random cuts, and comparing with a small reference model.
 *
 * Randomness comes from splitmix64 with a fixed seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame_model.h"
#include "framer.h"

#define SEED   UINT64_C(0x6672616d65727321)
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- deterministic randomness ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* [0, n] */
static size_t rng_upto(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % ((uint64_t)n + 1));
}

/* ---- traces: what the dispatcher would be handed ---- */

/*
 * Each frame is stored as a kind byte ('L' line, 'T' too long), its length
 * and its bytes, so two traces are equal exactly when memcmp says so.
 */
struct trace {
    char *p;
    size_t len;
    size_t cap;
    size_t frames;
};

static void trace_put(struct trace *t, const void *p, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;

        while (cap < t->len + n)
            cap *= 2;
        t->p = realloc(t->p, cap);
        assert_non_null(t->p);
        t->cap = cap;
    }
    if (n)
        memcpy(t->p + t->len, p, n);
    t->len += n;
}

static void trace_frame(struct trace *t, char kind, const char *p, size_t n)
{
    trace_put(t, &kind, 1);
    trace_put(t, &n, sizeof(n));
    trace_put(t, p, n);
    t->frames++;
}

static void trace_free(struct trace *t)
{
    free(t->p);
    memset(t, 0, sizeof(*t));
}

static void trace_print(const char *name, const struct trace *t)
{
    size_t at = 0;

    print_error("%s (%zu frames):\n", name, t->frames);
    while (at < t->len) {
        char kind = t->p[at];
        size_t n;

        memcpy(&n, t->p + at + 1, sizeof(n));
        at += 1 + sizeof(n);
        print_error("  %c %zu \"", kind, n);
        for (size_t i = 0; i < n && i < 40; i++) {
            unsigned char c = (unsigned char)t->p[at + i];

            if (c >= 0x20 && c < 0x7f && c != '\\')
                print_error("%c", c);
            else
                print_error("\\x%02x", c);
        }
        print_error("%s\"\n", n > 40 ? "..." : "");
        at += n;
    }
}

static bool same_trace(const struct trace *a, const struct trace *b)
{
    return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

static void assert_same_trace(const struct trace *got, const struct trace *want)
{
    if (!same_trace(got, want)) {
        trace_print("got", got);
        trace_print("want", want);
        fail();
    }
}

/* ---- the caller: a connection's input buffer, as conn.c keeps it ---- */

struct conn {
    struct framer f;
    char *buf;
    size_t len;
    size_t cap;
    size_t too_long; /* FRAME_TOO_LONG reports so far */
    struct trace t;
};

static void conn_init(struct conn *c, size_t max_line, size_t cap)
{
    memset(c, 0, sizeof(*c));
    framer_init(&c->f, max_line);
    c->cap = cap;
    c->buf = malloc(cap ? cap : 1);
    assert_non_null(c->buf);
}

static void conn_free(struct conn *c)
{
    free(c->buf);
    trace_free(&c->t);
}

/*
 * Appends one read and frames until the framer needs more, dropping
 * `consumed` bytes after every frame. Afterwards the held bytes are the
 * start of one line at most: no LF, and no more than max_line + 1 bytes.
 */
static void conn_feed(struct conn *c, const void *p, size_t n)
{
    size_t max_line = c->f.max_line;

    assert_true(n <= c->cap - c->len);
    if (n)
        memcpy(c->buf + c->len, p, n);
    c->len += n;
    for (;;) {
        struct frame fr = framer_next(&c->f, c->buf, c->len);

        assert_true(fr.consumed <= c->len);
        if (fr.kind == FRAME_LINE || fr.kind == FRAME_TOO_LONG) {
            assert_true(fr.consumed > 0);
            assert_true(fr.line >= c->buf && fr.line <= c->buf + c->len);
            assert_true(fr.len <= (size_t)(c->buf + c->len - fr.line));
        }
        if (fr.kind == FRAME_LINE) {
            assert_true(fr.len <= max_line);
            trace_frame(&c->t, 'L', fr.line, fr.len);
        } else if (fr.kind == FRAME_TOO_LONG) {
            /* Its first max_line bytes, enough to find a request tag. */
            assert_int_equal(fr.len, max_line);
            trace_frame(&c->t, 'T', fr.line, fr.len);
            c->too_long++;
        } else {
            assert_int_equal(fr.kind, FRAME_NEED_MORE);
        }
        memmove(c->buf, c->buf + fr.consumed, c->len - fr.consumed);
        c->len -= fr.consumed;
        if (fr.kind == FRAME_NEED_MORE)
            break;
    }
    assert_true(c->len <= max_line + 1);
    if (c->len)
        assert_null(memchr(c->buf, '\n', c->len));
}

static void conn_feed_str(struct conn *c, const char *s)
{
    conn_feed(c, s, strlen(s));
}

/* ---- the reference model ---- */

struct reference_run {
    const char *s;
    struct trace *t;
};

static void reference_frame(void *arg, enum frame_kind kind, size_t off,
                            size_t len)
{
    struct reference_run *r = arg;
    trace_frame(r->t, kind == FRAME_LINE ? 'L' : 'T', r->s + off, len);
}

/* The frames of a whole stream; bytes after its last LF give none. */
static void reference(const char *s, size_t n, size_t max_line, struct trace *t)
{
    struct reference_run r = {s, t};
    frame_model_lines(s, n, max_line, reference_frame, &r);
}

/* The trace of the stream fed as the given reads, lens summing to n. */
static void run_split(const char *s, size_t n, size_t max_line,
                      const size_t *lens, size_t nlens, struct trace *out)
{
    struct conn c;
    size_t at = 0;

    conn_init(&c, max_line, max_line + 1 + n);
    for (size_t i = 0; i < nlens; i++) {
        conn_feed(&c, s + at, lens[i]);
        at += lens[i];
    }
    assert_int_equal(at, n);
    *out = c.t;
    memset(&c.t, 0, sizeof(c.t));
    conn_free(&c);
}

/*
 * A random stream ending in LF, rich in what the framer must get right:
 * lines of max_line - 1 to max_line + 2 bytes, far longer ones, blank
 * lines, CRs inside lines and before the LF, and NULs. Blank lines are
 * kept within max_line: whether a longer one is too long or merely blank
 * is not specified.
 */
static size_t gen_stream(uint64_t *s, char *out, size_t cap, size_t max_line)
{
    static const char bytes[] = "abcdef@ \t\r\r\0";
    size_t n = 0;

    while (n + 3 * max_line + 16 < cap) {
        size_t len, start = n;
        bool blank_line = rng_upto(s, 5) == 0;

        switch (rng_upto(s, 7)) {
        case 0:
            len = 0;
            break;
        case 1:
            len = max_line ? max_line - 1 : 0;
            break;
        case 2:
        case 3:
            len = max_line;
            break;
        case 4:
            len = max_line + 1;
            break;
        case 5:
            len = max_line + 2;
            break;
        default:
            len = rng_upto(s, 3 * max_line + 4);
            break;
        }
        for (size_t i = 0; i < len; i++) {
            if (blank_line)
                out[n++] = rng_upto(s, 1) ? ' ' : '\t';
            else
                out[n++] = bytes[rng_upto(s, sizeof(bytes) - 2)];
        }
        if (rng_upto(s, 1))
            out[n++] = '\r';
        out[n++] = '\n';

        /* A blank line longer than max_line: make it not blank. */
        size_t body = n - start - 1;

        if (body > 0 && out[n - 2] == '\r')
            body--;
        if (body > max_line && frame_model_blank(out + start, body))
            out[start] = 'x';
    }
    return n;
}

/* ---- tests: single frames through the raw API ---- */

static struct frame next_str(struct framer *f, const char *s)
{
    return framer_next(f, s, strlen(s));
}

static void assert_line(struct frame fr, const char *buf, size_t off,
                        const char *want, size_t want_len, size_t consumed)
{
    assert_int_equal(fr.kind, FRAME_LINE);
    assert_ptr_equal(fr.line, buf + off);
    assert_int_equal(fr.len, want_len);
    assert_memory_equal(fr.line, want, want_len);
    assert_int_equal(fr.consumed, consumed);
}

static void test_lf_and_crlf(void **state)
{
    static const char in[] = "PING\nPUT q x\r\nSTATS";
    struct framer f;
    struct frame fr;

    framer_init(&f, 64);
    fr = next_str(&f, in);
    assert_line(fr, in, 0, "PING", 4, 5);
    fr = next_str(&f, in + 5);
    assert_line(fr, in + 5, 0, "PUT q x", 7, 9);
    /* No terminator yet: nothing consumed, everything kept. */
    fr = next_str(&f, in + 14);
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 0);

    /* A terminator that arrives later completes the kept bytes. */
    fr = next_str(&f, "STATS\r");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 0);
    fr = next_str(&f, "STATS\r\n");
    assert_line(fr, "STATS\r\n", 0, "STATS", 5, 7);

    fr = framer_next(&f, "", 0);
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 0);
}

/* One CR before the LF is the terminator's; any other CR is data. */
static void test_only_one_cr_dropped(void **state)
{
    static const struct {
        const char *in;
        const char *line;
        size_t len;
    } cases[] = {
        {"a\r\r\n", "a\r", 2},   {"a\r\r\r\n", "a\r\r", 3},
        {"\r\r\n", "\r", 1},     {"a\rb\n", "a\rb", 3},
        {"\ra\r\n", "\ra", 2},   {"a\r \n", "a\r ", 3},
        {" \r \r\n", " \r ", 3}, {"\r\r\r\n", "\r\r", 2},
    };
    struct framer f;

    for (size_t i = 0; i < LEN(cases); i++) {
        size_t n = strlen(cases[i].in);
        struct frame fr;

        framer_init(&f, 64);
        fr = framer_next(&f, cases[i].in, n);
        assert_line(fr, cases[i].in, 0, cases[i].line, cases[i].len, n);
    }
}

/*
 * framer.h: "Lines that are empty or only spaces and tabs are skipped",
 * and with FRAME_NEED_MORE the consumed bytes are the skipped ones. Other
 * white space is data for the dispatcher to judge.
 */
static void test_blank_lines_skipped(void **state)
{
    static const char in[] = "\n\r\n \n\t\n \t \r\n\t\t\t\t\nPING \n";
    struct framer f;
    struct frame fr;

    framer_init(&f, 64);
    fr = next_str(&f, in);
    assert_line(fr, in, strlen(in) - 6, "PING ", 5, strlen(in));

    /* Only blank lines: need more, with all of them consumed. */
    fr = next_str(&f, "\n \n\t\r\n");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 6);

    /* Blank lines, then the start of a line: the start is kept. */
    fr = next_str(&f, "\n\r\n  ");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 3);
    fr = next_str(&f, "  \r");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 0);
    fr = next_str(&f, "  \r\nX\n");
    assert_line(fr, "  \r\nX\n", 4, "X", 1, 6);

    /* Not blank: other control bytes, and white space around a CR. */
    static const char *const kept[] = {"\v",   "\f",  " \r ",  "\r\t",
                                       "\x01", " . ", "\t\v\t"};

    for (size_t i = 0; i < LEN(kept); i++) {
        char line[16];
        size_t n = strlen(kept[i]);

        snprintf(line, sizeof(line), "%s\n", kept[i]);
        framer_init(&f, 64);
        fr = next_str(&f, line);
        assert_line(fr, line, 0, kept[i], n, n + 1);
    }

    /* Leading and trailing spaces of a real line are not trimmed. */
    fr = next_str(&f, "  PUT q  x \t\r\n");
    assert_line(fr, "  PUT q  x \t\r\n", 0, "  PUT q  x \t", 12, 14);
}

static void test_nul_bytes_kept(void **state)
{
    static const char in[] = "a\0b\n\0\n \0 \r\n\0\0\r\0\r\n";
    struct conn c;
    struct trace want = {0};

    trace_frame(&want, 'L', "a\0b", 3);
    trace_frame(&want, 'L', "\0", 1);
    trace_frame(&want, 'L', " \0 ", 3);
    trace_frame(&want, 'L', "\0\0\r\0", 4);
    conn_init(&c, 64, 128);
    conn_feed(&c, in, sizeof(in) - 1);
    assert_same_trace(&c.t, &want);
    conn_free(&c);
    trace_free(&want);
}

/* ---- tests: the max_line boundary ---- */

/* Builds `len` bytes of 'a' (the first byte given) plus a terminator. */
static size_t make_line(char *out, char first, size_t len, const char *term)
{
    memset(out, 'a', len);
    if (len)
        out[0] = first;
    memcpy(out + len, term, strlen(term));
    return len + strlen(term);
}

static void test_max_line_boundary(void **state)
{
    static const size_t maxes[] = {1, 2, 8, 64, 65536};
    static const char *const terms[] = {"\n", "\r\n"};
    struct framer f;
    struct frame fr;
    char *buf = malloc(65536 + 8);

    assert_non_null(buf);
    for (size_t m = 0; m < LEN(maxes); m++) {
        size_t max = maxes[m];

        for (size_t t = 0; t < LEN(terms); t++) {
            size_t n;

            /* Exactly max_line bytes: a line, CR or not. */
            n = make_line(buf, 'P', max, terms[t]);
            framer_init(&f, max);
            fr = framer_next(&f, buf, n);
            assert_line(fr, buf, 0, buf, max, n);

            /* One more: too long, reported with its start. */
            n = make_line(buf, 'P', max + 1, terms[t]);
            framer_init(&f, max);
            fr = framer_next(&f, buf, n);
            assert_int_equal(fr.kind, FRAME_TOO_LONG);
            assert_ptr_equal(fr.line, buf);
            assert_int_equal(fr.len, max);
            assert_int_equal(fr.consumed, n);
            /* Complete in the buffer: nothing left to discard. */
            fr = next_str(&f, "N\n");
            assert_line(fr, "N\n", 0, "N", 1, 2);
        }

        /*
         * max_line bytes ending in a CR: with CRLF after them the CR is
         * data and the line just fits; with a plain LF the CR is the
         * terminator's; one more CR makes the line too long.
         */
        size_t n = make_line(buf, 'P', max, "\r\n");

        buf[max - 1] = '\r';
        framer_init(&f, max);
        fr = framer_next(&f, buf, n);
        assert_line(fr, buf, 0, buf, max, n);
        assert_int_equal(fr.line[max - 1], '\r');
        if (max > 1) {
            n = make_line(buf, 'P', max, "\n");
            buf[max - 1] = '\r';
            framer_init(&f, max);
            fr = framer_next(&f, buf, n);
            assert_line(fr, buf, 0, buf, max - 1, n);
        }
        n = make_line(buf, 'P', max, "\r\r\n");
        buf[max - 1] = '\r';
        framer_init(&f, max);
        fr = framer_next(&f, buf, n);
        assert_int_equal(fr.kind, FRAME_TOO_LONG);
        assert_int_equal(fr.consumed, n);
    }
    free(buf);
}

/*
 * Byte by byte, the report comes on the byte that makes the line certainly
 * too long: byte max_line + 1 unless it is a CR, which may still be the
 * terminator's. After it, everything up to the LF is dropped at once.
 */
static void test_too_long_reported_when_certain(void **state)
{
    const size_t max = 8;
    struct trace want = {0};
    struct conn c;

    conn_init(&c, max, 64);
    for (size_t i = 0; i < max; i++) {
        conn_feed(&c, "a", 1);
        assert_int_equal(c.too_long, 0);
        assert_int_equal(c.len, i + 1);
    }
    conn_feed(&c, "b", 1);
    assert_int_equal(c.too_long, 1);
    assert_int_equal(c.len, 0);
    for (size_t i = 0; i < 100; i++) {
        conn_feed(&c, i % 3 ? "x" : "\r", 1);
        assert_int_equal(c.len, 0);
    }
    conn_feed(&c, "\r", 1);
    conn_feed(&c, "\n", 1);
    assert_int_equal(c.too_long, 1);
    conn_feed_str(&c, "PING\n");
    trace_frame(&want, 'T', "aaaaaaaa", max);
    trace_frame(&want, 'L', "PING", 4);
    assert_same_trace(&c.t, &want);
    conn_free(&c);

    /* max_line bytes and a CR: held, then a line when the LF comes. */
    conn_init(&c, max, 64);
    conn_feed_str(&c, "aaaaaaaa\r");
    assert_int_equal(c.len, max + 1);
    assert_int_equal(c.t.frames, 0);
    conn_feed_str(&c, "\n");
    assert_int_equal(c.too_long, 0);
    assert_int_equal(c.t.frames, 1);

    /* ... and too long on whatever else follows the CR. */
    static const char *const after[] = {"\r", "z", " ", "\0"};

    for (size_t i = 0; i < LEN(after); i++) {
        conn_feed_str(&c, "aaaaaaaa\r");
        assert_int_equal(c.too_long, i);
        conn_feed(&c, after[i], 1);
        assert_int_equal(c.too_long, i + 1);
        assert_int_equal(c.len, 0);
        conn_feed_str(&c, "\n");
    }
    assert_int_equal(c.t.frames, 1 + LEN(after));
    conn_free(&c);
    trace_free(&want);
}

/*
 * The raw API: an over-long start with no LF is consumed whole, and the
 * next call, shown only new bytes, drops them up to the LF and goes on.
 */
static void test_discard_to_lf_then_next_line(void **state)
{
    static const char longer[] = "@t1 PUT queue aaaaaaaaaaaaaaaaaaaaaaaaaa";
    static const char rest[] = "still the long line\r\nGET queue\n";
    struct framer f;
    struct frame fr;

    framer_init(&f, 16);
    fr = next_str(&f, longer);
    assert_int_equal(fr.kind, FRAME_TOO_LONG);
    assert_ptr_equal(fr.line, longer);
    assert_int_equal(fr.len, 16);
    assert_int_equal(fr.consumed, strlen(longer));

    fr = next_str(&f, "more, no LF");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, strlen("more, no LF"));

    fr = next_str(&f, rest);
    assert_line(fr, rest, 21, "GET queue", 9, strlen(rest));

    /* Not discarding any more: a new partial line is kept. */
    fr = next_str(&f, "PIN");
    assert_int_equal(fr.kind, FRAME_NEED_MORE);
    assert_int_equal(fr.consumed, 0);

    /* Blank lines before an over-long start are consumed with it. */
    framer_init(&f, 4);
    fr = next_str(&f, "\n  \nabcdefgh");
    assert_int_equal(fr.kind, FRAME_TOO_LONG);
    assert_int_equal(fr.len, 4);
    assert_memory_equal(fr.line, "abcd", 4);
    assert_int_equal(fr.consumed, 12);
    fr = next_str(&f, "\nOK\n");
    assert_line(fr, "\nOK\n", 1, "OK", 2, 4);
}

/* A line many times max_line, in reads of every size from 1 to 3 * max. */
static void test_too_long_across_many_feeds(void **state)
{
    const size_t max = 64;
    char line[64 * 40];
    uint64_t s = SEED ^ 1;
    struct trace want = {0};

    memset(line, 'q', sizeof(line));
    memcpy(line, "@tag9 PUT q ", 12);
    for (size_t i = 12; i < sizeof(line); i += 7)
        line[i] = (char)(i % 2 ? '\r' : ' ');
    trace_frame(&want, 'T', line, max);
    trace_frame(&want, 'L', "PING", 4);

    for (size_t chunk = 1; chunk <= 3 * max; chunk++) {
        struct conn c;
        size_t peak = 0;

        conn_init(&c, max, max + 1 + 3 * max);
        for (size_t at = 0; at < sizeof(line); at += chunk) {
            size_t n = sizeof(line) - at < chunk ? sizeof(line) - at : chunk;

            conn_feed(&c, line + at, n);
            peak = c.len > peak ? c.len : peak;
            /* Reported by the read that made it certain. */
            bool certain =
                at + n > max + 1 || (at + n == max + 1 && line[max] != '\r');

            assert_int_equal(c.too_long, certain ? 1 : 0);
        }
        assert_true(peak <= max + 1);

        /* The end of the line and the next one, cut anywhere. */
        static const char tail[] = "\r\nPING\n";
        size_t cut = rng_upto(&s, sizeof(tail) - 1);

        conn_feed(&c, tail, cut);
        conn_feed(&c, tail + cut, sizeof(tail) - 1 - cut);
        assert_int_equal(c.too_long, 1);
        assert_same_trace(&c.t, &want);
        conn_free(&c);
    }
    trace_free(&want);
}

/*
 * At the default limit and in reads of up to 16 KiB: lines either side of
 * 65536 bytes, and one of 200000, framed right and never held past 65537.
 */
static void test_default_max_line(void **state)
{
    const size_t max = 65536;
    static const size_t lens[] = {65535, 65536, 65537, 65538, 200000};
    static const char *const terms[] = {"\n", "\r\n"};
    char *stream = malloc(2 * 200002 + 64);
    uint64_t s = SEED ^ 2;

    assert_non_null(stream);
    for (size_t i = 0; i < LEN(lens); i++) {
        for (size_t t = 0; t < LEN(terms); t++) {
            struct trace want = {0};
            struct conn c;
            size_t n = make_line(stream, '@', lens[i], terms[t]);

            n += make_line(stream + n, 'Q', 5, "\n");
            reference(stream, n, max, &want);
            assert_int_equal(want.frames, 2);
            conn_init(&c, max, max + 1 + 16384);
            for (size_t at = 0; at < n;) {
                size_t k = 1 + rng_upto(&s, 16383);

                k = k < n - at ? k : n - at;
                conn_feed(&c, stream + at, k);
                at += k;
            }
            assert_same_trace(&c.t, &want);
            assert_int_equal(c.too_long, lens[i] > max ? 1 : 0);
            conn_free(&c);
            trace_free(&want);
        }
    }
    free(stream);
}

/* ---- tests: the same stream, cut anywhere ---- */

static const size_t split_maxes[] = {1, 2, 3, 8, 16};

/*
 * The model agrees with the framer on whole streams, and the streams hold
 * what the generator promises: lines at the limit and too-long lines.
 */
static void test_whole_stream_matches_model(void **state)
{
    char stream[4096];
    uint64_t s = SEED ^ 3;
    size_t lines = 0, too_long = 0;

    for (size_t m = 0; m < LEN(split_maxes); m++) {
        for (int round = 0; round < 20; round++) {
            size_t max = split_maxes[m];
            size_t n = gen_stream(&s, stream, sizeof(stream), max);
            size_t whole = n;
            struct trace want = {0}, got;

            reference(stream, n, max, &want);
            run_split(stream, n, max, &whole, 1, &got);
            assert_same_trace(&got, &want);
            for (size_t at = 0; at < got.len;) {
                size_t len;

                memcpy(&len, got.p + at + 1, sizeof(len));
                lines += got.p[at] == 'L' && len == max;
                too_long += got.p[at] == 'T';
                at += 1 + sizeof(len) + len;
            }
            trace_free(&want);
            trace_free(&got);
        }
    }
    assert_true(lines > 100);
    assert_true(too_long > 100);
}

/* Two reads, cut at every point. */
static void test_every_single_split(void **state)
{
    char stream[1024];
    uint64_t s = SEED ^ 4;

    for (size_t m = 0; m < LEN(split_maxes); m++) {
        size_t max = split_maxes[m];
        size_t n = gen_stream(&s, stream, sizeof(stream), max);
        struct trace want = {0};

        reference(stream, n, max, &want);
        for (size_t cut = 0; cut <= n; cut++) {
            size_t lens[2] = {cut, n - cut};
            struct trace got;

            run_split(stream, n, max, lens, 2, &got);
            if (!same_trace(&got, &want))
                print_error("max_line %zu, cut at %zu of %zu\n", max, cut, n);
            assert_same_trace(&got, &want);
            trace_free(&got);
        }
        trace_free(&want);
    }
}

/* Three reads, cut at every pair of points. */
static void test_every_pair_of_splits(void **state)
{
    char stream[160];
    uint64_t s = SEED ^ 5;

    for (size_t m = 0; m < LEN(split_maxes); m++) {
        size_t max = split_maxes[m];
        size_t n = gen_stream(&s, stream, sizeof(stream), max);
        struct trace want = {0};

        reference(stream, n, max, &want);
        for (size_t i = 0; i <= n; i++) {
            for (size_t j = i; j <= n; j++) {
                size_t lens[3] = {i, j - i, n - j};
                struct trace got;

                run_split(stream, n, max, lens, 3, &got);
                if (!same_trace(&got, &want))
                    print_error("max_line %zu, cuts at %zu and %zu\n", max, i,
                                j);
                assert_same_trace(&got, &want);
                trace_free(&got);
            }
        }
        trace_free(&want);
    }
}

static void test_byte_at_a_time(void **state)
{
    char stream[4096];
    size_t ones[4096];
    uint64_t s = SEED ^ 6;

    for (size_t i = 0; i < LEN(ones); i++)
        ones[i] = 1;
    for (size_t m = 0; m < LEN(split_maxes); m++) {
        size_t max = split_maxes[m];
        size_t n = gen_stream(&s, stream, sizeof(stream), max);
        struct trace want = {0}, got;

        reference(stream, n, max, &want);
        run_split(stream, n, max, ones, n, &got);
        assert_same_trace(&got, &want);
        trace_free(&got);
        trace_free(&want);
    }
}

/* Many reads of random sizes, small ones favoured. */
static void test_random_splits(void **state)
{
    char stream[2048];
    size_t lens[2048];
    uint64_t seed = SEED ^ 7, s = seed;

    for (int round = 0; round < 2000; round++) {
        size_t max = split_maxes[rng_upto(&s, LEN(split_maxes) - 1)];
        size_t n = gen_stream(&s, stream, sizeof(stream), max);
        size_t nlens = 0;
        struct trace want = {0}, got;

        for (size_t at = 0; at < n; nlens++) {
            size_t k;

            assert_true(nlens < LEN(lens));
            switch (rng_upto(&s, 3)) {
            case 0:
                k = rng_upto(&s, 2);
                break;
            case 1:
                k = rng_upto(&s, 2 * max + 3);
                break;
            default:
                k = rng_upto(&s, 64);
                break;
            }
            lens[nlens] = k < n - at ? k : n - at;
            at += lens[nlens];
        }
        reference(stream, n, max, &want);
        run_split(stream, n, max, lens, nlens, &got);
        if (!same_trace(&got, &want))
            print_error("round %d, seed 0x%016" PRIx64 "\n", round, seed);
        assert_same_trace(&got, &want);
        trace_free(&got);
        trace_free(&want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf_and_crlf),
        cmocka_unit_test(test_only_one_cr_dropped),
        cmocka_unit_test(test_blank_lines_skipped),
        cmocka_unit_test(test_nul_bytes_kept),
        cmocka_unit_test(test_max_line_boundary),
        cmocka_unit_test(test_too_long_reported_when_certain),
        cmocka_unit_test(test_discard_to_lf_then_next_line),
        cmocka_unit_test(test_too_long_across_many_feeds),
        cmocka_unit_test(test_default_max_line),
        cmocka_unit_test(test_whole_stream_matches_model),
        cmocka_unit_test(test_every_single_split),
        cmocka_unit_test(test_every_pair_of_splits),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_random_splits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
