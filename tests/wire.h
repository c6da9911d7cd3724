/*
 * What the wire tests share: start the real daemon on --port 0, read its
 * port from the "listening on" line, open connections and trade lines.
 *
 * Every read has a timeout, so a daemon that stops answering makes a test
 * fail instead of hang. Failures abort the test through cmocka's fail().
 */
#ifndef RLMQ_TESTS_WIRE_H
#define RLMQ_TESTS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_TIMEOUT_MS 10000

struct wire_daemon {
    pid_t pid;
    int port;
    char log_path[64]; /* the daemon's stderr */
};

struct wire_client {
    int fd;
    size_t len;
    char in[1 << 17];
};

/* When non-zero, the daemon is started with this RLIMIT_NOFILE. */
extern unsigned long wire_child_nofile;

/* Starts the daemon with the given extra arguments (NULL-terminated, may
 * be NULL) and waits for it to listen. */
void wire_start(struct wire_daemon *d, const char *const *args);

/* execv() of argv[0] with a NULL-terminated argv; never returns. For
 * a forked child. */
void wire_exec(const char *const *argv) __attribute__((noreturn));

/* Sends SIGTERM and returns the exit status (or -1 on a signal death). */
int wire_stop(struct wire_daemon *d);

/* Waits up to timeout_ms for the daemon to exit; its exit status, -1 if
 * killed by a signal, -2 if it is still running. */
int wire_wait(struct wire_daemon *d, int timeout_ms);

/* How many times s occurs in the daemon's log. */
int wire_log_count(const struct wire_daemon *d, const char *s);

/* True when the daemon's log contains s. */
bool wire_log_has(const struct wire_daemon *d, const char *s);

/* Connects to 127.0.0.1:port; fails the test when it cannot. */
void wire_open(struct wire_client *c, int port);
void wire_close(struct wire_client *c);

/* Sends all of p[0..n). Returns 0 or -errno (a reset peer is not fatal). */
int wire_send(struct wire_client *c, const void *p, size_t n);

/* Sends a NUL-terminated string; fails the test on error. */
void wire_sends(struct wire_client *c, const char *s);

/*
 * Reads one reply line (without its LF) into out, NUL-terminated. Returns
 * its length, -1 at EOF, -2 on timeout. Lines longer than cap - 1 fail the
 * test.
 */
long wire_line_timeout(struct wire_client *c, char *out, size_t cap,
                       int timeout_ms);

/* Reads one line; fails the test on EOF or after WIRE_TIMEOUT_MS. */
const char *wire_line(struct wire_client *c);

/* Sends req plus LF and returns the reply line (valid until next call). */
const char *wire_req(struct wire_client *c, const char *req);

/* Sends req and asserts the reply is exactly want. */
void wire_expect(struct wire_client *c, const char *req, const char *want);

/* True when the peer closed within timeout_ms (no data arrives). */
bool wire_closed(struct wire_client *c, int timeout_ms);

/* The value of key in a STATS line; fails the test when it is missing. */
uint64_t wire_stat(const char *stats_line, const char *key);

/* Sends STATS (or STATS q when q is non-NULL) and returns key's value. */
uint64_t wire_stat_of(struct wire_client *c, const char *q, const char *key);

/* Monotonic milliseconds. */
uint64_t wire_now_ms(void);

/* Sleeps ms milliseconds. */
void wire_sleep_ms(unsigned ms);

/* Closes with SO_LINGER 0, so the daemon sees a reset, not an orderly
 * end of stream. */
void wire_reset(struct wire_client *c);

/* The resident set size of process pid in KiB, from /proc. */
long wire_rss_kib(pid_t pid);

#endif
