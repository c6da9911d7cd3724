/*
 * The server: the listening socket, the set of connections, signals,
 * shutdown, the global rate-limit bucket, the message store and the
 * counters STATS reports. It is the one place that logs: the modules below
 * it return errors and the server decides what is worth a line.
 */
#ifndef RLMQ_SERVER_H
#define RLMQ_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "bucket.h"
#include "buf.h"
#include "config.h"
#include "list.h"
#include "log.h"
#include "loop.h"
#include "store.h"

struct conn;

struct server_stats {
    uint64_t connections;
    uint64_t connections_total;
    uint64_t rejected_connections;
    uint64_t requests;
    uint64_t rate_limited;
    uint64_t shaped; /* requests that were held before running */
    uint64_t held;   /* connections holding a request for tokens now */
    uint64_t bad_requests;
};

struct server {
    struct config cfg;
    struct loop *loop;
    struct loop_io listen_io;
    struct loop_io signal_io;
    struct loop_timer accept_timer;   /* re-arms accept after fd exhaustion */
    struct loop_timer shutdown_timer; /* bounds the final flush */
    struct loop_timer store_timer;    /* the store's next deadline */
    int reserve_fd; /* a spare descriptor to refuse clients with at EMFILE */
    uint64_t max_connections;
    struct list conns;
    struct list ready;
    struct list dirty;
    struct bucket global;
    struct store *store;
    struct server_stats stats;
    uint64_t started_ns;
    uint64_t next_conn_id;
    uint64_t fd_exhausted; /* accept failures for lack of descriptors */
    uint64_t fd_logged_ns;
    struct log_limit log_client_limited; /* refused by a client bucket */
    struct log_limit log_global_limited; /* refused by the global bucket */
    struct log_limit log_refused;        /* over --max-connections */
    bool shutting_down;
    bool loopback; /* listening on a loopback address only */
    struct auth_token auth;
    char *scratch; /* the shared read buffer */
    size_t scratch_cap;
    struct buf_pool out_pool; /* reply storage between uses */
    char addr_text[300];      /* "HOST:PORT" as bound */
};

/*
 * Binds and listens as cfg says. 0, or a negative errno with a one-line
 * reason naming the address in err.
 */
int server_new(struct server **out, const struct config *cfg, char *err,
               size_t errlen);

/* Serves until shutdown. 0, or a negative errno if the loop failed. */
int server_run(struct server *s);

void server_free(struct server *s);

/* Begins the shutdown: stop accepting and reading, flush, then stop. */
void server_shutdown(struct server *s, const char *why);

/* Runs one request line for c. Returns false when the line must stay
 * buffered because c now waits for rate-limit tokens. */
bool server_run_line(struct server *s, struct conn *c, const char *line,
                     size_t len);

/* Arms the store timer for the store's next deadline. */
void server_arm_store_timer(struct server *s);

/* Called by a connection as it closes. */
void server_conn_closed(struct server *s, struct conn *c);

#endif
