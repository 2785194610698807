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
 * buffer without end) and waits for EV_WRITE.
 */
#ifndef KVS_SERVER_CONN_H
#define KVS_SERVER_CONN_H

#include <stdint.h>

#include "kvs/slice.h"
#include "proto/resp.h"

struct worker;
struct event;

enum conn_flag {
    CONN_QUIT = 1u << 0,          /* execute nothing more; close once out is written */
    CONN_EOF = 1u << 1,           /* read nothing more; close once in is executed and written */
    CONN_KILL = 1u << 2,          /* close without writing anything more */
    CONN_WRITE_WAIT = 1u << 3,    /* out is partly written; EV_WRITE armed, reading paused */
    CONN_INPUT_PENDING = 1u << 4, /* in holds commands held back while out is too full */
};

struct conn {
    struct worker *w;
    struct conn *prev, *next; /* the worker's list of connections */
    int fd;
    unsigned flags;      /* enum conn_flag */
    uint64_t id;         /* CLIENT ID */
    int64_t last_active; /* worker clock (seconds) of the last read or write, for --timeout */
    struct event *ev_read, *ev_write;
    kvs_buf in;      /* bytes read and not yet executed; the current command starts at 0 */
    kvs_buf out;     /* replies not yet written */
    size_t out_sent; /* bytes of out already written */
    resp_parser parser;
    kvs_buf name; /* CLIENT SETNAME; len 0: none */
};

/* Take over an accepted socket: allocate the connection and start reading.
   On failure the socket is closed. Returns 0 or KVS_ENOMEM. Worker thread. */
int conn_open(struct worker *w, int fd);

/* Graceful stop: execute what the client has already sent, write the
   replies, then close. Worker thread. */
void conn_stop(struct conn *c);

/* Close and free at once. Worker thread, never from inside a command. */
void conn_free(struct conn *c);

#endif
