/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The primary/backup pair (repl.h, docs/replication.md): a mem primary
 * started with --peer and restarted by kill -9, with no snapshot or only
 * the one its previous copy left (older than its backup's data), copies
 * its backup's data before it serves, and the backup then follows it
 * again partially; kill -9 of the primary and of the backup in turn under
 * a client that WAITs for the backup after each write: nothing WAIT
 * acknowledged is ever lost (the second kill of the primary lost every
 * WAIT-acknowledged write since the first, before a stale snapshot was
 * treated as one to replace). A backup never replaces its keys with an
 * empty copy from a primary that lost its data. kvs_pair_state in INFO
 * through cold start, warm start, bootstrap, sync and shutting down.
 *
 * The small helpers are test_repl.c's, repeated: each suite is its own
 * program.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 60000

static redisContext *connect_port(uint16_t port)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    cr_assert(c && !c->err, "cannot connect to port %u", (unsigned)port);
    redisSetTimeout(c, tv);
    return c;
}

/* A command that must succeed (not an error reply). */
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

/* INFO replication and stats, or "" while the server answers -LOADING. */
static char *info_of(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO everything");
    cr_assert_not_null(r, "no reply to INFO: %s", c->errstr);
    char *text = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    cr_assert_not_null(text);
    return text;
}

static bool info_has(redisContext *c, const char *line)
{
    char *text = info_of(c);
    char key[128];
    snprintf(key, sizeof(key), "\n%s\r", line);
    bool has = strstr(text, key) != NULL;
    free(text);
    return has;
}

static long long info_field(redisContext *c, const char *name)
{
    char *text = info_of(c);
    char key[64];
    snprintf(key, sizeof(key), "\n%s:", name);
    const char *p = strstr(text, key);
    long long v = p ? strtoll(p + strlen(key), NULL, 10) : -1;
    free(text);
    return v;
}

static void wait_info(redisContext *c, const char *line)
{
    long long deadline = h_mono_ms() + WAIT_MS;
    while (!info_has(c, line)) {
        cr_assert(h_mono_ms() < deadline, "INFO never showed %s", line);
        h_pause_ms(20);
    }
}

/* DBSIZE once the server serves (no more -LOADING). */
static long long dbsize(redisContext *c)
{
    long long deadline = h_mono_ms() + WAIT_MS;
    for (;;) {
        redisReply *r = redisCommand(c, "DBSIZE");
        cr_assert_not_null(r, "no reply to DBSIZE: %s", c->errstr);
        if (r->type == REDIS_REPLY_INTEGER) {
            long long n = r->integer;
            freeReplyObject(r);
            return n;
        }
        cr_assert(r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0, "DBSIZE: %s",
                  r->str);
        freeReplyObject(r);
        cr_assert(h_mono_ms() < deadline, "still loading");
        h_pause_ms(10);
    }
}

/* Until the replica's offset is the primary's. */
static void wait_synced(redisContext *primary, redisContext *replica)
{
    wait_info(replica, "master_link_status:up");
    long long deadline = h_mono_ms() + WAIT_MS;
    while (info_field(replica, "slave_repl_offset") != info_field(primary, "master_repl_offset"))
        cr_assert(h_mono_ms() < deadline, "the replica never caught up");
}

/* Which of prefix:0..n-1 the server holds, with the right value. */
static long missing_of(redisContext *c, const char *prefix, long n)
{
    for (long i = 0; i < n; i++)
        redisAppendCommand(c, "GET %s:%ld", prefix, i);
    long missing = 0;
    for (long i = 0; i < n; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        if (r->type != REDIS_REPLY_STRING || strtol(r->str, NULL, 10) != i)
            missing++;
        freeReplyObject(r);
    }
    return missing;
}

/* A client writing prefix:i = i, each followed by WAIT 1 1000, until its
   connection fails; waited: the writes 0..waited-1 are on the backup. */
struct waiter {
    uint16_t port;
    char prefix[32];
    pthread_t thread;
    atomic_bool stop;
    long waited;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    redisContext *c = redisConnect("127.0.0.1", w->port);
    for (long i = 0; c && !c->err && !atomic_load(&w->stop); i++) {
        redisReply *r = redisCommand(c, "SET %s:%ld %ld", w->prefix, i, i);
        bool set = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (!set)
            break;
        r = redisCommand(c, "WAIT 1 1000");
        bool waited = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(r);
            break;
        }
        freeReplyObject(r);
        if (waited)
            w->waited = i + 1;
    }
    redisFree(c);
    return NULL;
}

/* A mem primary with --peer (its backup), restarted by kill -9 (empty,
   then with a stale snapshot), copies the backup's data before it serves;
   the backup, killed in turn, comes back and follows partially. */
Test(pair, mem_primary_bootstraps_from_backup, .timeout = 240)
{
    const char *env = getenv("KVS_PAIR_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10) : (unsigned)(time(NULL) ^ getpid());
    fprintf(stderr, "test_pair: kill points from seed %u (KVS_PAIR_SEED)\n", seed);
    /* The backup first (its port goes into the primary's --peer), as a
       server of its own until the primary exists. */
    struct h_server p, b;
    h_start(&b, "kvs", NULL);
    const char *pargs[] = {"--snapshot-interval", "0", "--peer", b.s.addr, NULL};
    h_start(&p, "mem", pargs);
    redisContext *pc = connect_port(p.s.port), *bc = connect_port(b.s.port);
    cr_expect(info_has(pc, "kvs_pair_state:warm_start"), "the peer answered at the start");
    ok(bc, "REPLICAOF 127.0.0.1 %u", (unsigned)p.s.port);
    wait_synced(pc, bc);
    wait_info(pc, "kvs_pair_state:sync");
    wait_info(bc, "kvs_pair_state:sync");
    for (int i = 0; i < 3000; i++)
        redisAppendCommand(pc, "SET base:%d %d", i, i);
    for (int i = 0; i < 3000; i++) {
        redisReply *r;
        cr_assert_eq(redisGetReply(pc, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(pc);
    char bargs_addr[64];
    snprintf(bargs_addr, sizeof(bargs_addr), "127.0.0.1:%u", (unsigned)p.s.port);
    const char *bargs[] = {"--replicaof", bargs_addr, NULL};
    long waited[4] = {0}, total_waited = 0;
    for (int round = 0; round < 4; round++) {
        bool primary = round % 2 == 0; /* which one is killed */
        struct waiter w = {.port = p.s.port};
        snprintf(w.prefix, sizeof(w.prefix), "w%d", round);
        cr_assert_eq(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
        h_pause_ms(200 + rand_r(&seed) % 400);
        if (primary) {
            ts_server_kill(&p.s);
            pthread_join(w.thread, NULL);
            h_restart(&p, pargs); /* empty: no snapshot */
        } else {
            redisFree(bc);
            ts_server_kill(&b.s);
            h_pause_ms(rand_r(&seed) % 300);
            h_restart(&b, bargs);
            bc = connect_port(b.s.port);
            atomic_store(&w.stop, true);
            pthread_join(w.thread, NULL);
        }
        waited[round] = w.waited;
        cr_assert_gt(w.waited, 0, "round %d: no write acknowledged by WAIT", round);
        total_waited += w.waited;
        pc = connect_port(p.s.port);
        /* Served only once whole: every write WAIT acknowledged, in this
           round and every one before, is there at the first answer. */
        long long keys = dbsize(pc);
        cr_expect_geq(keys, 3000 + total_waited);
        cr_expect_eq(missing_of(pc, "base", 3000), 0);
        for (int k = 0; k <= round; k++) {
            char prefix[32];
            snprintf(prefix, sizeof(prefix), "w%d", k);
            cr_expect_eq(missing_of(pc, prefix, waited[k]), 0,
                         "after round %d (%s killed): writes of round %d acknowledged by WAIT 1 "
                         "lost",
                         round, primary ? "primary" : "backup", k);
        }
        if (primary) {
            cr_expect_eq(info_field(pc, "sync_full"), 0, "the primary copied, it did not send");
            wait_info(pc, "kvs_pair_state:sync");
            cr_expect_geq(info_field(pc, "sync_partial_ok"), 1,
                          "the backup follows the bootstrapped primary partially");
        }
        wait_synced(pc, bc);
        wait_info(bc, "kvs_pair_state:sync");
        cr_expect_eq(dbsize(bc), dbsize(pc));
        cr_expect_eq(info_field(bc, "kvs_empty_copies_refused"), 0);
        fprintf(stderr,
                "test_pair: round %d: %s killed, %ld writes acknowledged by WAIT 1, none "
                "lost; %lld keys on both\n",
                round, primary ? "primary (mem)" : "backup", w.waited, keys);
        redisFree(pc);
    }
    redisFree(bc);
    h_stop(&p);
    h_stop_keep(&b);
    /* The backup logged its pair's last state. */
    size_t len = 0;
    char *log = ts_read_file(b.log, &len);
    cr_expect(log && strstr(log, "pair: shutting_down"), "no shutting_down in the backup's log");
    free(log);
    ts_tmpdir_remove(b.dir);
}

/* A primary without --peer that lost its data (mem, no snapshot, kill
   -9): its backup refuses the empty copy and keeps its keys; promoted, it
   serves them. */
Test(pair, backup_refuses_an_empty_copy, .timeout = 120)
{
    struct h_server p, b;
    const char *pargs[] = {"--snapshot-interval", "0", NULL};
    h_start(&p, "mem", pargs);
    const char *bargs[] = {"--replicaof", p.s.addr, NULL};
    h_start(&b, "kvs", bargs);
    redisContext *pc = connect_port(p.s.port), *bc = connect_port(b.s.port);
    for (int i = 0; i < 1000; i++)
        ok(pc, "SET k:%d %d", i, i);
    wait_synced(pc, bc);
    cr_assert_eq(dbsize(bc), 1000);
    redisFree(pc);
    ts_server_kill(&p.s);
    h_restart(&p, pargs);
    pc = connect_port(p.s.port);
    cr_expect_eq(dbsize(pc), 0);
    long long deadline = h_mono_ms() + WAIT_MS;
    while (info_field(bc, "kvs_empty_copies_refused") < 2)
        cr_assert(h_mono_ms() < deadline, "the backup never refused the empty copy");
    cr_expect_eq(dbsize(bc), 1000, "the backup replaced its keys with an empty copy");
    cr_expect(info_has(bc, "master_link_status:down"));
    /* The way out: promote the backup. */
    ok(bc, "REPLICAOF NO ONE");
    cr_expect_eq(dbsize(bc), 1000);
    cr_expect_eq(missing_of(bc, "k", 1000), 0);
    redisFree(pc);
    redisFree(bc);
    h_stop(&b);
    h_stop(&p);
}

/* A primary whose peer does not answer starts cold and serves; once a
   backup follows it, the pair is in sync. */
Test(pair, cold_start_then_sync, .timeout = 120)
{
    uint16_t nobody = ts_free_port(NULL);
    char peer[64];
    snprintf(peer, sizeof(peer), "127.0.0.1:%u", (unsigned)nobody);
    const char *pargs[] = {"--peer", peer, NULL};
    struct h_server p, b;
    h_start(&p, "kvs", pargs);
    redisContext *pc = connect_port(p.s.port);
    cr_expect(info_has(pc, "kvs_pair_state:cold_start"));
    redisReply *r = redisCommand(pc, "CONFIG GET peer");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    cr_expect_str_eq(r->element[1]->str, peer);
    freeReplyObject(r);
    ok(pc, "SET a 1");
    const char *bargs[] = {"--replicaof", p.s.addr, NULL};
    h_start(&b, "lmdb", bargs);
    redisContext *bc = connect_port(b.s.port);
    wait_synced(pc, bc);
    wait_info(pc, "kvs_pair_state:sync");
    wait_info(bc, "kvs_pair_state:sync");
    redisFree(bc);
    h_stop(&b);
    long long deadline = h_mono_ms() + WAIT_MS;
    while (!info_has(pc, "kvs_pair_state:cold_start"))
        cr_assert(h_mono_ms() < deadline, "the pair still in sync with its backup gone");
    redisFree(pc);
    h_stop(&p);
}
