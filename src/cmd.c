/*
 * The command table and one short handler per command.
 *
 * A line is: an optional tag ("@" and 1 to 32 bytes of A-Z a-z 0-9 _ - . :),
 * the command name (matched exactly, ignoring case), and its arguments,
 * separated by runs of spaces or tabs. PUT's payload is the exception: it
 * is everything after the one separator that follows the queue name, so a
 * payload keeps its spaces byte for byte.
 */
#include "cmd.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "conn.h"
#include "server.h"
#include "store.h"

#define CMD_MAX_WORDS 4
#define MS_MAX        3600000u

struct word {
    const char *p;
    size_t len;
};

struct cmd_call {
    struct server *srv;
    struct conn *conn;
    const char *tag;
    size_t tag_len;
    size_t argc; /* words after the command name */
    struct word argv[CMD_MAX_WORDS];
};

typedef enum cmd_status cmd_fn(struct cmd_call *call);

struct cmd_def {
    const char *name; /* upper-case letters only */
    unsigned char len;
    unsigned char min_args;
    unsigned char max_args;
    bool rest;    /* the last argument runs to the end of the line */
    bool no_auth; /* allowed before AUTH */
    cmd_fn *fn;
};

static cmd_fn do_ping, do_quit, do_shutdown, do_help, do_auth, do_stats, do_put,
    do_get, do_ack, do_nack, do_touch;

#define CMD_NAME(s) s, sizeof(s) - 1

static const struct cmd_def commands[] = {
    {CMD_NAME("PING"), 0, 0, false, true, do_ping},
    {CMD_NAME("QUIT"), 0, 0, false, true, do_quit},
    {CMD_NAME("SHUTDOWN"), 0, 0, false, false, do_shutdown},
    {CMD_NAME("HELP"), 0, 0, false, false, do_help},
    {CMD_NAME("AUTH"), 1, 1, false, true, do_auth},
    {CMD_NAME("STATS"), 0, 1, false, false, do_stats},
    {CMD_NAME("PUT"), 2, 2, true, false, do_put},
    {CMD_NAME("GET"), 1, 2, false, false, do_get},
    {CMD_NAME("ACK"), 1, 1, false, false, do_ack},
    {CMD_NAME("NACK"), 1, 2, false, false, do_nack},
    {CMD_NAME("TOUCH"), 1, 1, false, false, do_touch},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Case-insensitive match of a request word against a command name. Since
 * names are letters only, OR-ing in the ASCII case bit folds exactly the
 * two cases of each letter together and matches nothing else. */
static bool name_matches(const char *name, const char *word, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((word[i] | 0x20) != (name[i] | 0x20))
            return false;
    }
    return true;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_tag_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.' ||
           ch == ':';
}

int cmd_parse_tag(const char *line, size_t len, const char **tag)
{
    size_t i = 0;
    while (i < len && is_space(line[i]))
        i++;
    if (i == len || line[i] != '@')
        return 0;
    size_t start = i++;
    while (i < len && !is_space(line[i])) {
        if (!is_tag_char(line[i]))
            return -1;
        i++;
    }
    size_t n = i - start - 1;
    if (n < 1 || n > CMD_TAG_MAX)
        return -1;
    *tag = line + start;
    return (int)(n + 1);
}

static void reply(struct cmd_call *call, const char *text)
{
    conn_reply(call->conn, call->tag, call->tag_len, text, strlen(text));
}

void cmd_reply_error(struct conn *c, const char *line, size_t len,
                     const char *text)
{
    const char *tag = NULL;
    int n = cmd_parse_tag(line, len, &tag);
    conn_reply(c, tag, n > 0 ? (size_t)n : 0, text, strlen(text));
}

/* Parses a decimal number with no sign; false on anything else or on
 * overflow past max. */
static bool parse_u64(const struct word *w, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (w->len == 0 || w->len > 20)
        return false;
    for (size_t i = 0; i < w->len; i++) {
        char ch = w->p[i];
        if (ch < '0' || ch > '9')
            return false;
        unsigned d = (unsigned)(ch - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static size_t fmt_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

enum cmd_status cmd_execute(struct server *s, struct conn *c, const char *line,
                            size_t len)
{
    struct cmd_call call = {.srv = s, .conn = c};
    const char *end = line + len;
    const char *p = line;

    int t = cmd_parse_tag(line, len, &call.tag);
    if (t < 0) {
        conn_reply(c, NULL, 0, "ERR bad tag", 11);
        return CMD_DONE;
    }
    call.tag_len = (size_t)t;
    if (t > 0)
        p = call.tag + t;

    while (p < end && is_space(*p))
        p++;
    const char *name = p;
    while (p < end && !is_space(*p))
        p++;
    size_t name_len = (size_t)(p - name);

    const struct cmd_def *def = NULL;
    for (size_t i = 0; i < NCOMMANDS && !def; i++) {
        if (commands[i].len == name_len &&
            name_matches(commands[i].name, name, name_len))
            def = &commands[i];
    }
    if (!def) {
        reply(&call, "ERR unknown command");
        return CMD_DONE;
    }
    if (!c->authed && !def->no_auth) {
        reply(&call, "ERR auth required");
        return CMD_DONE;
    }

    while (call.argc < CMD_MAX_WORDS) {
        struct word *w = &call.argv[call.argc];
        if (def->rest && call.argc > 0 && call.argc + 1 == def->max_args) {
            /* The payload starts after exactly one separator and may
             * itself start or end with spaces. */
            const struct word *prev = &call.argv[call.argc - 1];
            const char *start = prev->p + prev->len + 1;
            if (start < end) {
                w->p = start;
                w->len = (size_t)(end - start);
                call.argc++;
            }
            break;
        }
        while (p < end && is_space(*p))
            p++;
        if (p == end)
            break;
        w->p = p;
        while (p < end && !is_space(*p))
            p++;
        w->len = (size_t)(p - w->p);
        call.argc++;
    }
    if (call.argc < def->min_args || call.argc > def->max_args) {
        reply(&call, "ERR bad argument");
        return CMD_DONE;
    }
    return def->fn(&call);
}

static enum cmd_status do_ping(struct cmd_call *call)
{
    reply(call, "PONG");
    return CMD_DONE;
}

static enum cmd_status do_quit(struct cmd_call *call)
{
    reply(call, "BYE");
    return CMD_QUIT;
}

static enum cmd_status do_shutdown(struct cmd_call *call)
{
    if (call->srv->cfg.no_shutdown) {
        reply(call, "ERR shutdown disabled");
        return CMD_DONE;
    }
    reply(call, "BYE");
    return CMD_SHUTDOWN;
}

/* With no token set every connection is already authenticated, and AUTH
 * answers OK whatever it is given: there is nothing to refuse. A wrong
 * token on a connection that already authenticated is refused but does
 * not undo the earlier AUTH. */
static enum cmd_status do_auth(struct cmd_call *call)
{
    const struct auth_token *t = &call->srv->auth;
    const struct word *w = &call->argv[0];
    if (t->len > 0 && !auth_check(t, w->p, w->len)) {
        reply(call, "ERR auth failed");
        return CMD_DONE;
    }
    call->conn->authed = true;
    reply(call, "OK");
    return CMD_DONE;
}

static enum cmd_status do_help(struct cmd_call *call)
{
    char text[256] = "OK";
    size_t n = 2;
    for (size_t i = 0; i < NCOMMANDS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, " %s",
                              commands[i].name);
    reply(call, text);
    return CMD_DONE;
}

/* A reply built of key=value pairs. */
struct kv_line {
    char text[1024];
    size_t len;
};

static void kv(struct kv_line *l, const char *key, uint64_t v)
{
    size_t k = strlen(key);
    if (l->len + k + 23 > sizeof(l->text))
        return;
    l->text[l->len++] = ' ';
    memcpy(l->text + l->len, key, k);
    l->len += k;
    l->text[l->len++] = '=';
    l->len += fmt_u64(l->text + l->len, v);
}

static enum cmd_status do_stats_queue(struct cmd_call *call)
{
    const struct word *q = &call->argv[0];
    struct store_queue_stats qs;
    struct kv_line l = {.len = 0};

    if (!store_name_valid(q->p, q->len)) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    store_queue_stats(call->srv->store, q->p, q->len, loop_now(call->srv->loop),
                      &qs);
    memcpy(l.text, "STATS queue=", 12);
    memcpy(l.text + 12, q->p, q->len);
    l.len = 12 + q->len;
    kv(&l, "ready", qs.ready);
    kv(&l, "delayed", qs.delayed);
    kv(&l, "leased", qs.leased);
    kv(&l, "put", qs.put);
    kv(&l, "delivered", qs.delivered);
    kv(&l, "acked", qs.acked);
    kv(&l, "nacked", qs.nacked);
    kv(&l, "expired", qs.expired);
    kv(&l, "dead_lettered", qs.dead_lettered);
    kv(&l, "waiting", qs.waiting);
    kv(&l, "oldest_ready_age_ms", qs.oldest_ready_age_ms);
    conn_reply(call->conn, call->tag, call->tag_len, l.text, l.len);
    return CMD_DONE;
}

static enum cmd_status do_stats(struct cmd_call *call)
{
    struct server *s = call->srv;
    struct store_stats st;
    struct kv_line l = {.text = "STATS", .len = 5};

    if (call->argc == 1)
        return do_stats_queue(call);
    store_stats(s->store, &st);
    kv(&l, "uptime_s", (loop_now(s->loop) - s->started_ns) / 1000000000u);
    kv(&l, "connections", s->stats.connections);
    kv(&l, "connections_total", s->stats.connections_total);
    kv(&l, "rejected_connections", s->stats.rejected_connections);
    kv(&l, "requests", s->stats.requests);
    kv(&l, "rate_limited", s->stats.rate_limited);
    kv(&l, "shaped", s->stats.shaped);
    kv(&l, "held", s->stats.held);
    kv(&l, "queues", st.queues);
    kv(&l, "messages", st.messages);
    kv(&l, "bytes", st.bytes);
    kv(&l, "ready", st.ready);
    kv(&l, "delayed", st.delayed);
    kv(&l, "leased", st.leased);
    kv(&l, "dead", st.dead);
    kv(&l, "put", st.put);
    kv(&l, "delivered", st.delivered);
    kv(&l, "acked", st.acked);
    kv(&l, "nacked", st.nacked);
    kv(&l, "expired", st.expired);
    kv(&l, "dead_lettered", st.dead_lettered);
    kv(&l, "waiting", st.waiting);
    conn_reply(call->conn, call->tag, call->tag_len, l.text, l.len);
    return CMD_DONE;
}

static void reply_id(struct cmd_call *call, const char *head, uint64_t id)
{
    char text[32];
    size_t n = strlen(head);
    memcpy(text, head, n);
    n += fmt_u64(text + n, id);
    conn_reply(call->conn, call->tag, call->tag_len, text, n);
}

static enum cmd_status do_put(struct cmd_call *call)
{
    const struct word *q = &call->argv[0];
    const struct word *payload = &call->argv[1];
    uint64_t id;

    if (!store_name_valid(q->p, q->len) || payload->len == 0) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    int rc = store_put(call->srv->store, q->p, q->len, payload->p, payload->len,
                       loop_now(call->srv->loop), &id);
    if (rc < 0) {
        /* Out of memory is reported as a full queue: the message was not
         * taken and the client may retry, which is what both mean. */
        reply(call, "ERR queue full");
        return CMD_DONE;
    }
    reply_id(call, "OK ", id);
    return CMD_DONE;
}

/* Writes "MSG <id> <attempt> <payload>" for a message just leased. */
static void reply_msg(struct conn *c, const char *tag, size_t tag_len,
                      const struct store_msg *m)
{
    char head[64] = "MSG ";
    size_t n = 4;
    n += fmt_u64(head + n, m->id);
    head[n++] = ' ';
    n += fmt_u64(head + n, m->attempt);
    head[n++] = ' ';
    conn_reply2(c, tag, tag_len, head, n, m->payload, m->len);
}

void cmd_end_wait(struct conn *c)
{
    assert(c->hold == CONN_HELD_WAIT);
    loop_timer_stop(c->srv->loop, &c->timer);
    store_cancel_wait(c->srv->store, &c->owner);
    conn_reply(c, c->wait_tag, c->wait_tag_len, "EMPTY", 5);
    c->hold = CONN_RUNNING;
    conn_resume(c);
}

static void wait_expired(struct loop *l, struct loop_timer *t)
{
    (void)l;
    cmd_end_wait(t->arg);
}

void cmd_deliver(void *ctx, struct store_owner *o, const struct store_msg *m)
{
    struct conn *c = LIST_ENTRY(o, struct conn, owner);
    (void)ctx;
    loop_timer_stop(c->srv->loop, &c->timer);
    reply_msg(c, c->wait_tag, c->wait_tag_len, m);
    c->hold = CONN_RUNNING;
    conn_resume(c);
}

static enum cmd_status do_get(struct cmd_call *call)
{
    struct server *s = call->srv;
    struct conn *c = call->conn;
    const struct word *q = &call->argv[0];
    uint64_t wait_ms = 0;
    struct store_msg m;

    if (!store_name_valid(q->p, q->len) ||
        (call->argc == 2 && !parse_u64(&call->argv[1], MS_MAX, &wait_ms))) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    uint64_t now = loop_now(s->loop);
    int rc = store_get(s->store, &c->owner, q->p, q->len, now, &m);
    if (rc == 0) {
        reply_msg(c, call->tag, call->tag_len, &m);
        return CMD_DONE;
    }
    if (wait_ms == 0 || store_wait(s->store, &c->owner, q->p, q->len) < 0) {
        reply(call, "EMPTY");
        return CMD_DONE;
    }
    if (call->tag_len)
        memcpy(c->wait_tag, call->tag, call->tag_len);
    c->wait_tag_len = (uint8_t)call->tag_len;
    c->timer.fn = wait_expired;
    if (loop_timer_start(s->loop, &c->timer, now + wait_ms * 1000000u) < 0) {
        store_cancel_wait(s->store, &c->owner);
        reply(call, "EMPTY");
        return CMD_DONE;
    }
    c->hold = CONN_HELD_WAIT;
    return CMD_HOLD;
}

static bool parse_id(const struct word *w, uint64_t *id)
{
    return parse_u64(w, UINT64_MAX, id);
}

static enum cmd_status do_ack(struct cmd_call *call)
{
    uint64_t id;
    if (!parse_id(&call->argv[0], &id)) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    int rc = store_ack(call->srv->store, &call->conn->owner, id);
    reply(call, rc == 0 ? "OK" : "ERR not found");
    return CMD_DONE;
}

static enum cmd_status do_nack(struct cmd_call *call)
{
    struct server *s = call->srv;
    uint64_t id, delay_ms = 0;
    if (!parse_id(&call->argv[0], &id) ||
        (call->argc == 2 && !parse_u64(&call->argv[1], MS_MAX, &delay_ms))) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    int rc = store_nack(s->store, &call->conn->owner, id, delay_ms * 1000000u,
                        loop_now(s->loop));
    reply(call, rc == 0 ? "OK" : "ERR not found");
    server_arm_store_timer(s);
    return CMD_DONE;
}

static enum cmd_status do_touch(struct cmd_call *call)
{
    struct server *s = call->srv;
    uint64_t id;
    if (!parse_id(&call->argv[0], &id)) {
        reply(call, "ERR bad argument");
        return CMD_DONE;
    }
    int rc = store_touch(s->store, &call->conn->owner, id, loop_now(s->loop));
    reply(call, rc == 0 ? "OK" : "ERR not found");
    server_arm_store_timer(s);
    return CMD_DONE;
}
