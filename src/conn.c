/*
 * Client connections: see conn.h.
 *
 * Most requests arrive whole in one read, so input is first read into the
 * server's shared scratch buffer and only the unfinished tail of it (at
 * most one partial line, or the lines left when the connection paused) is
 * copied into the connection's own buffer. An idle connection therefore
 * owns no buffer at all.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "server.h"

/* Bytes read at once into a connection's own buffer. */
#define CONN_READ_CHUNK 16384

static void conn_on_io(struct loop *l, struct loop_io *io, unsigned events);

int conn_new(struct server *srv, int fd, struct conn **out)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    int one = 1;
    /* Replies are small and already batched per iteration; Nagle would
     * only add delay. A failure here costs latency, not correctness. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    c->srv = srv;
    c->id = ++srv->next_conn_id;
    c->authed = srv->auth.len == 0;
    loop_io_init(&c->io, fd, conn_on_io, c);
    list_init(&c->node);
    list_init(&c->ready);
    list_init(&c->dirty);
    buf_init(&c->in);
    buf_init(&c->out);
    framer_init(&c->framer, srv->cfg.max_line);
    loop_timer_init(&c->timer, NULL, c);
    bucket_init(&c->bucket, srv->cfg.client_rate, srv->cfg.client_burst,
                loop_now(srv->loop));
    store_owner_init(&c->owner);
    c->hold = CONN_RUNNING;

    int rc = loop_io_watch(srv->loop, &c->io, LOOP_READ);
    if (rc < 0) {
        close(fd);
        free(c);
        return rc;
    }
    list_push_back(&srv->conns, &c->node);
    *out = c;
    return 0;
}

static void conn_free(struct loop_io *io)
{
    struct conn *c = io->arg;
    buf_release(&c->in);
    buf_pool_give(&c->srv->out_pool, &c->out);
    free(c);
}

void conn_close(struct conn *c)
{
    struct server *s = c->srv;
    if (c->io.closing)
        return;
    loop_timer_stop(s->loop, &c->timer);
    list_unlink(&c->node);
    list_unlink(&c->ready);
    list_unlink(&c->dirty);
    if (c->hold == CONN_HELD_SHAPE)
        s->stats.held--;
    c->hold = CONN_RUNNING;
    server_conn_closed(s, c);
    loop_io_close(s->loop, &c->io, conn_free);
}

bool conn_can_run(const struct conn *c)
{
    return !c->io.closing && c->hold == CONN_RUNNING && !c->quitting &&
           c->out.len < c->srv->cfg.max_output && !c->srv->shutting_down;
}

static void mark_dirty(struct conn *c)
{
    if (!list_linked(&c->dirty))
        list_push_back(&c->srv->dirty, &c->dirty);
}

static bool reply_reserve(struct conn *c, size_t n)
{
    if (c->io.closing)
        return false;
    buf_pool_take(&c->srv->out_pool, &c->out);
    if (buf_reserve(&c->out, n) < 0) {
        LOG(LOG_ERROR, "connection %llu: out of memory for a reply; closing",
            (unsigned long long)c->id);
        conn_close(c);
        return false;
    }
    mark_dirty(c);
    return true;
}

static void put_tag(struct buf *b, const char *tag, size_t tag_len)
{
    if (tag_len) {
        memcpy(b->data + b->len, tag, tag_len);
        b->data[b->len + tag_len] = ' ';
        b->len += tag_len + 1;
    }
}

void conn_reply(struct conn *c, const char *tag, size_t tag_len,
                const char *text, size_t len)
{
    if (!reply_reserve(c, tag_len + 1 + len + 1))
        return;
    put_tag(&c->out, tag, tag_len);
    memcpy(c->out.data + c->out.len, text, len);
    c->out.len += len;
    c->out.data[c->out.len++] = '\n';
}

void conn_reply2(struct conn *c, const char *tag, size_t tag_len,
                 const char *head, size_t head_len, const char *tail,
                 size_t tail_len)
{
    if (!reply_reserve(c, tag_len + 1 + head_len + tail_len + 1))
        return;
    put_tag(&c->out, tag, tag_len);
    memcpy(c->out.data + c->out.len, head, head_len);
    c->out.len += head_len;
    memcpy(c->out.data + c->out.len, tail, tail_len);
    c->out.len += tail_len;
    c->out.data[c->out.len++] = '\n';
}

/* Runs the complete lines of data[0..len) while the connection can run and
 * returns how many bytes were used up; the rest must be kept. */
static size_t conn_feed(struct conn *c, const char *data, size_t len)
{
    size_t used = 0;
    unsigned lines = 0;

    while (used < len && conn_can_run(c)) {
        if (lines == CONN_TURN_LINES) {
            conn_resume(c); /* the rest runs on the next iteration */
            break;
        }
        lines++;
        struct frame f = framer_next(&c->framer, data + used, len - used);
        if (f.kind == FRAME_NEED_MORE) {
            used += f.consumed;
            break;
        }
        if (f.kind == FRAME_TOO_LONG) {
            cmd_reply_error(c, f.line, f.len, "ERR line too long");
            used += f.consumed;
            continue;
        }
        if (!server_run_line(c->srv, c, f.line, f.len))
            break;
        used += f.consumed;
    }
    return used;
}

/* A connection whose peer has finished sending, or that asked to quit, is
 * closed once every line it sent has run and every reply is written. The
 * end of input is seen only by a read, and a connection that used up its
 * turn reads again only after its last buffered line has run. */
static void conn_maybe_finish(struct conn *c)
{
    if (c->io.closing || c->out.len > 0)
        return;
    if (c->quitting || c->srv->shutting_down || (c->eof && conn_can_run(c)))
        conn_close(c);
}

void conn_update_watch(struct conn *c)
{
    if (c->io.closing)
        return;
    unsigned want = 0;
    /* A connection due to run from the ready list reads after that run,
     * once the input it already holds is used up. */
    if (conn_can_run(c) && !c->eof && !list_linked(&c->ready))
        want |= LOOP_READ;
    /* Not reading while a GET waits, but a peer that stops sending ends
     * the wait: otherwise a consumer that closed would still take a
     * message, and spend one of its delivery attempts. */
    if (c->hold == CONN_HELD_WAIT && !c->eof)
        want |= LOOP_PEER_SHUT;
    if (c->out.len > 0 && !list_linked(&c->dirty))
        want |= LOOP_WRITE;
    int rc = loop_io_watch(c->srv->loop, &c->io, want);
    if (rc < 0) {
        LOG(LOG_ERROR, "connection %llu: cannot update its events: %s",
            (unsigned long long)c->id, strerror(-rc));
        conn_close(c);
    }
}

void conn_run(struct conn *c)
{
    if (c->in.len > 0 && conn_can_run(c)) {
        size_t used = conn_feed(c, c->in.data, c->in.len);
        if (!c->io.closing)
            buf_consume(&c->in, used);
    }
    conn_maybe_finish(c);
    conn_update_watch(c);
}

void conn_resume(struct conn *c)
{
    if (c->io.closing)
        return;
    if (!list_linked(&c->ready))
        list_push_back(&c->srv->ready, &c->ready);
}

void conn_flush(struct conn *c)
{
    if (c->io.closing)
        return;
    list_unlink(&c->dirty);
    if (c->out.len > 0) {
        bool was_full = c->out.len >= c->srv->cfg.max_output;
        ssize_t n = send(c->io.fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            LOG(LOG_DEBUG, "connection %llu: send: %s",
                (unsigned long long)c->id, strerror(errno));
            conn_close(c);
            return;
        }
        if (n > 0 && (size_t)n == c->out.len)
            buf_pool_give(&c->srv->out_pool, &c->out);
        else if (n > 0)
            buf_consume(&c->out, (size_t)n);
        if (was_full && conn_can_run(c))
            conn_resume(c);
    }
    conn_maybe_finish(c);
    conn_update_watch(c);
}

static void conn_read(struct conn *c)
{
    struct server *s = c->srv;
    ssize_t n;

    if (!conn_can_run(c) || c->eof)
        return;
    if (c->in.len == 0) {
        n = recv(c->io.fd, s->scratch, s->scratch_cap, 0);
        if (n > 0) {
            size_t used = conn_feed(c, s->scratch, (size_t)n);
            if (!c->io.closing && used < (size_t)n &&
                buf_append(&c->in, s->scratch + used, (size_t)n - used) < 0) {
                LOG(LOG_ERROR, "connection %llu: out of memory for input",
                    (unsigned long long)c->id);
                conn_close(c);
                return;
            }
        }
    } else {
        /* Lines left over from a pause run before anything new is read, so
         * the buffer holds at most one partial line plus one read. */
        size_t used = conn_feed(c, c->in.data, c->in.len);
        if (c->io.closing)
            return;
        buf_consume(&c->in, used);
        if (!conn_can_run(c) || list_linked(&c->ready)) {
            conn_maybe_finish(c);
            conn_update_watch(c);
            return;
        }
        if (buf_reserve(&c->in, CONN_READ_CHUNK) < 0) {
            LOG(LOG_ERROR, "connection %llu: out of memory for input",
                (unsigned long long)c->id);
            conn_close(c);
            return;
        }
        n = recv(c->io.fd, c->in.data + c->in.len, CONN_READ_CHUNK, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            used = conn_feed(c, c->in.data, c->in.len);
            if (!c->io.closing)
                buf_consume(&c->in, used);
        }
    }
    if (c->io.closing)
        return;
    if (n == 0) {
        c->eof = true;
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
               errno != EINTR) {
        LOG(LOG_DEBUG, "connection %llu: recv: %s", (unsigned long long)c->id,
            strerror(errno));
        conn_close(c);
        return;
    }
    conn_maybe_finish(c);
    conn_update_watch(c);
}

static void conn_on_io(struct loop *l, struct loop_io *io, unsigned events)
{
    struct conn *c = io->arg;
    (void)l;
    if (events & LOOP_ERROR) {
        /* A reset or error: nothing more can be delivered either way. */
        conn_close(c);
        return;
    }
    if ((events & LOOP_PEER_SHUT) && c->hold == CONN_HELD_WAIT)
        cmd_end_wait(c);
    if (events & LOOP_WRITE)
        conn_flush(c);
    if ((events & LOOP_READ) && !c->io.closing)
        conn_read(c);
}
