/*
 * The daemon's settings: command-line flags, then RATELIMMQ_* environment
 * variables, then defaults.
 *
 * One table in config.c lists every setting with its flag, variable,
 * default, bounds and help line; --help, the parser and the environment
 * lookups all read that table, so they cannot disagree.
 */
#ifndef RLMQ_CONFIG_H
#define RLMQ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

/* Room for a string setting, its NUL included. */
#define CONFIG_STRING_MAX 256

enum limit_mode { LIMIT_REJECT, LIMIT_SHAPE };

enum config_action { CONFIG_RUN, CONFIG_HELP, CONFIG_VERSION };

struct config {
    enum config_action action;
    char host[CONFIG_STRING_MAX];
    uint64_t port;
    uint64_t max_line;
    uint64_t max_output;
    uint64_t max_connections;
    enum log_level log_level;
    bool no_shutdown;
    uint64_t client_rate;
    uint64_t client_burst;
    uint64_t global_rate;
    uint64_t global_burst;
    enum limit_mode limit_mode;
    uint64_t lease_ms;
    uint64_t max_attempts;
    uint64_t max_messages;
    uint64_t max_bytes;
    uint64_t max_queues;
    uint64_t busy_poll_us;
    char auth_token_file[CONFIG_STRING_MAX]; /* empty: no AUTH */
};

/* Looks an environment variable up; NULL when unset. Tests pass their own. */
typedef const char *config_getenv_fn(const char *name);

/*
 * Fills c from argv, then env, then defaults. Returns 0, or -EINVAL with a
 * one-line reason naming the flag (or variable) in err.
 */
int config_parse(struct config *c, int argc, char *const argv[],
                 config_getenv_fn *getenv_fn, char *err, size_t errlen);

/* Writes the --help text: every flag, its variable and its default. */
void config_usage(FILE *out);

#endif
