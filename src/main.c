/*
 * ratelimmqd's entry point: settings, start-up, and the exit statuses
 * (0 after a clean shutdown, 1 when it cannot start, 2 for a bad flag).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "notify.h"
#include "server.h"

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct server *s;
    char err[512];

    if (config_parse(&cfg, argc, argv, env_lookup, err, sizeof(err)) < 0) {
        fprintf(stderr, "ratelimmqd: %s; run 'ratelimmqd --help'\n", err);
        return 2;
    }
    if (cfg.action == CONFIG_HELP) {
        config_usage(stdout);
        return 0;
    }
    if (cfg.action == CONFIG_VERSION) {
        printf("ratelimmqd %s\n", RLMQ_VERSION);
        return 0;
    }
    /* A peer that goes away mid-reply must cost a connection, not the
     * process. */
    signal(SIGPIPE, SIG_IGN);
    log_threshold = cfg.log_level;

    if (server_new(&s, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "ratelimmqd: %s\n", err);
        return 1;
    }
    LOG(LOG_INFO, "listening on %s", s->addr_text);
    int nrc = notify_send("READY=1");
    if (nrc < 0)
        LOG(LOG_WARN, "cannot notify the service manager: %s", strerror(-nrc));
    int rc = server_run(s);
    server_free(s);
    return rc < 0 ? 1 : 0;
}
