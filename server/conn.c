/*
 * Client connections; see conn.h. Runs on the owning worker's thread.
 *
 * Nothing is allocated per command: the input buffer is compacted in place
 * after each batch, the output buffer and the parser's argument array are
 * reused, and buffers that grew for one big request are given back once
 * they are empty again.
 */
#include "conn.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "reply.h"
#include "worker.h"

/* The input buffer's size, and how far it may grow for one command before
   the client is dropped (Redis's client-query-buffer-limit). */
#define IN_INITIAL (16u << 10)
#define IN_MAX (1u << 30)
/* A buffer larger than this is freed once empty, so one big request does
   not pin its memory for the life of the connection. */
#define BUF_SHRINK (1u << 20)
/* Commands stop being executed while this much output waits to be
   written; a connection holds at most this plus one reply. */
#define OUT_SOFT_LIMIT (1u << 20)
/* Reads a stop makes to collect what a client sent before it. */
#define STOP_READS 16

enum read_result { READ_DATA, READ_AGAIN, READ_DONE };

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

int conn_open(struct worker *w, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        goto out_fd;
    c->w = w;
    c->fd = fd;
    c->id = atomic_fetch_add_explicit(&w->srv->next_id, 1, memory_order_relaxed);
    c->last_active = w->now;
    if (resp_parser_init(&c->parser, NULL) != 0)
        goto out_conn;
    c->ev_read = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->ev_write = event_new(w->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    if (!c->ev_read || !c->ev_write || event_add(c->ev_read, NULL) != 0)
        goto out_events;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    stat_add(&w->stats.connections, 1);
    log_debug("client id=%llu connected (worker %u)", (unsigned long long)c->id, w->index);
    return 0;

out_events:
    if (c->ev_read)
        event_free(c->ev_read);
    if (c->ev_write)
        event_free(c->ev_write);
    resp_parser_free(&c->parser);
out_conn:
    free(c);
out_fd:
    log_error("out of memory taking a connection; closing it");
    close(fd);
    atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
    return KVS_ENOMEM;
}

void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    log_debug("client id=%llu closed", (unsigned long long)c->id);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    event_free(c->ev_read);
    event_free(c->ev_write);
    close(c->fd);
    resp_parser_free(&c->parser);
    kvs_buf_free(&c->in);
    kvs_buf_free(&c->out);
    kvs_buf_free(&c->name);
    free(c);
    atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
    worker_conn_gone(w);
}

/* One read into the free end of `in`. The buffer doubles only when a read
   has filled it, so it grows as a big request actually arrives, never by a
   length the client merely declared. Sets CONN_EOF or CONN_KILL when the
   connection is done with reading. */
static enum read_result conn_read(struct conn *c)
{
    if (c->in.len == c->in.cap) {
        size_t want = c->in.cap ? c->in.cap * 2 : IN_INITIAL;
        if (want > IN_MAX) {
            log_warn("client id=%llu: request over %u bytes, closing", (unsigned long long)c->id,
                     IN_MAX);
            reply_error(c, "ERR Protocol error: query buffer limit reached");
            c->flags |= CONN_QUIT;
            return READ_DONE;
        }
        if (kvs_buf_reserve(&c->in, want) != 0) {
            c->flags |= CONN_KILL;
            return READ_DONE;
        }
    }
    ssize_t n;
    do
        n = recv(c->fd, (char *)c->in.data + c->in.len, c->in.cap - c->in.len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->in.len += (size_t)n;
        c->last_active = c->w->now;
        stat_add(&c->w->stats.net_in, (uint64_t)n);
        return READ_DATA;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return READ_AGAIN;
    c->flags |= n == 0 ? CONN_EOF : CONN_KILL;
    return READ_DONE;
}

/* Execute every complete command in `in`, appending the replies to `out`,
   then drop the executed bytes. Stops early when out is over its soft
   limit (CONN_INPUT_PENDING) or a command ended the connection. */
static void conn_process(struct conn *c)
{
    size_t off = 0;
    c->flags &= ~CONN_INPUT_PENDING;
    while (off < c->in.len && !(c->flags & (CONN_QUIT | CONN_KILL))) {
        if (c->out.len - c->out_sent >= OUT_SOFT_LIMIT) {
            c->flags |= CONN_INPUT_PENDING;
            break;
        }
        size_t consumed = 0;
        int rc = resp_parse(&c->parser, (const char *)c->in.data + off, c->in.len - off, &consumed,
                            NULL);
        if (rc == RESP_MORE)
            break;
        if (rc == RESP_ERROR) {
            log_debug("client id=%llu: %s", (unsigned long long)c->id, c->parser.error);
            reply_error(c, c->parser.error);
            c->flags |= CONN_QUIT;
            break;
        }
        off += consumed;
        if (c->parser.argc > 0)
            commands_execute(c, c->parser.argc, c->parser.argv);
    }
    if (off > 0) {
        c->in.len -= off;
        memmove(c->in.data, (char *)c->in.data + off, c->in.len);
    }
    if (c->in.len == 0 && c->in.cap > BUF_SHRINK)
        kvs_buf_free(&c->in);
}

enum flush_result { FLUSH_DONE, FLUSH_BLOCKED, FLUSH_FAILED };

/* Write `out` with one send() per call of the loop, normally exactly one. */
static enum flush_result conn_flush(struct conn *c)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = send(c->fd, (const char *)c->out.data + c->out_sent, c->out.len - c->out_sent,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t)n;
            c->last_active = c->w->now;
            stat_add(&c->w->stats.net_out, (uint64_t)n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return FLUSH_BLOCKED;
        } else {
            return FLUSH_FAILED;
        }
    }
    c->out.len = c->out_sent = 0;
    if (c->out.cap > BUF_SHRINK)
        kvs_buf_free(&c->out);
    if (c->w->scratch.cap > BUF_SHRINK)
        kvs_buf_free(&c->w->scratch);
    return FLUSH_DONE;
}

/* Switch between reading (normal) and waiting for the socket to take the
   rest of out (reading paused). */
static void wait_for_write(struct conn *c, bool on)
{
    if (on == !!(c->flags & CONN_WRITE_WAIT))
        return;
    if (on) {
        event_del(c->ev_read);
        event_add(c->ev_write, NULL);
        c->flags |= CONN_WRITE_WAIT;
    } else {
        event_del(c->ev_write);
        event_add(c->ev_read, NULL);
        c->flags &= ~CONN_WRITE_WAIT;
    }
}

/* Execute what `in` holds and write the replies, repeating while commands
   were held back for output room, until the socket is full or nothing is
   left. Frees c when the connection is over; c must not be used after. */
static void conn_run(struct conn *c)
{
    for (;;) {
        conn_process(c);
        if (c->flags & CONN_KILL)
            break;
        enum flush_result fr = conn_flush(c);
        if (fr == FLUSH_FAILED)
            break;
        if (fr == FLUSH_BLOCKED) {
            wait_for_write(c, true);
            return;
        }
        if ((c->flags & CONN_INPUT_PENDING) && !(c->flags & CONN_QUIT))
            continue;
        if (c->flags & (CONN_QUIT | CONN_EOF))
            break;
        wait_for_write(c, false);
        return;
    }
    conn_free(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (conn_read(c) == READ_AGAIN)
        return;
    conn_run(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_run(arg);
}

void conn_stop(struct conn *c)
{
    /* The client may have sent commands that are still in the socket: they
       count as received, so read them (a bounded number of times, against
       a client that never stops sending) before the last batch. */
    if (!(c->flags & (CONN_WRITE_WAIT | CONN_QUIT | CONN_EOF | CONN_KILL))) {
        for (int i = 0; i < STOP_READS && conn_read(c) == READ_DATA; i++) {
            conn_process(c);
            if (c->flags & CONN_INPUT_PENDING)
                break;
        }
    }
    c->flags |= CONN_EOF;
    conn_run(c);
}
