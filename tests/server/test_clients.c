/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-server under real clients: hiredis pipelining 10,000 SETs then
 * 10,000 GETs with every reply checked, several hiredis clients at once
 * (SET NX races), and redis-benchmark with pipelining.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define ENGINE_TEST(suite, name, ...)                                                              \
    ParameterizedTestParameters(suite, name)                                                       \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, suite, name, __VA_ARGS__)

static redisContext *connect_hiredis(struct h_server *h)
{
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", h->s.port, tv);
    cr_assert(rc && !rc->err, "hiredis connect: %s", rc ? rc->errstr : "out of memory");
    /* Every read and write below is bounded too. */
    redisSetTimeout(rc, tv);
    return rc;
}

/* The next reply, which must be of type; the caller frees it. */
static redisReply *next_reply(redisContext *rc, int type)
{
    redisReply *r = NULL;
    cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK, "hiredis: %s", rc->errstr);
    cr_assert_eq(r->type, type, "reply type %d, expected %d (%s)", r->type, type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    return r;
}

#define PIPELINE_N 10000

ENGINE_TEST(clients, hiredis_pipeline, .timeout = 90)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_hiredis(&h);
    char key[32], value[64];
    for (int i = 0; i < PIPELINE_N; i++) {
        int klen = snprintf(key, sizeof(key), "key:%d", i);
        int vlen = snprintf(value, sizeof(value), "value-%d-%x", i, i * 2654435761u);
        redisAppendCommand(rc, "SET %b %b", key, (size_t)klen, value, (size_t)vlen);
    }
    for (int i = 0; i < PIPELINE_N; i++) {
        redisReply *r = next_reply(rc, REDIS_REPLY_STATUS);
        cr_assert_str_eq(r->str, "OK", "SET %d", i);
        freeReplyObject(r);
    }
    for (int i = 0; i < PIPELINE_N; i++) {
        int klen = snprintf(key, sizeof(key), "key:%d", i);
        redisAppendCommand(rc, "GET %b", key, (size_t)klen);
    }
    for (int i = 0; i < PIPELINE_N; i++) {
        redisReply *r = next_reply(rc, REDIS_REPLY_STRING);
        int vlen = snprintf(value, sizeof(value), "value-%d-%x", i, i * 2654435761u);
        cr_assert_eq(r->len, (size_t)vlen, "GET %d", i);
        cr_assert(memcmp(r->str, value, (size_t)vlen) == 0, "GET %d: %s", i, r->str);
        freeReplyObject(r);
    }
    redisReply *r = redisCommand(rc, "DBSIZE");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == PIPELINE_N);
    freeReplyObject(r);
    redisFree(rc);
    h_stop(&h);
}

#define THREADS 4
#define RACE_KEYS 200
#define OWN_KEYS 1000

struct racer {
    struct h_server *h;
    int id;
    int won[RACE_KEYS]; /* 1 where this thread's SET NX succeeded */
    char error[256];
};

/* Criterion's assertions are for the test's thread: a racer reports
   failure through its error text instead. */
static void *race(void *arg)
{
    struct racer *me = arg;
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", me->h->s.port, tv);
    if (!rc || rc->err) {
        snprintf(me->error, sizeof(me->error), "connect failed");
        redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    /* Interleave the races on shared keys with writes and reads of keys of
       this thread's own, in pipelined batches. */
    for (int i = 0; i < RACE_KEYS; i++) {
        redisAppendCommand(rc, "SET race:%d %d NX", i, me->id);
        for (int j = 0; j < OWN_KEYS / RACE_KEYS; j++) {
            int k = i * (OWN_KEYS / RACE_KEYS) + j;
            redisAppendCommand(rc, "SET own:%d:%d v%d", me->id, k, k);
            redisAppendCommand(rc, "GET own:%d:%d", me->id, k);
        }
    }
    for (int i = 0; i < RACE_KEYS && !me->error[0]; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK) {
            snprintf(me->error, sizeof(me->error), "hiredis: %s", rc->errstr);
            break;
        }
        me->won[i] = r->type == REDIS_REPLY_STATUS;
        if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_NIL)
            snprintf(me->error, sizeof(me->error), "SET NX reply type %d", r->type);
        freeReplyObject(r);
        for (int j = 0; j < OWN_KEYS / RACE_KEYS && !me->error[0]; j++) {
            int k = i * (OWN_KEYS / RACE_KEYS) + j;
            char want[32];
            snprintf(want, sizeof(want), "v%d", k);
            redisReply *set = NULL, *get = NULL;
            if (redisGetReply(rc, (void **)&set) != REDIS_OK ||
                redisGetReply(rc, (void **)&get) != REDIS_OK)
                snprintf(me->error, sizeof(me->error), "hiredis: %s", rc->errstr);
            else if (set->type != REDIS_REPLY_STATUS || get->type != REDIS_REPLY_STRING ||
                     strcmp(get->str, want) != 0)
                snprintf(me->error, sizeof(me->error), "own key %d: wrong reply", k);
            if (set)
                freeReplyObject(set);
            if (get)
                freeReplyObject(get);
        }
    }
    redisFree(rc);
    return NULL;
}

/* Exactly one of the clients racing SET NX on a key wins it, and the key
   holds the winner's value: NX is atomic against every other write. */
ENGINE_TEST(clients, concurrent_set_nx, .timeout = 90)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    struct racer racers[THREADS];
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        memset(&racers[t], 0, sizeof(racers[t]));
        racers[t].h = &h;
        racers[t].id = t;
        cr_assert_eq(pthread_create(&threads[t], NULL, race, &racers[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < THREADS; t++)
        cr_assert_eq(racers[t].error[0], '\0', "thread %d: %s", t, racers[t].error);
    redisContext *rc = connect_hiredis(&h);
    for (int i = 0; i < RACE_KEYS; i++) {
        int winners = 0, winner = -1;
        for (int t = 0; t < THREADS; t++) {
            winners += racers[t].won[i];
            if (racers[t].won[i])
                winner = t;
        }
        cr_assert_eq(winners, 1, "race:%d has %d winners", i, winners);
        redisReply *r = redisCommand(rc, "GET race:%d", i);
        cr_assert(r && r->type == REDIS_REPLY_STRING && atoi(r->str) == winner,
                  "race:%d holds another value than its winner's", i);
        freeReplyObject(r);
    }
    redisReply *r = redisCommand(rc, "DBSIZE");
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == RACE_KEYS + THREADS * OWN_KEYS);
    freeReplyObject(r);
    redisFree(rc);
    h_stop(&h);
}

ENGINE_TEST(clients, redis_benchmark, .timeout = 90)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)h.s.port);
    const char *argv[] = {REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", port, "-t", "set,get", "-n",
                          "20000",         "-P", "16",        "-q", NULL};
    ts_result r;
    cr_assert_eq(ts_run(argv, NULL, 0, 60000, &r), 0);
    cr_expect_eq(r.status, 0, "redis-benchmark exited %d: %s %s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "SET: ") && strstr(r.out, "GET: "), "%s", r.out);
    cr_expect(strstr(r.out, "requests per second"), "%s", r.out);
    /* It would print a warning if CONFIG GET failed. */
    cr_expect(!strstr(r.out, "WARN") && !strstr(r.err, "WARN"), "%s %s", r.out, r.err);
    ts_result_free(&r);
    h_stop(&h);
}
