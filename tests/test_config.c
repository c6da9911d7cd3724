/*
 * Unit tests for the settings parser.
 *
 * A mistyped flag or variable must stop the daemon with a line naming it,
 * never start it on a silently different value, so the properties checked
 * are: every documented default; a flag beats its RATELIMMQ_* variable,
 * which beats the default; "--flag value" and "--flag=value" mean the same;
 * every number is accepted at its bounds and refused one step outside them
 * and when it is not a plain decimal that fits; a refusal is -EINVAL with
 * one line naming the flag or the variable; and --help, --version, the
 * limit mode, the log level and the boolean --no-shutdown behave as the
 * help text says. config.h keeps its option table private, so the options
 * are listed here, and one test checks the list against --help so that a
 * new option cannot go untested unnoticed.
 *
 * The environment is a fake passed to config_parse; the real one is never
 * read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define LEN(a)     (sizeof(a) / sizeof((a)[0]))
#define OFF(field) offsetof(struct config, field)

/* ---- the options, as the help text and protocol.md describe them ---- */

struct uint_opt {
    const char *flag; /* without the leading "--" */
    const char *env;
    size_t off;
    uint64_t def;
    uint64_t min;
    uint64_t max;
};

static const struct uint_opt uint_opts[] = {
    {"port", "RATELIMMQ_PORT", OFF(port), 7878, 0, 65535},
    {"max-line", "RATELIMMQ_MAX_LINE", OFF(max_line), 65536, 64, 16777216},
    {"max-output", "RATELIMMQ_MAX_OUTPUT", OFF(max_output), 1048576, 1024,
     1073741824},
    {"max-connections", "RATELIMMQ_MAX_CONNECTIONS", OFF(max_connections),
     10000, 1, 1000000},
    {"client-rate", "RATELIMMQ_CLIENT_RATE", OFF(client_rate), 0, 0,
     1000000000},
    {"client-burst", "RATELIMMQ_CLIENT_BURST", OFF(client_burst), 0, 0,
     1000000000},
    {"global-rate", "RATELIMMQ_GLOBAL_RATE", OFF(global_rate), 0, 0,
     1000000000},
    {"global-burst", "RATELIMMQ_GLOBAL_BURST", OFF(global_burst), 0, 0,
     1000000000},
    {"lease-ms", "RATELIMMQ_LEASE_MS", OFF(lease_ms), 30000, 1, 86400000},
    {"max-attempts", "RATELIMMQ_MAX_ATTEMPTS", OFF(max_attempts), 5, 1,
     1000000},
    {"max-messages", "RATELIMMQ_MAX_MESSAGES", OFF(max_messages), 1000000, 1,
     1000000000},
    {"max-bytes", "RATELIMMQ_MAX_BYTES", OFF(max_bytes), 268435456, 1,
     UINT64_C(1099511627776)},
    {"max-queues", "RATELIMMQ_MAX_QUEUES", OFF(max_queues), 65536, 1, 16777216},
    {"busy-poll-us", "RATELIMMQ_BUSY_POLL_US", OFF(busy_poll_us), 50, 0,
     1000000},
};

/* The options that are not numbers, with the default --help shows. */
static const struct {
    const char *flag;
    const char *env;
    const char *def;
} other_opts[] = {
    {"host", "RATELIMMQ_HOST", "127.0.0.1"},
    {"log-level", "RATELIMMQ_LOG_LEVEL", "info"},
    {"no-shutdown", "RATELIMMQ_NO_SHUTDOWN", "false"},
    {"limit-mode", "RATELIMMQ_LIMIT_MODE", "reject"},
    {"auth-token-file", "RATELIMMQ_AUTH_TOKEN_FILE", "none"},
};

static uint64_t field(const struct config *c, const struct uint_opt *o)
{
    uint64_t v;

    memcpy(&v, (const char *)c + o->off, sizeof(v));
    return v;
}

/* ---- a fake environment ---- */

static const char *const *fake_env; /* name, value, ..., NULL */

static const char *fake_getenv(const char *name)
{
    for (const char *const *e = fake_env; e && *e; e += 2)
        if (strcmp(e[0], name) == 0)
            return e[1];
    return NULL;
}

#define ENV(...) (fake_env = (const char *const[]){__VA_ARGS__, NULL})
#define NO_ENV() (fake_env = NULL)

/* ---- running the parser ---- */

static char err[256];

/*
 * Parses the NULL-terminated args (program name added in front) with the
 * fake environment. argv is copied, since config_parse takes char *.
 */
static int parse(struct config *c, const char *const *args)
{
    char *argv[32];
    int argc = 1, rc;

    argv[0] = strdup("ratelimmqd");
    assert_non_null(argv[0]);
    for (; args[argc - 1]; argc++) {
        assert_true(argc < (int)LEN(argv));
        argv[argc] = strdup(args[argc - 1]);
        assert_non_null(argv[argc]);
    }
    memset(err, 0, sizeof(err));
    memset(c, 0xa5, sizeof(*c));
    rc = config_parse(c, argc, argv, fake_getenv, err, sizeof(err));
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS   ((const char *const[]){NULL})

static void parse_ok(struct config *c, const char *const *args)
{
    int rc = parse(c, args);

    if (rc != 0)
        print_error("unexpected refusal: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(c->action, CONFIG_RUN);
}

/* Refused with -EINVAL and one line that names `what`. */
static void parse_bad(const char *const *args, const char *what)
{
    struct config c;
    int rc = parse(&c, args);

    if (rc != -EINVAL) {
        print_error("accepted:");
        for (size_t i = 0; args[i]; i++)
            print_error(" '%s'", args[i]);
        print_error(" (env %s=%s)\n", fake_env ? fake_env[0] : "-",
                    fake_env ? fake_env[1] : "-");
    }
    assert_int_equal(rc, -EINVAL);
    if (!strstr(err, what))
        print_error("error '%s' does not name '%s'\n", err, what);
    assert_non_null(strstr(err, what));
    assert_null(strchr(err, '\n'));
}

static void fmt_u64(char *out, size_t n, uint64_t v)
{
    snprintf(out, n, "%" PRIu64, v);
}

/* ---- tests ---- */

static void check_defaults(const struct config *c)
{
    assert_int_equal(c->action, CONFIG_RUN);
    assert_string_equal(c->host, "127.0.0.1");
    assert_int_equal(c->port, 7878);
    assert_int_equal(c->max_line, 65536);
    assert_int_equal(c->max_output, 1048576);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->log_level, LOG_INFO);
    assert_false(c->no_shutdown);
    assert_int_equal(c->client_rate, 0);
    assert_int_equal(c->client_burst, 0);
    assert_int_equal(c->global_rate, 0);
    assert_int_equal(c->global_burst, 0);
    assert_int_equal(c->limit_mode, LIMIT_REJECT);
    assert_int_equal(c->lease_ms, 30000);
    assert_int_equal(c->max_attempts, 5);
    assert_int_equal(c->max_messages, 1000000);
    assert_int_equal(c->max_bytes, 268435456);
    assert_int_equal(c->max_queues, 65536);
    for (size_t k = 0; k < LEN(uint_opts); k++)
        assert_int_equal(field(c, &uint_opts[k]), uint_opts[k].def);
}

static void test_defaults(void **state)
{
    char prog[] = "ratelimmqd";
    char *prog_only[] = {prog, NULL}, *none[] = {NULL};
    struct config c;

    NO_ENV();
    parse_ok(&c, NO_ARGS);
    check_defaults(&c);

    /* An unrelated variable changes nothing. */
    ENV("RATELIMMQ_PORTS", "1", "PORT", "2", "ratelimmq_port", "3");
    parse_ok(&c, NO_ARGS);
    check_defaults(&c);

    /* Without a lookup function, and with argc 0, still the defaults. */
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(config_parse(&c, 1, prog_only, NULL, err, sizeof(err)), 0);
    check_defaults(&c);
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(config_parse(&c, 0, none, NULL, err, sizeof(err)), 0);
    check_defaults(&c);
}

/* A burst left at 0 takes its rate, so setting a rate moves the burst. */
static bool burst_follows(const struct uint_opt *burst,
                          const struct uint_opt *rate)
{
    return (burst->off == OFF(client_burst) && rate->off == OFF(client_rate)) ||
           (burst->off == OFF(global_burst) && rate->off == OFF(global_rate));
}

/* Each variable, and only it, sets its own setting. */
static void test_env_sets_each_option(void **state)
{
    char v[32];
    struct config c;

    for (size_t k = 0; k < LEN(uint_opts); k++) {
        const struct uint_opt *o = &uint_opts[k];
        uint64_t want = o->def != o->max ? o->max : o->min;

        fmt_u64(v, sizeof(v), want);
        ENV(o->env, v);
        parse_ok(&c, NO_ARGS);
        assert_int_equal(field(&c, o), want);
        for (size_t j = 0; j < LEN(uint_opts); j++) {
            const struct uint_opt *p = &uint_opts[j];

            if (p == o || burst_follows(p, o))
                continue;
            assert_int_equal(field(&c, p), p->def);
        }
    }

    ENV("RATELIMMQ_HOST", "::1");
    parse_ok(&c, NO_ARGS);
    assert_string_equal(c.host, "::1");
    ENV("RATELIMMQ_LOG_LEVEL", "debug");
    parse_ok(&c, NO_ARGS);
    assert_int_equal(c.log_level, LOG_DEBUG);
    ENV("RATELIMMQ_NO_SHUTDOWN", "true");
    parse_ok(&c, NO_ARGS);
    assert_true(c.no_shutdown);
    ENV("RATELIMMQ_LIMIT_MODE", "shape");
    parse_ok(&c, NO_ARGS);
    assert_int_equal(c.limit_mode, LIMIT_SHAPE);
    assert_int_equal(c.port, 7878);
}

/* Flag over variable over default, in both flag forms, for every number. */
static void test_flag_beats_env_beats_default(void **state)
{
    char a[32], b[32], flag[64], joined[96];
    struct config c;

    for (size_t k = 0; k < LEN(uint_opts); k++) {
        const struct uint_opt *o = &uint_opts[k];
        uint64_t va = o->min + (o->max - o->min) / 3;
        uint64_t vb = o->min + (o->max - o->min) / 2;

        assert_true(va != vb && va != o->def && vb != o->def);
        fmt_u64(a, sizeof(a), va);
        fmt_u64(b, sizeof(b), vb);
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        snprintf(joined, sizeof(joined), "--%s=%s", o->flag, b);

        NO_ENV();
        parse_ok(&c, NO_ARGS);
        assert_int_equal(field(&c, o), o->def);
        ENV(o->env, a);
        parse_ok(&c, NO_ARGS);
        assert_int_equal(field(&c, o), va);
        parse_ok(&c, ARGS(flag, b));
        assert_int_equal(field(&c, o), vb);
        parse_ok(&c, ARGS(joined));
        assert_int_equal(field(&c, o), vb);
        NO_ENV();
        parse_ok(&c, ARGS(flag, b));
        assert_int_equal(field(&c, o), vb);
        parse_ok(&c, ARGS(joined));
        assert_int_equal(field(&c, o), vb);
    }

    ENV("RATELIMMQ_HOST", "10.0.0.1", "RATELIMMQ_LOG_LEVEL", "warn",
        "RATELIMMQ_LIMIT_MODE", "shape", "RATELIMMQ_PORT", "1");
    parse_ok(&c, ARGS("--host", "::", "--log-level=error", "--limit-mode",
                      "reject"));
    assert_string_equal(c.host, "::");
    assert_int_equal(c.log_level, LOG_ERROR);
    assert_int_equal(c.limit_mode, LIMIT_REJECT);
    assert_int_equal(c.port, 1);
    parse_ok(&c, ARGS("--host=0.0.0.0"));
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.log_level, LOG_WARN);
    assert_int_equal(c.limit_mode, LIMIT_SHAPE);
}

/* min and max accepted; min - 1 and max + 1 refused, naming the source. */
static void test_numeric_bounds(void **state)
{
    char v[32], flag[64], joined[96];
    struct config c;

    for (size_t k = 0; k < LEN(uint_opts); k++) {
        const struct uint_opt *o = &uint_opts[k];
        const uint64_t good[] = {o->min, o->max};

        snprintf(flag, sizeof(flag), "--%s", o->flag);
        for (size_t i = 0; i < LEN(good); i++) {
            fmt_u64(v, sizeof(v), good[i]);
            snprintf(joined, sizeof(joined), "--%s=%s", o->flag, v);
            NO_ENV();
            parse_ok(&c, ARGS(flag, v));
            assert_int_equal(field(&c, o), good[i]);
            parse_ok(&c, ARGS(joined));
            assert_int_equal(field(&c, o), good[i]);
            ENV(o->env, v);
            parse_ok(&c, NO_ARGS);
            assert_int_equal(field(&c, o), good[i]);
        }

        uint64_t bad[2];
        size_t nbad = 0;

        if (o->min > 0)
            bad[nbad++] = o->min - 1;
        bad[nbad++] = o->max + 1;
        for (size_t i = 0; i < nbad; i++) {
            fmt_u64(v, sizeof(v), bad[i]);
            snprintf(joined, sizeof(joined), "--%s=%s", o->flag, v);
            NO_ENV();
            parse_bad(ARGS(flag, v), flag);
            parse_bad(ARGS(joined), flag);
            ENV(o->env, v);
            parse_bad(NO_ARGS, o->env);
        }
    }
}

/* Only a plain decimal that fits is a number. */
static void test_numeric_garbage(void **state)
{
    static const char *const junk[] = {
        "",
        "abc",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1x",
        "0x10",
        "1.5",
        "1e3",
        "99999999999999999999999",
        "18446744073709551616", /* 2^64 */
        "18446744073709551615", /* 2^64 - 1, past every maximum */
        "18446744073709559494", /* 2^64 + 7878: wraps to a port */
        "36893488147419103233", /* 2^65 + 1: wraps to 1 */
        "-0",
    };
    char flag[64], joined[96];

    for (size_t k = 0; k < LEN(uint_opts); k++) {
        const struct uint_opt *o = &uint_opts[k];

        snprintf(flag, sizeof(flag), "--%s", o->flag);
        for (size_t i = 0; i < LEN(junk); i++) {
            snprintf(joined, sizeof(joined), "--%s=%s", o->flag, junk[i]);
            NO_ENV();
            parse_bad(ARGS(flag, junk[i]), flag);
            parse_bad(ARGS(joined), flag);
            ENV(o->env, junk[i]);
            parse_bad(NO_ARGS, o->env);
        }
    }
}

/* A bad variable stops the start even though no flag was given. */
static void test_bad_env_names_variable(void **state)
{
    ENV("RATELIMMQ_PORT", "65536");
    parse_bad(NO_ARGS, "RATELIMMQ_PORT");
    ENV("RATELIMMQ_MAX_LINE", "lots");
    parse_bad(NO_ARGS, "RATELIMMQ_MAX_LINE");
    ENV("RATELIMMQ_HOST", "");
    parse_bad(NO_ARGS, "RATELIMMQ_HOST");
    ENV("RATELIMMQ_LOG_LEVEL", "loud");
    parse_bad(NO_ARGS, "RATELIMMQ_LOG_LEVEL");
    ENV("RATELIMMQ_LIMIT_MODE", "drop");
    parse_bad(NO_ARGS, "RATELIMMQ_LIMIT_MODE");
    ENV("RATELIMMQ_NO_SHUTDOWN", "maybe");
    parse_bad(NO_ARGS, "RATELIMMQ_NO_SHUTDOWN");
    /* A good variable next to the bad one: still the bad one is named. */
    ENV("RATELIMMQ_PORT", "1", "RATELIMMQ_MAX_QUEUES", "0");
    parse_bad(NO_ARGS, "RATELIMMQ_MAX_QUEUES");
}

static void test_unknown_flag(void **state)
{
    NO_ENV();
    parse_bad(ARGS("--bogus"), "--bogus");
    parse_bad(ARGS("--bogus=1"), "--bogus");
    parse_bad(ARGS("--port", "1", "--colour", "red"), "--colour");
    /* Exact names only: no prefixes, no case folding, no single dash. */
    parse_bad(ARGS("--por", "1"), "--por");
    parse_bad(ARGS("--ports", "1"), "--ports");
    parse_bad(ARGS("--PORT", "1"), "--PORT");
    parse_bad(ARGS("--max", "1"), "--max");
    parse_bad(ARGS("-port", "1"), "-port");
    parse_bad(ARGS("--", "1"), "--");
    parse_bad(ARGS("port"), "port");
    parse_bad(ARGS("--port", "1", "stray"), "stray");
}

static void test_missing_value(void **state)
{
    char flag[64];

    NO_ENV();
    for (size_t k = 0; k < LEN(uint_opts); k++) {
        snprintf(flag, sizeof(flag), "--%s", uint_opts[k].flag);
        parse_bad(ARGS(flag), flag);
        parse_bad(ARGS("--port", "1", flag), flag);
    }
    parse_bad(ARGS("--host"), "--host");
    parse_bad(ARGS("--log-level"), "--log-level");
    parse_bad(ARGS("--limit-mode"), "--limit-mode");
    /* "--flag=" gives an empty value, which no option accepts. */
    parse_bad(ARGS("--port="), "--port");
    parse_bad(ARGS("--host="), "--host");
    parse_bad(ARGS("--log-level="), "--log-level");
    parse_bad(ARGS("--limit-mode="), "--limit-mode");
    parse_bad(ARGS("--no-shutdown="), "--no-shutdown");
}

static void test_help_and_version(void **state)
{
    struct config c;

    NO_ENV();
    assert_int_equal(parse(&c, ARGS("--help")), 0);
    assert_int_equal(c.action, CONFIG_HELP);
    assert_int_equal(parse(&c, ARGS("-h")), 0);
    assert_int_equal(c.action, CONFIG_HELP);
    assert_int_equal(parse(&c, ARGS("--port", "1", "--help")), 0);
    assert_int_equal(c.action, CONFIG_HELP);
    assert_int_equal(parse(&c, ARGS("--version")), 0);
    assert_int_equal(c.action, CONFIG_VERSION);
    assert_int_equal(parse(&c, ARGS("--max-line=100", "--version")), 0);
    assert_int_equal(c.action, CONFIG_VERSION);
    /* A user whose environment is wrong can still read the help. */
    ENV("RATELIMMQ_PORT", "x");
    assert_int_equal(parse(&c, ARGS("--help")), 0);
    assert_int_equal(c.action, CONFIG_HELP);
}

static void test_limit_mode(void **state)
{
    struct config c;

    NO_ENV();
    parse_ok(&c, ARGS("--limit-mode", "shape"));
    assert_int_equal(c.limit_mode, LIMIT_SHAPE);
    parse_ok(&c, ARGS("--limit-mode=reject"));
    assert_int_equal(c.limit_mode, LIMIT_REJECT);
    ENV("RATELIMMQ_LIMIT_MODE", "shape");
    parse_ok(&c, ARGS("--limit-mode", "reject"));
    assert_int_equal(c.limit_mode, LIMIT_REJECT);

    NO_ENV();
    parse_bad(ARGS("--limit-mode", "delay"), "--limit-mode");
    parse_bad(ARGS("--limit-mode", "Shape"), "--limit-mode");
    parse_bad(ARGS("--limit-mode", "shape "), "--limit-mode");
    parse_bad(ARGS("--limit-mode", "1"), "--limit-mode");
    ENV("RATELIMMQ_LIMIT_MODE", "rejects");
    parse_bad(NO_ARGS, "RATELIMMQ_LIMIT_MODE");
}

static void test_log_level(void **state)
{
    static const struct {
        const char *name;
        enum log_level level;
    } levels[] = {
        {"error", LOG_ERROR},
        {"warn", LOG_WARN},
        {"info", LOG_INFO},
        {"debug", LOG_DEBUG},
    };
    char joined[64];
    struct config c;

    for (size_t i = 0; i < LEN(levels); i++) {
        snprintf(joined, sizeof(joined), "--log-level=%s", levels[i].name);
        NO_ENV();
        parse_ok(&c, ARGS("--log-level", levels[i].name));
        assert_int_equal(c.log_level, levels[i].level);
        parse_ok(&c, ARGS(joined));
        assert_int_equal(c.log_level, levels[i].level);
        ENV("RATELIMMQ_LOG_LEVEL", levels[i].name);
        parse_ok(&c, NO_ARGS);
        assert_int_equal(c.log_level, levels[i].level);
    }
    NO_ENV();
    parse_bad(ARGS("--log-level", "verbose"), "--log-level");
    parse_bad(ARGS("--log-level", "warning"), "--log-level");
    parse_bad(ARGS("--log-level", "3"), "--log-level");
    parse_bad(ARGS("--log-level", ""), "--log-level");
}

/*
 * --no-shutdown is a switch: alone it means true, and it takes a value only
 * after '='. The variable and "--no-shutdown=" take the same words.
 */
static void test_no_shutdown(void **state)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    char joined[64];
    struct config c;

    NO_ENV();
    parse_ok(&c, ARGS("--no-shutdown"));
    assert_true(c.no_shutdown);
    for (size_t i = 0; i < LEN(yes); i++) {
        snprintf(joined, sizeof(joined), "--no-shutdown=%s", yes[i]);
        NO_ENV();
        parse_ok(&c, ARGS(joined));
        assert_true(c.no_shutdown);
        ENV("RATELIMMQ_NO_SHUTDOWN", yes[i]);
        parse_ok(&c, NO_ARGS);
        assert_true(c.no_shutdown);
        /* The flag wins over a variable that says the opposite. */
        parse_ok(&c, ARGS("--no-shutdown=false"));
        assert_false(c.no_shutdown);

        snprintf(joined, sizeof(joined), "--no-shutdown=%s", no[i]);
        NO_ENV();
        parse_ok(&c, ARGS(joined));
        assert_false(c.no_shutdown);
        ENV("RATELIMMQ_NO_SHUTDOWN", no[i]);
        parse_ok(&c, NO_ARGS);
        assert_false(c.no_shutdown);
        parse_ok(&c, ARGS("--no-shutdown"));
        assert_true(c.no_shutdown);
    }

    NO_ENV();
    parse_bad(ARGS("--no-shutdown=maybe"), "--no-shutdown");
    parse_bad(ARGS("--no-shutdown=2"), "--no-shutdown");
    parse_bad(ARGS("--no-shutdown=truee"), "--no-shutdown");
    /* The word after the switch is not its value but a stray argument. */
    parse_bad(ARGS("--no-shutdown", "false"), "false");
}

static void test_host(void **state)
{
    char longest[256], too_long[257], joined[300];
    struct config c;

    memset(longest, 'h', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    memset(too_long, 'h', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';

    NO_ENV();
    parse_ok(&c, ARGS("--host", "::1"));
    assert_string_equal(c.host, "::1");
    parse_ok(&c, ARGS("--host", longest));
    assert_string_equal(c.host, longest);
    snprintf(joined, sizeof(joined), "--host=%s", longest);
    parse_ok(&c, ARGS(joined));
    assert_string_equal(c.host, longest);
    parse_bad(ARGS("--host", too_long), "--host");
    parse_bad(ARGS("--host", ""), "--host");
    ENV("RATELIMMQ_HOST", too_long);
    parse_bad(NO_ARGS, "RATELIMMQ_HOST");
}

/* The token file is unset unless given; given, it must not be empty. */
static void test_auth_token_file(void **state)
{
    struct config c;

    NO_ENV();
    parse_ok(&c, NO_ARGS);
    assert_string_equal(c.auth_token_file, "");
    parse_ok(&c, ARGS("--auth-token-file", "/etc/token"));
    assert_string_equal(c.auth_token_file, "/etc/token");
    parse_bad(ARGS("--auth-token-file", ""), "--auth-token-file");
    ENV("RATELIMMQ_AUTH_TOKEN_FILE", "/run/t");
    parse_ok(&c, NO_ARGS);
    assert_string_equal(c.auth_token_file, "/run/t");
}

/* "client bucket size; 0 means the client rate", and the same globally. */
static void test_burst_defaults_to_rate(void **state)
{
    struct config c;

    NO_ENV();
    parse_ok(&c, ARGS("--client-rate", "250", "--global-rate", "9000"));
    assert_int_equal(c.client_burst, 250);
    assert_int_equal(c.global_burst, 9000);
    parse_ok(&c, ARGS("--client-rate", "250", "--client-burst", "7",
                      "--global-rate", "9000", "--global-burst=1"));
    assert_int_equal(c.client_rate, 250);
    assert_int_equal(c.client_burst, 7);
    assert_int_equal(c.global_rate, 9000);
    assert_int_equal(c.global_burst, 1);
    ENV("RATELIMMQ_CLIENT_RATE", "40");
    parse_ok(&c, ARGS("--client-burst=0"));
    assert_int_equal(c.client_burst, 40);
    assert_int_equal(c.global_burst, 0);
}

/* A small error buffer truncates the message but never overruns. */
static void test_short_error_buffer(void **state)
{
    char prog[] = "ratelimmqd", flag[] = "--port", value[] = "999999";
    char small[12], *argv[] = {prog, flag, value, NULL};
    struct config c;

    memset(small, 'x', sizeof(small));
    assert_int_equal(config_parse(&c, 3, argv, NULL, small, sizeof(small)),
                     -EINVAL);
    assert_true(memchr(small, '\0', sizeof(small)) != NULL);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

/*
 * --help lists every flag with its variable and default, and lists nothing
 * this file does not know, so the lists above cover every option.
 */
static void test_usage_matches_option_list(void **state)
{
    char *text = NULL, want[160];
    size_t size = 0, flags = 0;
    FILE *f = open_memstream(&text, &size);

    assert_non_null(f);
    config_usage(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);

    for (size_t k = 0; k < LEN(uint_opts); k++) {
        const struct uint_opt *o = &uint_opts[k];

        snprintf(want, sizeof(want), "--%s VALUE ", o->flag);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof(want), "env %s, default %" PRIu64 "\n", o->env,
                 o->def);
        assert_non_null(strstr(text, want));
    }
    for (size_t k = 0; k < LEN(other_opts); k++) {
        snprintf(want, sizeof(want), "--%s ", other_opts[k].flag);
        assert_non_null(strstr(text, want));
        snprintf(want, sizeof(want), "env %s, default %s\n", other_opts[k].env,
                 other_opts[k].def);
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "--help"));
    assert_non_null(strstr(text, "--version"));

    /* Every line that starts a flag entry is one of ours. */
    for (const char *p = text; (p = strstr(p, "\n  --")) != NULL; p++)
        flags++;
    assert_int_equal(flags, LEN(uint_opts) + LEN(other_opts) + 2);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_sets_each_option),
        cmocka_unit_test(test_flag_beats_env_beats_default),
        cmocka_unit_test(test_numeric_bounds),
        cmocka_unit_test(test_numeric_garbage),
        cmocka_unit_test(test_bad_env_names_variable),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_limit_mode),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_no_shutdown),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_auth_token_file),
        cmocka_unit_test(test_burst_defaults_to_rate),
        cmocka_unit_test(test_short_error_buffer),
        cmocka_unit_test(test_usage_matches_option_list),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
