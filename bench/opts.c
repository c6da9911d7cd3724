/*
 * opts: the command-line parser; see opts.h. Flags are long options,
 * given as "--flag VALUE" or "--flag=VALUE", in any order around the one
 * positional word that names the workload. Every number is checked for
 * junk, sign and range here, so the driver can trust the struct.
 */
#include "opts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S  1000000000ULL
#define NS_PER_MS 1000000ULL
#define MAX_SECS  (7 * 24 * 3600.0) /* a week: any longer is a typo */
#define MAX_REQS  1000000000000ULL

static const char *const workload_names[] = {
    [WL_PING] = "ping",
    [WL_PUT] = "put",
    [WL_CYCLE] = "cycle",
    [WL_PIPELINE] = "pipeline",
};

const char *opts_workload_name(enum wl_kind w)
{
    return workload_names[w];
}

const char *opts_op_unit(enum wl_kind w)
{
    switch (w) {
    case WL_CYCLE:
        return "cycle";
    case WL_PIPELINE:
        return "message";
    default:
        return "request";
    }
}

void opts_usage(FILE *f)
{
    fputs(
        "usage: ratelimmq-bench [flags] [ping|put|cycle|pipeline] [flags]\n"
        "\n"
        "Load generator for ratelimmqd. Workloads (default ping):\n"
        "  ping      PING, answered PONG\n"
        "  put       PUT <queue> <payload>, answered OK <id>\n"
        "  cycle     PUT, GET, then ACK of the id the GET returned; one\n"
        "            operation is the cycle, timed from PUT to ACK's reply\n"
        "  pipeline  producers PUT on --connections connections, consumers\n"
        "            GET and ACK on --consumers others; a message is timed\n"
        "            from its PUT to its MSG by times carried in its payload\n"
        "\n"
        "Target:\n"
        "  --host HOST          server address (default 127.0.0.1)\n"
        "  --port PORT          server port (default 7878)\n"
        "\n"
        "Load:\n"
        "  --connections N      connections, producers for pipeline\n"
        "                       (default 16)\n"
        "  --consumers N        consumer connections, pipeline only\n"
        "                       (default: as many as --connections)\n"
        "  --pipeline N         operations in flight per connection\n"
        "                       (default 1)\n"
        "  --rate R             open loop: R operations/s over all\n"
        "                       connections, latency counted from each\n"
        "                       one's due time (default: closed loop);\n"
        "                       k and M suffixes accepted\n"
        "  --sweep R1,R2,...    one open-loop run per rate, then latency\n"
        "                       against throughput in --svg and --json\n"
        "\n"
        "Length (durations take s, ms, m or h; a plain number is seconds):\n"
        "  --duration T         measure for T (default 10s)\n"
        "  --warmup T           run T before measuring, not counted\n"
        "                       (default 1s, or 0 with --requests)\n"
        "  --requests N         measure N operations, not a duration\n"
        "  --timeout T          hard deadline of each run (default:\n"
        "                       warmup + duration + 10s, or warmup +\n"
        "                       600s with --requests)\n"
        "\n"
        "Messages:\n"
        "  --size N             payload bytes, 1 to 65000 (default 32;\n"
        "                       pipeline needs 31 for its timestamps)\n"
        "  --queue-prefix NAME  queues are NAME0, NAME1, ... (default\n"
        "                       bench)\n"
        "  --queues N           queues, used round robin (default 1)\n"
        "  --wait-ms MS         GET wait of pipeline consumers (default\n"
        "                       1000); consumer i reads queue i mod N\n"
        "\n"
        "Output:\n"
        "  --percentiles LIST   percentiles in the summary\n"
        "                       (default 50,95,99,99.9,99.99)\n"
        "  --json FILE          summary and per-second series as JSON\n"
        "  --hgrm FILE          HdrHistogram percentile distribution (ms)\n"
        "  --svg FILE           chart: latency by percentile and over\n"
        "                       time, or against throughput with --sweep\n"
        "  --quiet              no progress line on stderr\n"
        "  -h, --help           this text\n"
        "\n"
        "Exit status: 0 after a run, 1 when the server cannot be reached\n"
        "or every connection is lost, 2 for a bad flag or value.\n",
        f);
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Strict unsigned decimal in [lo, hi]: no sign, space or trailing junk. */
static bool parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

/* A non-negative finite decimal with nothing after it but `*rest`. */
static bool parse_num(const char *s, double *v, const char **rest)
{
    if ((*s < '0' || *s > '9') && *s != '.')
        return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || !isfinite(x) || x < 0)
        return false;
    *v = x;
    *rest = end;
    return true;
}

/* "10", "10s", "250ms", "2m", "1h" into ns, at most a week. */
static bool parse_duration(const char *s, uint64_t *ns)
{
    double x, unit;
    const char *u;

    if (!parse_num(s, &x, &u))
        return false;
    if (*u == '\0' || strcmp(u, "s") == 0)
        unit = 1.0;
    else if (strcmp(u, "ms") == 0)
        unit = 1e-3;
    else if (strcmp(u, "m") == 0)
        unit = 60.0;
    else if (strcmp(u, "h") == 0)
        unit = 3600.0;
    else
        return false;
    x *= unit;
    if (x > MAX_SECS)
        return false;
    *ns = (uint64_t)llround(x * 1e9);
    return true;
}

/* "5000", "50k", "1.5M": a whole rate of 1 to 10^9 per second. */
static bool parse_rate(const char *s, uint64_t *rate)
{
    double x;
    const char *u;

    if (!parse_num(s, &x, &u))
        return false;
    if (*u == 'k' && u[1] == '\0')
        x *= 1e3;
    else if (*u == 'M' && u[1] == '\0')
        x *= 1e6;
    else if (*u != '\0')
        return false;
    if (x < 1.0 || x > 1e9 || x != floor(x))
        return false;
    *rate = (uint64_t)x;
    return true;
}

static bool parse_pcts(const char *s, struct bench_opts *o)
{
    o->npcts = 0;
    while (*s) {
        double x;
        const char *rest;
        if (o->npcts == OPTS_MAX_PCTS || !parse_num(s, &x, &rest))
            return false;
        if (x <= 0.0 || x >= 100.0 || (*rest != ',' && *rest != '\0'))
            return false;
        o->pcts[o->npcts++] = x;
        s = *rest == ',' ? rest + 1 : rest;
        if (*rest == ',' && *s == '\0')
            return false;
    }
    return o->npcts > 0;
}

static bool parse_sweep(const char *s, struct bench_opts *o)
{
    char item[64];

    o->nsweep = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 0 || n >= sizeof(item) || o->nsweep == OPTS_MAX_SWEEP)
            return false;
        memcpy(item, s, n);
        item[n] = '\0';
        if (!parse_rate(item, &o->sweep[o->nsweep++]))
            return false;
        s += n;
        if (*s == ',' && *++s == '\0')
            return false;
    }
    return o->nsweep > 0;
}

static bool queue_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == ':';
}

static bool parse_prefix(const char *s, struct bench_opts *o)
{
    size_t n = strlen(s);

    if (n == 0 || n >= sizeof(o->prefix))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!queue_char(s[i]))
            return false;
    memcpy(o->prefix, s, n + 1);
    return true;
}

static void set_defaults(struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->workload = WL_PING;
    strcpy(o->host, "127.0.0.1");
    o->port = 7878;
    o->connections = 16;
    o->pipeline = 1;
    o->duration_ns = 10 * NS_PER_S;
    o->size = 32;
    strcpy(o->prefix, "bench");
    o->queues = 1;
    o->wait_ms = 1000;
    static const double pcts[] = {50, 95, 99, 99.9, 99.99};
    memcpy(o->pcts, pcts, sizeof(pcts));
    o->npcts = sizeof(pcts) / sizeof(pcts[0]);
}

/* The flags that take a value, by name; the table order is --help's. */
enum flag_id {
    F_HOST,
    F_PORT,
    F_CONNECTIONS,
    F_CONSUMERS,
    F_PIPELINE,
    F_RATE,
    F_SWEEP,
    F_DURATION,
    F_WARMUP,
    F_REQUESTS,
    F_TIMEOUT,
    F_SIZE,
    F_PREFIX,
    F_QUEUES,
    F_WAIT_MS,
    F_PERCENTILES,
    F_JSON,
    F_HGRM,
    F_SVG,
    F_COUNT
};

static const char *const flag_names[F_COUNT] = {
    "host",        "port",  "connections",  "consumers", "pipeline",
    "rate",        "sweep", "duration",     "warmup",    "requests",
    "timeout",     "size",  "queue-prefix", "queues",    "wait-ms",
    "percentiles", "json",  "hgrm",         "svg",
};

/* What the flag expects, for the error message. */
static const char *const flag_expect[F_COUNT] = {
    "a host name or address",
    "a port from 1 to 65535",
    "1 to 10000",
    "1 to 10000",
    "1 to 4096",
    "a whole rate from 1 to 1000000000 per second",
    "a comma-separated list of rates",
    "a duration such as 10s or 500ms",
    "a duration such as 2s or 0",
    "1 to 1000000000000",
    "a duration such as 30s",
    "1 to 65000",
    "1 to 64 of A-Z a-z 0-9 _ - . :",
    "1 to 10000",
    "0 to 3600000",
    "a comma-separated list of numbers between 0 and 100",
    "a file name",
    "a file name",
    "a file name",
};

struct seen {
    bool warmup, timeout, consumers, duration, rate;
};

static bool apply(struct bench_opts *o, struct seen *seen, enum flag_id id,
                  const char *v)
{
    uint64_t x;

    switch (id) {
    case F_HOST:
        if (*v == '\0' || strlen(v) >= sizeof(o->host))
            return false;
        strcpy(o->host, v);
        return true;
    case F_PORT:
        if (!parse_uint(v, 1, 65535, &x))
            return false;
        o->port = (uint16_t)x;
        return true;
    case F_CONNECTIONS:
    case F_CONSUMERS:
    case F_QUEUES:
        if (!parse_uint(v, 1, OPTS_MAX_CONNS, &x))
            return false;
        if (id == F_CONNECTIONS)
            o->connections = (unsigned)x;
        else if (id == F_CONSUMERS)
            o->consumers = (unsigned)x;
        else
            o->queues = (unsigned)x;
        seen->consumers |= id == F_CONSUMERS;
        return true;
    case F_PIPELINE:
        if (!parse_uint(v, 1, OPTS_MAX_PIPELINE, &x))
            return false;
        o->pipeline = (unsigned)x;
        return true;
    case F_RATE:
        seen->rate = true;
        return parse_rate(v, &o->rate);
    case F_SWEEP:
        return parse_sweep(v, o);
    case F_DURATION:
        seen->duration = true;
        return parse_duration(v, &o->duration_ns) && o->duration_ns > 0;
    case F_WARMUP:
        seen->warmup = true;
        return parse_duration(v, &o->warmup_ns);
    case F_REQUESTS:
        return parse_uint(v, 1, MAX_REQS, &o->requests);
    case F_TIMEOUT:
        seen->timeout = true;
        return parse_duration(v, &o->timeout_ns) && o->timeout_ns > 0;
    case F_SIZE:
        if (!parse_uint(v, 1, OPTS_MAX_SIZE, &x))
            return false;
        o->size = (size_t)x;
        return true;
    case F_PREFIX:
        return parse_prefix(v, o);
    case F_WAIT_MS:
        if (!parse_uint(v, 0, 3600000, &x))
            return false;
        o->wait_ms = (unsigned)x;
        return true;
    case F_PERCENTILES:
        return parse_pcts(v, o);
    case F_JSON:
    case F_HGRM:
    case F_SVG:
        if (*v == '\0')
            return false;
        if (id == F_JSON)
            o->json_path = v;
        else if (id == F_HGRM)
            o->hgrm_path = v;
        else
            o->svg_path = v;
        return true;
    default:
        return false;
    }
}

static int parse_workload(struct bench_opts *o, const char *w, bool *have,
                          char *err, size_t errlen)
{
    if (*have)
        return fail(err, errlen, "more than one workload ('%s')", w);
    for (size_t i = 0; i < sizeof(workload_names) / sizeof(*workload_names);
         i++) {
        if (strcmp(w, workload_names[i]) == 0) {
            o->workload = (enum wl_kind)i;
            *have = true;
            return 0;
        }
    }
    return fail(err, errlen,
                "unknown workload '%s' (expected ping, put, cycle or "
                "pipeline)",
                w);
}

static unsigned digits(unsigned x)
{
    unsigned n = 1;

    while (x >= 10) {
        x /= 10;
        n++;
    }
    return n;
}

/* Checks between flags, once all are known, and fills derived defaults. */
static int finish(struct bench_opts *o, const struct seen *seen, char *err,
                  size_t errlen)
{
    if (seen->rate && o->nsweep)
        return fail(err, errlen, "--rate and --sweep cannot be combined");
    if (o->nsweep && o->hgrm_path)
        return fail(err, errlen, "--hgrm cannot be combined with --sweep");
    if (o->requests && seen->duration)
        return fail(err, errlen,
                    "--requests and --duration cannot be combined");
    if (seen->consumers && o->workload != WL_PIPELINE)
        return fail(err, errlen, "--consumers is for the pipeline workload");
    if (o->consumers == 0)
        o->consumers = o->connections;
    if (o->workload == WL_PIPELINE && o->size < OPTS_MIN_PIPE_SIZE)
        return fail(err, errlen,
                    "--size must be at least %d for the pipeline workload",
                    OPTS_MIN_PIPE_SIZE);
    if (o->workload == WL_PIPELINE && o->consumers && o->consumers < o->queues)
        return fail(err, errlen,
                    "--consumers must be at least --queues, or some queues "
                    "would never be read");
    if (strlen(o->prefix) + digits(o->queues - 1) > OPTS_MAX_QUEUE_NAME)
        return fail(err, errlen,
                    "--queue-prefix is too long for %u queues "
                    "(names are at most %d bytes)",
                    o->queues, OPTS_MAX_QUEUE_NAME);
    if ((uint64_t)o->pipeline * o->size > 64ULL * 1024 * 1024)
        return fail(err, errlen,
                    "--pipeline times --size must be at most 64 MiB");
    if (!seen->warmup)
        o->warmup_ns = o->requests ? 0 : NS_PER_S;
    if (!seen->timeout)
        o->timeout_ns =
            o->warmup_ns +
            (o->requests ? 600 * NS_PER_S : o->duration_ns + 10 * NS_PER_S);
    return 0;
}

/* Finds the flag named by arg ("--name" or "--name=value"). */
static int lookup(const char *arg, const char **inline_val)
{
    const char *name = arg + 2;
    size_t n = strcspn(name, "=");

    *inline_val = name[n] == '=' ? name + n + 1 : NULL;
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(flag_names[i]) == n && memcmp(flag_names[i], name, n) == 0)
            return i;
    return -1;
}

int opts_parse(struct bench_opts *o, int argc, char **argv, char *err,
               size_t errlen)
{
    struct seen seen = {0};
    bool have_workload = false;

    set_defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            return 0;
        }
        if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
            continue;
        }
        if (a[0] != '-') {
            int rc = parse_workload(o, a, &have_workload, err, errlen);
            if (rc)
                return rc;
            continue;
        }
        int id = a[1] == '-' ? lookup(a, &val) : -1;
        if (id < 0)
            return fail(err, errlen, "unknown flag '%s'", a);
        if (!val) {
            if (i + 1 == argc)
                return fail(err, errlen, "missing value for --%s",
                            flag_names[id]);
            val = argv[++i];
        }
        if (!apply(o, &seen, (enum flag_id)id, val))
            return fail(err, errlen, "bad value '%s' for --%s (expected %s)",
                        val, flag_names[id], flag_expect[id]);
    }
    return finish(o, &seen, err, errlen);
}
