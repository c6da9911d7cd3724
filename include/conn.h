/*
 * One client connection: its socket, its unparsed input, its unsent
 * replies and the reasons it may be paused.
 *
 * A connection is read only while it can run: it is not waiting for a
 * blocking GET or for rate-limit tokens, its unsent replies are under
 * --max-output, and it has not asked to quit. Input already read while it
 * was paused stays buffered (at most one read plus one partial line) and
 * runs when the pause ends. Replies are appended to `out` and written once
 * per loop iteration, so a pipeline of requests is answered with one send.
 *
 * A connection runs at most CONN_TURN_LINES requests per loop iteration,
 * then yields: the rest of its input waits on the server's ready list
 * while other connections' events and the timers run.
 */
#ifndef RLMQ_CONN_H
#define RLMQ_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bucket.h"
#include "buf.h"
#include "framer.h"
#include "list.h"
#include "loop.h"
#include "store.h"

struct server;

#define CONN_TAG_MAX 32

/* Requests one connection runs before the others get their turn. One
 * read can hold over ten thousand short requests; run together, they kept
 * every other client waiting for up to 10 ms (bench/storm.sh). 256 short
 * requests take about 0.1 ms. */
#define CONN_TURN_LINES 256

enum conn_hold {
    CONN_RUNNING,
    CONN_HELD_WAIT,  /* a GET with wait_ms is not answered yet */
    CONN_HELD_SHAPE, /* the next line waits for rate-limit tokens */
};

struct conn {
    struct loop_io io;
    struct server *srv;
    struct list node;  /* on the server's list of connections */
    struct list ready; /* on the list of connections with input to run */
    struct list dirty; /* on the list of connections with replies to send */
    struct buf in;
    struct buf out;
    struct framer framer;
    struct loop_timer timer; /* the GET wait or the shaping delay */
    struct bucket bucket;
    struct store_owner owner;
    uint64_t id;
    enum conn_hold hold;
    bool authed;   /* AUTH succeeded, or no token is set */
    bool eof;      /* the peer will send nothing more */
    bool quitting; /* close once the replies are out */
    uint8_t wait_tag_len;
    char wait_tag[CONN_TAG_MAX]; /* tag of the GET being waited on */
};

/* Takes ownership of fd. 0 or a negative errno (then fd is closed). */
int conn_new(struct server *srv, int fd, struct conn **out);

/* Closes at once; unsent replies are dropped. Safe to call twice. */
void conn_close(struct conn *c);

/* Appends one reply line: "[tag ]text\n". */
void conn_reply(struct conn *c, const char *tag, size_t tag_len,
                const char *text, size_t len);

/* Appends one reply made of two pieces, for replies that carry a payload. */
void conn_reply2(struct conn *c, const char *tag, size_t tag_len,
                 const char *head, size_t head_len, const char *tail,
                 size_t tail_len);

/* Runs buffered input until the connection pauses or runs out of lines. */
void conn_run(struct conn *c);

/* Writes what can be written now. */
void conn_flush(struct conn *c);

/* Recomputes the events the connection is watched for after its state
 * changed (paused, resumed, output pending or drained). */
void conn_update_watch(struct conn *c);

/* Ends a hold: the connection runs again on the next loop iteration. */
void conn_resume(struct conn *c);

bool conn_can_run(const struct conn *c);

#endif
