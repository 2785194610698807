/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replication's private parts, shared by repl*.c and cmd_repl.c only.
 *
 * A replica link (the primary's side of one replica): it starts as a
 * client connection that sent PSYNC or SYNC; the connection's socket is
 * taken over (dup) and the connection closed, and the link lives on in
 * the same worker's event loop. A full sync first runs on a thread of its
 * own, which owns the socket until it has written the RDB; the worker
 * then joins it and feeds the link from the stream, from the offset the
 * RDB was taken at. The worker owns the link; the registry in struct
 * repl (under repl->lock) lets INFO, ROLE and WAIT read the acknowledged
 * offsets from other threads.
 */
#ifndef KVS_SERVER_REPL_INTERNAL_H
#define KVS_SERVER_REPL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvs/kvs.h"
#include "proto/resp.h"
#include "repl.h"
#include "repl_stream.h"

struct event;

enum link_state {
    RLINK_SYNC,   /* the full sync thread writes the RDB */
    RLINK_ONLINE, /* fed from the stream */
};

struct repl_link {
    struct repl_link *next;     /* the worker's links */
    struct repl_link *reg_next; /* repl->links, under repl->lock */
    struct repl_worker *rw;
    struct repl *r;
    uint64_t id; /* the client id it had */
    int fd;
    struct event *ev_read, *ev_write;
    _Atomic int state; /* enum link_state */
    struct repl_reader reader;
    kvs_buf pending; /* bytes to send before the stream's (+CONTINUE...) */
    size_t pending_sent;
    kvs_buf in; /* what the replica sent: REPLCONF ACK */
    resp_parser parser;
    char ip[64];
    unsigned port; /* REPLCONF listening-port */
    bool capa_eof, capa_psync2, old_sync;
    bool await_ack;             /* a diskless RDB was sent: no stream before an ACK */
    uint64_t gen;               /* repl->drop_gen when it was made */
    _Atomic uint64_t ack;       /* acknowledged offset */
    _Atomic int64_t ack_ms;     /* when, ms since the epoch */
    _Atomic int64_t created_ms; /* for the timeout of a sync */
    /* The full sync thread. */
    pthread_t thread;
    bool thread_started;
    atomic_bool thread_done;
    atomic_bool thread_failed;
    atomic_bool abort;
    uint64_t sync_offset;
};

/* REPLCONF's options of a connection, until its PSYNC: a small table per
   worker, keyed by client id (the connection struct stays replication-
   free). */
#define REPLCONF_SLOTS 8
struct replconf_slot {
    uint64_t conn_id;
    unsigned port;
    bool capa_eof, capa_psync2;
    bool bootstrap; /* REPLCONF kvs-bootstrap 1: an empty primary copying its peer */
    char ip[64];
};

struct waiter;

struct repl_worker {
    struct worker *w;
    struct repl *r;
    int efd; /* eventfd: wakes the loop for new bytes and ACKs */
    struct event *wake_ev;
    struct event *tick_ev; /* once a second: timeouts, PING */
    struct event *wait_ev; /* the nearest WAIT deadline */
    atomic_bool wake_pending;
    _Atomic unsigned nlinks; /* links owned: whether to wake it */
    _Atomic unsigned nwaits; /* WAITs blocked */
    struct repl_link *links;
    struct waiter *waits;
    struct replconf_slot slots[REPLCONF_SLOTS];
    unsigned next_slot;
    unsigned ticks;
};

/* printf into text. Returns 0 or KVS_ENOMEM. */
int repl_addf(kvs_buf *text, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
