/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Worker threads; see worker.h. Everything below except worker_init,
 * worker_start, worker_hand_off, worker_stop and worker_destroy runs on the
 * worker's own thread, inside its event loop or between its turns.
 */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmdstats.h"
#include "commands.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "multi.h"
#include "repl.h"
#include "uring.h"

/* How long a stop waits for clients to take their last replies. */
#define STOP_GRACE_SECONDS 5
/* Reads a stop makes per client to collect what it sent before it. */
#define STOP_READS 16
/* A batch array larger than this (entries) is freed once applied, so one
   huge MSET does not pin its memory. */
#define BATCH_SHRINK (1u << 16)

/* End the loop after the current turn. */
static void worker_exit(struct worker *w)
{
    w->exiting = true;
    event_base_loopbreak(w->base);
}

static int64_t mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Close every connection that has not been heard from for --timeout. */
static void on_cron(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    w->now = mono_seconds();
    unsigned timeout = atomic_load_explicit(&w->srv->timeout, memory_order_relaxed);
    if (timeout == 0)
        return;
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        if (w->now - c->last_active > (int64_t)timeout && c->npending == 0 && !c->blocked) {
            log_debug("client id=%llu idle for %u s, closing", (unsigned long long)c->id, timeout);
            conn_free(c);
        }
    }
}

/* The stop's grace period ran out: drop whoever still has not read. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    worker_batch_run(w); /* no connection may go with writes queued */
    if (w->nconns)
        log_warn("worker %u: %zu clients did not take their replies in %d s; closing them",
                 w->index, w->nconns, STOP_GRACE_SECONDS);
    while (w->conns)
        conn_free(w->conns);
    worker_exit(w);
}

static void begin_stop(struct worker *w)
{
    w->stopping = true;
    repl_worker_stop(w); /* WAITs are answered now */
    event_del(w->notify_ev);
    event_del(w->cron_ev);
    struct timeval grace = {STOP_GRACE_SECONDS, 0};
    event_add(w->deadline_ev, &grace);
    /* Clients may have sent commands that are still in their sockets: they
       count as received, so read them (a bounded number of times, against
       clients that never stop sending), applying the writes read between
       rounds, since queued writes pin a connection's input buffer. */
    for (int i = 0; i < STOP_READS; i++) {
        bool more = false;
        if (w->uring) {
            /* Answers what is queued, which arms recvs again; they take
               what the socket holds when submitted. */
            worker_batch_run(w);
            more = uring_poll(w->uring) > 0;
        }
        for (struct conn *c = w->conns; c; c = c->next)
            more |= conn_stop_read(c);
        worker_batch_run(w); /* may free connections */
        if (!more)
            break;
    }
    if (w->http)
        http_worker_stop(w->http); /* answers what its clients sent, then closes them */
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        conn_stop(c);
    }
    if (w->nconns == 0)
        worker_exit(w);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct worker *w = arg;
    int fds[64];
    ssize_t n = read(fd, fds, sizeof(fds));
    if (n <= 0)
        return; /* EAGAIN: another wake-up already took them */
    /* Whole ints only: each was written by one atomic write of sizeof(int). */
    for (size_t i = 0; i < (size_t)n / sizeof(int); i++) {
        if (fds[i] == -1) {
            begin_stop(w);
            return;
        }
        if (fds[i] < 0)
            http_conn_open(w->http, -fds[i] - 2);
        else
            conn_open(w, fds[i]);
    }
}

void worker_conn_gone(struct worker *w)
{
    if (w->stopping && w->nconns == 0)
        worker_exit(w);
}

/* Room for need entries of size bytes in *arr (capacity *cap, doubling);
   false when out of memory, leaving *arr as it was. */
static bool grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap && *arr)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size)
            return false;
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* Room for a command of nops ops in the turn's batch: its entry, or NULL. */
static struct batch_cmd *batch_room(struct worker *w, size_t nops)
{
    struct batch *b = &w->batches[w->cur];
    void *ops = b->ops, *cmds = b->cmds;
    bool ok =
        nops <= SIZE_MAX / 2 - b->nops && grow(&ops, &b->ops_cap, b->nops + nops, sizeof(*b->ops));
    b->ops = ops;
    ok = ok && grow(&cmds, &b->cmds_cap, b->ncmds + 1, sizeof(*b->cmds));
    b->cmds = cmds;
    if (!ok)
        return NULL;
    struct batch_cmd *bc = &b->cmds[b->ncmds++];
    *bc = (struct batch_cmd){.first = b->nops, .nops = nops};
    b->nops += nops;
    return bc;
}

kvs_op *worker_batch_add(struct worker *w, struct conn *c, batch_done_fn *done, size_t nops,
                         int err)
{
    if (w->exec) /* inside EXEC: applied to its transaction at once */
        return multi_batch_add(w, c, done, nops, err);
    struct batch_cmd *bc = batch_room(w, nops);
    if (!bc)
        return NULL;
    bc->c = c;
    bc->done = done;
    bc->err = err;
    bc->mute = c->mute;
    c->npending++;
    return w->batches[w->cur].ops + bc->first;
}

kvs_op *worker_batch_add_arg(struct worker *w, batch_done_arg_fn *done, void *arg, size_t nops)
{
    struct batch_cmd *bc = batch_room(w, nops);
    if (!bc)
        return NULL;
    bc->done_arg = done;
    bc->arg = arg;
    return w->batches[w->cur].ops + bc->first;
}

void worker_batch_timed(struct worker *w, unsigned slot, uint64_t ticks)
{
    struct batch *b = &w->batches[w->cur];
    struct batch_cmd *bc = &b->cmds[b->ncmds - 1];
    bc->stat_slot = slot + 1;
    bc->stat_ticks = ticks;
}

/* KVS_EFULL if --maxmemory refused one of a command's sets (kvs.h:
   a batch that starts at the limit has all its sets refused, so a
   command's are refused together), else 0. */
static int refused_for_memory(const kvs_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == KVS_OP_SET && ops[i].result == KVS_EFULL)
            return KVS_EFULL;
    }
    return 0;
}

/* Apply one batch and answer its commands, in the order they came. A
   connection whose last queued command is answered goes on at once
   (conn_batch_done), queueing into the other batch. */
static void batch_apply(struct worker *w, struct batch *b)
{
    /* Each command's time is its handler's, its share of the apply by
       its number of ops, and the building of its reply. */
    uint64_t t = cmdstats_now();
    int rc = store_write_batch(&w->srv->store, b->ops, b->nops);
    uint64_t t_applied = cmdstats_now(), apply = t_applied - t;
    t = t_applied;
    for (size_t i = 0; i < b->ncmds; i++) {
        const struct batch_cmd *bc = &b->cmds[i];
        struct conn *c = bc->c;
        int err = bc->err ? bc->err : rc;
        if (err == 0)
            err = refused_for_memory(b->ops + bc->first, bc->nops);
        if (!c) {
            bc->done_arg(bc->arg, b->ops + bc->first, bc->nops, err);
            t = cmdstats_now();
            continue;
        }
        size_t out_len = c->out.len;
        size_t mark = c->out.len;
        bc->done(c, b->ops + bc->first, bc->nops, err);
        if (bc->mute && c->out.len > mark)
            c->out.len = mark; /* CLIENT REPLY OFF|SKIP */
        if (bc->stat_slot) {
            uint64_t now = cmdstats_now();
            uint64_t share =
                b->nops ? (uint64_t)((double)apply * (double)bc->nops / (double)b->nops) : 0;
            if (err == KVS_EFULL) /* as Redis's OOM refusal, before the command runs */
                cmdstats_reject(w->cmdstats, bc->stat_slot - 1);
            else
                cmdstats_call(w->cmdstats, bc->stat_slot - 1, bc->stat_ticks + share + (now - t),
                              command_failed(c, out_len));
            t = now;
        }
        if (--c->npending == 0) {
            conn_batch_done(c); /* runs c's next commands, counted as theirs */
            t = cmdstats_now();
        }
    }
    b->nops = b->ncmds = 0;
    if (b->ops_cap > BATCH_SHRINK) {
        free(b->ops);
        b->ops = NULL;
        b->ops_cap = 0;
    }
    if (b->cmds_cap > BATCH_SHRINK) {
        free(b->cmds);
        b->cmds = NULL;
        b->cmds_cap = 0;
    }
}

void worker_batch_run(struct worker *w)
{
    while (w->batches[w->cur].ncmds > 0) {
        struct batch *b = &w->batches[w->cur];
        w->cur ^= 1;
        batch_apply(w, b);
    }
}

/* The io_uring path when --io-backend asks for it and, under auto, when
   this kernel allows it (containers often forbid io_uring); all workers
   take the path the first one took. */
static int worker_io_init(struct worker *w)
{
    enum io_backend want = w->srv->cfg.io_backend;
    char why[160];
    if (want == IO_BACKEND_EPOLL)
        return 0;
    if (want == IO_BACKEND_AUTO && w->index > 0 && !w->srv->workers[0].uring)
        return 0; /* the first worker found io_uring missing */
    if (want == IO_BACKEND_AUTO && w->index == 0 && !uring_probe(why, sizeof(why))) {
        log_info("io_uring unavailable (%s): using epoll", why);
        return 0;
    }
    if (uring_init(&w->uring, w, why, sizeof(why)) != 0) {
        log_error("worker %u: cannot set up io_uring: %s", w->index, why);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int worker_init(struct worker *w, struct server *srv, unsigned index)
{
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    w->index = index;
    w->notify_rd = w->notify_wr = -1;
    w->now = mono_seconds();
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    w->notify_rd = p[0];
    w->notify_wr = p[1];
    w->base = event_base_new();
    if (!w->base)
        return -1;
    w->notify_ev = event_new(w->base, w->notify_rd, EV_READ | EV_PERSIST, on_notify, w);
    w->cron_ev = event_new(w->base, -1, EV_PERSIST, on_cron, w);
    w->deadline_ev = evtimer_new(w->base, on_deadline, w);
    if (!w->notify_ev || !w->cron_ev || !w->deadline_ev)
        return -1;
    struct timeval second = {1, 0};
    if (event_add(w->notify_ev, NULL) != 0 || event_add(w->cron_ev, &second) != 0)
        return -1;
    if (srv->cfg.http_addr_len && http_worker_init(&w->http, w) != 0)
        return -1;
    if (repl_worker_init(w) != 0)
        return -1;
    if (worker_io_init(w) != 0)
        return -1;
    w->cmdstats = cmdstats_new(command_count() * CMDSTAT_SUBS);
    if (!w->cmdstats)
        return -1;
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    /* One turn at a time, so that the writes of a turn are applied together
       once every ready connection has been read. */
    while (!w->exiting) {
        int rc = event_base_loop(w->base, EVLOOP_ONCE);
        worker_batch_run(w);
        if (w->uring)
            uring_submit(w->uring); /* the turn's sends and recvs, together */
        if (rc != 0)
            break; /* -1: error; 1: nothing left to wait for */
    }
    return NULL;
}

int worker_start(struct worker *w)
{
    /* Signals are for the main thread's event loop; block them here so that
       the workers' system calls are never interrupted. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    w->started = rc == 0;
    if (rc == 0) {
        /* Named for top -H, perf and gdb. */
        char name[16];
        snprintf(name, sizeof(name), "kvs-worker-%u", w->index);
        pthread_setname_np(w->thread, name);
    }
    return rc;
}

int worker_hand_off(struct worker *w, int fd)
{
    ssize_t n;
    do
        n = write(w->notify_wr, &fd, sizeof(fd));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof(fd) ? 0 : -1;
}

int worker_hand_off_http(struct worker *w, int fd)
{
    return worker_hand_off(w, -fd - 2);
}

void worker_stop(struct worker *w)
{
    int stop = -1;
    /* The pipe is drained continuously; if it is full now the worker is
       hopelessly behind, and the main thread waits for room rather than
       leave the worker running. */
    int flags = fcntl(w->notify_wr, F_GETFL);
    fcntl(w->notify_wr, F_SETFL, flags & ~O_NONBLOCK);
    ssize_t n;
    do
        n = write(w->notify_wr, &stop, sizeof(stop));
    while (n < 0 && errno == EINTR);
}

void worker_destroy(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    while (w->conns)
        conn_free(w->conns);
    http_worker_destroy(w->http);
    repl_worker_free(w);
    uring_free(w->uring);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->cron_ev)
        event_free(w->cron_ev);
    if (w->deadline_ev)
        event_free(w->deadline_ev);
    if (w->base)
        event_base_free(w->base);
    if (w->notify_rd >= 0)
        close(w->notify_rd);
    if (w->notify_wr >= 0)
        close(w->notify_wr);
    kvs_buf_free(&w->scratch);
    /* Other workers may still run INFO, which reads every worker's table
       under stats_lock (cmdstats.h): take it away under the lock. */
    pthread_mutex_lock(&w->srv->stats_lock);
    struct cmdstats *cs = w->cmdstats;
    w->cmdstats = NULL;
    pthread_mutex_unlock(&w->srv->stats_lock);
    cmdstats_free(cs);
    for (size_t i = 0; i < 2; i++) {
        free(w->batches[i].ops);
        free(w->batches[i].cmds);
    }
}
