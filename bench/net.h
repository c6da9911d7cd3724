/*
 * net: opens the bench's client sockets.
 *
 * Connections are opened one at a time before a run starts, so a blocking
 * wait (bounded by a timeout) is simpler than folding connects into the
 * event loop, and it keeps connection set-up out of the measured time.
 */
#ifndef RLMQ_BENCH_NET_H
#define RLMQ_BENCH_NET_H

#include <stdint.h>

/*
 * Connects to host:port within timeout_ms and returns a non-blocking
 * socket with TCP_NODELAY set, or -errno (-EHOSTUNREACH when the name
 * does not resolve, -ETIMEDOUT when the connect does not finish).
 */
int net_connect(const char *host, uint16_t port, int timeout_ms);

#endif
