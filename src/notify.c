/*
 * The service-manager notification protocol: see notify.h. It is small
 * enough (one datagram on a Unix socket, text "KEY=VALUE" lines) that
 * linking libsystemd for it would cost more than it saves.
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (!path || !*path)
        return 0;
    size_t n = strlen(path);
    /* A path, or an abstract socket written with a leading '@'. */
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
        return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                       (struct sockaddr *)&sa, len);
    int rc = w < 0 ? -errno : 0;
    close(fd);
    return rc;
}
