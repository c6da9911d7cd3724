/*
 * Settings: see config.h. Every value, default included, goes through the
 * same parser and bounds check, so a default can never be out of range.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

enum opt_kind { OPT_UINT, OPT_STRING, OPT_BOOL, OPT_LEVEL, OPT_MODE };

struct opt_def {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum opt_kind kind;
    size_t offset;
    const char *def;
    uint64_t min;
    uint64_t max;
    const char *help;
};

#define OFF(field) offsetof(struct config, field)

static const struct opt_def opts[] = {
    {"host", "RATELIMMQ_HOST", OPT_STRING, OFF(host), "127.0.0.1", 0, 0,
     "IPv4 or IPv6 address to listen on"},
    {"port", "RATELIMMQ_PORT", OPT_UINT, OFF(port), "7878", 0, 65535,
     "TCP port; 0 picks a free one"},
    {"max-line", "RATELIMMQ_MAX_LINE", OPT_UINT, OFF(max_line), "65536", 64,
     16777216, "longest request line in bytes, terminator excluded"},
    {"max-output", "RATELIMMQ_MAX_OUTPUT", OPT_UINT, OFF(max_output), "1048576",
     1024, 1073741824,
     "unsent reply bytes per connection before it stops being read"},
    {"max-connections", "RATELIMMQ_MAX_CONNECTIONS", OPT_UINT,
     OFF(max_connections), "10000", 1, 1000000,
     "open client connections; lowered to fit the file limit"},
    {"log-level", "RATELIMMQ_LOG_LEVEL", OPT_LEVEL, OFF(log_level), "info", 0,
     0, "error, warn, info or debug"},
    {"no-shutdown", "RATELIMMQ_NO_SHUTDOWN", OPT_BOOL, OFF(no_shutdown),
     "false", 0, 0, "refuse the SHUTDOWN command"},
    {"client-rate", "RATELIMMQ_CLIENT_RATE", OPT_UINT, OFF(client_rate), "0", 0,
     1000000000, "requests per second per connection; 0 is off"},
    {"client-burst", "RATELIMMQ_CLIENT_BURST", OPT_UINT, OFF(client_burst), "0",
     0, 1000000000, "client bucket size; 0 means the client rate"},
    {"global-rate", "RATELIMMQ_GLOBAL_RATE", OPT_UINT, OFF(global_rate), "0", 0,
     1000000000, "requests per second for the server; 0 is off"},
    {"global-burst", "RATELIMMQ_GLOBAL_BURST", OPT_UINT, OFF(global_burst), "0",
     0, 1000000000, "global bucket size; 0 means the global rate"},
    {"limit-mode", "RATELIMMQ_LIMIT_MODE", OPT_MODE, OFF(limit_mode), "reject",
     0, 0, "reject (answer ERR rate limited) or shape (delay)"},
    {"lease-ms", "RATELIMMQ_LEASE_MS", OPT_UINT, OFF(lease_ms), "30000", 1,
     86400000, "how long a GET lease lasts without TOUCH"},
    {"max-attempts", "RATELIMMQ_MAX_ATTEMPTS", OPT_UINT, OFF(max_attempts), "5",
     1, 1000000, "deliveries before a message is dead-lettered"},
    {"max-messages", "RATELIMMQ_MAX_MESSAGES", OPT_UINT, OFF(max_messages),
     "1000000", 1, 1000000000, "messages held, in every queue and state"},
    {"max-bytes", "RATELIMMQ_MAX_BYTES", OPT_UINT, OFF(max_bytes), "268435456",
     1, 1099511627776, "payload bytes held, in every queue"},
    {"auth-token-file", "RATELIMMQ_AUTH_TOKEN_FILE", OPT_STRING,
     OFF(auth_token_file), "", 0, 0,
     "file whose first line clients must send with AUTH; none by default"},
    {"max-queues", "RATELIMMQ_MAX_QUEUES", OPT_UINT, OFF(max_queues), "65536",
     1, 16777216, "queues, dead-letter queues included"},
    {"busy-poll-us", "RATELIMMQ_BUSY_POLL_US", OPT_UINT, OFF(busy_poll_us),
     "50", 0, 1000000,
     "poll up to this long before sleeping, while it pays; 0 is off"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static bool parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* Stores text s as the value of option o; `name` is how the user gave it. */
static int apply(struct config *c, const struct opt_def *o, const char *s,
                 const char *name, char *err, size_t errlen)
{
    void *field = (char *)c + o->offset;
    uint64_t v;
    char range[64];

    switch (o->kind) {
    case OPT_UINT:
        if (!parse_uint(s, &v) || v < o->min || v > o->max) {
            snprintf(range, sizeof(range), "%llu to %llu",
                     (unsigned long long)o->min, (unsigned long long)o->max);
            snprintf(err, errlen,
                     "bad value for %s: '%.64s' is not a whole number from "
                     "%s",
                     name, s, range);
            return -EINVAL;
        }
        *(uint64_t *)field = v;
        return 0;
    case OPT_STRING:
        if (!*s || strlen(s) >= CONFIG_STRING_MAX)
            return fail(err, errlen, "bad value for %s: '%.64s'", name, s);
        strcpy(field, s);
        return 0;
    case OPT_BOOL:
        if (!parse_bool(s, field))
            return fail(err, errlen,
                        "bad value for %s: '%.64s' (use true or false)", name,
                        s);
        return 0;
    case OPT_LEVEL:
        if (log_level_parse(s, field) < 0)
            return fail(err, errlen,
                        "bad value for %s: '%.64s' (use error, warn, info "
                        "or debug)",
                        name, s);
        return 0;
    case OPT_MODE:
        if (strcmp(s, "reject") == 0)
            *(enum limit_mode *)field = LIMIT_REJECT;
        else if (strcmp(s, "shape") == 0)
            *(enum limit_mode *)field = LIMIT_SHAPE;
        else
            return fail(err, errlen,
                        "bad value for %s: '%.64s' (use reject or shape)", name,
                        s);
        return 0;
    }
    return -EINVAL;
}

static const struct opt_def *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].flag) == len && memcmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

int config_parse(struct config *c, int argc, char *const argv[],
                 config_getenv_fn *getenv_fn, char *err, size_t errlen)
{
    const char *given[NOPTS] = {0};
    char flagname[NOPTS][48];

    memset(c, 0, sizeof(*c));
    c->action = CONFIG_RUN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c->action = CONFIG_HELP;
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            c->action = CONFIG_VERSION;
            return 0;
        }
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errlen, "unexpected argument '%.64s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt_def *o = find_flag(name, nlen);
        if (!o)
            return fail(err, errlen, "unknown flag '%.64s'", a);
        size_t k = (size_t)(o - opts);
        snprintf(flagname[k], sizeof(flagname[k]), "--%s", o->flag);
        if (o->kind == OPT_BOOL && !eq) {
            given[k] = "true";
        } else if (eq) {
            given[k] = eq + 1;
        } else if (i + 1 < argc) {
            given[k] = argv[++i];
        } else {
            return fail(err, errlen, "%s needs a value", flagname[k]);
        }
    }

    for (size_t k = 0; k < NOPTS; k++) {
        const struct opt_def *o = &opts[k];
        const char *s = given[k];
        const char *name = flagname[k];
        if (!s) {
            s = getenv_fn ? getenv_fn(o->env) : NULL;
            name = o->env;
        }
        if (!s) {
            s = o->def;
            name = "the default";
            if (!*s)
                continue; /* an empty default means unset */
        }
        int rc = apply(c, o, s, name, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (c->client_burst == 0)
        c->client_burst = c->client_rate;
    if (c->global_burst == 0)
        c->global_burst = c->global_rate;
    return 0;
}

void config_usage(FILE *out)
{
    fprintf(out, "Usage: ratelimmqd [FLAG VALUE]...\n"
                 "A small work-queue daemon with rate limits and dead "
                 "letters.\n\n"
                 "Each flag can also be set with the environment variable "
                 "shown;\na flag wins over its variable.\n\n");
    for (size_t k = 0; k < NOPTS; k++) {
        const struct opt_def *o = &opts[k];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", o->flag,
                 o->kind == OPT_BOOL ? "" : " VALUE");
        fprintf(out, "  %-26s %s\n  %-26s env %s, default %s\n", left, o->help,
                "", o->env, *o->def ? o->def : "none");
    }
    fprintf(out, "  %-26s %s\n  %-26s %s\n", "--help", "print this help",
            "--version", "print the version");
}
