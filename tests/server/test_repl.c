/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replication end to end (docs/replication.md): two or three servers per
 * test on loopback, kvs-server replicas of every engine and a real
 * redis-server replica of a kvs primary on every engine.
 *
 * Writes replicate (values, times, DEL, EXPIRE, PERSIST, FLUSHALL) and a
 * replica refuses writes; a 100k-key full sync while writes go on ends
 * with the primary's exact keys; a link cut by a proxy in the test
 * resumes with a partial resync; a replica restarted (SIGTERM and kill -9)
 * resumes partially; a promoted replica holds every write WAIT
 * acknowledged, and the old primary rejoins it and catches up; the
 * primary killed -9 at random points under writers, the replica promoted
 * (every WAIT-acknowledged write kept; the writes lost without WAIT
 * counted and printed), three times with the roles swapping; the replica
 * killed -9 at random points under writes, resuming partially each time;
 * redis-server follows a kvs primary, also after a link cut and when
 * synced under writes, and redis-cli --replica prints the stream; a kvs
 * replica of every engine follows a real redis-server through the string
 * commands Redis sends as typed, and stops at a hash.
 *
 * A copy is compared with its primary as the whole list of (key, value,
 * expiry time) read by SCAN, GET and PEXPIRETIME, once the replica's
 * offset equals the primary's.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "support/tmpdir.h"

#define SYNC_TIMEOUT_MS 60000

static redisContext *connect_port(uint16_t port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "cannot connect to port %u", (unsigned)port);
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to %s: %s", fmt, c->errstr);
    return r;
}

/* A command whose reply is +OK or a number; fails the test on an error. */
static void ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "no reply to %s: %s", fmt, c->errstr);
    cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s: %s", fmt, r->str);
    freeReplyObject(r);
}

/* A number field of INFO replication or stats; -1 when absent. */
static long long info_field(redisContext *c, const char *name)
{
    redisReply *r = cmd(c, "INFO everything");
    long long v = -1;
    char key[64];
    snprintf(key, sizeof(key), "\r\n%s:", name);
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, key) : NULL;
    if (p)
        v = strtoll(p + strlen(key), NULL, 10);
    freeReplyObject(r);
    return v;
}

static bool info_has(redisContext *c, const char *text)
{
    redisReply *r = cmd(c, "INFO replication");
    bool has = r->type == REDIS_REPLY_STRING && strstr(r->str, text);
    freeReplyObject(r);
    return has;
}

/* Wait until the replica's link is up and its offset is the primary's. */
static void wait_synced(redisContext *primary, redisContext *replica)
{
    long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
    for (;;) {
        long long want = info_field(primary, "master_repl_offset");
        long long have = info_field(replica, "slave_repl_offset");
        if (want >= 0 && have == want && info_has(replica, "master_link_status:up"))
            return;
        cr_assert(h_mono_ms() < deadline, "replica at %lld, primary at %lld", have, want);
        h_pause_ms(20);
    }
}

/* Wait until the replica's link is up (writes may still be going on). */
static void wait_link_up(redisContext *replica)
{
    long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
    while (!info_has(replica, "master_link_status:up")) {
        cr_assert(h_mono_ms() < deadline, "the replica's link never came up");
        h_pause_ms(20);
    }
}

/* Every key as "key=value@expiretime", sorted: the whole state. */
struct dump {
    char **items;
    size_t n, cap;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dump_free(struct dump *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i]);
    free(d->items);
    memset(d, 0, sizeof(*d));
}

static struct dump dump_of(redisContext *c)
{
    struct dump d = {0};
    char cursor[32] = "0";
    do {
        redisReply *r = cmd(c, "SCAN %s COUNT 1000", cursor);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisAppendCommand(c, "GET %b", keys->element[i]->str, keys->element[i]->len);
            redisAppendCommand(c, "PEXPIRETIME %b", keys->element[i]->str, keys->element[i]->len);
        }
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *v, *t;
            cr_assert_eq(redisGetReply(c, (void **)&v), REDIS_OK);
            cr_assert_eq(redisGetReply(c, (void **)&t), REDIS_OK);
            if (v->type == REDIS_REPLY_STRING) { /* else expired meanwhile */
                if (d.n == d.cap) {
                    d.cap = d.cap ? d.cap * 2 : 1024;
                    d.items = realloc(d.items, d.cap * sizeof(*d.items));
                    cr_assert_not_null(d.items);
                }
                size_t len = keys->element[i]->len + v->len + 32;
                char *s = malloc(len);
                cr_assert_not_null(s);
                snprintf(s, len, "%s=%s@%lld", keys->element[i]->str, v->str, t->integer);
                d.items[d.n++] = s;
            }
            freeReplyObject(v);
            freeReplyObject(t);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    /* SCAN may show a key twice: keep one. */
    if (d.n)
        qsort(d.items, d.n, sizeof(*d.items), cmp_str);
    size_t out = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (out && strcmp(d.items[out - 1], d.items[i]) == 0)
            free(d.items[i]);
        else
            d.items[out++] = d.items[i];
    }
    d.n = out;
    return d;
}

static void expect_same(redisContext *primary, redisContext *replica)
{
    struct dump a = dump_of(primary), b = dump_of(replica);
    cr_expect_eq(a.n, b.n, "primary holds %zu keys, replica %zu", a.n, b.n);
    for (size_t i = 0; i < a.n && i < b.n; i++) {
        if (strcmp(a.items[i], b.items[i]) != 0) {
            cr_expect_str_eq(a.items[i], b.items[i], "first difference at %zu", i);
            break;
        }
    }
    dump_free(&a);
    dump_free(&b);
}

/* A kvs replica of primary on engine. */
static void start_replica(struct h_server *r, const char *engine, struct h_server *primary,
                          const char *addr)
{
    const char *args[] = {"--replicaof", addr ? addr : primary->s.addr, "--threads", "1", NULL};
    h_start(r, engine, args);
}

/* The engine after e in the registry: the replica's, so that pairs mix. */
static const char *other_engine(const char *e)
{
    for (size_t i = 0; i < kvs_engine_count(); i++) {
        if (strcmp(kvs_engine_name(kvs_engine_at(i)), e) == 0)
            return kvs_engine_name(kvs_engine_at((i + 1) % kvs_engine_count()));
    }
    return e;
}

/* ---- a proxy that can cut the link ---- */

struct proxy {
    int lfd;
    uint16_t port, target;
    pthread_t thread;
    atomic_bool stop, cut;
    atomic_int links; /* links carried so far */
};

static void *proxy_main(void *arg)
{
    struct proxy *p = arg;
    int a = -1, b = -1;
    char buf[65536];
    while (!atomic_load(&p->stop)) {
        if (atomic_exchange(&p->cut, false) && a >= 0) {
            close(a);
            close(b);
            a = b = -1;
        }
        struct pollfd pf[3] = {{p->lfd, POLLIN, 0}, {a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(pf, 3, 20) <= 0)
            continue;
        if (pf[0].revents & POLLIN) {
            int c = accept(p->lfd, NULL, NULL);
            if (c >= 0 && a >= 0) {
                close(c); /* one link at a time */
            } else if (c >= 0) {
                struct h_server fake = {0};
                fake.s.port = p->target;
                a = c;
                b = h_connect(&fake);
                atomic_fetch_add(&p->links, 1);
            }
        }
        for (int i = 1; i < 3 && a >= 0; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int from = i == 1 ? a : b, to = i == 1 ? b : a;
            ssize_t n = recv(from, buf, sizeof(buf), 0);
            if (n <= 0 || send(to, buf, (size_t)n, MSG_NOSIGNAL) != n) {
                close(a);
                close(b);
                a = b = -1;
            }
        }
    }
    if (a >= 0) {
        close(a);
        close(b);
    }
    return NULL;
}

static void proxy_start(struct proxy *p, uint16_t target)
{
    memset(p, 0, sizeof(*p));
    p->target = target;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(p->lfd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    getsockname(p->lfd, (struct sockaddr *)&sa, &len);
    p->port = ntohs(sa.sin_port);
    cr_assert_eq(listen(p->lfd, 4), 0);
    cr_assert_eq(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void proxy_stop(struct proxy *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
    close(p->lfd);
}

/* ---- writes ---- */

/* n keys "key:<i>" = "value:<i>:<tag>", every third with a time. */
static void fill(redisContext *c, int from, int n, const char *tag)
{
    for (int i = from; i < from + n; i++) {
        if (i % 3 == 0)
            redisAppendCommand(c, "SET key:%d value:%d:%s PX %d", i, i, tag, 600000 + i);
        else
            redisAppendCommand(c, "SET key:%d value:%d:%s", i, i, tag);
    }
    for (int i = 0; i < n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        cr_assert_neq(r->type, REDIS_REPLY_ERROR, "%s", r->str);
        freeReplyObject(r);
    }
}

ParameterizedTestParameters(repl, writes_replicate)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *e, repl, writes_replicate, .timeout = 120)
{
    struct h_server p, r;
    h_start(&p, e->name, NULL);
    redisContext *pc = connect_port(p.s.port);
    fill(pc, 0, 300, "a");
    start_replica(&r, other_engine(e->name), &p, NULL);
    redisContext *rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    /* Every kind of write after the sync. */
    fill(pc, 200, 300, "b");
    ok(pc, "DEL key:1 key:2 missing");
    ok(pc, "EXPIRE key:4 1000");
    ok(pc, "PEXPIREAT key:5 %lld", 4102444800000LL);
    ok(pc, "PERSIST key:6");
    ok(pc, "SETEX key:7 100 seven");
    ok(pc, "MSET m1 a m2 b");
    ok(pc, "SET key:8 eight KEEPTTL");
    ok(pc, "MULTI");
    ok(pc, "SET tx:1 a");
    ok(pc, "DEL key:9");
    ok(pc, "EXEC"); /* replicated as MULTI ... EXEC */
    ok(pc, "SET gone x PX 1");
    h_pause_ms(300); /* the primary's active expiry removes it: a DEL */
    wait_synced(pc, rc);
    expect_same(pc, rc);
    /* A replica takes no writes. */
    redisReply *x = cmd(rc, "SET a b");
    cr_expect_eq(x->type, REDIS_REPLY_ERROR);
    cr_expect_str_eq(x->str, "READONLY You can't write against a read only replica.");
    freeReplyObject(x);
    x = cmd(rc, "ROLE");
    cr_expect_str_eq(x->element[0]->str, "slave");
    freeReplyObject(x);
    ok(pc, "FLUSHALL");
    ok(pc, "SET after flush");
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    redisFree(rc);
    redisFree(pc);
    h_stop(&r);
    h_stop(&p);
}

struct writer {
    uint16_t port;
    atomic_bool stop;
    pthread_t thread;
    long writes;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    redisContext *c = redisConnect("127.0.0.1", w->port);
    if (!c || c->err)
        return NULL;
    for (long i = 0; !atomic_load(&w->stop); i++) {
        long k = (i * 7919) % 120000;
        redisReply *r = i % 5 == 4 ? redisCommand(c, "DEL key:%ld", k)
                                   : redisCommand(c, "SET key:%ld w%ld", k, i);
        if (!r)
            break;
        freeReplyObject(r);
        w->writes++;
    }
    redisFree(c);
    return NULL;
}

/* 100k keys copied while a client keeps writing: the copy ends exact. */
Test(repl, full_sync_under_writes, .timeout = 240)
{
    struct h_server p, r;
    h_start(&p, "kvs", NULL);
    redisContext *pc = connect_port(p.s.port);
    for (int i = 0; i < 100000; i += 5000)
        fill(pc, i, 5000, "base");
    struct writer w = {.port = p.s.port};
    cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    start_replica(&r, "lmdb", &p, NULL);
    redisContext *rc = connect_port(r.s.port);
    long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
    while (!info_has(rc, "master_link_status:up")) {
        cr_assert(h_mono_ms() < deadline, "the replica never came up");
        h_pause_ms(20);
    }
    h_pause_ms(300);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    cr_expect_gt(w.writes, 0);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    redisFree(rc);
    redisFree(pc);
    h_stop(&r);
    h_stop(&p);
}

/* A cut link within the backlog resumes with +CONTINUE, no second full
   sync; so does a replica restarted on its data. */
Test(repl, partial_resync_after_cut_and_restart, .timeout = 120)
{
    struct h_server p, r;
    h_start(&p, "kvs", NULL);
    redisContext *pc = connect_port(p.s.port);
    fill(pc, 0, 1000, "a");
    struct proxy px;
    proxy_start(&px, p.s.port);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)px.port);
    start_replica(&r, "kvs", &p, addr);
    redisContext *rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    for (int round = 0; round < 3; round++) {
        int before = atomic_load(&px.links);
        atomic_store(&px.cut, true);
        while (atomic_load(&px.cut))
            h_pause_ms(5);
        fill(pc, round * 100, 200, "cut"); /* while the link is down */
        long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
        while (atomic_load(&px.links) == before)
            cr_assert(h_mono_ms() < deadline, "the replica never came back");
        wait_synced(pc, rc);
    }
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    cr_expect_geq(info_field(pc, "sync_partial_ok"), 3);
    cr_expect_geq(atomic_load(&px.links), 4);
    /* Restarted on its data: it asks to go on from its offset. */
    redisFree(rc);
    h_stop_keep(&r);
    fill(pc, 500, 300, "while-down");
    const char *args[] = {"--replicaof", addr, "--threads", "1", NULL};
    h_restart(&r, args);
    rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    /* kill -9 of the replica under writes: it comes back and catches up,
       partially (its offset on disk is at most what its data holds). */
    struct writer w = {.port = p.s.port};
    cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    h_pause_ms(300);
    redisFree(rc);
    ts_server_kill(&r.s);
    h_pause_ms(200);
    h_restart(&r, args);
    h_pause_ms(300);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    redisFree(rc);
    redisFree(pc);
    h_stop(&r);
    proxy_stop(&px);
    h_stop(&p);
}

/* A client blocked in WAIT counts in INFO's blocked_clients (as Redis's
   do) until it is answered. */
Test(repl, wait_counts_as_blocked, .timeout = 60)
{
    struct h_server p;
    h_start(&p, "kvs", NULL);
    redisContext *waiter = connect_port(p.s.port);
    redisContext *probe = connect_port(p.s.port);
    cr_expect_eq(info_field(probe, "blocked_clients"), 0);
    redisAppendCommand(waiter, "WAIT 1 1500"); /* no replica: times out */
    int done = 0;
    while (!done)
        cr_assert_eq(redisBufferWrite(waiter, &done), REDIS_OK);
    long long deadline = h_mono_ms() + 1000;
    while (info_field(probe, "blocked_clients") != 1) {
        cr_assert(h_mono_ms() < deadline, "WAIT never showed in blocked_clients");
        h_pause_ms(10);
    }
    redisReply *r;
    cr_assert_eq(redisGetReply(waiter, (void **)&r), REDIS_OK);
    cr_expect_eq(r->integer, 0);
    freeReplyObject(r);
    cr_expect_eq(info_field(probe, "blocked_clients"), 0);
    redisFree(probe);
    redisFree(waiter);
    h_stop(&p);
}

/* A client that leaves while blocked in WAIT is dropped at once (as Redis
   drops it), on both network paths: its wait no longer counts, and it is
   no longer a client. */
Test(repl, wait_client_leaving_is_dropped, .timeout = 60)
{
    const char *backends[] = {"epoll", "io_uring"};
    for (size_t b = 0; b < 2; b++) {
        const char *args[] = {"--io-backend", backends[b], NULL};
        struct h_server p;
        h_start(&p, "kvs", args);
        redisContext *probe = connect_port(p.s.port);
        long long clients = info_field(probe, "connected_clients");
        redisContext *waiter = connect_port(p.s.port);
        redisAppendCommand(waiter, "WAIT 1 0"); /* no replica, no timeout: forever */
        int done = 0;
        while (!done)
            cr_assert_eq(redisBufferWrite(waiter, &done), REDIS_OK);
        long long deadline = h_mono_ms() + 5000;
        while (info_field(probe, "blocked_clients") != 1) {
            cr_assert(h_mono_ms() < deadline, "%s: WAIT never blocked", backends[b]);
            h_pause_ms(10);
        }
        redisFree(waiter); /* closes the socket */
        /* At most the clients before it: the start's readiness probe may
           have been counted then. */
        deadline = h_mono_ms() + 5000;
        while (info_field(probe, "blocked_clients") != 0 ||
               info_field(probe, "connected_clients") > clients) {
            cr_assert(h_mono_ms() < deadline, "%s: the client that left is still held",
                      backends[b]);
            h_pause_ms(10);
        }
        redisFree(probe);
        h_stop(&p);
    }
}

/* Writes acknowledged by WAIT 1 survive the primary's kill -9 on the
   promoted replica; the old primary rejoins and catches up. */
Test(repl, promotion_keeps_waited_writes, .timeout = 120)
{
    struct h_server p, r;
    h_start(&p, "kvs", NULL);
    start_replica(&r, "mem", &p, NULL);
    redisContext *pc = connect_port(p.s.port), *rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    int acked = 0;
    for (int i = 0; i < 200; i++) {
        ok(pc, "SET w:%d %d", i, i);
        redisReply *x = cmd(pc, "WAIT 1 5000");
        cr_assert_eq(x->type, REDIS_REPLY_INTEGER);
        if (x->integer == 1)
            acked = i + 1;
        freeReplyObject(x);
    }
    cr_expect_eq(acked, 200);
    redisFree(pc);
    ts_server_kill(&p.s);
    ok(rc, "REPLICAOF NO ONE");
    for (int i = 0; i < acked; i++) {
        redisReply *x = cmd(rc, "GET w:%d", i);
        cr_expect_eq(x->type, REDIS_REPLY_STRING, "w:%d lost", i);
        freeReplyObject(x);
    }
    ok(rc, "SET after promotion");
    redisReply *x = cmd(rc, "ROLE");
    cr_expect_str_eq(x->element[0]->str, "master");
    freeReplyObject(x);
    /* The old primary comes back as the new one's replica. */
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)r.s.port);
    const char *args[] = {"--replicaof", addr, NULL};
    h_restart(&p, args);
    pc = connect_port(p.s.port);
    wait_synced(rc, pc);
    expect_same(rc, pc);
    redisFree(pc);
    redisFree(rc);
    h_stop(&p);
    h_stop(&r);
}

/* ---- kill -9 at random points ---- */

/* The seed of the random kill points, printed so a failure can be
   replayed (KVS_REPL_SEED). */
static unsigned kill_seed(void)
{
    const char *env = getenv("KVS_REPL_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)(time(NULL) ^ getpid());
    fprintf(stderr, "test_repl: kill points from seed %u (KVS_REPL_SEED)\n", seed);
    return seed;
}

/* A client writing "<prefix>:<i>" = i, one at a time, on its own thread,
   until its connection fails (the primary was killed). With wait, each
   SET is followed by WAIT 1 1000, and waited is the count of writes a
   WAIT returned 1 after (0..waited-1 are on a replica). Without, acked_ms
   holds when each write's OK arrived, and acked the count of OKs. */
struct acker {
    uint16_t port;
    char prefix[32];
    bool wait;
    pthread_t thread;
    long acked, waited;
    long long *acked_ms;
    size_t cap;
};

/* Without WAIT the writes go 32 at a time (pipelined), a heavier load
   than one at a time; their OKs still come in order. */
#define ACKER_PIPELINE 32

static void *acker_main(void *arg)
{
    struct acker *a = arg;
    redisContext *c = redisConnect("127.0.0.1", a->port);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    for (long i = 0; !a->wait;) {
        for (long j = 0; j < ACKER_PIPELINE; j++)
            redisAppendCommand(c, "SET %s:%ld %ld", a->prefix, i + j, i + j);
        for (long j = 0; j < ACKER_PIPELINE; j++, i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type != REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                redisFree(c);
                return NULL;
            }
            freeReplyObject(r);
            if ((size_t)a->acked == a->cap) {
                a->cap = a->cap ? a->cap * 2 : 4096;
                long long *ms = realloc(a->acked_ms, a->cap * sizeof(*ms));
                if (!ms) {
                    redisFree(c);
                    return NULL;
                }
                a->acked_ms = ms;
            }
            a->acked_ms[a->acked++] = h_mono_ms();
        }
    }
    for (long i = 0; a->wait; i++) {
        redisReply *r = redisCommand(c, "SET %s:%ld %ld", a->prefix, i, i);
        if (!r || r->type != REDIS_REPLY_STATUS) {
            freeReplyObject(r);
            break;
        }
        freeReplyObject(r);
        a->acked = i + 1;
        r = redisCommand(c, "WAIT 1 1000");
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            break;
        }
        if (r->integer == 1)
            a->waited = i + 1;
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static void acker_start(struct acker *a, uint16_t port, const char *prefix, bool wait)
{
    memset(a, 0, sizeof(*a));
    a->port = port;
    a->wait = wait;
    snprintf(a->prefix, sizeof(a->prefix), "%s", prefix);
    cr_assert_eq(pthread_create(&a->thread, NULL, acker_main, a), 0);
}

/* Which of prefix:0..n-1 the server holds (with the right value). */
static bool *present_of(redisContext *c, const char *prefix, long n)
{
    bool *have = calloc((size_t)n + 1, sizeof(*have));
    cr_assert_not_null(have);
    for (long i = 0; i < n; i++)
        redisAppendCommand(c, "GET %s:%ld", prefix, i);
    for (long i = 0; i < n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        if (r->type == REDIS_REPLY_STRING) {
            cr_assert_eq(strtol(r->str, NULL, 10), i, "%s:%ld holds %s", prefix, i, r->str);
            have[i] = true;
        }
        freeReplyObject(r);
    }
    return have;
}

/* The primary killed at a random point under two writers, one waiting for
   the replica after each write and one not, then the replica promoted;
   three rounds, the old primary rejoining as the new one's replica each
   time, so that both servers (kvs and lmdb) are killed as primaries.
   Guaranteed, and asserted: every write WAIT 1 acknowledged is on the
   promoted replica, and of one client's writes it holds a prefix (the
   stream is in order). Not guaranteed, so measured and printed: how many
   writes the primary acknowledged without WAIT that the promoted replica
   lacks, and over how many ms before the kill they were acknowledged. */
Test(repl, primary_killed_under_writes, .timeout = 240)
{
    unsigned seed = kill_seed();
    struct h_server a, b;
    h_start(&a, "kvs", NULL);
    start_replica(&b, "lmdb", &a, NULL);
    struct h_server *primary = &a, *replica = &b;
    redisContext *pc = connect_port(a.s.port), *rc = connect_port(b.s.port);
    wait_synced(pc, rc);
    redisFree(pc);
    long total_waited = 0;
    for (int round = 0; round < 3; round++) {
        char wprefix[32], nprefix[32];
        snprintf(wprefix, sizeof(wprefix), "w%d", round);
        snprintf(nprefix, sizeof(nprefix), "n%d", round);
        struct acker waiting, plain;
        acker_start(&waiting, primary->s.port, wprefix, true);
        acker_start(&plain, primary->s.port, nprefix, false);
        h_pause_ms(150 + rand_r(&seed) % 500);
        long long killed_at = h_mono_ms();
        ts_server_kill(&primary->s);
        pthread_join(waiting.thread, NULL);
        pthread_join(plain.thread, NULL);
        cr_assert_gt(waiting.waited, 0, "no write was acknowledged by WAIT");
        cr_assert_gt(plain.acked, 0);

        ok(rc, "REPLICAOF NO ONE");
        bool *have = present_of(rc, wprefix, waiting.waited);
        for (long i = 0; i < waiting.waited; i++)
            cr_assert(have[i],
                      "%s:%ld was acknowledged by WAIT 1 but is not on the promoted "
                      "replica",
                      wprefix, i);
        free(have);
        total_waited += waiting.waited;
        have = present_of(rc, nprefix, plain.acked);
        long held = 0;
        while (held < plain.acked && have[held])
            held++;
        for (long i = held; i < plain.acked; i++)
            cr_assert(!have[i], "%s:%ld is on the replica but %s:%ld is not", nprefix, i, nprefix,
                      held);
        free(have);
        long lost = plain.acked - held;
        /* The loss window: from the OK of the oldest write the replica
           lacks to the kill. */
        long long window = lost ? killed_at - plain.acked_ms[held] : 0;
        fprintf(stderr,
                "test_repl: round %d: primary (%s) killed after %ld writes acknowledged without "
                "WAIT; the promoted replica (%s) lacks %ld of them (%.2f%%)",
                round, primary->engine, plain.acked, replica->engine, lost,
                100.0 * (double)lost / (double)plain.acked);
        if (lost)
            fprintf(stderr, ", acknowledged in the last %lld ms before the kill", window);
        fprintf(stderr, "; of %ld writes acknowledged by WAIT 1 it lacks none\n", waiting.waited);
        free(plain.acked_ms);

        /* The old primary rejoins as the new one's replica, and the roles
           swap for the next round. */
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)replica->s.port);
        const char *args[] = {"--replicaof", addr, "--threads", "1", NULL};
        h_restart(primary, args);
        struct h_server *t = primary;
        primary = replica;
        replica = t;
        redisFree(rc);
        pc = connect_port(primary->s.port);
        rc = connect_port(replica->s.port);
        wait_synced(pc, rc);
        expect_same(pc, rc);
        redisFree(pc);
    }
    cr_expect_gt(total_waited, 0);
    redisFree(rc);
    h_stop(replica);
    h_stop(primary);
}

/* The replica killed at random points while a client writes: the first
   kill may land during its first full sync (it then serves nothing until
   a full sync completes: a second one); every later kill, with the link
   up, is followed by a partial resync from the offset kept with its data,
   and no full sync. The copy ends exact. */
Test(repl, replica_killed_under_writes, .timeout = 240)
{
    unsigned seed = kill_seed();
    struct h_server p, r;
    /* A backlog that outlasts a restart under an ASan build's write rate. */
    const char *pargs[] = {"--repl-backlog-size", "64mb", NULL};
    h_start(&p, "kvs", pargs);
    redisContext *pc = connect_port(p.s.port);
    for (int i = 0; i < 20000; i += 5000)
        fill(pc, i, 5000, "base");
    struct writer w = {.port = p.s.port};
    cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    start_replica(&r, "kvs", &p, NULL);
    const char *rargs[] = {"--replicaof", p.s.addr, "--threads", "1", NULL};
    /* Anywhere, perhaps in the first full sync. */
    h_pause_ms(rand_r(&seed) % 300);
    ts_server_kill(&r.s);
    h_restart(&r, rargs);
    redisContext *rc = connect_port(r.s.port);
    wait_link_up(rc);
    long long full = info_field(pc, "sync_full");
    long long partial = info_field(pc, "sync_partial_ok");
    cr_expect_leq(full, 2);
    for (int kill = 0; kill < 4; kill++) {
        h_pause_ms(100 + rand_r(&seed) % 600);
        redisFree(rc);
        ts_server_kill(&r.s);
        h_restart(&r, rargs);
        rc = connect_port(r.s.port);
        wait_link_up(rc);
    }
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    cr_expect_gt(w.writes, 0);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), full, "a kill -9 of the replica led to a full sync");
    cr_expect_geq(info_field(pc, "sync_partial_ok"), partial + 4);
    fprintf(stderr,
            "test_repl: replica killed 5 times under %ld writes: %lld full syncs, %lld partial\n",
            w.writes, info_field(pc, "sync_full"), info_field(pc, "sync_partial_ok"));
    redisFree(rc);
    redisFree(pc);
    h_stop(&r);
    h_stop(&p);
}

/* ---- a real redis-server as the replica ---- */

struct redis_replica {
    ts_server s;
    char dir[PATH_MAX];
};

/* A redis-server without persistence: a replica of primary, or a primary
   when primary is 0. */
static void redis_replica_start(struct redis_replica *rr, uint16_t primary)
{
    cr_assert_eq(ts_tmpdir_make(rr->dir), 0);
    uint16_t port = ts_free_port(NULL);
    char port_text[16], primary_text[16], log[PATH_MAX + 16];
    snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
    snprintf(primary_text, sizeof(primary_text), "%u", (unsigned)primary);
    snprintf(log, sizeof(log), "%s/redis.log", rr->dir);
    const char *args[] = {"--port",      port_text,   "--bind",       "127.0.0.1",
                          "--save",      "",          "--appendonly", "no",
                          "--dir",       rr->dir,     "--daemonize",  "no",
                          "--replicaof", "127.0.0.1", primary_text,   NULL};
    if (primary == 0)
        args[12] = NULL; /* no --replicaof */
    ts_server_opts opts = {
        .binary = REDIS_SERVER, .args = args, .log_path = log, .no_addr = true, .port = port};
    cr_assert_eq(ts_server_start(&rr->s, &opts), TS_READY);
}

static void redis_replica_stop(struct redis_replica *rr)
{
    cr_expect_eq(ts_server_stop(&rr->s, H_TIMEOUT_MS), 0);
    ts_tmpdir_remove(rr->dir);
}

ParameterizedTestParameters(repl, redis_server_replica)
{
    H_ENGINE_PARAMS;
}

ParameterizedTest(struct ts_engine_param *e, repl, redis_server_replica, .timeout = 120)
{
    struct h_server p;
    h_start(&p, e->name, NULL);
    redisContext *pc = connect_port(p.s.port);
    fill(pc, 0, 2000, "a");
    ok(pc, "SET empty \"\"");
    /* Writes go on while the RDB is sent: the stream must not follow the
       diskless RDB's end mark before the replica's first ACK, or
       redis-server never sees the mark. */
    struct writer w = {.port = p.s.port};
    cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    struct redis_replica rr;
    redis_replica_start(&rr, p.s.port);
    redisContext *rc = connect_port(rr.s.port);
    long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
    while (!info_has(rc, "master_link_status:up")) {
        cr_assert(h_mono_ms() < deadline, "redis-server never came up");
        h_pause_ms(20);
    }
    h_pause_ms(100);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    fill(pc, 1000, 500, "b");
    ok(pc, "DEL key:10 key:11");
    ok(pc, "EXPIRE key:12 500");
    wait_synced(pc, rc);
    expect_same(pc, rc);
    /* The link cut from the replica's side: it resumes partially. */
    ok(rc, "CLIENT KILL TYPE master");
    fill(pc, 1500, 100, "c");
    wait_synced(pc, rc);
    expect_same(pc, rc);
    cr_expect_eq(info_field(pc, "sync_full"), 1);
    cr_expect_eq(info_field(pc, "sync_partial_ok"), 1);
    redisFree(rc);
    redisFree(pc);
    redis_replica_stop(&rr);
    h_stop(&p);
}

/* redis-cli --replica prints what the primary streams. */
Test(repl, redis_cli_replica, .timeout = 60)
{
    struct h_server p;
    h_start(&p, "kvs", NULL);
    redisContext *pc = connect_port(p.s.port);
    ok(pc, "SET before sync");
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)p.s.port);
    const char *argv[] = {"timeout", "3", REDIS_CLI, "-p", port, "--replica", NULL};
    ts_result res;
    /* The stream is written while redis-cli listens: ts_run blocks, so the
       writes come from a thread. */
    struct writer w = {.port = p.s.port};
    cr_assert_eq(pthread_create(&w.thread, NULL, writer_main, &w), 0);
    ts_run(argv, NULL, 0, 10000, &res);
    atomic_store(&w.stop, true);
    pthread_join(w.thread, NULL);
    cr_expect(strstr(res.out, "\"SET\",\"key:") != NULL, "no SET in: %.300s", res.out);
    cr_expect(strstr(res.err, "SYNC done") != NULL || strstr(res.out, "SYNC done") != NULL,
              "%.300s", res.err);
    ts_result_free(&res);
    redisFree(pc);
    h_stop(&p);
}

/* ---- a kvs replica of a real redis-server ---- */

ParameterizedTestParameters(repl, kvs_replica_of_redis_server)
{
    H_ENGINE_PARAMS;
}

/* Redis sends the string commands as its clients typed them (INCR,
   APPEND, SETRANGE, RENAME...): a kvs replica of every engine applies
   them and ends with the primary's exact keys, values and times. A
   command it cannot hold (a hash) stops its link before that command,
   and the copy stays what it was. */
ParameterizedTest(struct ts_engine_param *e, repl, kvs_replica_of_redis_server, .timeout = 120)
{
    struct redis_replica primary;
    redis_replica_start(&primary, 0);
    redisContext *pc = connect_port(primary.s.port);
    fill(pc, 0, 500, "a");
    ok(pc, "SET counter 10");
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)primary.s.port);
    const char *args[] = {"--replicaof", addr, "--threads", "1", NULL};
    struct h_server r;
    h_start(&r, e->name, args);
    redisContext *rc = connect_port(r.s.port);
    wait_synced(pc, rc);
    expect_same(pc, rc);
    /* Every string command Redis 7.0 propagates as typed, with what
       would make a copy differ if it were skipped or applied wrongly. */
    const char *script[] = {
        "INCR counter",
        "INCRBY counter 32",
        "DECR counter",
        "DECRBY counter 5",
        "INCR fresh",
        "INCRBYFLOAT counter 1.5",
        "INCRBYFLOAT flt 2.25",
        "APPEND key:1 -appended",
        "APPEND newkey abc",
        "SETRANGE key:2 3 XYZ",
        "SETRANGE ranged 5 hole",
        "SETBIT key:3 7 1",
        "SETBIT bits 100 1",
        "SETNX key:4 not-set",
        "SETNX nxkey set",
        "MSETNX key:5 no other no",
        "MSETNX m1 v1 m2 v2",
        "RENAME key:6 renamed",
        "RENAMENX key:7 key:8",
        "RENAMENX key:9 renamed-nx",
        "COPY key:10 copied",
        "COPY key:11 key:12 REPLACE",
        "BITOP OR bitor key:13 key:14",
        "BITOP NOT bitnot key:15",
        "GETSET key:16 swapped",
        "GETDEL key:17",
        "GETEX key:18 PX 900000",
        "GETEX key:18 PERSIST",
        "GETEX key:19 EXAT 4102444800",
        "SET key:20 kept XX KEEPTTL",
        "EXPIRE key:21 600",
        "EXPIRE key:21 900 GT",
        "PEXPIRE key:22 100",
        "SETEX key:23 600 with-time",
        "PSETEX key:24 600000 with-ptime",
        "SET key:25 v NX",
        "SET key:26 v GET",
        "MSET key:27 m27 key:28 m28",
        "UNLINK key:29",
        "DEL key:30 key:31",
        "MULTI",
        "INCR counter",
        "APPEND key:32 in-multi",
        "EXEC",
    };
    for (size_t i = 0; i < sizeof(script) / sizeof(*script); i++) {
        redisReply *rep = redisCommand(pc, script[i]);
        cr_assert_not_null(rep, "%s", script[i]);
        cr_expect_neq(rep->type, REDIS_REPLY_ERROR, "%s: %s", script[i], rep->str);
        freeReplyObject(rep);
    }
    h_pause_ms(200);      /* PEXPIRE key:22 100 passes: the primary's DEL follows */
    ok(pc, "GET key:22"); /* an access expires it on the primary */
    wait_synced(pc, rc);
    expect_same(pc, rc);
    /* A hash: refused; the link goes down and the copy stays. */
    ok(pc, "HSET hash f v");
    ok(pc, "SET after-hash v");
    long long deadline = h_mono_ms() + SYNC_TIMEOUT_MS;
    bool logged = false;
    while (!logged) {
        cr_assert(h_mono_ms() < deadline, "the replica never refused the hash");
        h_pause_ms(50);
        ts_result res;
        const char *grep[] = {"grep", "-c", "the primary sent 'HSET'", r.log, NULL};
        ts_run(grep, NULL, 0, 5000, &res);
        logged = res.status == 0;
        ts_result_free(&res);
    }
    cr_expect(!info_has(rc, "master_link_status:up"), "the link stays down");
    redisReply *got = cmd(rc, "EXISTS after-hash counter");
    cr_expect_eq(got->integer, 1, "the copy stops before the hash: only counter exists");
    freeReplyObject(got);
    redisFree(rc);
    redisFree(pc);
    h_stop(&r);
    redis_replica_stop(&primary);
}
