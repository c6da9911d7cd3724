/*
 * net: non-blocking connect with a timeout; see net.h. TCP_NODELAY is set
 * because the bench writes small request lines and waits for the replies:
 * Nagle's algorithm would hold a pipeline's tail back for a whole delayed
 * ACK and the bench would time its own socket, not the server.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int try_addr(const struct addrinfo *ai, int timeout_ms)
{
    int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
               ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto out_errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            goto out_errno;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, timeout_ms);
        if (n < 0)
            goto out_errno;
        if (n == 0) {
            close(fd);
            return -ETIMEDOUT;
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            goto out_errno;
        if (soerr) {
            close(fd);
            return -soerr;
        }
    }
    return fd;

out_errno:;
    int err = -errno;
    close(fd);
    return err;
}

int net_connect(const char *host, uint16_t port, int timeout_ms)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    struct addrinfo *res;
    char service[8];

    snprintf(service, sizeof(service), "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0)
        return -EHOSTUNREACH;
    int rc = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = try_addr(ai, timeout_ms);
        if (rc >= 0)
            break;
    }
    freeaddrinfo(res);
    return rc;
}
