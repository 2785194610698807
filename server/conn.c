/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Client connections; see conn.h. Runs on the owning worker's thread.
 *
 * Nothing is allocated per command: the input buffer is compacted in place
 * after each batch, the output buffer and the parser's argument array are
 * reused, and buffers that grew for one big request are given back once
 * they are empty again.
 */
#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "clients.h"
#include "commands.h"
#include "errstats.h"
#include "log.h"
#include "multi.h"
#include "repl.h"
#include "reply.h"
#include "uring.h"
#include "worker.h"

/* The input buffer's first size; it may grow for one command up to
   --max-query-buffer before the client is dropped (Redis's
   client-query-buffer-limit). */
#define IN_INITIAL (16u << 10)
/* A buffer larger than this is freed once empty, so one big request does
   not pin its memory for the life of the connection. */
#define BUF_SHRINK (1u << 20)
/* Commands stop being executed while this much output waits to be
   written; a connection holds at most this plus one reply. */
#define OUT_SOFT_LIMIT (1u << 20)
/* READ_FULL: `in` is full and may not move while writes are queued. */
enum read_result { READ_DATA, READ_AGAIN, READ_FULL, READ_DONE };

static void on_read(evutil_socket_t fd, short what, void *arg);
static void conn_run(struct conn *c);

/* CLIENT PAUSE: look again in a while (pauses are rare and short). */
static void on_pause_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (c->npending == 0)
        conn_run(c);
}

static void conn_pause_wait(struct conn *c)
{
    struct timeval tv = {0, 20000};
    c->batch_wait = true;
    if (!c->ev_pause)
        c->ev_pause = evtimer_new(c->w->base, on_pause_timer, c);
    if (c->ev_pause)
        evtimer_add(c->ev_pause, &tv);
}
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
    c->out_limit = w->srv->cfg.max_output_buffer ? w->srv->cfg.max_output_buffer : SIZE_MAX;
    if (resp_parser_init(&c->parser, NULL) != 0)
        goto out_conn;
    auth_conn_init(c);
    clients_add(c);
    /* On the io_uring path the events watch no socket (fd -1): code that
       adds ev_read back (repl.h's WAIT) then changes nothing. */
    int ev_fd = w->uring ? -1 : fd;
    c->ev_read = event_new(w->base, ev_fd, EV_READ | EV_PERSIST, on_read, c);
    c->ev_write = event_new(w->base, ev_fd, EV_WRITE | EV_PERSIST, on_write, c);
    if (!c->ev_read || !c->ev_write)
        goto out_events;
    if (w->uring) {
        c->io = uring_io_new(c, fd);
        if (!c->io || !uring_recv(w->uring, c->io))
            goto out_events;
    } else if (event_add(c->ev_read, NULL) != 0) {
        goto out_events;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    stat_add(&w->stats.connections, 1);
    log_debug("client id=%llu connected (worker %u)", (unsigned long long)c->id, w->index);
    return 0;

out_events:
    if (c->io)
        uring_io_close(w->uring, c->io);
    clients_remove(c);
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
    assert(c->npending == 0);
    log_debug("client id=%llu closed", (unsigned long long)c->id);
    clients_remove(c); /* before its socket is closed (clients.h) */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    if (c->blocked)
        repl_wait_forget(c);
    multi_conn_free(c);
    event_free(c->ev_read);
    event_free(c->ev_write);
    if (c->ev_pause)
        event_free(c->ev_pause);
    if (c->io)
        uring_io_close(w->uring, c->io); /* its operations are cancelled; their memory lives on */
    close(c->fd);
    resp_parser_free(&c->parser);
    kvs_buf_free(&c->in);
    kvs_buf_free(&c->out);
    kvs_buf_free(&c->name);
    free(c);
    atomic_fetch_sub_explicit(&w->srv->clients, 1, memory_order_relaxed);
    worker_conn_gone(w);
}

/* Room at the free end of `in` for a read: READ_DATA when there is some.
   The buffer doubles only when a read has filled it, so it grows as a big
   request actually arrives, never by a length the client merely
   declared. */
static enum read_result in_room(struct conn *c)
{
    /* Queued writes point into `in`: it may not move until they are
       applied, at the end of this turn; the socket stays readable. */
    if (c->in.len == c->in.cap && c->npending)
        return READ_FULL;
    if (c->in.len == c->in.cap) {
        size_t max = c->w->srv->cfg.max_query_buffer;
        size_t want = c->in.cap ? c->in.cap * 2 : IN_INITIAL;
        if (want > max)
            want = c->in.cap < max ? max : 0;
        if (want == 0) {
            log_warn("client id=%llu addr=%s: request over the query buffer limit (%zu bytes), "
                     "closing",
                     (unsigned long long)c->id, c->addr, max);
            reply_error(c, "ERR Protocol error: query buffer limit reached");
            c->flags |= CONN_QUIT;
            return READ_DONE;
        }
        if (kvs_buf_reserve(&c->in, want) != 0) {
            c->flags |= CONN_KILL;
            return READ_DONE;
        }
    }
    return READ_DATA;
}

/* One read into the free end of `in`. Sets CONN_EOF or CONN_KILL when the
   connection is done with reading. */
static enum read_result conn_read(struct conn *c)
{
    enum read_result room = in_room(c);
    if (room != READ_DATA)
        return room;
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

/* Whether a command, run now, would be queued in the worker's batch with
   no reply of its own: it must get past every check of commands_execute()
   (lookup, arity, authentication) and be a batched write. */
static bool is_batched_write(struct conn *c, const struct command *cmd, size_t argc,
                             const kvs_slice *argv)
{
    return cmd && !multi_active(c) && command_batched(cmd, argc, argv) && auth_conn_allowed(c);
}

/* Drop the executed bytes from `in`, once no queued write points there. */
static void conn_drop_input(struct conn *c)
{
    if (c->in_off > 0) {
        c->in.len -= c->in_off;
        memmove(c->in.data, (char *)c->in.data + c->in_off, c->in.len);
        c->in_off = 0;
    }
    if (c->in.len == 0 && c->in.cap > BUF_SHRINK)
        kvs_buf_free(&c->in);
}

/* Execute every complete command in `in`, appending the replies to `out`
   (or queueing writes, whose replies come after the batch), then drop the
   executed bytes unless writes are queued. Stops early when out is over
   its soft limit (CONN_INPUT_PENDING), when a command must wait for the
   queued writes (batch_wait), or when a command ended the connection. */
static void conn_process(struct conn *c)
{
    size_t off = c->in_off;
    c->flags &= ~CONN_INPUT_PENDING;
    c->batch_wait = false;
    if (clients_kill_requested(c))
        c->flags |= CONN_KILL; /* CLIENT KILL by another client */
    if (c->bad_input && c->npending == 0) {
        reply_error(c, c->parser.error);
        c->flags |= CONN_QUIT;
        c->bad_input = false;
    }
    while (off < c->in.len && !(c->flags & (CONN_QUIT | CONN_KILL)) && !c->bad_input &&
           !c->blocked) {
        if (c->out.len - c->out_sent >= OUT_SOFT_LIMIT) {
            c->flags |= CONN_INPUT_PENDING;
            break;
        }
        /* No queued write points into the parser's scratch any more: the
           quoted words of the commands run so far may go. */
        if (c->npending == 0)
            resp_parser_release(&c->parser);
        size_t consumed = 0;
        int rc = resp_parse(&c->parser, (const char *)c->in.data + off, c->in.len - off, &consumed,
                            NULL);
        if (rc == RESP_MORE)
            break;
        if (rc == RESP_FULL) {
            /* The scratch is full of queued writes' words (it cannot be
               right after a release): parsed again once they are
               answered. */
            assert(c->npending > 0);
            c->batch_wait = true;
            break;
        }
        if (rc == RESP_ERROR) {
            log_debug("client id=%llu: %s", (unsigned long long)c->id, c->parser.error);
            if (c->npending) {
                c->bad_input = true; /* answered after the queued writes */
                c->batch_wait = true;
                break;
            }
            reply_error(c, c->parser.error);
            c->flags |= CONN_QUIT;
            break;
        }
        size_t argc = c->parser.argc;
        const struct command *cmd = argc > 0 ? command_lookup(c->parser.argv[0]) : NULL;
        if (cmd && clients_paused(cmd)) {
            /* CLIENT PAUSE: parsed again once the pause is over. */
            conn_pause_wait(c);
            break;
        }
        if (argc > 0 && c->npending && !is_batched_write(c, cmd, argc, c->parser.argv)) {
            /* Parsed again once the queued writes are answered (a parse
               that returned RESP_DONE leaves the parser at rest). */
            c->batch_wait = true;
            break;
        }
        off += consumed;
        if (argc > 0) {
#ifndef NDEBUG
            size_t npending = c->npending, out_len = c->out.len;
#endif
            /* CLIENT REPLY OFF|SKIP: the command's replies are dropped,
               now or when its queued write is answered (worker.c). */
            size_t mark = c->out.len, queued = c->npending;
            c->mute = c->reply_off || c->reply_skip;
            c->reply_skip = false;
            commands_execute(c, cmd, argc, c->parser.argv);
            if (c->out.len > mark && ((const char *)c->out.data)[mark] == '-')
                errstats_add((const char *)c->out.data + mark + 1, c->out.len - mark - 1);
            if (c->mute && c->npending == queued && c->out.len > mark)
                c->out.len = mark;
            c->mute = false;
            if (c->reply_skip_next) {
                c->reply_skip = true;
                c->reply_skip_next = false;
            }
            /* A reply may not overtake the replies of queued writes. */
            assert(npending == 0 || c->out.len == out_len || (c->flags & CONN_KILL));
        }
    }
    c->in_off = off;
    if (c->npending == 0)
        conn_drop_input(c);
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

static void conn_run_uring(struct conn *c);

/* Execute what `in` holds and write the replies, repeating while commands
   were held back for output room, until the socket is full or nothing is
   left. Frees c when the connection is over; c must not be used after. */
static void conn_run(struct conn *c)
{
    if (c->io) {
        conn_run_uring(c);
        return;
    }
    for (;;) {
        conn_process(c);
        if (c->npending)
            return; /* the worker's batch_run goes on: conn_batch_done() */
        if (c->flags & CONN_KILL)
            break;
        enum flush_result fr = conn_flush(c);
        if (fr == FLUSH_FAILED)
            break;
        if (fr == FLUSH_BLOCKED) {
            wait_for_write(c, true);
            return;
        }
        if (c->blocked) {
            /* WAIT holds it (repl.h): nothing more runs until it is
               answered. Reading goes on, so that a client that leaves is
               dropped now, as Redis drops it; what it sends meanwhile
               waits in `in`. */
            if (c->flags & CONN_EOF)
                break;
            wait_for_write(c, false);
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

void conn_batch_done(struct conn *c)
{
    conn_run(c);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    enum read_result rr = conn_read(c);
    if (rr == READ_AGAIN || rr == READ_FULL)
        return;
    conn_run(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_run(arg);
}

bool conn_stop_read(struct conn *c)
{
    if (c->io)
        return false; /* the worker reaps its ring instead (uring_poll) */
    if (c->flags & (CONN_WRITE_WAIT | CONN_QUIT | CONN_EOF | CONN_KILL | CONN_INPUT_PENDING))
        return false;
    switch (conn_read(c)) {
    case READ_FULL:
        return true; /* room comes once the worker's batch is applied */
    case READ_DATA:
        conn_process(c);
        return !(c->flags & CONN_INPUT_PENDING);
    default:
        c->flags |= CONN_EOF; /* nothing more: the stop closes it once answered */
        return false;
    }
}

void conn_stop(struct conn *c)
{
    c->flags |= CONN_EOF;
    conn_run(c);
}

/* ---- the io_uring path (uring.h) ---- */

/* Arm a recv when c wants input, as the epoll path keeps ev_read added.
   While a send waits for the kernel to take the replies, at most one recv
   completes past it: a client that does not read its replies stops being
   read, as on the epoll path. Returns false when the ring cannot take the
   recv (the connection must go). */
static bool uring_want_read(struct conn *c)
{
    struct uring_io *io = c->io;
    if (io->recv_armed || (c->flags & (CONN_QUIT | CONN_EOF | CONN_KILL)) || c->batch_wait ||
        c->npending)
        return true;
    if (io->send_armed && io->recv_since_send)
        return true;
    return uring_recv(c->w->uring, io);
}

/* Hand out to the kernel: it becomes io->tx, and out starts again empty
   (with tx's old memory), so that replies appended while the send is in
   flight (MONITOR's, WAIT's) never move the bytes the kernel reads. */
static bool send_out(struct conn *c)
{
    struct uring_io *io = c->io;
    kvs_buf spare = io->tx; /* empty: no send is armed */
    io->tx = c->out;
    io->tx_sent = c->out_sent;
    c->out = spare;
    c->out.len = c->out_sent = 0;
    c->out_flight = io->tx.len - io->tx_sent;
    if (c->w->scratch.cap > BUF_SHRINK)
        kvs_buf_free(&c->w->scratch);
    return uring_send(c->w->uring, io);
}

/* conn_run() on the io_uring path: the same steps, with one send in
   flight at a time in place of send(). While a send is in flight nothing
   runs (conn_uring_sent goes on), as nothing runs on the epoll path while
   out waits for room: replies keep their order, and PSYNC (repl.h) finds
   every reply still owed in out. */
static void conn_run_uring(struct conn *c)
{
    struct uring_io *io = c->io;
    for (;;) {
        if (io->send_armed) {
            if (!uring_want_read(c))
                break;
            return;
        }
        conn_process(c);
        if (c->npending)
            return; /* the worker's batch_run goes on: conn_batch_done() */
        if (c->flags & CONN_KILL)
            break;
        if (c->out.len > c->out_sent) {
            if (!send_out(c))
                break;
            continue;
        }
        c->out.len = c->out_sent = 0;
        if (c->out.cap > BUF_SHRINK)
            kvs_buf_free(&c->out);
        if (c->blocked) {
            /* WAIT holds it (repl.h); its answer runs it on. Reading goes
               on, as on the epoll path. */
            if (c->flags & CONN_EOF)
                break;
            if (!uring_want_read(c))
                break;
            return;
        }
        if ((c->flags & CONN_INPUT_PENDING) && !(c->flags & CONN_QUIT))
            continue;
        if (c->flags & (CONN_QUIT | CONN_EOF))
            break;
        if (!uring_want_read(c))
            break;
        return;
    }
    conn_free(c);
}

void conn_uring_received(struct conn *c, const void *data, int res)
{
    if (c->flags & (CONN_EOF | CONN_QUIT | CONN_KILL))
        return; /* reads nothing more */
    if (res == -ENOBUFS || res == -EAGAIN || res == -EINTR) {
        /* Every provided buffer was taken at once: they are given back
           as their completions are reaped, so try again. */
        if (!uring_want_read(c)) {
            c->flags |= CONN_KILL;
            conn_run_uring(c);
        }
        return;
    }
    if (res <= 0) {
        c->flags |= res == 0 ? CONN_EOF : CONN_KILL;
        conn_run_uring(c);
        return;
    }
    c->last_active = c->w->now;
    stat_add(&c->w->stats.net_in, (uint64_t)res);
    if (c->io->send_armed)
        c->io->recv_since_send = true;
    const char *p = data;
    size_t left = (size_t)res;
    while (left > 0) {
        enum read_result room = in_room(c);
        if (room == READ_FULL) {
            /* No recv is armed while writes are queued (uring_want_read). */
            log_error("client id=%llu: input while writes are queued; closing",
                      (unsigned long long)c->id);
            c->flags |= CONN_KILL;
        }
        if (room != READ_DATA)
            break;
        size_t n = c->in.cap - c->in.len < left ? c->in.cap - c->in.len : left;
        memcpy((char *)c->in.data + c->in.len, p, n);
        c->in.len += n;
        p += n;
        left -= n;
    }
    conn_run_uring(c);
}

void conn_uring_sent(struct conn *c, int res)
{
    struct uring_io *io = c->io;
    if (res == -EAGAIN || res == -EINTR)
        res = 0; /* sent again below */
    if (res < 0) {
        c->flags |= CONN_KILL;
        conn_run_uring(c);
        return;
    }
    if (res > 0) {
        io->tx_sent += (size_t)res;
        c->out_flight -= (size_t)res;
        c->last_active = c->w->now;
        stat_add(&c->w->stats.net_out, (uint64_t)res);
    }
    if (io->tx_sent < io->tx.len) {
        /* A partial send: the rest, which the kernel sends once the
           socket has room. */
        if (!uring_send(c->w->uring, io)) {
            c->flags |= CONN_KILL;
            conn_run_uring(c);
        }
        return;
    }
    io->tx.len = io->tx_sent = 0;
    if (io->tx.cap > BUF_SHRINK)
        kvs_buf_free(&io->tx);
    io->recv_since_send = false;
    conn_run_uring(c);
}
