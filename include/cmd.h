/*
 * The command dispatcher: splits a request line into its tag and words,
 * finds the command in a const table, checks the number of arguments and
 * runs the command's handler, which writes exactly one reply (now, or later
 * for a GET that waits).
 */
#ifndef RLMQ_CMD_H
#define RLMQ_CMD_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct server;

enum cmd_status {
    CMD_DONE,     /* answered */
    CMD_HOLD,     /* will be answered later; run nothing more until then */
    CMD_QUIT,     /* answered; close the connection once it is written */
    CMD_SHUTDOWN, /* answered; shut the server down */
};

/* The longest tag after its '@'. */
#define CMD_TAG_MAX 32

/*
 * Finds the request tag at the start of line. Returns the tag's length
 * with its '@' (0 when the line has no tag) and sets *tag, or -1 when the
 * first word starts with '@' but is not a well-formed tag.
 */
int cmd_parse_tag(const char *line, size_t len, const char **tag);

/* Runs one request line (not empty, not over-long) for c. */
enum cmd_status cmd_execute(struct server *s, struct conn *c, const char *line,
                            size_t len);

/* Answers the line with an error that does not depend on its command
 * (line too long, rate limited), echoing its tag when it has a good one. */
void cmd_reply_error(struct conn *c, const char *line, size_t len,
                     const char *text);

/* Ends the GET that c waits in before its time is up, answering EMPTY as
 * if it had run out: the peer has stopped sending, and a consumer that is
 * gone must not be handed a message. */
void cmd_end_wait(struct conn *c);

/* The store's delivery callback: a message was leased to a connection
 * waiting in GET; answer that GET and let the connection run again. */
struct store_owner;
struct store_msg;
void cmd_deliver(void *ctx, struct store_owner *o, const struct store_msg *m);

#endif
