/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The keyspace commands against every registered engine: SCAN (full
 * passes with MATCH, COUNT and TYPE, while writers run), KEYS, RANDOMKEY,
 * TYPE, STRLEN, UNLINK, TOUCH; the INFO engine section; COMMAND's view of
 * the table; and redis-cli's --scan and --bigkeys, which are built on
 * them. Talked to through hiredis, an independent client, and redis-cli.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kvs/kvs.h"
#include "support/tmpdir.h"

#define ENGINE_TEST(name)                                                                          \
    ParameterizedTestParameters(keyspace, name)                                                    \
    {                                                                                              \
        H_ENGINE_PARAMS;                                                                           \
    }                                                                                              \
    ParameterizedTest(struct ts_engine_param *engine, keyspace, name, .timeout = 90)

static redisContext *connect_to(struct h_server *h)
{
    struct timeval tv = {H_TIMEOUT_MS / 1000, 0};
    redisContext *ctx = redisConnectWithTimeout("127.0.0.1", h->s.port, tv);
    cr_assert(ctx && !ctx->err, "connect: %s", ctx ? ctx->errstr : "no memory");
    redisSetTimeout(ctx, tv);
    return ctx;
}

/* Run a command of n slices; fails the test on a connection error. */
static redisReply *run(redisContext *ctx, size_t n, const kvs_slice *args)
{
    const char *argv[256];
    size_t lens[256];
    cr_assert(n <= 256);
    for (size_t i = 0; i < n; i++) {
        argv[i] = args[i].data;
        lens[i] = args[i].len;
    }
    redisReply *r = redisCommandArgv(ctx, (int)n, argv, lens);
    cr_assert_not_null(r, "%s", ctx->errstr);
    return r;
}

/* Run a command of C strings. */
#define RUN(ctx, ...)                                                                              \
    run_str((ctx), sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *),                   \
            (const char *[]){__VA_ARGS__})

static redisReply *run_str(redisContext *ctx, size_t n, const char *const *words)
{
    kvs_slice args[64];
    cr_assert(n <= 64);
    for (size_t i = 0; i < n; i++)
        args[i] = kvs_slice_str(words[i]);
    return run(ctx, n, args);
}

static void expect_status(redisReply *r, const char *text)
{
    cr_expect(r->type == REDIS_REPLY_STATUS && strcmp(r->str, text) == 0,
              "expected +%s, got type %d \"%s\"", text, r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

static void expect_int(redisReply *r, long long n)
{
    cr_expect(r->type == REDIS_REPLY_INTEGER && r->integer == n,
              "expected :%lld, got type %d (%lld) \"%s\"", n, r->type, r->integer,
              r->str ? r->str : "");
    freeReplyObject(r);
}

static void expect_bulk(redisReply *r, const void *data, size_t len)
{
    cr_expect(r->type == REDIS_REPLY_STRING && r->len == len && memcmp(r->str, data, len) == 0,
              "expected $%zu, got type %d \"%s\"", len, r->type, r->str ? r->str : "");
    freeReplyObject(r);
}

static void expect_nil(redisReply *r)
{
    cr_expect_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* A set of keys: sorted copies, each with its length. */
struct keys {
    kvs_buf *k;
    size_t n, cap;
};

static void keys_add(struct keys *s, const void *data, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->k = realloc(s->k, s->cap * sizeof(*s->k));
        cr_assert_not_null(s->k);
    }
    s->k[s->n] = (kvs_buf)KVS_BUF_INIT;
    cr_assert_eq(kvs_buf_set(&s->k[s->n], data, len), 0);
    s->k[s->n++].len = len;
}

static int buf_cmp(const void *a, const void *b)
{
    const kvs_buf *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->data, y->data, n) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void keys_sort(struct keys *s)
{
    if (s->n)
        qsort(s->k, s->n, sizeof(*s->k), buf_cmp);
}

static size_t keys_dups(const struct keys *s)
{
    size_t d = 0;
    for (size_t i = 1; i < s->n; i++)
        d += buf_cmp(&s->k[i - 1], &s->k[i]) == 0;
    return d;
}

static bool keys_has(const struct keys *s, const void *data, size_t len)
{
    kvs_buf probe = {(void *)data, len, len};
    return s->n && bsearch(&probe, s->k, s->n, sizeof(*s->k), buf_cmp) != NULL;
}

static void keys_free(struct keys *s)
{
    for (size_t i = 0; i < s->n; i++)
        kvs_buf_free(&s->k[i]);
    free(s->k);
    *s = (struct keys){0};
}

/* Whether two sorted sets hold the same keys. */
static bool keys_equal(const struct keys *a, const struct keys *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (buf_cmp(&a->k[i], &b->k[i]) != 0)
            return false;
    }
    return true;
}

/* Check one SCAN reply's shape and take its keys; returns the next cursor. */
static unsigned long long scan_reply(redisReply *r, struct keys *into)
{
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "SCAN: type %d \"%s\"", r->type, r->str ? r->str : "");
    cr_assert_eq(r->elements, 2);
    redisReply *cur = r->element[0], *list = r->element[1];
    cr_assert_eq(cur->type, REDIS_REPLY_STRING);
    cr_assert(cur->len > 0 && strspn(cur->str, "0123456789") == cur->len, "cursor \"%s\"",
              cur->str);
    cr_assert(cur->len == 1 || cur->str[0] != '0', "cursor \"%s\" has a leading zero", cur->str);
    cr_assert_eq(list->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < list->elements; i++) {
        cr_assert_eq(list->element[i]->type, REDIS_REPLY_STRING);
        keys_add(into, list->element[i]->str, list->element[i]->len);
    }
    unsigned long long next = strtoull(cur->str, NULL, 10);
    freeReplyObject(r);
    return next;
}

/* A whole SCAN pass with the options given (NULL-terminated); returns the
   number of steps. between(), if not NULL, runs after every step. */
static size_t scan_pass(redisContext *ctx, struct keys *into, void (*between)(void *), void *arg,
                        ...)
{
    const char *words[16] = {"SCAN", NULL};
    size_t n = 2;
    va_list ap;
    va_start(ap, arg);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;)
        words[n++] = w;
    va_end(ap);
    char cursor[32] = "0";
    size_t steps = 0;
    do {
        words[1] = cursor;
        unsigned long long next = scan_reply(run_str(ctx, n, words), into);
        snprintf(cursor, sizeof(cursor), "%llu", next);
        steps++;
        cr_assert_lt(steps, 1000000, "SCAN does not end");
        if (between)
            between(arg);
    } while (strcmp(cursor, "0") != 0);
    keys_sort(into);
    return steps;
}

/* The keys loaded by load(): "user:<i>" for i < n, "item:<i>" for i < n/2,
   the empty key and a key with a NUL byte. */
static void load(redisContext *ctx, struct keys *all, size_t n)
{
    char key[32], val[32];
    for (size_t i = 0; i < n + n / 2; i++) {
        snprintf(key, sizeof(key), i < n ? "user:%zu" : "item:%zu", i < n ? i : i - n);
        snprintf(val, sizeof(val), "v%zu", i);
        expect_status(RUN(ctx, "SET", key, val), "OK");
        keys_add(all, key, strlen(key));
    }
    kvs_slice set_nul[] = {{"SET", 3}, {"nul\0key", 7}, {"x", 1}};
    expect_status(run(ctx, 3, set_nul), "OK");
    keys_add(all, "nul\0key", 7);
    expect_status(RUN(ctx, "SET", "", "empty"), "OK");
    keys_add(all, "", 0);
    keys_sort(all);
}

static void expect_same_keys(struct keys *got, struct keys *want, const char *what)
{
    cr_expect_eq(keys_dups(got), 0, "%s: a key twice", what);
    cr_expect(keys_equal(got, want), "%s: %zu keys, expected %zu", what, got->n, want->n);
}

/* The subset of all whose keys start with prefix. */
static void keys_prefixed(const struct keys *all, const char *prefix, struct keys *out)
{
    for (size_t i = 0; i < all->n; i++) {
        const kvs_buf *k = &all->k[i];
        if (k->len >= strlen(prefix) && memcmp(k->data, prefix, strlen(prefix)) == 0)
            keys_add(out, k->data, k->len);
    }
    keys_sort(out);
}

ENGINE_TEST(scan_passes)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    struct keys all = {0}, users = {0}, got = {0};
    struct keys none = {0};
    load(ctx, &all, 600);
    keys_prefixed(&all, "user:", &users);

    /* On a store nobody writes to, a pass lists every key exactly once,
       whatever COUNT is. */
    static const char *const counts[] = {"1", "7", "10", "1000", "100000"};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        size_t steps = scan_pass(ctx, &got, NULL, NULL, "COUNT", counts[i], NULL);
        char what[64];
        snprintf(what, sizeof(what), "SCAN COUNT %s", counts[i]);
        expect_same_keys(&got, &all, what);
        if (strcmp(counts[i], "1") == 0)
            cr_expect_gt(steps, 100, "COUNT 1 took %zu steps", steps);
        keys_free(&got);
    }
    scan_pass(ctx, &got, NULL, NULL, NULL); /* the default COUNT */
    expect_same_keys(&got, &all, "SCAN");
    keys_free(&got);

    scan_pass(ctx, &got, NULL, NULL, "MATCH", "user:*", "COUNT", "50", NULL);
    expect_same_keys(&got, &users, "SCAN MATCH user:*");
    keys_free(&got);
    scan_pass(ctx, &got, NULL, NULL, "match", "*", "type", "STRING", NULL);
    expect_same_keys(&got, &all, "SCAN MATCH * TYPE STRING");
    keys_free(&got);
    scan_pass(ctx, &got, NULL, NULL, "TYPE", "hash", "COUNT", "100", NULL);
    expect_same_keys(&got, &none, "SCAN TYPE hash");
    keys_free(&got);
    scan_pass(ctx, &got, NULL, NULL, "TYPE", "nosuchtype", NULL);
    expect_same_keys(&got, &none, "SCAN TYPE nosuchtype");
    keys_free(&got);
    /* A key with a NUL byte, matched through it; the empty key by MATCH "". */
    kvs_slice scan_nul[] = {{"SCAN", 4},   {"0", 1},     {"MATCH", 5},
                            {"nul\0*", 5}, {"COUNT", 5}, {"100000", 6}};
    scan_reply(run(ctx, 6, scan_nul), &got);
    cr_expect(got.n == 1 && got.k[0].len == 7 && memcmp(got.k[0].data, "nul\0key", 7) == 0);
    keys_free(&got);
    scan_reply(RUN(ctx, "SCAN", "0", "MATCH", "", "COUNT", "100000"), &got);
    cr_expect(got.n == 1 && got.k[0].len == 0, "MATCH \"\" lists the empty key only");
    keys_free(&got);

    /* The errors of Redis 7.0. */
    redisReply *r = RUN(ctx, "SCAN", "abc");
    cr_expect(r->type == REDIS_REPLY_ERROR && strcmp(r->str, "ERR invalid cursor") == 0);
    freeReplyObject(r);
    r = RUN(ctx, "SCAN", "0", "COUNT", "0");
    cr_expect(r->type == REDIS_REPLY_ERROR && strcmp(r->str, "ERR syntax error") == 0);
    freeReplyObject(r);
    /* A cursor no step returned is taken as a position, not refused. */
    scan_reply(RUN(ctx, "SCAN", "18446744073709551615"), &got);
    keys_free(&got);

    keys_free(&all);
    keys_free(&users);
    redisFree(ctx);
    h_stop(&h);
}

/* Between the steps of a pass another client adds keys and removes
   others: the keys there from start to end must all be listed. */
struct churn {
    redisContext *ctx;
    size_t round;
};

static void churn_step(void *arg)
{
    struct churn *ch = arg;
    char key[32];
    for (int i = 0; i < 20; i++, ch->round++) {
        snprintf(key, sizeof(key), "new:%zu", ch->round);
        expect_status(RUN(ch->ctx, "SET", key, "x"), "OK");
        if (ch->round % 2 == 0) {
            snprintf(key, sizeof(key), "item:%zu", ch->round / 2);
            freeReplyObject(RUN(ch->ctx, "DEL", key));
        }
    }
}

ENGINE_TEST(scan_while_writing)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    struct churn ch = {connect_to(&h), 0};
    struct keys all = {0}, stable = {0}, got = {0};
    load(ctx, &all, 2000);
    keys_prefixed(&all, "user:", &stable);
    scan_pass(ctx, &got, churn_step, &ch, "COUNT", "25", NULL);
    for (size_t i = 0; i < stable.n; i++)
        cr_expect(keys_has(&got, stable.k[i].data, stable.k[i].len), "%.*s was not listed",
                  (int)stable.k[i].len, (const char *)stable.k[i].data);
    cr_expect_gt(ch.round, 0);
    keys_free(&got);

    /* KEYS lists each key once while the writers go on. */
    redisReply *r = RUN(ctx, "KEYS", "*");
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++)
        keys_add(&got, r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);
    keys_sort(&got);
    cr_expect_eq(keys_dups(&got), 0);
    for (size_t i = 0; i < stable.n; i++)
        cr_expect(keys_has(&got, stable.k[i].data, stable.k[i].len));
    keys_free(&got);
    keys_free(&all);
    keys_free(&stable);
    redisFree(ch.ctx);
    redisFree(ctx);
    h_stop(&h);
}

/* KEYS pattern's reply as a sorted set. */
static void keys_of(redisContext *ctx, const char *pattern, struct keys *out)
{
    redisReply *r = RUN(ctx, "KEYS", pattern);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "KEYS %s: type %d", pattern, r->type);
    for (size_t i = 0; i < r->elements; i++)
        keys_add(out, r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);
    keys_sort(out);
}

ENGINE_TEST(keys_patterns)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    struct keys got = {0}, want = {0};
    keys_of(ctx, "*", &got);
    cr_expect_eq(got.n, 0, "an empty store");
    keys_free(&got);

    struct keys all = {0};
    load(ctx, &all, 3000);
    keys_of(ctx, "*", &got);
    expect_same_keys(&got, &all, "KEYS *");
    keys_free(&got);
    keys_of(ctx, "user:*", &got);
    keys_prefixed(&all, "user:", &want);
    expect_same_keys(&got, &want, "KEYS user:*");
    keys_free(&got);
    keys_free(&want);

    static const struct {
        const char *pattern;
        const char *const keys[6];
    } cases[] = {
        {"user:?", {"user:0", "user:1", "user:2", "user:3", "user:4", "user:5"}},
        {"user:[1-3]", {"user:1", "user:2", "user:3"}},
        {"item:1[^0-8]", {"item:19"}},
        {"user:29[9]*",
         {"user:299", "user:2990", "user:2991", "user:2992", "user:2993", "user:2994"}},
        {"it\\em:1?9", {"item:109", "item:119", "item:129", "item:139", "item:149", "item:159"}},
        {"**", {NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        keys_of(ctx, cases[i].pattern, &got);
        size_t n = 0;
        for (; n < 6 && cases[i].keys[n]; n++)
            cr_expect(keys_has(&got, cases[i].keys[n], strlen(cases[i].keys[n])), "KEYS %s: %s",
                      cases[i].pattern, cases[i].keys[n]);
        if (strcmp(cases[i].pattern, "user:?") == 0)
            cr_expect_eq(got.n, 10);
        else if (strcmp(cases[i].pattern, "**") == 0)
            cr_expect_eq(got.n, all.n - 1, "** lists every key but the empty one");
        else if (strcmp(cases[i].pattern, "user:29[9]*") != 0 &&
                 strcmp(cases[i].pattern, "it\\em:1?9") != 0)
            cr_expect_eq(got.n, n, "KEYS %s: %zu keys", cases[i].pattern, got.n);
        keys_free(&got);
    }
    keys_of(ctx, "", &got);
    cr_expect(got.n == 1 && got.k[0].len == 0, "KEYS \"\" lists the empty key");
    keys_free(&got);
    keys_of(ctx, "nosuch*", &got);
    cr_expect_eq(got.n, 0);
    keys_free(&got);
    keys_free(&all);
    redisFree(ctx);
    h_stop(&h);
}

/* Patterns made to be slow (CVE-2022-36021: stars that all match, a tail
   that never does) against long keys, through KEYS and SCAN MATCH: each
   answers in a moment. */
ENGINE_TEST(hostile_patterns)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    size_t max_key = kvs_engine_max_key(kvs_engine_find(engine->name));
    size_t klen = max_key < 4000 ? max_key : 4000;
    char *key = malloc(klen + 1);
    cr_assert_not_null(key);
    memset(key, 'a', klen);
    key[klen] = '\0';
    for (int i = 0; i < 50; i++) {
        key[klen - 1] = (char)('0' + i % 10);
        key[klen - 2] = (char)('0' + i / 10);
        expect_status(RUN(ctx, "SET", key, "v"), "OK");
    }
    /* "a*" x 200 then "b", and 1100 nested stars (past Redis's limit). */
    char pattern[2300];
    for (int i = 0; i < 200; i++)
        memcpy(pattern + 2 * i, "a*", 2);
    memcpy(pattern + 400, "b", 2);
    struct keys got = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    keys_of(ctx, pattern, &got);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(got.n, 0);
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 2, "KEYS took %lld s", (long long)(t1.tv_sec - t0.tv_sec));
    keys_free(&got);
    scan_pass(ctx, &got, NULL, NULL, "MATCH", pattern, "COUNT", "7", NULL);
    cr_expect_eq(got.n, 0);
    keys_free(&got);
    for (int i = 0; i < 1100; i++)
        memcpy(pattern + 2 * i, "*a", 2);
    pattern[2200] = '\0';
    keys_of(ctx, pattern, &got);
    cr_expect_eq(got.n, 0, "more than 1000 nested stars match nothing, as in Redis");
    keys_free(&got);
    expect_int(RUN(ctx, "DBSIZE"), 50);
    free(key);
    redisFree(ctx);
    h_stop(&h);
}

/* KEYS that would be owed more than --max-output-buffer closes that client
   (as Redis's hard output limit does); the server and the store go on. */
ENGINE_TEST(keys_over_output_limit)
{
    struct h_server h;
    static const char *const args[] = {"--max-output-buffer", "1mb", NULL};
    h_start(&h, engine->name, args);
    redisContext *ctx = connect_to(&h);
    /* 6000 keys of 200 bytes: a KEYS reply of about 1.2 MB. */
    char keys[100][208];
    kvs_slice mset[201] = {{"MSET", 4}};
    for (int batch = 0; batch < 60; batch++) {
        for (int i = 0; i < 100; i++) {
            memset(keys[i], 'k', 200);
            snprintf(keys[i], 32, "big:%d:%d:", batch, i);
            keys[i][strlen(keys[i])] = 'k';
            mset[1 + 2 * i] = (kvs_slice){keys[i], 200};
            mset[2 + 2 * i] = (kvs_slice){"v", 1};
        }
        expect_status(run(ctx, 201, mset), "OK");
    }
    redisReply *r = redisCommand(ctx, "KEYS *");
    cr_expect(r == NULL, "the client was closed");
    if (r)
        freeReplyObject(r);
    redisFree(ctx);
    ctx = connect_to(&h);
    expect_int(RUN(ctx, "DBSIZE"), 6000);
    struct keys got = {0};
    keys_of(ctx, "big:1?:*", &got); /* batches 10 to 19 */
    cr_expect_eq(got.n, 1000);
    keys_free(&got);
    redisFree(ctx);
    h_stop(&h);
}

ENGINE_TEST(randomkey)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    expect_nil(RUN(ctx, "RANDOMKEY"));
    expect_status(RUN(ctx, "SET", "only", "1"), "OK");
    for (int i = 0; i < 20; i++)
        expect_bulk(RUN(ctx, "RANDOMKEY"), "only", 4);
    expect_int(RUN(ctx, "DEL", "only"), 1);
    expect_nil(RUN(ctx, "RANDOMKEY"));

    struct keys all = {0}, seen = {0};
    load(ctx, &all, 20);
    for (int i = 0; i < 200; i++) {
        redisReply *r = RUN(ctx, "RANDOMKEY");
        cr_assert_eq(r->type, REDIS_REPLY_STRING);
        cr_expect(keys_has(&all, r->str, r->len), "RANDOMKEY gave a key not in the store");
        if (!keys_has(&seen, r->str, r->len)) {
            keys_add(&seen, r->str, r->len);
            keys_sort(&seen);
        }
        freeReplyObject(r);
    }
    cr_expect_gt(seen.n, 5, "200 RANDOMKEYs over 32 keys gave %zu distinct keys", seen.n);
    keys_free(&seen);
    keys_free(&all);
    redisFree(ctx);
    h_stop(&h);
}

ENGINE_TEST(key_commands)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    expect_status(RUN(ctx, "MSET", "a", "hello", "b", "", "c", "x"), "OK");
    expect_status(RUN(ctx, "TYPE", "a"), "string");
    expect_status(RUN(ctx, "TYPE", "b"), "string");
    expect_status(RUN(ctx, "TYPE", "nosuch"), "none");
    expect_int(RUN(ctx, "STRLEN", "a"), 5);
    expect_int(RUN(ctx, "STRLEN", "b"), 0);
    expect_int(RUN(ctx, "STRLEN", "nosuch"), 0);
    kvs_slice set_bin[] = {{"SET", 3}, {"k\0\r\n", 4}, {"v\0\0", 3}};
    expect_status(run(ctx, 3, set_bin), "OK");
    kvs_slice strlen_bin[] = {{"STRLEN", 6}, {"k\0\r\n", 4}};
    expect_int(run(ctx, 2, strlen_bin), 3);
    kvs_slice type_bin[] = {{"TYPE", 4}, {"k\0\r\n", 4}};
    expect_status(run(ctx, 2, type_bin), "string");
    /* TOUCH counts each name, as EXISTS does. */
    expect_int(RUN(ctx, "TOUCH", "a", "a", "nosuch", "b"), 3);
    expect_int(RUN(ctx, "UNLINK", "a", "nosuch", "a"), 1);
    expect_int(RUN(ctx, "EXISTS", "a"), 0);
    expect_int(RUN(ctx, "UNLINK", "b", "c"), 2);
    expect_int(RUN(ctx, "DBSIZE"), 1);
    redisReply *r = RUN(ctx, "UNLINK");
    cr_expect(r->type == REDIS_REPLY_ERROR &&
              strcmp(r->str, "ERR wrong number of arguments for 'unlink' command") == 0);
    freeReplyObject(r);

    /* UNLINK is batched like DEL: pipelined with writes and reads, every
       reply comes in order and each read sees the writes before it. */
    int fd = h_connect(&h);
    static const char pipeline[] = "*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n1\r\n"
                                   "*3\r\n$6\r\nUNLINK\r\n$1\r\nq\r\n$1\r\nq\r\n"
                                   "*2\r\n$3\r\nGET\r\n$1\r\nq\r\n"
                                   "*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n2\r\n"
                                   "*3\r\n$6\r\nUNLINK\r\n$1\r\nq\r\n$2\r\nzz\r\n"
                                   "*3\r\n$4\r\nMSET\r\n$1\r\nq\r\n$1\r\n3\r\n"
                                   "*2\r\n$6\r\nSTRLEN\r\n$1\r\nq\r\n"
                                   "*2\r\n$4\r\nTYPE\r\n$1\r\nq\r\n";
    h_send(fd, pipeline, sizeof(pipeline) - 1);
    H_EXPECT(fd, "+OK\r\n:1\r\n$-1\r\n+OK\r\n:1\r\n+OK\r\n:1\r\n+string\r\n");
    close(fd);
    redisFree(ctx);
    h_stop(&h);
}

/* INFO's engine section shows the engine's name and every figure its
   kvs_db_info() gives, whatever the engine; Keyspace keeps Redis's line. */
static void collect_name(void *ctx, const char *name, const char *value)
{
    (void)value;
    struct keys *names = ctx;
    keys_add(names, name, strlen(name));
}

ENGINE_TEST(info_engine)
{
    /* The figures an open store of this engine gives through libkvs. */
    char dir[PATH_MAX];
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine->name;
    kvs_db *db;
    cr_assert_eq(kvs_db_open(dir, &opts, &db, NULL), 0);
    struct keys names = {0};
    int rc = kvs_db_info(db, collect_name, &names);
    cr_assert(rc == 0 || rc == KVS_ENOTSUP);
    kvs_db_close(db);
    ts_tmpdir_remove(dir);

    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    expect_status(RUN(ctx, "SET", "k", "v"), "OK");
    redisReply *r = RUN(ctx, "INFO", "engine");
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    char head[64];
    snprintf(head, sizeof(head), "# Engine\r\nengine:%s\r\n", engine->name);
    cr_expect(strncmp(r->str, head, strlen(head)) == 0, "%s", r->str);
    for (size_t i = 0; i < names.n; i++) {
        char line[80];
        snprintf(line, sizeof(line), "\r\n%.*s:", (int)names.k[i].len,
                 (const char *)names.k[i].data);
        cr_expect(strstr(r->str, line) != NULL, "INFO engine lacks %s: %s", line + 2, r->str);
    }
    cr_expect(strstr(r->str, "disk_bytes:") != NULL, "%s", r->str);
    cr_expect(strstr(r->str, "# Keyspace") == NULL, "%s", r->str);
    freeReplyObject(r);

    r = RUN(ctx, "INFO", "keyspace");
    cr_expect_str_eq(r->str, "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
    freeReplyObject(r);
    r = RUN(ctx, "INFO");
    cr_expect(strstr(r->str, "\r\n# Engine\r\nengine:") && strstr(r->str, "\r\n# Keyspace\r\n"),
              "%s", r->str);
    freeReplyObject(r);
    keys_free(&names);
    redisFree(ctx);
    h_stop(&h);
}

/* COMMAND COUNT, COMMAND (all), COMMAND LIST and COMMAND INFO (none
   named: all) agree with each other. */
ENGINE_TEST(command_table)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    redisReply *count = RUN(ctx, "COMMAND", "COUNT");
    redisReply *all = RUN(ctx, "COMMAND");
    redisReply *info = RUN(ctx, "COMMAND", "INFO");
    redisReply *list = RUN(ctx, "COMMAND", "LIST");
    cr_assert_eq(count->type, REDIS_REPLY_INTEGER);
    cr_expect_eq(all->elements, (size_t)count->integer);
    cr_expect_eq(info->elements, (size_t)count->integer);
    /* COMMAND LIST names subcommands too ("client|list"), as Redis 7. */
    cr_expect_geq(list->elements, (size_t)count->integer);
    static const char *const wanted[] = {"scan",   "keys",   "randomkey", "type",
                                         "strlen", "unlink", "touch"};
    for (size_t w = 0; w < sizeof(wanted) / sizeof(wanted[0]); w++) {
        bool found = false;
        for (size_t i = 0; i < list->elements; i++)
            found |= strcmp(list->element[i]->str, wanted[w]) == 0;
        cr_expect(found, "COMMAND LIST lacks %s", wanted[w]);
    }
    freeReplyObject(count);
    freeReplyObject(all);
    freeReplyObject(info);
    freeReplyObject(list);
    redisFree(ctx);
    h_stop(&h);
}

/* Lines of text, sorted, as a key set. */
static void lines_of(const char *text, struct keys *out)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        keys_add(out, p, len);
        p += len + (nl != NULL);
    }
    keys_sort(out);
}

ENGINE_TEST(redis_cli_scan_and_bigkeys)
{
    struct h_server h;
    h_start(&h, engine->name, NULL);
    redisContext *ctx = connect_to(&h);
    struct keys want = {0}, got = {0};
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "user:%d", i);
        expect_status(RUN(ctx, "SET", key, i == 123 ? "the-longest-value" : "v"), "OK");
        keys_add(&want, key, strlen(key));
        snprintf(key, sizeof(key), "other:%d", i);
        expect_status(RUN(ctx, "SET", key, "vv"), "OK");
    }
    keys_sort(&want);
    char *out = h_cli(&h, "--scan", "--pattern", "user:*", NULL);
    lines_of(out, &got);
    free(out);
    expect_same_keys(&got, &want, "redis-cli --scan --pattern user:*");
    keys_free(&got);

    out = h_cli(&h, "--bigkeys", NULL);
    static const char *const wanted[] = {
        "Sampled 600 keys in the keyspace!",
        "Biggest string found '\"user:123\"' has 17 bytes",
        "600 strings with 916 bytes (100.00% of keys, avg size 1.53)",
        "0 hashs with 0 fields (00.00% of keys, avg size 0.00)",
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        cr_expect(strstr(out, wanted[i]) != NULL, "--bigkeys lacks \"%s\":\n%s", wanted[i], out);
    free(out);
    keys_free(&want);
    redisFree(ctx);
    h_stop(&h);
}
