/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The primary's side of replication: PSYNC, SYNC and REPLCONF, the
 * replica links, full syncs and WAIT. See repl.h and repl_internal.h.
 *
 * Links and waits run on the worker that owns them, woken through its
 * eventfd when the stream grows or an ACK arrives (repl_wake_workers,
 * which writes it only when the worker has something to feed and no wake
 * is pending). A full sync runs on a thread of its own, which owns the
 * link's socket until it is done.
 *
 * A full sync, and why the copy is right without stopping writers: under
 * the stream's lock the link is registered as a reader at the stream's
 * end X (the stream is turned on first, which waits for writes half-way
 * through the door). Every write appended at or before X had reached the
 * engine before it was appended, so the iteration, which starts after,
 * sees it; every write after X reaches the replica through the stream,
 * after the RDB. A key the iteration sees with a value newer than X is
 * written again by the stream, in order, and every command of the stream
 * sets a key's whole state (SET with PXAT, DEL, PEXPIREAT, PERSIST), so
 * the replica ends where the primary is. An engine's scan may show a key
 * twice; the RDB must not hold it twice (Redis refuses such a file), so
 * keys already written are remembered by a 128-bit hash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "commands.h"
#include "conn.h"
#include "log.h"
#include "rdb.h"
#include "repl_internal.h"
#include "reply.h"
#include "server.h"
#include "worker.h"

/* Keys per step of a full sync's iteration. */
#define SYNC_STEP 1024

struct waiter {
    struct waiter *next;
    uint64_t conn_id; /* found again in the worker's list: it may be gone */
    uint64_t target;
    long long num;
    int64_t deadline_ms; /* 0: none */
};

static int64_t now_ms(void)
{
    return kvs_now_ms();
}

/* ---- waking workers ---- */

static void wake_one(struct repl_worker *rw)
{
    if (atomic_exchange_explicit(&rw->wake_pending, true, memory_order_acq_rel))
        return;
    uint64_t one = 1;
    ssize_t n = write(rw->efd, &one, sizeof(one));
    (void)n; /* a full counter still wakes the loop */
}

void repl_wake_workers(struct repl *r)
{
    for (unsigned i = 0; i < r->nworkers; i++) {
        struct repl_worker *rw = r->workers[i];
        if (rw && (atomic_load_explicit(&rw->nlinks, memory_order_relaxed) ||
                   atomic_load_explicit(&rw->nwaits, memory_order_relaxed)))
            wake_one(rw);
    }
}

unsigned repl_blocked_clients(struct repl *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nworkers; i++) {
        struct repl_worker *rw = r->workers[i];
        if (rw)
            n += atomic_load_explicit(&rw->nwaits, memory_order_relaxed);
    }
    return n;
}

/* ---- the registry ---- */

static void registry_add(struct repl *r, struct repl_link *l)
{
    atomic_store(&r->pair_linked, true);
    pthread_mutex_lock(&r->lock);
    l->reg_next = r->links;
    r->links = l;
    r->nlinks++;
    pthread_mutex_unlock(&r->lock);
}

static void registry_remove(struct repl *r, struct repl_link *l)
{
    pthread_mutex_lock(&r->lock);
    for (struct repl_link **p = &r->links; *p; p = &(*p)->reg_next) {
        if (*p == l) {
            *p = l->reg_next;
            r->nlinks--;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
}

void repl_each_replica(struct repl *r,
                       void (*fn)(void *ctx, const char *ip, unsigned port, uint64_t ack),
                       void *ctx)
{
    pthread_mutex_lock(&r->lock);
    for (struct repl_link *l = r->links; l; l = l->reg_next) {
        if (atomic_load(&l->state) == RLINK_ONLINE)
            fn(ctx, l->ip, l->port, atomic_load(&l->ack));
    }
    pthread_mutex_unlock(&r->lock);
}

/* Replicas online whose acknowledged offset reached target. */
static long long count_acked(struct repl *r, uint64_t target)
{
    long long n = 0;
    pthread_mutex_lock(&r->lock);
    for (struct repl_link *l = r->links; l; l = l->reg_next)
        n += atomic_load(&l->state) == RLINK_ONLINE && atomic_load(&l->ack) >= target;
    pthread_mutex_unlock(&r->lock);
    return n;
}

void repl_drop_links(struct repl *r)
{
    atomic_fetch_add(&r->drop_gen, 1);
    for (unsigned i = 0; i < r->nworkers; i++) {
        if (r->workers[i])
            wake_one(r->workers[i]);
    }
}

/* ---- links ---- */

static void link_free(struct repl_link *l, const char *why)
{
    struct repl_worker *rw = l->rw;
    struct repl *r = rw->r;
    if (l->thread_started) {
        atomic_store(&l->abort, true);
        shutdown(l->fd, SHUT_RDWR); /* ends the thread's blocked send */
        pthread_join(l->thread, NULL);
    }
    log_info("replication: replica %s:%u (client id=%llu) %s", l->ip, l->port,
             (unsigned long long)l->id, why);
    for (struct repl_link **p = &rw->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    atomic_fetch_sub(&rw->nlinks, 1);
    registry_remove(r, l);
    repl_stream_remove_reader(&r->stream, &l->reader);
    if (l->ev_read)
        event_free(l->ev_read);
    if (l->ev_write)
        event_free(l->ev_write);
    close(l->fd);
    kvs_buf_free(&l->pending);
    kvs_buf_free(&l->in);
    resp_parser_free(&l->parser);
    free(l);
    /* A WAIT may now never be satisfied by it; let them recount. */
    repl_wake_workers(r);
}

/* Send what is pending and what the stream holds for l, until the socket
   is full or l has caught up. Returns false when l was freed. */
static bool link_pump(struct repl_link *l)
{
    struct repl *r = l->rw->r;
    if (atomic_load_explicit(&l->reader.overflow, memory_order_relaxed)) {
        log_warn("replication: replica %s:%u is over %" PRIu64
                 " bytes behind (--replica-output-buffer-limit); dropping it, it will sync "
                 "afresh",
                 l->ip, l->port, r->stream.reader_limit);
        link_free(l, "dropped");
        return false;
    }
    if (l->await_ack)
        return true;
    for (;;) {
        const char *data;
        size_t n;
        bool pending = l->pending_sent < l->pending.len;
        if (pending) {
            data = (const char *)l->pending.data + l->pending_sent;
            n = l->pending.len - l->pending_sent;
        } else {
            n = repl_reader_peek(&r->stream, &l->reader, &data);
        }
        if (n == 0)
            break;
        ssize_t sent = send(l->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(l->ev_write, NULL);
            return true;
        }
        if (sent <= 0) {
            link_free(l, "closed the link (send failed)");
            return false;
        }
        if (pending) {
            l->pending_sent += (size_t)sent;
            if (l->pending_sent == l->pending.len) {
                kvs_buf_free(&l->pending);
                l->pending_sent = 0;
            }
        } else {
            repl_reader_advance(&l->reader, (size_t)sent);
        }
    }
    event_del(l->ev_write);
    return true;
}

static void on_link_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_pump(arg);
}

/* What a replica sends: REPLCONF ACK <offset> [FACK <offset>], and
   nothing else that needs an answer. */
static void on_link_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct repl_link *l = arg;
    if (l->in.cap - l->in.len < 4096 && kvs_buf_reserve(&l->in, l->in.len + 16384) != 0) {
        link_free(l, "closed the link (out of memory)");
        return;
    }
    ssize_t n = recv(fd, (char *)l->in.data + l->in.len, l->in.cap - l->in.len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        link_free(l, n == 0 ? "closed the link" : "closed the link (read failed)");
        return;
    }
    l->in.len += (size_t)n;
    size_t off = 0;
    bool acked = false;
    for (;;) {
        size_t used = 0;
        resp_parser_release(&l->parser);
        int rc =
            resp_parse(&l->parser, (const char *)l->in.data + off, l->in.len - off, &used, NULL);
        if (rc == RESP_MORE)
            break;
        if (rc != RESP_DONE) {
            link_free(l, "sent something that is not RESP; closing the link");
            return;
        }
        off += used;
        const kvs_slice *argv = l->parser.argv;
        if (l->parser.argc >= 3 && slice_is(argv[0], "replconf") && slice_is(argv[1], "ack")) {
            long long ack;
            if (slice_to_ll(argv[2], &ack) == 0 && ack >= 0) {
                atomic_store(&l->ack, (uint64_t)ack);
                atomic_store(&l->ack_ms, now_ms());
                acked = true;
            }
        }
    }
    memmove(l->in.data, (char *)l->in.data + off, l->in.len - off);
    l->in.len -= off;
    if (!acked)
        return;
    struct repl *r = l->rw->r;
    if (l->await_ack) {
        l->await_ack = false;
        if (!link_pump(l))
            return;
    }
    repl_wake_workers(r);
}

/* The sync thread finished: join it, and feed the link from the stream. */
static bool link_online(struct repl_link *l)
{
    pthread_join(l->thread, NULL);
    l->thread_started = false;
    if (atomic_load(&l->thread_failed)) {
        link_free(l, "failed during the full sync");
        return false;
    }
    int flags = fcntl(l->fd, F_GETFL);
    fcntl(l->fd, F_SETFL, flags | O_NONBLOCK);
    /* No ack yet: the replica has the RDB but may not have loaded it, so
       WAIT counts it only once it says so (as Redis). The time starts the
       --repl-timeout clock. */
    atomic_store(&l->ack_ms, now_ms());
    atomic_store(&l->state, RLINK_ONLINE);
    event_add(l->ev_read, NULL);
    /* After a diskless RDB the stream waits for the replica's first ACK,
       as Redis's (repl_start_cmd_stream_on_ack): redis-server and
       redis-cli find the end mark only at the end of a read, so stream
       bytes glued to it would hide it and the sync would never end. */
    l->await_ack = l->capa_eof;
    log_info("replication: full sync of replica %s:%u done; streaming from offset %" PRIu64 "%s",
             l->ip, l->port, l->sync_offset, l->await_ack ? " after its first ACK" : "");
    return link_pump(l);
}

/* ---- waits ---- */

static void wait_answer(struct repl_worker *rw, struct waiter **pp, long long count)
{
    struct waiter *wt = *pp;
    *pp = wt->next;
    atomic_fetch_sub(&rw->nwaits, 1);
    struct conn *c = rw->w->conns;
    while (c && c->id != wt->conn_id)
        c = c->next;
    free(wt);
    if (!c || !c->blocked)
        return; /* closed meanwhile */
    reply_int(c, count);
    c->blocked = false;
    if (!(c->flags & CONN_WRITE_WAIT))
        event_add(c->ev_read, NULL);
    conn_batch_done(c); /* writes the reply, runs what came after WAIT */
}

void repl_wait_forget(struct conn *c)
{
    struct repl_worker *rw = c->w->repl;
    for (struct waiter **pp = &rw->waits; *pp; pp = &(*pp)->next) {
        if ((*pp)->conn_id == c->id) {
            struct waiter *wt = *pp;
            *pp = wt->next;
            free(wt);
            atomic_fetch_sub(&rw->nwaits, 1);
            return;
        }
    }
}

/* Arm the timer for the nearest deadline of the waits. */
static void waits_arm(struct repl_worker *rw)
{
    int64_t now = now_ms(), next = 0;
    for (struct waiter *wt = rw->waits; wt; wt = wt->next) {
        if (wt->deadline_ms && (!next || wt->deadline_ms < next))
            next = wt->deadline_ms;
    }
    if (next) {
        if (next < now)
            next = now;
        int64_t ms = next - now;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        event_add(rw->wait_ev, &tv);
    }
}

/* Answer the waits that are satisfied or past their deadline, and arm the
   timer for the nearest deadline left. From the worker's events only,
   never inside a command (an answer runs the connection on). */
static void waits_check(struct repl_worker *rw)
{
    int64_t now = now_ms();
    for (struct waiter **pp = &rw->waits; *pp;) {
        struct waiter *wt = *pp;
        long long n = count_acked(rw->r, wt->target);
        if (n >= wt->num || (wt->deadline_ms && now >= wt->deadline_ms)) {
            wait_answer(rw, pp, n);
            continue;
        }
        pp = &wt->next;
    }
    waits_arm(rw);
}

static void on_wait_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waits_check(arg);
}

void repl_wait(struct conn *c, long long numreplicas, long long timeout_ms)
{
    struct worker *w = c->w;
    struct repl *r = w->srv->repl;
    struct repl_worker *rw = w->repl;
    if (repl_is_replica(r)) {
        reply_error(c, "ERR WAIT cannot be used with replica instances. Please also note that "
                       "since Redis 4.0 if a replica is configured to be writable (which is not "
                       "the default) writes to replicas are just local and are not propagated.");
        return;
    }
    uint64_t target = repl_offset(r);
    long long n = count_acked(r, target);
    if (n >= numreplicas) {
        reply_int(c, n);
        return;
    }
    struct waiter *wt = calloc(1, sizeof(*wt));
    if (!wt) {
        c->flags |= CONN_KILL;
        return;
    }
    *wt = (struct waiter){.next = rw->waits,
                          .conn_id = c->id,
                          .target = target,
                          .num = numreplicas,
                          .deadline_ms = timeout_ms ? now_ms() + timeout_ms : 0};
    rw->waits = wt;
    atomic_fetch_add(&rw->nwaits, 1);
    /* The connection runs nothing more until answered (conn.c). */
    c->blocked = true;
    /* Ask the replicas for their offsets now rather than in a second. */
    if (atomic_load(&r->stream.on)) {
        static const kvs_slice getack[] = {{"REPLCONF", 8}, {"GETACK", 6}, {"*", 1}};
        repl_feed_lock(&r->stream);
        repl_feed_command(&r->stream, 3, getack);
        repl_feed_unlock(&r->stream);
    }
    waits_arm(rw);
}

void repl_worker_stop(struct worker *w)
{
    struct repl_worker *rw = w->repl;
    if (!rw)
        return;
    while (rw->waits)
        wait_answer(rw, &rw->waits, count_acked(rw->r, rw->waits->target));
}

/* ---- the worker's events ---- */

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct repl_worker *rw = arg;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    atomic_store_explicit(&rw->wake_pending, false, memory_order_release);
    uint64_t gen = atomic_load(&rw->r->drop_gen);
    struct repl_link *next;
    for (struct repl_link *l = rw->links; l; l = next) {
        next = l->next;
        if (l->gen != gen) {
            link_free(l, "closed (the server changed its role)");
            continue;
        }
        if (atomic_load(&l->state) == RLINK_SYNC) {
            if (atomic_load(&l->thread_done))
                link_online(l);
            continue;
        }
        link_pump(l);
    }
    if (rw->waits)
        waits_check(rw);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct repl_worker *rw = arg;
    struct repl *r = rw->r;
    struct server_config *cfg = &r->srv->cfg;
    int64_t now = now_ms();
    struct repl_link *next;
    for (struct repl_link *l = rw->links; l; l = next) {
        next = l->next;
        if (atomic_load(&l->state) == RLINK_ONLINE &&
            now - atomic_load(&l->ack_ms) > (int64_t)cfg->repl_timeout * 1000)
            link_free(l, "timed out (no ACK within --repl-timeout)");
    }
    /* Worker 0 keeps the stream alive: a PING every period, as Redis's
       repl-ping-replica-period, while replicas are attached. */
    rw->ticks++;
    if (rw->w->index == 0 && rw->ticks % cfg->repl_ping_period == 0 && !repl_is_replica(r) &&
        atomic_load(&r->stream.on)) {
        pthread_mutex_lock(&r->lock);
        unsigned nlinks = r->nlinks;
        pthread_mutex_unlock(&r->lock);
        if (nlinks) {
            static const kvs_slice ping = {"PING", 4};
            repl_feed_lock(&r->stream);
            repl_feed_command(&r->stream, 1, &ping);
            repl_feed_unlock(&r->stream);
        }
    }
}

int repl_worker_init(struct worker *w)
{
    struct repl *r = w->srv->repl;
    struct repl_worker *rw = calloc(1, sizeof(*rw));
    if (!rw)
        return -1;
    rw->efd = -1;
    rw->w = w;
    rw->r = r;
    w->repl = rw;
    rw->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rw->efd < 0)
        return -1;
    rw->wake_ev = event_new(w->base, rw->efd, EV_READ | EV_PERSIST, on_wake, rw);
    rw->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, rw);
    rw->wait_ev = evtimer_new(w->base, on_wait_timer, rw);
    struct timeval second = {1, 0};
    if (!rw->wake_ev || !rw->tick_ev || !rw->wait_ev || event_add(rw->wake_ev, NULL) != 0 ||
        event_add(rw->tick_ev, &second) != 0)
        return -1;
    if (r && w->index < r->nworkers)
        r->workers[w->index] = rw;
    return 0;
}

void repl_worker_free(struct worker *w)
{
    struct repl_worker *rw = w->repl;
    if (!rw)
        return;
    while (rw->links)
        link_free(rw->links, "closed (the server stops)");
    while (rw->waits) { /* their connections are gone with the worker */
        struct waiter *wt = rw->waits;
        rw->waits = wt->next;
        free(wt);
    }
    if (rw->wake_ev)
        event_free(rw->wake_ev);
    if (rw->tick_ev)
        event_free(rw->tick_ev);
    if (rw->wait_ev)
        event_free(rw->wait_ev);
    rw->wake_ev = rw->tick_ev = rw->wait_ev = NULL;
    /* The struct and its eventfd stay until repl_finish(): other threads
       (the active expiry, the replica's link) may still wake it. */
    atomic_store(&rw->nlinks, 0);
    atomic_store(&rw->nwaits, 0);
    w->repl = NULL;
}

/* ---- REPLCONF ---- */

static struct replconf_slot *slot_of(struct repl_worker *rw, uint64_t id, bool make)
{
    for (unsigned i = 0; i < REPLCONF_SLOTS; i++) {
        if (rw->slots[i].conn_id == id)
            return &rw->slots[i];
    }
    if (!make)
        return NULL;
    struct replconf_slot *s = &rw->slots[rw->next_slot++ % REPLCONF_SLOTS];
    *s = (struct replconf_slot){.conn_id = id};
    return s;
}

/* REPLCONF listening-port <port> | ip-address <ip> | capa <eof|psync2>... |
   ACK <offset> (from a connection that is no link: ignored) | GETACK. */
void repl_replconf(struct conn *c, size_t argc, const kvs_slice *argv)
{
    if (argc % 2 == 0) {
        reply_error(c, "ERR syntax error");
        return;
    }
    struct repl_worker *rw = c->w->repl;
    if (slice_is(argv[1], "ack") || slice_is(argv[1], "getack")) {
        return; /* no reply, as Redis */
    }
    struct replconf_slot *s = slot_of(rw, c->id, true);
    for (size_t i = 1; i < argc; i += 2) {
        if (slice_is(argv[i], "listening-port")) {
            long long port;
            if (slice_to_ll(argv[i + 1], &port) != 0 || port < 0 || port > 65535) {
                reply_error(c, "ERR value is not an integer or out of range");
                return;
            }
            s->port = (unsigned)port;
        } else if (slice_is(argv[i], "ip-address")) {
            size_t len = argv[i + 1].len < sizeof(s->ip) - 1 ? argv[i + 1].len : sizeof(s->ip) - 1;
            memcpy(s->ip, argv[i + 1].data, len);
            s->ip[len] = '\0';
        } else if (slice_is(argv[i], "capa")) {
            if (slice_is(argv[i + 1], "eof"))
                s->capa_eof = true;
            else if (slice_is(argv[i + 1], "psync2"))
                s->capa_psync2 = true;
        } else if (slice_is(argv[i], "kvs-bootstrap")) {
            s->bootstrap = slice_is(argv[i + 1], "1");
        } else if (!slice_is(argv[i], "rdb-only") && !slice_is(argv[i], "rdb-filter-only")) {
            reply_errorf(c, "ERR Unrecognized REPLCONF option: %.*s", (int)argv[i].len,
                         (const char *)argv[i].data);
            return;
        }
    }
    reply_ok(c);
}

/* ---- full sync ---- */

/* The keys already written to the RDB: an open-addressing set of 128-bit
   hashes (0 is the empty slot). */
struct seen {
    XXH128_hash_t *slots;
    size_t cap, n;
};

static bool seen_add(struct seen *s, kvs_slice key, int *rc)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1u << 16;
        XXH128_hash_t *slots = calloc(cap, sizeof(*slots));
        if (!slots) {
            *rc = KVS_ENOMEM;
            return false;
        }
        for (size_t i = 0; i < s->cap; i++) {
            XXH128_hash_t h = s->slots[i];
            if (!h.low64 && !h.high64)
                continue;
            size_t j = h.low64 & (cap - 1);
            while (slots[j].low64 || slots[j].high64)
                j = (j + 1) & (cap - 1);
            slots[j] = h;
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    XXH128_hash_t h = XXH3_128bits(key.data, key.len);
    if (!h.low64 && !h.high64)
        h.low64 = 1;
    size_t j = h.low64 & (s->cap - 1);
    while (s->slots[j].low64 || s->slots[j].high64) {
        if (s->slots[j].low64 == h.low64 && s->slots[j].high64 == h.high64)
            return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = h;
    s->n++;
    return true;
}

struct sync_job {
    struct repl_link *l;
    struct rdb_writer wr;
    struct seen seen;
    int out_fd; /* the socket, or the temporary file */
    int rc;
    uint64_t keys;
};

/* Write all of data to fd (blocking), giving up when the link is aborted
   or the peer takes nothing for --repl-timeout. */
static int write_all(struct repl_link *l, int fd, const void *data, size_t len)
{
    const char *p = data;
    int timeout = (int)l->r->srv->cfg.repl_timeout * 1000;
    while (len > 0) {
        if (atomic_load(&l->abort))
            return KVS_EIO;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, timeout);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return KVS_EIO;
        ssize_t n = write(fd, p, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return KVS_EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int job_sink(void *ctx, const void *data, size_t len)
{
    struct sync_job *j = ctx;
    return write_all(j->l, j->out_fd, data, len);
}

static int job_key(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    struct sync_job *j = ctx;
    int rc = 0;
    if (!seen_add(&j->seen, key, &rc))
        return rc;
    j->keys++;
    return rdb_write_string(&j->wr, key, *value, expire_at);
}

/* The RDB of the whole store, to j->out_fd. */
static int write_rdb(struct sync_job *j, const char *replid)
{
    struct repl_link *l = j->l;
    kvs_db *db = l->r->srv->store.db;
    kvs_stats st = {0};
    int rc = kvs_db_stats(db, &st);
    if (rc != 0)
        return rc;
    rdb_writer_init(&j->wr, job_sink, j);
    j->wr.manual = true;
    struct rdb_header h = {
        .replid = replid, .offset = l->sync_offset, .keys = st.keys, .expires = st.expires};
    rc = rdb_write_header(&j->wr, &h);
    uint64_t cursor = 0;
    do {
        uint64_t next = 0;
        if (rc == 0)
            rc = kvs_db_scan(db, cursor, SYNC_STEP, KVS_SCAN_VALUES, job_key, j, &next);
        if (rc == 0)
            rc = rdb_writer_flush(&j->wr);
        if (rc == 0 && atomic_load(&l->reader.overflow))
            rc = KVS_ENOMEM; /* the stream since X outgrew the limit */
        cursor = next;
    } while (rc == 0 && cursor != 0);
    if (rc == 0)
        rc = rdb_write_end(&j->wr);
    rdb_writer_free(&j->wr);
    return rc;
}

static void *sync_main(void *arg)
{
    struct repl_link *l = arg;
    struct repl *r = l->r;
    struct sync_job j = {.l = l, .out_fd = l->fd};
    int64_t start = now_ms();
    char replid[REPL_ID_LEN + 1];
    pthread_mutex_lock(&r->lock);
    memcpy(replid, r->replid, sizeof(replid));
    pthread_mutex_unlock(&r->lock);

    int flags = fcntl(l->fd, F_GETFL);
    fcntl(l->fd, F_SETFL, flags & ~O_NONBLOCK);
    int rc = 0;
    char line[128];
    if (l->pending.len)
        rc = write_all(l, l->fd, l->pending.data, l->pending.len);
    kvs_buf_free(&l->pending);
    if (rc == 0 && !l->old_sync) {
        int n =
            snprintf(line, sizeof(line), "+FULLRESYNC %s %" PRIu64 "\r\n", replid, l->sync_offset);
        rc = write_all(l, l->fd, line, (size_t)n);
    }
    uint64_t bytes = 0;
    if (rc == 0 && l->capa_eof) {
        /* Diskless: the RDB streamed between "$EOF:<mark>" and the mark. */
        char mark[REPL_ID_LEN + 1];
        repl_new_id(mark);
        int n = snprintf(line, sizeof(line), "$EOF:%s\r\n", mark);
        rc = write_all(l, l->fd, line, (size_t)n);
        if (rc == 0)
            rc = write_rdb(&j, replid);
        bytes = j.wr.bytes;
        if (rc == 0)
            rc = write_all(l, l->fd, mark, REPL_ID_LEN);
    } else if (rc == 0) {
        /* A replica that needs the length first: the RDB to a temporary
           file, then "$<length>" and the file. */
        FILE *tmp = tmpfile();
        rc = tmp ? 0 : KVS_EIO;
        if (rc == 0) {
            j.out_fd = fileno(tmp);
            rc = write_rdb(&j, replid);
            bytes = j.wr.bytes;
        }
        if (rc == 0) {
            int n = snprintf(line, sizeof(line), "$%" PRIu64 "\r\n", bytes);
            rc = write_all(l, l->fd, line, (size_t)n);
        }
        off_t off = 0;
        while (rc == 0 && (uint64_t)off < bytes) {
            struct pollfd pfd = {.fd = l->fd, .events = POLLOUT};
            if (poll(&pfd, 1, (int)r->srv->cfg.repl_timeout * 1000) <= 0 ||
                atomic_load(&l->abort)) {
                rc = KVS_EIO;
                break;
            }
            ssize_t n = sendfile(l->fd, fileno(tmp), &off, bytes - (uint64_t)off);
            if (n <= 0 && errno != EINTR && errno != EAGAIN)
                rc = KVS_EIO;
        }
        if (tmp)
            fclose(tmp);
    }
    free(j.seen.slots);
    if (rc != 0) {
        log_warn("replication: full sync of replica %s:%u failed: %s", l->ip, l->port,
                 kvs_strerror(rc));
        atomic_store(&l->thread_failed, true);
    } else {
        log_info("replication: RDB of %" PRIu64 " keys (%" PRIu64
                 " bytes) sent to replica %s:%u in %lld ms",
                 j.keys, bytes, l->ip, l->port, (long long)(now_ms() - start));
    }
    atomic_store(&l->thread_done, true);
    wake_one(l->rw);
    return NULL;
}

/* ---- PSYNC and SYNC ---- */

static bool replid_is(const char *a, const char *b)
{
    return strlen(a) == REPL_ID_LEN && strcmp(a, b) == 0;
}

void repl_psync(struct conn *c, const char *replid, long long offset, bool psync)
{
    struct worker *w = c->w;
    struct repl *r = w->srv->repl;
    struct repl_worker *rw = w->repl;
    if (atomic_load(&r->bootstrap)) {
        /* Copying its peer's data: it follows nothing yet, and the peer
           that asks would follow itself. */
        reply_error(c, "NOMASTERLINK Can't SYNC while copying my peer's data");
        return;
    }
    if (repl_is_replica(r)) {
        /* A replica serves the stream it follows; and, link down or not,
           a whole copy of its data to an empty primary of its pair that
           asks for one (REPLCONF kvs-bootstrap 1). */
        struct replconf_slot *bs = slot_of(rw, c->id, false);
        bool peer_copy =
            bs && bs->bootstrap && atomic_load(&r->stream.exists) && !repl_is_loading(r);
        int st = atomic_load(&r->link_state);
        if (!peer_copy && st != LINK_STREAMING && st != LINK_CATCHING_UP) {
            reply_error(c, "NOMASTERLINK Can't SYNC while not connected with my master");
            return;
        }
        if (peer_copy)
            log_warn("replication: pair: copying this server's data to its empty primary "
                     "(bootstrap)");
    }
    struct repl_link *l = calloc(1, sizeof(*l));
    if (!l || resp_parser_init(&l->parser, NULL) != 0) {
        free(l);
        c->flags |= CONN_KILL;
        return;
    }
    l->fd = -1;
    l->rw = rw;
    l->r = r;
    l->id = c->id;
    l->gen = atomic_load(&r->drop_gen);
    l->old_sync = !psync;
    atomic_init(&l->created_ms, now_ms());
    struct replconf_slot *s = slot_of(rw, c->id, false);
    if (s) {
        l->port = s->port;
        l->capa_eof = s->capa_eof;
        l->capa_psync2 = s->capa_psync2;
        snprintf(l->ip, sizeof(l->ip), "%s", s->ip);
        s->conn_id = 0;
    }
    if (!l->ip[0]) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
            const void *a = ss.ss_family == AF_INET6
                                ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
            inet_ntop(ss.ss_family, a, l->ip, sizeof(l->ip));
        }
    }
    /* Replies the connection still owes go first. */
    if (c->out.len > c->out_sent &&
        kvs_buf_set(&l->pending, (char *)c->out.data + c->out_sent, c->out.len - c->out_sent) != 0)
        goto fail;
    l->fd = dup(c->fd);
    if (l->fd < 0)
        goto fail;
    l->ev_read = event_new(w->base, l->fd, EV_READ | EV_PERSIST, on_link_read, l);
    l->ev_write = event_new(w->base, l->fd, EV_WRITE | EV_PERSIST, on_link_write, l);
    if (!l->ev_read || !l->ev_write)
        goto fail;

    bool partial = false;
    uint64_t at = 0;
    bool primary = !repl_is_replica(r);
    pthread_mutex_lock(&r->lock);
    char myid[REPL_ID_LEN + 1];
    memcpy(myid, r->replid, sizeof(myid));
    if (psync && offset > 0 && atomic_load(&r->stream.exists) &&
        (replid_is(replid, r->replid) ||
         (replid_is(replid, r->replid2) && offset <= r->second_offset)))
        partial =
            repl_stream_add_reader(&r->stream, &l->reader, (uint64_t)offset - 1, false, &at) == 0;
    pthread_mutex_unlock(&r->lock);

    if (partial) {
        char line[80];
        int n = l->capa_psync2 ? snprintf(line, sizeof(line), "+CONTINUE %s\r\n", myid)
                               : snprintf(line, sizeof(line), "+CONTINUE\r\n");
        if (kvs_buf_reserve(&l->pending, l->pending.len + (size_t)n) != 0)
            goto fail_reader;
        memcpy((char *)l->pending.data + l->pending.len, line, (size_t)n);
        l->pending.len += (size_t)n;
        atomic_store(&l->ack, at);
        atomic_store(&l->ack_ms, now_ms());
        atomic_store(&l->state, RLINK_ONLINE);
        atomic_fetch_add(&r->sync_partial_ok, 1);
        log_info("replication: partial resync of replica %s:%u from offset %lld", l->ip, l->port,
                 offset);
    } else {
        if (psync && strcmp(replid, "?") != 0) {
            atomic_fetch_add(&r->sync_partial_err, 1);
            log_info("replication: replica %s:%u asked for %s:%lld, which this server cannot "
                     "continue; full sync",
                     l->ip, l->port, replid, offset);
        }
        atomic_fetch_add(&r->sync_full, 1);
        if (primary) {
            /* The first replica makes the backlog, and from then on every
               write goes into the stream. */
            if (!atomic_load(&r->stream.exists))
                repl_stream_reset(&r->stream, 0);
            if (!atomic_load(&r->stream.on))
                store_feed_switch(&w->srv->store, true);
        } else if (!atomic_load(&r->stream.exists)) {
            reply_error(c, "NOMASTERLINK Can't SYNC while not connected with my master");
            goto fail_quiet;
        }
        repl_stream_add_reader(&r->stream, &l->reader, UINT64_MAX, primary, &l->sync_offset);
        atomic_store(&l->state, RLINK_SYNC);
        log_info("replication: full sync of replica %s:%u (client id=%llu) from offset %" PRIu64,
                 l->ip, l->port, (unsigned long long)l->id, l->sync_offset);
    }
    l->next = rw->links;
    rw->links = l;
    atomic_fetch_add(&rw->nlinks, 1);
    registry_add(r, l);
    c->flags |= CONN_KILL; /* the socket is the link's now (its dup) */
    if (partial) {
        event_add(l->ev_read, NULL);
        link_pump(l);
        return;
    }
    l->thread_started = true;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, sync_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        l->thread_started = false;
        link_free(l, "could not start its full sync");
        return;
    }
    pthread_setname_np(l->thread, "kvs-sync");
    return;

fail_reader:
    repl_stream_remove_reader(&r->stream, &l->reader);
fail:
    c->flags |= CONN_KILL;
fail_quiet:
    if (l->ev_read)
        event_free(l->ev_read);
    if (l->ev_write)
        event_free(l->ev_write);
    if (l->fd >= 0)
        close(l->fd);
    kvs_buf_free(&l->pending);
    resp_parser_free(&l->parser);
    free(l);
}

/* ---- INFO ---- */

int repl_info_replication(struct repl *r, kvs_buf *t)
{
    bool replica = repl_is_replica(r);
    int64_t now = now_ms();
    enum repl_pair_state pair = repl_pair_state(r);
    int rc = repl_addf(t, "role:%s\r\n", replica ? "slave" : "master");
    pthread_mutex_lock(&r->lock);
    if (rc == 0 && replica) {
        int st = atomic_load(&r->link_state);
        bool up = st == LINK_STREAMING || st == LINK_CATCHING_UP;
        int64_t io = atomic_load(&r->master_last_io_ms);
        int64_t down = atomic_load(&r->link_down_since_ms);
        rc = repl_addf(t,
                       "master_host:%s\r\nmaster_port:%u\r\nmaster_link_status:%s\r\n"
                       "master_last_io_seconds_ago:%lld\r\nmaster_sync_in_progress:%d\r\n"
                       "slave_read_repl_offset:%" PRIu64 "\r\nslave_repl_offset:%" PRIu64 "\r\n",
                       r->master_host, r->master_port, up ? "up" : "down",
                       io ? (long long)((now - io) / 1000) : -1LL,
                       st == LINK_FULL_SYNC || st == LINK_LOADING, repl_stream_end(&r->stream),
                       repl_stream_end(&r->stream));
        if (rc == 0 && st == LINK_FULL_SYNC)
            rc = repl_addf(t, "master_sync_total_bytes:%lld\r\nmaster_sync_read_bytes:%llu\r\n",
                           (long long)atomic_load(&r->sync_total_bytes),
                           (unsigned long long)atomic_load(&r->sync_read_bytes));
        if (rc == 0 && !up)
            rc = repl_addf(t, "master_link_down_since_seconds:%lld\r\n",
                           down ? (long long)((now - down) / 1000) : -1LL);
        if (rc == 0)
            rc = repl_addf(t,
                           "slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n"
                           "kvs_link_state:%s\r\n",
                           repl_link_state_name(st));
    }
    if (rc == 0 && replica)
        rc = repl_addf(t, "kvs_empty_copies_refused:%llu\r\n",
                       (unsigned long long)atomic_load(&r->empty_refused));
    if (rc == 0 && pair != PAIR_NONE)
        rc = repl_addf(t, "kvs_pair_state:%s\r\n", repl_pair_state_name(pair));
    if (rc == 0)
        rc = repl_addf(t, "connected_slaves:%u\r\n", r->nlinks);
    unsigned i = 0;
    for (struct repl_link *l = r->links; l && rc == 0; l = l->reg_next, i++) {
        bool online = atomic_load(&l->state) == RLINK_ONLINE;
        int64_t ack_ms = atomic_load(&l->ack_ms);
        rc = repl_addf(t, "slave%u:ip=%s,port=%u,state=%s,offset=%" PRIu64 ",lag=%lld\r\n", i,
                       l->ip, l->port, online ? "online" : "send_bulk", atomic_load(&l->ack),
                       online ? (long long)((now - ack_ms) / 1000) : 0LL);
    }
    uint64_t first = 0, histlen = 0;
    bool exists = atomic_load(&r->stream.exists);
    if (exists)
        repl_stream_window(&r->stream, &first, &histlen);
    if (rc == 0)
        rc = repl_addf(t,
                       "master_failover_state:no-failover\r\nmaster_replid:%s\r\n"
                       "master_replid2:%s\r\nmaster_repl_offset:%" PRIu64 "\r\n"
                       "second_repl_offset:%lld\r\nrepl_backlog_active:%d\r\n"
                       "repl_backlog_size:%" PRIu64 "\r\n"
                       "repl_backlog_first_byte_offset:%" PRIu64 "\r\n"
                       "repl_backlog_histlen:%" PRIu64 "\r\n",
                       r->replid, r->replid2, repl_stream_end(&r->stream),
                       (long long)r->second_offset, exists, r->stream.backlog_size, first, histlen);
    pthread_mutex_unlock(&r->lock);
    return rc;
}
