/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One client connection: its socket, its input and output buffers and its
 * parser, all reused from command to command.
 *
 * A connection belongs to one worker and is only ever touched by that
 * worker's thread, so nothing here takes a lock.
 *
 * The life of a batch: a read appends to `in`; every complete command in
 * `in` is executed and its reply appended to `out`; `out` is written with
 * one send(). While `out` cannot be written entirely the connection stops
 * reading (a client that does not read its replies cannot make the server
 * buffer without end) and waits for EV_WRITE. On the io_uring path
 * (uring.h) the same steps run on completions instead: a recv SQE in
 * place of EV_READ and recv(), a send SQE in place of send(), and nothing
 * executed while a send is in flight.
 *
 * Writes are batched per worker turn (worker.h): SET/DEL/MSET queue their
 * ops and their replies are appended once the batch is applied. While a
 * connection has queued writes (npending) it executes only further
 * batchable writes; anything else waits, unparsed (batch_wait), so that
 * replies keep their order and a read sees the writes before it. The
 * input bytes of queued writes stay where they are until then (in_off),
 * and so do the quoted words of queued inline writes in the parser's
 * scratch: the parser is released only while npending is 0, and a line
 * that finds the scratch full waits like a non-batched command.
 */
#ifndef KVS_SERVER_CONN_H
#define KVS_SERVER_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs/slice.h"
#include "proto/resp.h"
#include "watch.h"

struct worker;
struct event;
struct command;
struct multi;
struct monitor;
struct uring_io;

enum conn_flag {
    CONN_QUIT = 1u << 0,          /* execute nothing more; close once out is written */
    CONN_EOF = 1u << 1,           /* read nothing more; close once in is executed and written */
    CONN_KILL = 1u << 2,          /* close without writing anything more */
    CONN_WRITE_WAIT = 1u << 3,    /* out is partly written; EV_WRITE armed, reading paused */
    CONN_INPUT_PENDING = 1u << 4, /* in holds commands held back while out is too full */
    CONN_AUTHED = 1u << 5,        /* passed AUTH (only looked at under --requirepass) */
};

struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list of connections */
    int fd;
    unsigned flags; /* enum conn_flag */
    uint64_t id;    /* CLIENT ID */
    _Atomic int64_t
        last_active; /* worker clock (seconds) of the last read or write, for --timeout */
    /* The epoll path's events; on the io_uring path (io != NULL) they
       watch no socket, so that adding them does nothing. */
    struct event *ev_read, *ev_write;
    struct uring_io *io;    /* the io_uring path's operations (uring.h), or NULL */
    struct event *ev_pause; /* CLIENT PAUSE's retry timer, made when first needed */
    kvs_buf in;             /* bytes read and not yet dropped; unexecuted ones start at in_off */
    size_t in_off;          /* executed bytes still in `in`: queued writes point into them */
    size_t npending;        /* commands queued in the worker's batch, not yet answered */
    bool batch_wait;        /* a command (or a RESP_FULL line) waits for npending to reach 0 */
    bool bad_input;         /* parser.error found while npending > 0: reply once it is 0 */
    bool blocked;           /* WAIT blocks it: nothing runs until it is answered */
    kvs_buf out;            /* replies not yet written */
    size_t out_sent;        /* bytes of out already written */
    /* --max-output-buffer, the most out.len - out_sent + out_flight may
       reach (reply.h); SIZE_MAX: none. */
    size_t out_limit;
    size_t out_flight; /* io_uring path: replies handed to the kernel, not yet sent */
    resp_parser parser;
    kvs_buf name;              /* CLIENT SETNAME; len 0: none */
    const struct command *cmd; /* the command whose handler runs, else NULL */
    struct multi *multi;       /* the queue between MULTI and EXEC (multi.h), else NULL */
    struct watcher watch;      /* the keys WATCH watches (watch.h) */
    /* The registry of every connection (clients.h): its links (under the
       registry's lock), what never changes once registered, and what
       other clients read: atomics. */
    struct conn *reg_prev, *reg_next;
    int64_t created_ms; /* CLOCK_REALTIME, ms */
    char addr[64], laddr[64];
    atomic_bool kill_req;                     /* CLIENT KILL by another client */
    atomic_bool no_evict;                     /* CLIENT NO-EVICT ON */
    atomic_bool monitoring;                   /* MONITOR */
    _Atomic int multi_count;                  /* commands queued in MULTI, -1 outside */
    _Atomic(const struct command *) last_cmd; /* CLIENT LIST's cmd= */
    _Atomic(const char *) last_sub;           /* its subcommand, or NULL */
    struct monitor *monitor;                  /* MONITOR's mailbox (monitor.h), or NULL */
    /* CLIENT REPLY: replies dropped while off, or for the next command
       after SKIP (skip_next becomes skip once SKIP is done); mute: the
       running command's replies are dropped. */
    bool reply_off, reply_skip, reply_skip_next, mute;
};

/* Take over an accepted socket: allocate the connection and start reading.
   On failure the socket is closed. Returns 0 or KVS_ENOMEM. Worker thread. */
int conn_open(struct worker *w, int fd);

/* Graceful stop, first step, repeated a bounded number of times with the
   worker's batch applied in between: read once more what the client has
   already sent and execute it. Returns whether it may have more to read.
   Never frees c. Worker thread. */
bool conn_stop_read(struct conn *c);

/* Graceful stop, last step: read nothing more; write the replies, then
   close (which may free c at once). Worker thread. */
void conn_stop(struct conn *c);

/* Close and free at once. Worker thread, never from inside a command,
   never with npending > 0. */
void conn_free(struct conn *c);

/* The worker answered the last of c's queued writes: go on with its input
   and write its replies (which may free c). Worker thread. */
void conn_batch_done(struct conn *c);

/* The io_uring path (uring.h): a recv of c completed with res (bytes in
   data, the end of the stream, or -errno); a send completed with res.
   Both may free c. Worker thread. */
void conn_uring_received(struct conn *c, const void *data, int res);
void conn_uring_sent(struct conn *c, int res);

#endif
