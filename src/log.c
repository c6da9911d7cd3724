/*
 * Log lines: see log.h. Each line is formatted whole and written with one
 * write(2), so lines from the daemon never interleave mid-line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = LOG_ERROR; i <= LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return level_names[level];
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int saved = errno;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
                          ts.tv_nsec / 1000000, level_names[level]);

    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';

    /* A failed write to stderr has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved;
}

uint64_t log_limit_due(struct log_limit *l, uint64_t now)
{
    l->count++;
    if (l->last_ns != 0 && now - l->last_ns < 1000000000u)
        return 0;
    uint64_t n = l->count;
    l->count = 0;
    /* Time 0 is a real monotonic reading only in fake-clock tests; 1 ns
     * later keeps "never" distinct from it. */
    l->last_ns = now ? now : 1;
    return n;
}
