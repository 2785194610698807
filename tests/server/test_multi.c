/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transactions (issue 17): MULTI/EXEC/DISCARD/WATCH/UNWATCH on every
 * engine. What a client must see: Redis's replies and errors; EXEC's
 * writes all at once or not at all for clients on other worker threads
 * (a reader never sees half of a transaction); WATCH's optimistic lock
 * exact under eight clients racing on one counter; and a transaction
 * written as one durable batch under --fsync always.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(multi, name)                                                       \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, multi, name, .timeout = 120)

static redisContext *connect_to(struct h_server *h)
{
    struct timeval tv = {10, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", h->s.port, tv);
    cr_assert(rc && !rc->err, "connect: %s", rc ? rc->errstr : "out of memory");
    redisSetTimeout(rc, tv);
    return rc;
}

/* A command whose reply must be the status or bulk text want. */
static void expect_str(redisContext *rc, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r, "%s: %s", fmt, rc->errstr);
    cr_expect(r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ||
                  r->type == REDIS_REPLY_ERROR,
              "%s: reply type %d", fmt, r->type);
    cr_expect_str_eq(r->str, want, "%s", fmt);
    freeReplyObject(r);
}

static redisReply *command(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert(r, "%s: %s", fmt, rc->errstr);
    return r;
}

ENGINE_TEST(replies_and_errors)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_to(&h);
    expect_str(rc, "ERR EXEC without MULTI", "EXEC");
    expect_str(rc, "ERR DISCARD without MULTI", "DISCARD");
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "ERR MULTI calls can not be nested", "MULTI");
    expect_str(rc, "ERR WATCH inside MULTI is not allowed", "WATCH k");
    expect_str(rc, "QUEUED", "SET k v");
    expect_str(rc, "QUEUED", "GET k");
    expect_str(rc, "QUEUED", "DEL k");
    expect_str(rc, "QUEUED", "GET k");
    expect_str(rc, "QUEUED", "MSET a 1 b 2");
    expect_str(rc, "QUEUED", "DBSIZE");
    redisReply *r = command(rc, "EXEC");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 6);
    cr_expect_str_eq(r->element[0]->str, "OK");
    cr_expect_str_eq(r->element[1]->str, "v");
    cr_expect_eq(r->element[2]->integer, 1);
    cr_expect_eq(r->element[3]->type, REDIS_REPLY_NIL);
    cr_expect_str_eq(r->element[4]->str, "OK");
    cr_expect_eq(r->element[5]->integer, 2);
    freeReplyObject(r);
    /* A queueing error aborts the whole transaction. */
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "QUEUED", "SET x 1");
    expect_str(rc, "ERR wrong number of arguments for 'get' command", "GET");
    expect_str(rc, "ERR Command not allowed inside a transaction", "SAVE");
    expect_str(rc, "EXECABORT Transaction discarded because of previous errors.", "EXEC");
    r = command(rc, "EXISTS x");
    cr_expect_eq(r->integer, 0);
    freeReplyObject(r);
    /* DISCARD drops the queue and the watched keys. */
    expect_str(rc, "OK", "WATCH a");
    expect_str(rc, "OK", "SET a 5");
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "QUEUED", "SET a 6");
    expect_str(rc, "OK", "DISCARD");
    expect_str(rc, "5", "GET a");
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "QUEUED", "SET a 7");
    r = command(rc, "EXEC");
    cr_expect_eq(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    expect_str(rc, "7", "GET a");
    /* A watched key written by another client: EXEC answers nil. */
    redisContext *other = connect_to(&h);
    expect_str(rc, "OK", "WATCH a");
    expect_str(other, "OK", "SET a 8");
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "QUEUED", "SET a 9");
    r = command(rc, "EXEC");
    cr_expect_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    expect_str(rc, "8", "GET a");
    /* FLUSHDB inside a transaction, then writes after it. */
    expect_str(rc, "OK", "MULTI");
    expect_str(rc, "QUEUED", "FLUSHDB");
    expect_str(rc, "QUEUED", "SET z 1");
    expect_str(rc, "QUEUED", "DBSIZE");
    r = command(rc, "EXEC");
    cr_assert_eq(r->elements, 3);
    cr_expect_eq(r->element[2]->integer, 1);
    freeReplyObject(r);
    r = command(other, "DBSIZE");
    cr_expect_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(other);
    redisFree(rc);
    h_stop(&h);
}

struct pair_run {
    struct h_server *h;
    atomic_bool stop;
    atomic_int torn; /* reads that saw half a transaction */
    atomic_long reads;
};

/* Writes a and b to the same value in each transaction. */
static void *pair_writer(void *arg)
{
    struct pair_run *p = arg;
    redisContext *rc = connect_to(p->h);
    for (int i = 1; i <= 300; i++) {
        redisAppendCommand(rc, "MULTI");
        redisAppendCommand(rc, "SET a %d", i);
        redisAppendCommand(rc, "SET b %d", i);
        redisAppendCommand(rc, "EXEC");
        for (int j = 0; j < 4; j++) {
            redisReply *r;
            cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK);
            freeReplyObject(r);
        }
    }
    atomic_store(&p->stop, true);
    redisFree(rc);
    return NULL;
}

/* MGET a b must show equal values; a GET of b after a GET of a must not
   show an older transaction than a did. */
static void *pair_reader(void *arg)
{
    struct pair_run *p = arg;
    redisContext *rc = connect_to(p->h);
    while (!atomic_load(&p->stop)) {
        redisReply *r = command(rc, "MGET a b");
        if (r->element[0]->type == REDIS_REPLY_STRING &&
            (r->element[1]->type != REDIS_REPLY_STRING ||
             strcmp(r->element[0]->str, r->element[1]->str) != 0))
            atomic_fetch_add(&p->torn, 1);
        freeReplyObject(r);
        redisReply *a = command(rc, "GET a");
        redisReply *b = command(rc, "GET b");
        if (a->type == REDIS_REPLY_STRING &&
            (b->type != REDIS_REPLY_STRING || atol(b->str) < atol(a->str)))
            atomic_fetch_add(&p->torn, 1);
        freeReplyObject(a);
        freeReplyObject(b);
        atomic_fetch_add(&p->reads, 1);
    }
    redisFree(rc);
    return NULL;
}

static void pairs(const char *engine, const char *fsync)
{
    struct h_server h;
    const char *extra[] = {"--threads", "2", "--fsync", fsync, NULL};
    h_start(&h, engine, extra);
    struct pair_run p = {.h = &h};
    pthread_t w, r[2];
    cr_assert_eq(pthread_create(&r[0], NULL, pair_reader, &p), 0);
    cr_assert_eq(pthread_create(&r[1], NULL, pair_reader, &p), 0);
    cr_assert_eq(pthread_create(&w, NULL, pair_writer, &p), 0);
    pthread_join(w, NULL);
    pthread_join(r[0], NULL);
    pthread_join(r[1], NULL);
    cr_expect_eq(atomic_load(&p.torn), 0, "%d of %ld reads saw half a transaction",
                 atomic_load(&p.torn), atomic_load(&p.reads));
    redisContext *rc = connect_to(&h);
    expect_str(rc, "300", "GET b");
    redisFree(rc);
    h_stop(&h);
}

ENGINE_TEST(no_reader_sees_half)
{
    pairs(engine->name, "everysec");
}

ENGINE_TEST(no_reader_sees_half_fsync_always)
{
    pairs(engine->name, "always");
}

#define RACERS 8
#define ROUNDS 100

struct racer {
    struct h_server *h;
    int aborted;
};

/* WATCH, GET, MULTI, SET v+1, EXEC until it succeeds, ROUNDS times. */
static void *racer(void *arg)
{
    struct racer *me = arg;
    redisContext *rc = connect_to(me->h);
    for (int i = 0; i < ROUNDS; i++) {
        for (;;) {
            expect_str(rc, "OK", "WATCH counter");
            redisReply *g = command(rc, "GET counter");
            long v = g->type == REDIS_REPLY_STRING ? atol(g->str) : 0;
            freeReplyObject(g);
            expect_str(rc, "OK", "MULTI");
            expect_str(rc, "QUEUED", "SET counter %ld", v + 1);
            redisReply *r = command(rc, "EXEC");
            bool done = r->type == REDIS_REPLY_ARRAY;
            freeReplyObject(r);
            if (done)
                break;
            me->aborted++;
        }
    }
    redisFree(rc);
    return NULL;
}

ENGINE_TEST(watch_counter_exact)
{
    struct h_server h;
    const char *extra[] = {"--threads", "2", NULL};
    h_start(&h, engine->name, extra);
    struct racer racers[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (struct racer){&h, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, racer, &racers[i]), 0);
    }
    int aborted = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(t[i], NULL);
        aborted += racers[i].aborted;
    }
    redisContext *rc = connect_to(&h);
    char want[32];
    snprintf(want, sizeof(want), "%d", RACERS * ROUNDS);
    expect_str(rc, want, "GET counter");
    cr_log_info("%s: %d EXECs aborted by WATCH", engine->name, aborted);
    redisFree(rc);
    h_stop(&h);
}
