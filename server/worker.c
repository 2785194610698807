/*
 * Worker threads; see worker.h. Everything below except worker_init,
 * worker_start, worker_hand_off, worker_stop and worker_destroy runs on the
 * worker's own thread, inside its event loop.
 */
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

/* How long a stop waits for clients to take their last replies. */
#define STOP_GRACE_SECONDS 5

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
        if (w->now - c->last_active > (int64_t)timeout) {
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
    if (w->nconns)
        log_warn("worker %u: %zu clients did not take their replies in %d s; closing them",
                 w->index, w->nconns, STOP_GRACE_SECONDS);
    while (w->conns)
        conn_free(w->conns);
    event_base_loopbreak(w->base);
}

static void begin_stop(struct worker *w)
{
    w->stopping = true;
    event_del(w->notify_ev);
    event_del(w->cron_ev);
    struct timeval grace = {STOP_GRACE_SECONDS, 0};
    event_add(w->deadline_ev, &grace);
    struct conn *next;
    for (struct conn *c = w->conns; c; c = next) {
        next = c->next;
        conn_stop(c);
    }
    if (w->nconns == 0)
        event_base_loopbreak(w->base);
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
        if (fds[i] < 0) {
            begin_stop(w);
            return;
        }
        conn_open(w, fds[i]);
    }
}

void worker_conn_gone(struct worker *w)
{
    if (w->stopping && w->nconns == 0)
        event_base_loopbreak(w->base);
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
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
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
}
