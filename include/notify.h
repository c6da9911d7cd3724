/*
 * Telling a service manager (systemd's Type=notify) that the daemon is
 * ready or stopping: one datagram to the socket named by $NOTIFY_SOCKET.
 * Without that variable nothing is sent, so the daemon behaves the same
 * under any supervisor or none.
 */
#ifndef RLMQ_NOTIFY_H
#define RLMQ_NOTIFY_H

/* Sends state ("READY=1", "STOPPING=1", ...) when $NOTIFY_SOCKET is set.
 * 0 when sent or not asked for, or a negative errno. */
int notify_send(const char *state);

#endif
