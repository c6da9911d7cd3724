/*
 * Wire tests of ratelimmq-bench against the real daemon.
 *
 * The daemon runs on --port 0 (tests/wire.c reads its port); each test
 * execs the real bench binary for a bounded run (--requests, or a short
 * --duration) with --json, reads the JSON back, and compares the bench's
 * counts with the daemon's own STATS taken before and after: what the
 * bench says it sent and got must be what the server saw. Each workload
 * uses its own queue names, so the tests can share one daemon.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json_read.h"
#include "wire.h"

#define BENCH_TIMEOUT_MS 40000

static struct wire_daemon dmn;
static struct wire_client cl; /* large: static, not on the stack */

struct counts {
    uint64_t requests, put, acked, delivered, rate_limited;
};

static void snap_of(int port, struct counts *c)
{
    char line[4096];

    wire_open(&cl, port);
    snprintf(line, sizeof(line), "%s", wire_req(&cl, "STATS"));
    wire_close(&cl);
    c->requests = wire_stat(line, "requests");
    c->put = wire_stat(line, "put");
    c->acked = wire_stat(line, "acked");
    c->delivered = wire_stat(line, "delivered");
    c->rate_limited = wire_stat(line, "rate_limited");
}

static void snap(struct counts *c)
{
    snap_of(dmn.port, c);
}

struct bench_out {
    int status;     /* exit status, -1 for a signal */
    char err[4096]; /* its stderr */
    char *json;     /* the --json file, when asked for */
    size_t json_len;
    struct json_doc doc;
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/*
 * Runs the bench with the given arguments (NULL-terminated) on port, plus
 * --json when want_json; waits at most BENCH_TIMEOUT_MS.
 */
static void bench_v(struct bench_out *out, int port, bool want_json,
                    const char *const *args)
{
    char port_s[16], json_path[64], err_path[64];
    const char *argv[48];
    int n = 0;

    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(json_path, sizeof(json_path), "/tmp/wire-bench-XXXXXX");
    snprintf(err_path, sizeof(err_path), "/tmp/wire-bench-err-XXXXXX");
    int jfd = mkstemp(json_path), efd = mkstemp(err_path);
    assert_true(jfd >= 0 && efd >= 0);
    close(jfd);
    argv[n++] = RLMQ_BENCH_PATH;
    argv[n++] = "--port";
    argv[n++] = port_s;
    argv[n++] = "--quiet";
    if (want_json) {
        argv[n++] = "--json";
        argv[n++] = json_path;
    }
    for (; *args; args++) {
        assert_true(n < 46);
        argv[n++] = *args;
    }
    argv[n] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        wire_exec(argv);
    }
    close(efd);
    uint64_t deadline = wire_now_ms() + BENCH_TIMEOUT_MS;
    int st;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (wire_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("the bench did not finish in %d ms", BENCH_TIMEOUT_MS);
        }
        wire_sleep_ms(10);
    }
    out->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    size_t elen;
    char *e = slurp(err_path, &elen);
    snprintf(out->err, sizeof(out->err), "%s", e ? e : "");
    free(e);
    unlink(err_path);
    out->json = want_json ? slurp(json_path, &out->json_len) : NULL;
    unlink(json_path);
    memset(&out->doc, 0, sizeof(out->doc));
    if (want_json) {
        if (out->status != 0)
            fail_msg("the bench exited %d: %s", out->status, out->err);
        assert_non_null(out->json);
        if (json_parse(&out->doc, out->json, out->json_len) != 0)
            fail_msg("the bench's JSON does not parse:\n%s", out->json);
    }
}

#define BENCH(out, ...)                                                        \
    bench_v((out), dmn.port, true, (const char *const[]){__VA_ARGS__, NULL})

static void bench_free(struct bench_out *out)
{
    json_free(&out->doc);
    free(out->json);
}

static uint64_t jnum(const struct bench_out *out, const char *path)
{
    const struct json_node *n = json_get(&out->doc, path);

    if (!n || n->type != JSON_NUM)
        fail_msg("no number at %s in:\n%s", path, out->json);
    return (uint64_t)llround(n->num);
}

/* What every clean run must show. */
static void assert_clean(const struct bench_out *out, uint64_t requests)
{
    const struct json_node *c = json_get(&out->doc, "complete");

    assert_true(c && c->type == JSON_BOOL && c->num == 1);
    assert_int_equal(jnum(out, "errors.total"), 0);
    assert_int_equal(jnum(out, "rate_limited"), 0);
    if (requests)
        assert_int_equal(jnum(out, "requests"), requests);
    assert_int_equal(jnum(out, "latency_ms.corrected.count"),
                     jnum(out, "requests"));
    assert_true(json_get(&out->doc, "achieved_rate")->num > 0);
}

/* ACKs of the last messages may still be on their way: wait for them. */
static void wait_acked(const struct counts *before, uint64_t want,
                       struct counts *after)
{
    uint64_t deadline = wire_now_ms() + 5000;

    do {
        snap(after);
        if (after->acked - before->acked >= want)
            return;
        wire_sleep_ms(20);
    } while (wire_now_ms() < deadline);
}

static void test_ping(void **state)
{
    struct counts a, b;
    struct bench_out out;

    snap(&a);
    BENCH(&out, "ping", "--requests", "20000", "--connections", "4",
          "--pipeline", "8");
    snap(&b);
    assert_clean(&out, 20000);
    assert_int_equal(jnum(&out, "lines_sent"), 20000);
    /* The server saw every PING, plus the one STATS that took b. */
    assert_true(b.requests - a.requests >= 20000);
    assert_true(b.requests - a.requests <= 20001);
    bench_free(&out);
}

static void test_put(void **state)
{
    struct counts a, b;
    struct bench_out out;

    snap(&a);
    BENCH(&out, "put", "--requests", "5000", "--connections", "3", "--pipeline",
          "4", "--queue-prefix", "wb-put", "--queues", "2", "--size", "100");
    snap(&b);
    assert_clean(&out, 5000);
    assert_int_equal(b.put - a.put, 5000);
    wire_open(&cl, dmn.port);
    uint64_t q0 = wire_stat_of(&cl, "wb-put0", "put");
    uint64_t q1 = wire_stat_of(&cl, "wb-put1", "put");
    wire_close(&cl);
    assert_int_equal(q0 + q1, 5000);
    assert_int_equal(q0, 2500); /* round robin over the queues */
    bench_free(&out);
}

static void test_cycle(void **state)
{
    struct counts a, b;
    struct bench_out out;

    snap(&a);
    BENCH(&out, "cycle", "--requests", "3000", "--connections", "3",
          "--pipeline", "4", "--queue-prefix", "wb-cycle");
    snap(&b);
    assert_clean(&out, 3000);
    /* A cycle is PUT, GET and ACK: three lines, each answered. */
    assert_int_equal(jnum(&out, "lines_sent"), 9000);
    assert_int_equal(b.put - a.put, 3000);
    assert_int_equal(b.delivered - a.delivered, 3000);
    assert_int_equal(b.acked - a.acked, 3000);
    assert_true(b.requests - a.requests >= 9000);
    bench_free(&out);
}

static void test_pipeline(void **state)
{
    struct counts a, b;
    struct bench_out out;

    snap(&a);
    BENCH(&out, "pipeline", "--requests", "3000", "--connections", "2",
          "--consumers", "3", "--pipeline", "4", "--queue-prefix", "wb-pipe",
          "--queues", "3", "--wait-ms", "200");
    wait_acked(&a, 3000, &b);
    assert_clean(&out, 3000);
    assert_int_equal(b.put - a.put, 3000);
    assert_int_equal(b.acked - a.acked, 3000);
    bench_free(&out);
}

static void test_open_loop(void **state)
{
    struct counts a, b;
    struct bench_out out;

    snap(&a);
    BENCH(&out, "put", "--rate", "2000", "--duration", "1", "--warmup", "0.25",
          "--connections", "8", "--queue-prefix", "wb-open");
    snap(&b);
    assert_clean(&out, 0);
    const struct json_node *mode = json_get(&out.doc, "mode");
    assert_true(mode && mode->str_len == 4 && !memcmp(mode->str, "open", 4));
    /* One second at 2000/s, counted from the due times. */
    uint64_t reqs = jnum(&out, "requests");
    assert_true(reqs >= 1990 && reqs <= 2010);
    double rate = json_get(&out.doc, "achieved_rate")->num;
    assert_true(rate > 1800 && rate < 2200);
    assert_true(json_len(&out.doc, json_get(&out.doc, "series")) >= 1);
    /* Every PUT the bench wrote, warmup included, reached the server. */
    assert_int_equal(b.put - a.put, jnum(&out, "lines_sent"));
    assert_true(jnum(&out, "lines_sent") >= reqs + 450);
    bench_free(&out);
}

static void test_open_loop_busy(void **state)
{
    struct counts a, b;
    struct bench_out out;

    /*
     * Many connections, deep pipelines and replies that start new lines
     * (the cycle's ACK) in the same loop iteration as scheduled sends:
     * the path where per-iteration bookkeeping can overflow.
     */
    snap(&a);
    BENCH(&out, "cycle", "--rate", "30000", "--duration", "1", "--warmup",
          "0.2", "--connections", "16", "--pipeline", "8", "--queue-prefix",
          "wb-busy");
    snap(&b);
    assert_clean(&out, 0);
    uint64_t lines = jnum(&out, "lines_sent");
    assert_int_equal(lines % 3, 0);
    assert_int_equal(b.put - a.put, lines / 3);
    assert_int_equal(b.acked - a.acked, lines / 3);
    assert_true(jnum(&out, "requests") >= 29000);
    bench_free(&out);
}

static void test_rate_limited(void **state)
{
    static const char *const args[] = {"--global-rate", "500", NULL};
    struct wire_daemon lim;
    struct counts a, b;
    struct bench_out out;

    wire_start(&lim, args);
    snap_of(lim.port, &a);
    bench_v(&out, lim.port, true,
            (const char *const[]){"ping", "--rate", "2000", "--duration", "1",
                                  "--warmup", "0", "--connections", "4", NULL});
    snap_of(lim.port, &b);
    /* Refusals are counted on their own line, not as errors or latency. */
    uint64_t limited = jnum(&out, "rate_limited");
    assert_true(limited > 500);
    assert_int_equal(jnum(&out, "errors.total"), 0);
    assert_int_equal(jnum(&out, "latency_ms.corrected.count"),
                     jnum(&out, "requests"));
    assert_true(jnum(&out, "requests") < 2000 - 500);
    assert_int_equal(b.rate_limited - a.rate_limited, limited);
    bench_free(&out);
    wire_stop(&lim);
}

static void test_files(void **state)
{
    char hgrm[] = "/tmp/wire-bench-hgrm-XXXXXX";
    char svg[] = "/tmp/wire-bench-svg-XXXXXX";
    struct bench_out out;
    size_t len;

    close(mkstemp(hgrm));
    close(mkstemp(svg));
    BENCH(&out, "ping", "--requests", "2000", "--hgrm", hgrm, "--svg", svg);
    assert_clean(&out, 2000);
    char *h = slurp(hgrm, &len);
    char *s = slurp(svg, &len);
    assert_non_null(h);
    assert_non_null(s);
    assert_non_null(strstr(h, "Total count    =         2000]"));
    assert_non_null(strstr(s, "</svg>"));
    free(h);
    free(s);
    unlink(hgrm);
    unlink(svg);
    bench_free(&out);
}

static void test_cannot_connect(void **state)
{
    /* A port that was just free: bind, read it, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    struct bench_out out;
    char want[64];

    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    int port = ntohs(sa.sin_port);
    bench_v(&out, port, false, (const char *const[]){"--requests", "10", NULL});
    assert_int_equal(out.status, 1);
    snprintf(want, sizeof(want), "cannot connect to 127.0.0.1:%d", port);
    if (!strstr(out.err, want))
        fail_msg("stderr lacks '%s': %s", want, out.err);
}

static void test_bad_flag(void **state)
{
    struct bench_out out;

    bench_v(&out, dmn.port, false,
            (const char *const[]){"--connections", "0", NULL});
    assert_int_equal(out.status, 2);
    assert_string_equal(out.err,
                        "ratelimmq-bench: bad value '0' for --connections "
                        "(expected 1 to 10000); run 'ratelimmq-bench "
                        "--help'\n");
}

static int start(void **state)
{
    wire_start(&dmn, NULL);
    return 0;
}

static int stop(void **state)
{
    return wire_stop(&dmn) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_open_loop),
        cmocka_unit_test(test_open_loop_busy),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_cannot_connect),
        cmocka_unit_test(test_bad_flag),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, start, stop);
}
