/*
 * Worker threads: each owns one libevent event_base and the connections
 * the listener hands it, and runs their commands from start to finish.
 *
 * A connection never changes thread, so its buffers and parser need no
 * lock; workers share only the store (thread-safe) and atomic counters.
 *
 * Hand-off: the listener (main thread) writes the accepted fd, as an int,
 * into the worker's pipe; the worker's event loop wakes on the pipe's read
 * end. A pipe rather than a locked queue plus eventfd: writes of an int are
 * atomic (under PIPE_BUF), the kernel is the queue, the message carries the
 * fd itself and needs no allocation, and libevent watches a pipe with no
 * extra machinery. One syscall per accept is noise next to accept() itself.
 * The value -1 asks the worker to stop; since the pipe is FIFO, every fd
 * handed off before it is served first.
 */
#ifndef KVS_SERVER_WORKER_H
#define KVS_SERVER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/slice.h"
#include "server.h"

struct event_base;
struct event;
struct conn;

struct worker {
    struct server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    int notify_rd, notify_wr; /* the hand-off pipe */
    struct event *notify_ev;
    struct event *cron_ev;     /* once a second: clock, idle timeouts */
    struct event *deadline_ev; /* armed by a stop: force-closes what lingers */
    struct conn *conns;        /* open connections, most recent first */
    size_t nconns;
    bool stopping;
    int64_t now;               /* CLOCK_MONOTONIC seconds, refreshed by cron */
    kvs_buf scratch;           /* values read by commands before they are copied out */
    struct server_stats stats; /* written by this worker only */
};

/* Create the event base, pipe and events. Main thread. Returns 0 or -1. */
int worker_init(struct worker *w, struct server *srv, unsigned index);

/* Start the thread. Main thread. Returns 0 or an errno value. */
int worker_start(struct worker *w);

/* Give an accepted socket to the worker. Listener thread. Returns 0, or
   -1 when the worker's pipe is full (the caller closes the socket). */
int worker_hand_off(struct worker *w, int fd);

/* Ask the worker to finish its connections and exit. Main thread. */
void worker_stop(struct worker *w);

/* Wait for a stopped worker's thread, then free everything; also for a
   worker that never started. Main thread. */
void worker_destroy(struct worker *w);

/* Called by conn_free() after unlinking a connection. Worker thread. */
void worker_conn_gone(struct worker *w);

#endif
