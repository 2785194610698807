/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The io_uring network path (--io-backend): one ring per worker carries the
 * receives and sends of the worker's RESP connections, so that a loop turn
 * costs one io_uring_enter() for every reply it produced, whatever the
 * number of ready connections, instead of one recv() and one send() each.
 *
 * The worker's libevent loop stays the loop: the ring's fd, readable when
 * completions wait, is one more event of the worker's base. Its callback
 * reaps the completions (no system call) and hands each to the connection
 * (conn_uring_received, conn_uring_sent in conn.h); the SQEs the turn
 * queued are submitted together after the turn's batch (uring_submit).
 *
 * Receives are single-shot recv SQEs, re-armed by the connection when it
 * wants more input, into a buffer the kernel picks from the worker's
 * provided-buffer ring at completion time (so an idle connection pins no
 * buffer); the bytes are copied into the connection's input at once and
 * the buffer given back. A connection arms at most one recv and one send
 * at a time, so back-pressure is the epoll path's: no recv is armed while
 * a send the kernel could not finish waits (conn.c).
 *
 * The kernel reads and writes memory of an operation until its completion
 * is reaped, so that memory is a struct uring_io, apart from the
 * connection: closing a connection cancels its operations and the
 * uring_io lives on, unlinked, until their completions arrive.
 *
 * Everything here runs on the worker's thread, except uring_probe (main
 * thread, at start) and uring_init/uring_free (main thread, before the
 * worker starts and after it ended).
 */
#ifndef KVS_SERVER_URING_H
#define KVS_SERVER_URING_H

#include <stdbool.h>
#include <stddef.h>

#include "kvs/slice.h"

struct worker;
struct conn;
struct uring;

/* The operations of one connection. */
struct uring_io {
    struct conn *c; /* NULL once the connection is closed */
    int fd;
    kvs_buf tx;     /* replies handed to the kernel (conn.h's out goes on filling) */
    size_t tx_sent; /* bytes of tx the kernel has taken */
    bool recv_armed, send_armed;
    bool recv_since_send;         /* a recv completed while the send waited */
    bool in_cb;                   /* its completion is being handled: not freed meanwhile */
    struct uring_io *prev, *next; /* the ring's list of closed ones still in flight */
};

/* Whether this kernel can run the io_uring path (the ring, the
   provided-buffer ring, the operations used). Returns true, or false with
   the reason in why. Main thread. */
bool uring_probe(char *why, size_t size);

/* Make the ring of worker w and add its event to w->base. Returns 0, or
   -1 with the reason in why. Main thread, before the worker starts. */
int uring_init(struct uring **up, struct worker *w, char *why, size_t size);

/* Cancel what is in flight, wait for it, free everything; NULL is
   accepted. Main thread, once the worker has ended and every connection
   is closed. */
void uring_free(struct uring *u);

/* A connection's operations on socket fd, or NULL when out of memory. */
struct uring_io *uring_io_new(struct conn *c, int fd);

/* The connection is closed: cancel its operations (submitted at once, so
   that the socket goes as soon as it is closed) and free io once nothing
   is in flight. */
void uring_io_close(struct uring *u, struct uring_io *io);

/* Queue a recv (submitted with the turn's SQEs). False when the ring
   cannot take it (the connection is then dropped). */
bool uring_recv(struct uring *u, struct uring_io *io);

/* Queue a send of io->tx from io->tx_sent, as uring_recv. */
bool uring_send(struct uring *u, struct uring_io *io);

/* Submit what the turn queued: one io_uring_enter(), none when nothing
   was queued. */
void uring_submit(struct uring *u);

/* Submit, then handle the completions already there (a stop reading what
   clients sent before it: a recv armed on a socket holding bytes
   completes within the submission). Returns how many there were. */
unsigned uring_poll(struct uring *u);

#endif
