/*
 * Unit tests for the bench's SVG charts (bench/svg.c).
 *
 * A small XML checker reads each chart back: every tag closed in order,
 * one root element and it is <svg> with the SVG namespace, attribute
 * values quoted, no raw '<' or stray '&' in text, and no NaN or infinity
 * among the coordinates. Beyond well-formedness, the charts must carry
 * what a reader needs: the percentile labels, axis titles with units,
 * both series, and a legend.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "stats.h"
#include "svg.h"

#define MS  1000000ULL
#define SEC 1000000000ULL

static char *text;
static size_t text_len;

static FILE *mem(void)
{
    free(text);
    text = NULL;
    FILE *f = open_memstream(&text, &text_len);
    assert_non_null(f);
    return f;
}

/* Checks that an entity at s is one of XML's five. */
static bool entity_ok(const char *s)
{
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;",
                                       "&apos;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(s, ents[i], strlen(ents[i])) == 0)
            return true;
    return false;
}

static char why[256];

#define BAD(...) (snprintf(why, sizeof(why), __VA_ARGS__), why)

/*
 * Well-formedness, for the XML this writer can produce: a declaration,
 * elements with quoted attributes, text. Returns NULL, or the reason.
 */
static const char *xml_problem(const char *s)
{
    char stack[64][32];
    int depth = 0, roots = 0;
    const char *p = s;

    if (strncmp(p, "<?xml ", 6) == 0) {
        p = strstr(p, "?>");
        if (!p)
            return BAD("unterminated declaration");
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            if (*p == '&' && !entity_ok(p))
                return BAD("stray '&' at offset %td", p - s);
            if (depth == 0 && !isspace((unsigned char)*p))
                return BAD("text outside the root at offset %td", p - s);
            p++;
            continue;
        }
        bool closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nlen = strcspn(name, " \t\n/>");
        if (nlen == 0 || nlen >= 32)
            return BAD("bad tag name at offset %td", p - s);
        const char *q = name + nlen;
        /* Attributes: name="value", values without '<'. */
        while (*q && *q != '>' && !(q[0] == '/' && q[1] == '>')) {
            if (*q == '"') {
                const char *end = strchr(q + 1, '"');
                if (!end)
                    return BAD("unterminated attribute at %td", q - s);
                for (const char *v = q + 1; v < end; v++) {
                    if (*v == '<')
                        return BAD("'<' in an attribute at %td", v - s);
                    if (*v == '&' && !entity_ok(v))
                        return BAD("stray '&' in an attribute at %td", v - s);
                }
                q = end + 1;
            } else if (*q == '=' && q[1] != '"') {
                return BAD("unquoted attribute at offset %td", q - s);
            } else {
                q++;
            }
        }
        if (*q == '\0')
            return BAD("unterminated tag at offset %td", p - s);
        bool self = *q == '/';
        if (closing) {
            if (depth == 0)
                return BAD("</%.*s> closes nothing", (int)nlen, name);
            depth--;
            if (strlen(stack[depth]) != nlen ||
                strncmp(stack[depth], name, nlen) != 0)
                return BAD("</%.*s> closes <%.31s>", (int)nlen, name,
                           stack[depth]);
        } else {
            if (depth == 0) {
                const char *ns = strstr(name, "xmlns=\"http://www.w3.org/"
                                              "2000/svg\"");
                if (++roots > 1)
                    return BAD("more than one root element");
                if (nlen != 3 || memcmp(name, "svg", 3) != 0)
                    return BAD("the root is not <svg>");
                if (!ns || ns > q)
                    return BAD("<svg> lacks the SVG namespace");
            }
            if (!self) {
                if (depth == 64)
                    return BAD("nested too deep");
                memcpy(stack[depth], name, nlen);
                stack[depth][nlen] = '\0';
                depth++;
            }
        }
        p = q + (self ? 2 : 1);
    }
    if (depth != 0)
        return BAD("<%.31s> is never closed", stack[depth - 1]);
    if (roots != 1)
        return BAD("no root element");
    for (const char *bad = s; (bad = strpbrk(bad, "ni")) != NULL; bad++)
        if (strncmp(bad, "nan", 3) == 0 || strncmp(bad, "inf,", 4) == 0)
            return BAD("NaN or infinity in the chart at %td", bad - s);
    return NULL;
}

static void check_xml(const char *s)
{
    const char *problem = xml_problem(s);

    if (problem)
        fail_msg("not well-formed: %s", problem);
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;

    while ((s = strstr(s, what)) != NULL) {
        n++;
        s++;
    }
    return n;
}

static void opts_for(struct bench_opts *o)
{
    char err[128];
    char *argv[] = {(char *)(uintptr_t) "b", NULL};

    assert_int_equal(opts_parse(o, 1, argv, err, sizeof(err)), 0);
    snprintf(o->host, sizeof(o->host), "<evil & host>");
}

static void fill(struct stats *st, uint64_t rate, uint64_t scale)
{
    assert_int_equal(stats_init(st), 0);
    st->target_rate = rate;
    stats_begin(st, 0);
    for (uint64_t k = 0; k < 5000; k++) {
        uint64_t due = k * MS;
        uint64_t lat = (k * 7919 % 1000 + 10) * scale;
        stats_latency(st, due + lat, due, due + lat / 3);
    }
    stats_end(st);
    st->elapsed_ns = 5 * SEC;
}

static void test_run_chart(void **state)
{
    struct bench_opts o;
    struct stats st;

    opts_for(&o);
    fill(&st, 1000, 1000);
    FILE *f = mem();
    assert_int_equal(svg_run(f, &o, &st), 0);
    fclose(f);
    check_xml(text);
    static const char *const want[] = {
        ">50%<",
        ">90%<",
        ">99%<",
        ">99.9%<",
        ">99.99%<",
        "latency (ms)",
        "percentile",
        "time after warmup (s)",
        "corrected (from due time)",
        "uncorrected (from send time)",
        ">p50<",
        ">p99<",
        "&lt;evil &amp; host&gt;",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
        if (!strstr(text, want[i]))
            fail_msg("chart lacks '%s'", want[i]);
    /* Corrected and uncorrected, then p50 and p99 per second. */
    assert_int_equal(count(text, "<polyline"), 4);
    stats_free(&st);
}

static void test_empty_run_chart(void **state)
{
    struct bench_opts o;
    struct stats st;

    opts_for(&o);
    assert_int_equal(stats_init(&st), 0);
    FILE *f = mem();
    assert_int_equal(svg_run(f, &o, &st), 0);
    fclose(f);
    check_xml(text);
    assert_non_null(strstr(text, "no measured second"));
    stats_free(&st);
}

static void test_sweep_chart(void **state)
{
    struct bench_opts o;
    struct stats st[3];

    opts_for(&o);
    o.nsweep = 3;
    for (int i = 0; i < 3; i++)
        fill(&st[i], 1000 * (uint64_t)(i + 1), 1000 * (uint64_t)(i + 1));
    FILE *f = mem();
    assert_int_equal(svg_sweep(f, &o, st, 3), 0);
    fclose(f);
    check_xml(text);
    assert_non_null(strstr(text, "achieved throughput (requests/s)"));
    assert_non_null(strstr(text, "latency (ms)"));
    assert_int_equal(count(text, "<polyline"), 2);
    assert_int_equal(count(text, "<circle"), 6);
    assert_non_null(strstr(text, "target 3000/s"));
    for (int i = 0; i < 3; i++)
        stats_free(&st[i]);
}

static void test_checker_catches(void **state)
{
    /* The checker itself must reject what it is there to catch. */
    static const char *const bad[] = {
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><g></svg>",
        "<svg><g/></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg><svg></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><g x=1/></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a & b</text></svg>",
        "<html xmlns=\"http://www.w3.org/2000/svg\"></html>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_non_null(xml_problem(bad[i]));
    assert_null(xml_problem("<?xml version=\"1.0\"?>\n<svg xmlns=\"http://"
                            "www.w3.org/2000/svg\"><g a=\"&lt;\"/></svg>\n"));
}

static int teardown(void **state)
{
    free(text);
    text = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_run_chart, teardown),
        cmocka_unit_test_teardown(test_empty_run_chart, teardown),
        cmocka_unit_test_teardown(test_sweep_chart, teardown),
        cmocka_unit_test(test_checker_catches),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
