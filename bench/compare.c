/*
 * ratelimmq-compare: the same work-queue cycle against RateLimMQ and
 * against beanstalkd, so the two can be compared on one machine in one
 * run.
 *
 * A cycle is: put a message, take one (a lease in RateLimMQ, a reservation
 * in beanstalkd), delete what was taken. Each connection runs cycles back
 * to back, one request in flight, for a fixed time; the result is cycles
 * per second over all connections. This is deliberately simpler than
 * ratelimmq-bench: it speaks two protocols and measures throughput only.
 * It waits with epoll, whose cost does not grow with the number of
 * connections as poll()'s does, so that at 50 connections the client is
 * not what limits the server it measures.
 *
 *   ratelimmq-compare rlmq|beanstalkd PORT CONNECTIONS SECONDS [PAYLOAD]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024

enum step { STEP_PUT, STEP_TAKE, STEP_DELETE };

struct client {
    int fd;
    enum step step;
    char id[32];
    size_t len;
    char in[8192];
};

static bool beanstalk;
static char payload[4096];
static size_t payload_len = 64;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "ratelimmq-compare: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("send");
        }
        p += w;
        n -= (size_t)w;
    }
}

static void send_step(struct client *c)
{
    char req[4200];
    int n;

    switch (c->step) {
    case STEP_PUT:
        n = beanstalk ? snprintf(req, sizeof(req), "put 0 0 60 %zu\r\n%s\r\n",
                                 payload_len, payload)
                      : snprintf(req, sizeof(req), "PUT q %s\n", payload);
        break;
    case STEP_TAKE:
        n = snprintf(req, sizeof(req), "%s",
                     beanstalk ? "reserve-with-timeout 0\r\n" : "GET q\n");
        break;
    default:
        n = snprintf(req, sizeof(req), beanstalk ? "delete %s\r\n" : "ACK %s\n",
                     c->id);
        break;
    }
    send_all(c->fd, req, (size_t)n);
}

/* Consumes one complete reply from c->in if there is one; returns true
 * and advances the cycle when it did. */
static bool take_reply(struct client *c, uint64_t *cycles)
{
    char *lf = memchr(c->in, '\n', c->len);
    if (!lf)
        return false;
    size_t line = (size_t)(lf - c->in) + 1;
    size_t used = line;
    if (c->step == STEP_TAKE) {
        if (beanstalk && strncmp(c->in, "RESERVED ", 9) == 0) {
            /* RESERVED <id> <bytes>\r\n<data>\r\n */
            unsigned long long id, bytes;
            if (sscanf(c->in + 9, "%llu %llu", &id, &bytes) != 2)
                goto bad;
            used = line + (size_t)bytes + 2;
            if (c->len < used)
                return false;
            snprintf(c->id, sizeof(c->id), "%llu", id);
            c->step = STEP_DELETE;
        } else if (!beanstalk && strncmp(c->in, "MSG ", 4) == 0) {
            size_t n = strcspn(c->in + 4, " ");
            if (n == 0 || n >= sizeof(c->id))
                goto bad;
            memcpy(c->id, c->in + 4, n);
            c->id[n] = '\0';
            c->step = STEP_DELETE;
        } else if (strncmp(c->in, beanstalk ? "TIMED_OUT" : "EMPTY",
                           beanstalk ? 9 : 5) == 0) {
            c->step = STEP_PUT; /* another client took it: start over */
        } else {
            goto bad;
        }
    } else if (c->step == STEP_PUT) {
        if (strncmp(c->in, beanstalk ? "INSERTED " : "OK ", beanstalk ? 9 : 3))
            goto bad;
        c->step = STEP_TAKE;
    } else {
        if (strncmp(c->in, beanstalk ? "DELETED" : "OK", beanstalk ? 7 : 2))
            goto bad;
        c->step = STEP_PUT;
        (*cycles)++;
    }
    memmove(c->in, c->in + used, c->len - used);
    c->len -= used;
    return true;
bad:
    fprintf(stderr, "ratelimmq-compare: unexpected reply '%.*s'\n",
            (int)(line - 1), c->in);
    exit(1);
}

int main(int argc, char **argv)
{
    static struct client cl[MAX_CONNS];
    static struct epoll_event evs[MAX_CONNS];

    if (argc < 5 || argc > 6 ||
        (strcmp(argv[1], "rlmq") && strcmp(argv[1], "beanstalkd"))) {
        fprintf(stderr, "usage: ratelimmq-compare rlmq|beanstalkd PORT "
                        "CONNECTIONS SECONDS [PAYLOAD_BYTES]\n");
        return 2;
    }
    beanstalk = strcmp(argv[1], "beanstalkd") == 0;
    int port = atoi(argv[2]);
    int nconn = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (argc == 6)
        payload_len = (size_t)atol(argv[5]);
    if (port <= 0 || nconn < 1 || nconn > MAX_CONNS || seconds <= 0 ||
        payload_len < 1 || payload_len >= sizeof(payload)) {
        fprintf(stderr, "ratelimmq-compare: bad argument\n");
        return 2;
    }
    memset(payload, 'x', payload_len);

    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    for (int i = 0; i < nconn; i++) {
        int one = 1;
        cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        if (cl[i].fd < 0 ||
            connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
            die("connect");
        setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cl[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) < 0)
            die("epoll_ctl");
        send_step(&cl[i]);
    }

    uint64_t cycles = 0;
    uint64_t start = now_ns();
    uint64_t end = start + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) {
        int r = epoll_wait(ep, evs, nconn, 100);
        if (r < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < r; i++) {
            struct client *c = evs[i].data.ptr;
            ssize_t n = recv(c->fd, c->in + c->len, sizeof(c->in) - c->len, 0);
            if (n <= 0)
                die("recv");
            c->len += (size_t)n;
            bool sent = false;
            while (take_reply(c, &cycles))
                sent = true;
            if (sent)
                send_step(c);
        }
    }
    double took = (double)(now_ns() - start) / 1e9;
    printf("%s connections=%d seconds=%.2f cycles=%llu cycles_per_s=%.0f\n",
           argv[1], nconn, took, (unsigned long long)cycles,
           (double)cycles / took);
    return 0;
}
