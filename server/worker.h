/* SPDX-License-Identifier: BSD-3-Clause */
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
 * handed off before it is served first. An HTTP connection's fd travels
 * as -(fd + 2) (worker_hand_off_http), so one pipe carries both kinds.
 *
 * The batch of a turn: the loop runs one epoll turn at a time
 * (EVLOOP_ONCE). Unconditional writes (SET k v, DEL, MSET) parsed during
 * the turn, from any of the worker's connections, are not applied at once
 * but queued here, and after the turn worker_batch_run() applies them all
 * with one store_write_batch() (one append, one fsync under --fsync
 * always) and only then builds their replies, in each connection's order.
 * A connection with queued writes executes nothing else until they are
 * applied (conn.c pauses it), so a read after a write on one connection
 * sees the write, and replies never overtake each other. The ops' keys and
 * values point into the connections' input buffers, or for quoted inline
 * words into their parsers' scratch, which both stay put until the
 * connection's last queued write is answered (conn.h). HTTP requests queue
 * their writes in the same batch (worker_batch_add_arg), so that RESP and
 * HTTP writes of a turn share one append and one fsync.
 */
#ifndef KVS_SERVER_WORKER_H
#define KVS_SERVER_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "kvs/slice.h"
#include "server.h"

struct event_base;
struct event;
struct conn;
struct http_worker;
struct repl_worker;
struct uring;
struct store_txn;
struct multi_exec;
struct cmdstats;

/* Builds the reply of a batched command once its ops were applied: rc is 0
   (each op's result is set) or the error that failed the batch or, before
   it, this command. */
typedef void batch_done_fn(struct conn *c, const kvs_op *ops, size_t nops, int rc);

/* The same for a write that is not a RESP connection's (an HTTP request's):
   arg is what worker_batch_add_arg() was given. */
typedef void batch_done_arg_fn(void *arg, const kvs_op *ops, size_t nops, int rc);

/* A command waiting for the batch. */
struct batch_cmd {
    struct conn *c; /* NULL: answered by done_arg(arg, ...) */
    batch_done_fn *done;
    batch_done_arg_fn *done_arg;
    void *arg;
    size_t first, nops; /* its ops: ops[first, first + nops) */
    int err;            /* refused before the batch (a size limit): its reply */
    /* Its slot in the per-command figures (cmdstats.h) + 1, 0 for none,
       and the time its handler took to queue it. */
    unsigned stat_slot;
    uint64_t stat_ticks;
    bool mute; /* CLIENT REPLY OFF|SKIP: its reply is dropped */
};

/* Writes gathered in a turn; arrays reused from turn to turn. */
struct batch {
    kvs_op *ops;
    size_t nops, ops_cap;
    struct batch_cmd *cmds;
    size_t ncmds, cmds_cap;
};

struct worker {
    struct server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    struct event_base *base;
    int notify_rd, notify_wr; /* the hand-off pipe */
    struct event *notify_ev;
    /* The io_uring path's ring (uring.h), NULL on the epoll path. */
    struct uring *uring;
    struct event *cron_ev;     /* once a second: clock, idle timeouts */
    struct event *deadline_ev; /* armed by a stop: force-closes what lingers */
    struct conn *conns;        /* open connections, most recent first */
    size_t nconns;
    bool stopping;
    bool exiting; /* the loop is to end (event_base_loopbreak) */
    /* batches[cur] gathers this turn's writes; the other is the one being
       applied and answered, whose replies may queue writes for later. */
    struct batch batches[2];
    unsigned cur;
    int64_t now;               /* CLOCK_MONOTONIC seconds, refreshed by cron */
    kvs_buf scratch;           /* values read by commands before they are copied out */
    struct server_stats stats; /* written by this worker only */
    struct http_worker *http;  /* the worker's HTTP connections (http.h), or NULL */
    struct repl_worker *repl;  /* replica links and WAITs (repl_internal.h) */
    /* Per-command figures (cmdstats.h), written by this worker only, and
       what subcommand_dispatch() found for the running command: its
       subcommand (1 + index, 0 none, -1 unknown: not counted), its name,
       and whether the subcommand was refused (a wrong count). */
    struct cmdstats *cmdstats;
    /* The transaction EXEC (or a multi-key command) runs, else NULL; and
       the batched write its running command queued (keyspace.h,
       cmd_multi.c). reads_locked: the reads of ks_read_many()'s second
       pass hold their stripes. */
    struct store_txn *txn;
    struct multi_exec *exec;
    bool reads_locked;
    int stat_sub;
    const char *stat_sub_name;
    bool stat_rejected;
};

/* Create the event base, pipe and events. Main thread. Returns 0 or -1. */
int worker_init(struct worker *w, struct server *srv, unsigned index);

/* Start the thread. Main thread. Returns 0 or an errno value. */
int worker_start(struct worker *w);

/* Give an accepted socket to the worker. Listener thread. Returns 0, or
   -1 when the worker's pipe is full (the caller closes the socket). */
int worker_hand_off(struct worker *w, int fd);

/* Give an accepted HTTP connection to the worker, as worker_hand_off(). */
int worker_hand_off_http(struct worker *w, int fd);

/* Ask the worker to finish its connections and exit. Main thread. */
void worker_stop(struct worker *w);

/* Wait for a stopped worker's thread, then free everything; also for a
   worker that never started. Main thread. */
void worker_destroy(struct worker *w);

/* Called by conn_free() after unlinking a connection. Worker thread. */
void worker_conn_gone(struct worker *w);

/* Queue a write command of c with nops ops in the turn's batch and return
   the ops for the caller to fill (type, key, value), or NULL when out of
   memory (nothing queued). With err != 0 the command is refused and its
   done() gets err in order with the others; nops must then be 0 (the
   return value is then only NULL on failure). c->npending counts it until
   done() runs. Worker thread. */
kvs_op *worker_batch_add(struct worker *w, struct conn *c, batch_done_fn *done, size_t nops,
                         int err);

/* Queue nops ops of a write that no RESP connection waits for (an HTTP
   request), as worker_batch_add() with no refusal: done(arg, ...) runs
   once they are applied. Returns the ops, or NULL when out of memory
   (nothing queued). Worker thread. */
kvs_op *worker_batch_add_arg(struct worker *w, batch_done_arg_fn *done, void *arg, size_t nops);

/* The command c's handler just queued (the turn's last) is counted in
   slot of the per-command figures, having taken ticks to queue; its share
   of the batch's apply and the building of its reply are added when the
   batch runs. Worker thread. */
void worker_batch_timed(struct worker *w, unsigned slot, uint64_t ticks);

/* Apply the queued writes and answer them, then let their connections go
   on (which may queue more, applied in turn) until nothing is queued.
   Worker thread, never from inside a command. */
void worker_batch_run(struct worker *w);

#endif
