/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Keys that expire, on a real kvs-server of every engine: a key is gone
 * for every command once its time passes and never before; the active
 * expiry removes keys nobody reads (DBSIZE falls, INFO's expired_keys
 * rises) and never a key a write renewed; times survive a restart, and
 * keys whose time passed while the server was stopped are gone after it;
 * read-modify-writes of times (GETEX, EXPIRE, PERSIST, SET KEEPTTL) are
 * atomic against concurrent SETs; INFO keyspace counts keys with times.
 * Redis's exact replies are the differential test's; this is behaviour
 * over time. Every wait is for a condition, with a deadline.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"

/* One timeout for the whole suite: Criterion 2.4 leaks an allocation of its
   runner when tests of one binary run in parallel with different ones. */
#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(expiry, name)                                                      \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, expiry, name, .timeout = 120)

/* How long a wait for the active expiry may take: many cycles. */
#define EXPIRY_DEADLINE_MS 20000

static redisContext *connect_to(struct h_server *h)
{
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", h->s.port, tv);
    cr_assert(rc && !rc->err, "hiredis connect: %s", rc ? rc->errstr : "out of memory");
    redisSetTimeout(rc, tv);
    return rc;
}

/* A command's reply; fails the test on a connection error. */
static redisReply *cmd(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "hiredis: %s", rc->errstr);
    return r;
}

static long long cmd_int(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "hiredis: %s", rc->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER, "%s: type %d %s", fmt, r->type,
                 r->str ? r->str : "");
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void expect_status(redisContext *rc, const char *want, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "hiredis: %s", rc->errstr);
    cr_expect(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0, "%s: type %d %s", fmt,
              r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

/* The reply to fmt as a string, "" for nil; malloc'd. */
static char *cmd_str(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(rc, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "hiredis: %s", rc->errstr);
    cr_assert(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL, "%s: type %d %s", fmt,
              r->type, r->str ? r->str : "");
    char *s = strdup(r->type == REDIS_REPLY_NIL ? "" : r->str);
    freeReplyObject(r);
    return s;
}

/* The value of an INFO field, as a number (-1 if absent). */
static long long info_field(redisContext *rc, const char *section, const char *field)
{
    redisReply *r = cmd(rc, "INFO %s", section);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    char pat[64];
    snprintf(pat, sizeof(pat), "\r\n%s:", field);
    const char *p = strstr(r->str, pat);
    long long v = p ? strtoll(p + strlen(pat), NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

/* The keyspace line's three figures; false when there is no line. */
static bool keyspace(redisContext *rc, long long *keys, long long *expires, long long *avg_ttl)
{
    redisReply *r = cmd(rc, "INFO keyspace");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    const char *p = strstr(r->str, "db0:");
    bool found =
        p && sscanf(p, "db0:keys=%lld,expires=%lld,avg_ttl=%lld", keys, expires, avg_ttl) == 3;
    freeReplyObject(r);
    return found;
}

/* Wait until DBSIZE is want, or fail at the deadline. Reads no key. */
static void await_dbsize(redisContext *rc, long long want)
{
    int64_t deadline = h_mono_ms() + EXPIRY_DEADLINE_MS;
    long long n;
    while ((n = cmd_int(rc, "DBSIZE")) != want) {
        cr_assert_lt(h_mono_ms(), deadline, "DBSIZE stays %lld, not %lld", n, want);
        /* A cycle runs every 100 ms: ask a few times per cycle, not in a
           tight loop that would take the CPU the cycle needs. */
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Wait until INFO's field reaches want: a counter is added to after the
   removals it counts are visible (DBSIZE may drop a moment before). */
static void await_info_field(redisContext *rc, const char *section, const char *field,
                             long long want)
{
    int64_t deadline = h_mono_ms() + EXPIRY_DEADLINE_MS;
    long long n;
    while ((n = info_field(rc, section, field)) < want) {
        cr_assert_lt(h_mono_ms(), deadline, "%s stays %lld, not %lld", field, n, want);
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Wait until the wall clock (kvs_now_ms) is past at. */
static void await_time(int64_t at)
{
    int64_t now;
    while ((now = kvs_now_ms()) <= at) {
        int64_t left = at - now + 1;
        struct timespec pause = {(time_t)(left / 1000), (long)(left % 1000) * 1000000};
        nanosleep(&pause, NULL);
    }
}

/* A key is there until its time and gone for every command after it. */
ENGINE_TEST(gone_on_read_at_its_time)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_to(&h);
    expect_status(rc, "OK", "SET short v PX 400");
    long long at = cmd_int(rc, "PEXPIRETIME short");
    cr_assert_gt(at, 0);
    /* Read until it is gone: never before its time. */
    int64_t deadline = h_mono_ms() + EXPIRY_DEADLINE_MS;
    for (;;) {
        /* The clock before the GET is at most the server's when it ran. */
        int64_t before = kvs_now_ms();
        char *v = cmd_str(rc, "GET short");
        bool gone = v[0] == '\0';
        free(v);
        if (gone)
            break;
        cr_assert_lt(before, at, "GET found the key %lld ms after its time",
                     (long long)(before - at));
        cr_assert_lt(h_mono_ms(), deadline, "the key never expired");
    }
    cr_expect_geq(kvs_now_ms(), at, "the key went before its time");
    /* Gone for every command, as if it had never been. */
    cr_expect_eq(cmd_int(rc, "EXISTS short"), 0);
    cr_expect_eq(cmd_int(rc, "TTL short"), -2);
    cr_expect_eq(cmd_int(rc, "PEXPIRETIME short"), -2);
    cr_expect_eq(cmd_int(rc, "STRLEN short"), 0);
    cr_expect_eq(cmd_int(rc, "EXPIRE short 100"), 0);
    cr_expect_eq(cmd_int(rc, "PERSIST short"), 0);
    char *v = cmd_str(rc, "GETEX short PERSIST");
    cr_expect_str_eq(v, "");
    free(v);
    redisReply *r = cmd(rc, "KEYS *");
    cr_expect_eq(r->elements, 0);
    freeReplyObject(r);
    /* SET NX sees no key, and what it writes has no time. */
    expect_status(rc, "OK", "SET short new NX");
    cr_expect_eq(cmd_int(rc, "TTL short"), -1);
    redisFree(rc);
    h_stop(&h);
}

#define UNREAD 5000
#define KEPT 100

/* The active expiry removes keys nobody reads: DBSIZE falls to the keys
   without a time, INFO counts them. */
ENGINE_TEST(active_expiry_removes_unread_keys)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_to(&h);
    for (int i = 0; i < UNREAD; i++)
        redisAppendCommand(rc, "SET volatile:%d v PX 300", i);
    for (int i = 0; i < KEPT; i++)
        redisAppendCommand(rc, "SET kept:%d v", i);
    for (int i = 0; i < UNREAD + KEPT; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK, "%s", rc->errstr);
        cr_assert_eq(r->type, REDIS_REPLY_STATUS, "%s", r->str ? r->str : "");
        freeReplyObject(r);
    }
    long long keys, expires, avg;
    cr_assert(keyspace(rc, &keys, &expires, &avg));
    /* Some may be gone already on a slow machine; none may be gone early. */
    cr_expect_leq(keys, UNREAD + KEPT);
    cr_expect_leq(expires, UNREAD);
    cr_expect_eq(keys - expires, KEPT);
    await_dbsize(rc, KEPT);
    cr_assert(keyspace(rc, &keys, &expires, &avg));
    cr_expect_eq(keys, KEPT);
    cr_expect_eq(expires, 0);
    cr_expect_eq(avg, 0);
    await_info_field(rc, "stats", "expired_keys", UNREAD);
    cr_expect_eq(info_field(rc, "stats", "expired_keys"), UNREAD);
    cr_expect_geq(info_field(rc, "stats", "expire_cycle_cpu_milliseconds"), 0);
    redisReply *r = cmd(rc, "INFO stats");
    cr_expect(strstr(r->str, "\r\nexpired_stale_perc:"), "%s", r->str);
    cr_expect(strstr(r->str, "\r\nexpired_time_cap_reached_count:"), "%s", r->str);
    freeReplyObject(r);
    /* The kept keys are all there. */
    for (int i = 0; i < KEPT; i++)
        cr_assert_eq(cmd_int(rc, "EXISTS kept:%d", i), 1, "kept:%d", i);
    /* CONFIG RESETSTAT starts the count again. */
    expect_status(rc, "OK", "CONFIG RESETSTAT");
    cr_expect_eq(info_field(rc, "stats", "expired_keys"), 0);
    redisFree(rc);
    h_stop(&h);
}

#define RENEWED 3000
#define RENEW_ROUNDS 40

/* A key renewed by a write while the active expiry removes expired keys
   is never removed: the removal only takes a key whose time is still
   past. Round after round, every key gets a time of 1 ms and is written
   again without one right behind, while cycles run at 500 Hz with the
   most effort, so that the cycle keeps finding keys expired a moment ago
   and renewals land between a step's finding and its removing. */
ENGINE_TEST(renewed_keys_survive)
{
    struct h_server h;
    static const char *const args[] = {"--hz", "500", "--active-expire-effort", "10", NULL};
    h_start(&h, engine->name, args);
    redisContext *rc = connect_to(&h);
    for (int round = 0; round < RENEW_ROUNDS; round++) {
        for (int i = 0; i < RENEWED; i++)
            redisAppendCommand(rc, "SET renew:%d old PX 1", i);
        for (int i = 0; i < RENEWED; i++) {
            if (round % 2)
                redisAppendCommand(rc, "SET renew:%d new", i);
            else
                redisAppendCommand(rc, "SET renew:%d new EX 1000", i);
        }
        for (int i = 0; i < 2 * RENEWED; i++) {
            redisReply *r = NULL;
            cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK, "%s", rc->errstr);
            cr_assert_eq(r->type, REDIS_REPLY_STATUS, "%s", r->str ? r->str : "");
            freeReplyObject(r);
        }
    }
    /* Once a cycle has removed a key written after the last renewal, no
       removal decided before it is still on its way: every key must be
       there. */
    expect_status(rc, "OK", "SET canary v PX 1");
    await_dbsize(rc, RENEWED);
    for (int i = 0; i < RENEWED; i++) {
        char *v = cmd_str(rc, "GET renew:%d", i);
        cr_expect_str_eq(v, "new", "renew:%d", i);
        free(v);
    }
    cr_expect_gt(info_field(rc, "stats", "expired_keys"), 0);
    redisFree(rc);
    h_stop(&h);
}

/* Times survive a restart; keys whose time passed while the server was
   stopped are gone after it, and the active expiry removes them. */
ENGINE_TEST(restart_keeps_times)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_to(&h);
    expect_status(rc, "OK", "SET far v PXAT 4102444800123");
    expect_status(rc, "OK", "SET long v EX 1000");
    expect_status(rc, "OK", "SET plain v");
    for (int i = 0; i < 500; i++)
        redisAppendCommand(rc, "SET short:%d v PX 300", i);
    for (int i = 0; i < 500; i++) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(rc, (void **)&r), REDIS_OK, "%s", rc->errstr);
        freeReplyObject(r);
    }
    long long long_at = cmd_int(rc, "PEXPIRETIME long");
    long long short_at = cmd_int(rc, "PEXPIRETIME short:499");
    redisFree(rc);
    h_stop_keep(&h);
    await_time(short_at);
    h_restart(&h, NULL);
    rc = connect_to(&h);
    cr_expect_eq(cmd_int(rc, "PEXPIRETIME far"), 4102444800123LL);
    cr_expect_eq(cmd_int(rc, "PEXPIRETIME long"), long_at);
    cr_expect_eq(cmd_int(rc, "TTL plain"), -1);
    cr_expect_eq(cmd_int(rc, "EXISTS short:0 short:499"), 0);
    cr_expect_eq(cmd_int(rc, "TTL short:7"), -2);
    /* Stored still until the active expiry removes them, without a read
       (or dropped by the engine when it loaded the store). */
    await_dbsize(rc, 3);
    long long keys, expires, avg;
    cr_assert(keyspace(rc, &keys, &expires, &avg));
    cr_expect_eq(keys, 3);
    cr_expect_eq(expires, 2);
    redisFree(rc);
    h_stop(&h);
}

/* The mean time left of the keys with times, in ms, as Redis's avg_ttl. */
ENGINE_TEST(info_keyspace_counts_times)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *rc = connect_to(&h);
    expect_status(rc, "OK", "SET a v EX 1000");
    expect_status(rc, "OK", "SET b v EX 2000");
    expect_status(rc, "OK", "SET c v");
    long long keys, expires, avg;
    cr_assert(keyspace(rc, &keys, &expires, &avg));
    cr_expect_eq(keys, 3);
    cr_expect_eq(expires, 2);
    cr_expect(avg > 1490000 && avg <= 1500000, "avg_ttl=%lld", avg);
    cr_expect_eq(cmd_int(rc, "PERSIST a"), 1);
    cr_expect_eq(cmd_int(rc, "DEL b"), 1);
    cr_assert(keyspace(rc, &keys, &expires, &avg));
    cr_expect_eq(keys, 2);
    cr_expect_eq(expires, 0);
    cr_expect_eq(avg, 0);
    redisFree(rc);
    h_stop(&h);
}

#define RMW_SETS 3000

struct rmw_racer {
    struct h_server *h;
    volatile int *done;
    char error[256];
};

/* Rewrite the key's time again and again: each of these reads the value
   and writes it back, which must never write back a value older than a
   SET that came in between. */
static void *rmw_racer(void *arg)
{
    struct rmw_racer *me = arg;
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", me->h->s.port, tv);
    if (!rc || rc->err) {
        snprintf(me->error, sizeof(me->error), "connect failed");
        return NULL;
    }
    redisSetTimeout(rc, tv);
    static const char *const cmds[] = {"GETEX counter PERSIST",     "EXPIRE counter 1000",
                                       "PERSIST counter",           "GETEX counter EX 500",
                                       "PEXPIRE counter 900000 GT", "SET counter-mirror x"};
    for (unsigned i = 0; !*me->done && !me->error[0]; i++) {
        redisReply *r = redisCommand(rc, cmds[i % (sizeof(cmds) / sizeof(cmds[0]))]);
        if (!r)
            snprintf(me->error, sizeof(me->error), "hiredis: %s", rc->errstr);
        else if (r->type == REDIS_REPLY_ERROR)
            snprintf(me->error, sizeof(me->error), "%s", r->str);
        if (r)
            freeReplyObject(r);
    }
    redisFree(rc);
    return NULL;
}

/* GETEX, EXPIRE, PERSIST and SET KEEPTTL read the key and write it back
   under its lock: a SET that a client saw acknowledged is never undone
   by one of them (the value a client reads after its SET is that SET's
   or a later one's). */
ENGINE_TEST(time_changes_are_atomic)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    volatile int done = 0;
    struct rmw_racer racers[2] = {{.h = &h, .done = &done}, {.h = &h, .done = &done}};
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, rmw_racer, &racers[t]), 0);
    redisContext *rc = connect_to(&h);
    int regressions = 0;
    for (int i = 1; i <= RMW_SETS; i++) {
        /* Alternately the plain, batched SET and the SET with a time. */
        if (i % 3 == 0)
            expect_status(rc, "OK", "SET counter %d", i);
        else if (i % 3 == 1)
            expect_status(rc, "OK", "SET counter %d EX 1000", i);
        else
            expect_status(rc, "OK", "SET counter %d KEEPTTL", i);
        char *v = cmd_str(rc, "GET counter");
        regressions += atoi(v) < i;
        free(v);
    }
    done = 1;
    for (int t = 0; t < 2; t++)
        pthread_join(threads[t], NULL);
    for (int t = 0; t < 2; t++)
        cr_expect_eq(racers[t].error[0], '\0', "racer %d: %s", t, racers[t].error);
    cr_expect_eq(regressions, 0, "%d SETs were undone by a concurrent change of the time",
                 regressions);
    char *v = cmd_str(rc, "GET counter");
    cr_expect_eq(atoi(v), RMW_SETS);
    free(v);
    redisFree(rc);
    h_stop(&h);
}

/* SET with a time, SETEX and PSETEX are queued with the turn's other
   writes; pipelined with reads and with refused times, every reply comes
   in order, and a read sees the writes before it. */
ENGINE_TEST(batched_timed_writes_in_order)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    int fd = h_connect(&h);
    static const char pipeline[] = "SET a 1 EX 100\r\n"
                                   "SET a 2 PX abc\r\n"
                                   "GET a\r\n"
                                   "SETEX b 0 v\r\n"
                                   "PSETEX b 100000 v\r\n"
                                   "SET b w EXAT 1\r\n"
                                   "EXISTS b\r\n"
                                   "SET c v PXAT 4102444800000\r\n"
                                   "MSET d v e v\r\n"
                                   "SET d v2 px 9223372036854775807\r\n"
                                   "PEXPIRETIME c\r\n"
                                   "TTL a\r\n"
                                   "SET a 3\r\n"
                                   "TTL a\r\n"
                                   "DEL a b c\r\n";
    h_send(fd, pipeline, sizeof(pipeline) - 1);
    H_EXPECT(fd, "+OK\r\n"
                 "-ERR value is not an integer or out of range\r\n"
                 "$1\r\n1\r\n"
                 "-ERR invalid expire time in 'setex' command\r\n"
                 "+OK\r\n"
                 "+OK\r\n"
                 ":0\r\n"
                 "+OK\r\n"
                 "+OK\r\n"
                 "-ERR invalid expire time in 'set' command\r\n"
                 ":4102444800000\r\n"
                 ":100\r\n"
                 "+OK\r\n"
                 ":-1\r\n"
                 ":2\r\n");
    close(fd);
    h_stop(&h);
}
