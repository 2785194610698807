/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-convert end to end, run as a program on real stores: a store of each
 * registered engine converted into every engine and back, with binary and
 * empty keys, empty and large values, a third of the keys with an expiry
 * time, compared pair by pair (value and time) with what was written; and the refusals: a
 * destination that is not empty, a source a process has open, a key the destination engine cannot
 * hold (the source stays untouched and the message says what to delete), bad usage.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvs/kvs.h"
#include "support/params.h"
#include "support/server.h"
#include "support/tmpdir.h"

#define NKEYS 3000

static char root[PATH_MAX];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(root), 0);
}

static void teardown(void)
{
    ts_tmpdir_remove(root);
}

TestSuite(convert, .init = setup, .fini = teardown, .timeout = 240);

static void path_of(char *out, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%.*s/%s", PATH_MAX - 64, root, name);
    cr_assert(n > 0 && n < PATH_MAX);
}

static kvs_db *open_store(const char *dir, const char *engine)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = engine;
    o.fsync = KVS_FSYNC_NO;
    kvs_db *db = NULL;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &o, &db, why);
    cr_assert_eq(rc, 0, "open %s (%s): %s", dir, engine ? engine : "recorded", why);
    return db;
}

/* Key i: 0 is the empty key, 1 holds NUL bytes, the rest "key:<i>". */
static size_t key_of(char *out, unsigned i)
{
    if (i == 0)
        return 0;
    if (i == 1) {
        memcpy(out, "\0k\0", 3);
        return 3;
    }
    return (size_t)sprintf(out, "key:%u", i);
}

/* Value i: empty for i % 7 == 0, 64 KiB for i % 1000 == 5, else short. */
static size_t value_of(char *out, unsigned i)
{
    if (i % 7 == 0)
        return 0;
    if (i % 1000 == 5) {
        for (size_t j = 0; j < 65536; j++)
            out[j] = (char)(i + j * 31);
        return 65536;
    }
    return (size_t)sprintf(out, "value %u of the store", i);
}

/* Key i's expiry time: a third of the keys expire, in 2100 (ms since the
   epoch), each at its own millisecond; the rest never. */
static int64_t expire_of(unsigned i)
{
    return i % 3 == 1 ? INT64_C(4102444800000) + i : 0;
}

static char *valbuf(void)
{
    char *v = malloc(65536);
    cr_assert_not_null(v);
    return v;
}

static void fill(const char *dir, const char *engine)
{
    kvs_db *db = open_store(dir, engine);
    char key[32], *val = valbuf();
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t kl = key_of(key, i), vl = value_of(val, i);
        cr_assert_eq(kvs_db_set_ex(db, kvs_slice_of(key, kl), kvs_slice_of(val, vl), expire_of(i)),
                     0);
    }
    /* Removed keys are not copied. */
    for (unsigned i = 2; i < NKEYS; i += 97)
        cr_assert_eq(kvs_db_remove(db, kvs_slice_of(key, key_of(key, i))), 0);
    free(val);
    cr_assert_eq(kvs_db_close(db), 0);
}

static void expect_same(const char *dir, const char *engine)
{
    char name[64];
    cr_assert_eq(kvs_dir_engine(dir, name, sizeof(name)), 0);
    cr_assert_str_eq(name, engine);
    kvs_db *db = open_store(dir, NULL);
    char key[32], *val = valbuf();
    kvs_buf got = KVS_BUF_INIT;
    unsigned live = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        size_t kl = key_of(key, i), vl = value_of(val, i);
        int64_t at = -1;
        int rc = kvs_db_get_ex(db, kvs_slice_of(key, kl), &got, &at);
        bool removed = i >= 2 && (i - 2) % 97 == 0;
        if (removed) {
            cr_assert_eq(rc, KVS_ENOTFOUND, "[%s] removed key %u is back", engine, i);
            continue;
        }
        live++;
        cr_assert_eq(rc, 0, "[%s] key %u: %s", engine, i, kvs_strerror(rc));
        cr_assert(got.len == vl && memcmp(got.data, val, vl) == 0, "[%s] key %u: wrong value",
                  engine, i);
        cr_assert_eq(at, expire_of(i), "[%s] key %u expires at %lld, not %lld", engine, i,
                     (long long)at, (long long)expire_of(i));
    }
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, live, "[%s] %llu keys, %u expected", engine, (unsigned long long)st.keys,
                 live);
    unsigned timed = 0;
    for (unsigned i = 0; i < NKEYS; i++)
        timed += expire_of(i) != 0 && !(i >= 2 && (i - 2) % 97 == 0);
    cr_assert_eq(st.expires, timed, "[%s] %llu keys with a time, %u expected", engine,
                 (unsigned long long)st.expires, timed);
    kvs_buf_free(&got);
    free(val);
    kvs_db_close(db);
}

static void convert(ts_result *r, const char *src, const char *dst, const char *engine)
{
    const char *argv[] = {KVS_CONVERT_BIN, src, dst, "--engine", engine, NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 120000, r), 0);
    cr_assert(!r->timed_out);
}

struct pair {
    char from[32], to[32];
};

/* Every (from, to) pair of registered engines. */
static struct criterion_test_params pairs(void)
{
    size_t n = kvs_engine_count();
    struct pair *p = cr_calloc(n * n, sizeof(*p));
    for (size_t i = 0; p && i < n * n; i++) {
        snprintf(p[i].from, sizeof(p[i].from), "%s", kvs_engine_name(kvs_engine_at(i / n)));
        snprintf(p[i].to, sizeof(p[i].to), "%s", kvs_engine_name(kvs_engine_at(i % n)));
    }
    return cr_make_param_array(struct pair, p, p ? n * n : 0, ts_free_params);
}

ParameterizedTestParameters(convert, round_trip)
{
    return pairs();
}

/* from -> to -> from: both copies hold exactly what was written. */
ParameterizedTest(struct pair *p, convert, round_trip)
{
    char src[PATH_MAX], mid[PATH_MAX], back[PATH_MAX];
    path_of(src, "src");
    path_of(mid, "mid");
    path_of(back, "back");
    fill(src, p->from);
    ts_result r = {0};
    convert(&r, src, mid, p->to);
    cr_assert_eq(r.status, 0, "%s -> %s: %s%s", p->from, p->to, r.out, r.err);
    cr_assert(strstr(r.out, "verified") != NULL, "%s", r.out);
    ts_result_free(&r);
    expect_same(mid, p->to);
    convert(&r, mid, back, p->from);
    cr_assert_eq(r.status, 0, "%s -> %s: %s%s", p->to, p->from, r.out, r.err);
    ts_result_free(&r);
    expect_same(back, p->from);
    expect_same(src, p->from);
}

Test(convert, refuses_a_destination_that_is_not_empty)
{
    char src[PATH_MAX], dst[PATH_MAX], other[PATH_MAX];
    path_of(src, "src");
    path_of(dst, "dst");
    path_of(other, "dst/something");
    fill(src, "kvs");
    cr_assert_eq(mkdir(dst, 0755), 0);
    cr_assert_eq(mkdir(other, 0755), 0);
    ts_result r = {0};
    convert(&r, src, dst, "lmdb");
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.err, "not empty") != NULL, "%s", r.err);
    ts_result_free(&r);
    expect_same(src, "kvs");
}

Test(convert, refuses_a_source_in_use)
{
    char src[PATH_MAX], dst[PATH_MAX];
    path_of(src, "src");
    path_of(dst, "dst");
    fill(src, "kvs");
    kvs_db *db = open_store(src, NULL); /* holds the directory's lock */
    ts_result r = {0};
    convert(&r, src, dst, "lmdb");
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.err, "in use") != NULL, "%s", r.err);
    ts_result_free(&r);
    kvs_db_close(db);
    struct stat st;
    cr_assert_neq(stat(dst, &st), 0, "a destination was made for a source in use");
}

/* A key longer than the destination engine's limit: the copy fails, the
   source is untouched and the message names what to delete. */
Test(convert, a_key_the_destination_cannot_hold)
{
    const kvs_engine *lmdb = kvs_engine_find("lmdb");
    if (!lmdb || kvs_engine_max_key(lmdb) >= kvs_engine_max_key(kvs_engine_find("kvs")))
        cr_skip_test("no engine with a shorter key limit than kvs");
    char src[PATH_MAX], dst[PATH_MAX];
    path_of(src, "src");
    path_of(dst, "dst");
    fill(src, "kvs");
    kvs_db *db = open_store(src, NULL);
    size_t len = kvs_engine_max_key(lmdb) + 1;
    char *key = malloc(len);
    cr_assert_not_null(key);
    memset(key, 'L', len);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(key, len), kvs_slice_str("long")), 0);
    free(key);
    cr_assert_eq(kvs_db_close(db), 0);
    ts_result r = {0};
    convert(&r, src, dst, "lmdb");
    cr_assert_eq(r.status, 1, "%s%s", r.out, r.err);
    cr_assert(strstr(r.err, "key is longer") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "rm -r") != NULL, "the message does not say what to delete: %s", r.err);
    ts_result_free(&r);
    db = open_store(src, NULL);
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    kvs_db_close(db);
    cr_assert_eq(st.keys, NKEYS - (NKEYS - 2 + 96) / 97 + 1, "the source changed");
}

Test(convert, usage)
{
    const char *none[] = {KVS_CONVERT_BIN, NULL};
    const char *unknown[] = {KVS_CONVERT_BIN, "a", "b", "--engine", "nosuch", NULL};
    const char *help[] = {KVS_CONVERT_BIN, "--help", NULL};
    ts_result r = {0};
    cr_assert_eq(ts_run(none, NULL, 0, 10000, &r), 0);
    cr_assert_eq(r.status, 2);
    ts_result_free(&r);
    cr_assert_eq(ts_run(unknown, NULL, 0, 10000, &r), 0);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "unknown engine 'nosuch'") != NULL, "%s", r.err);
    ts_result_free(&r);
    cr_assert_eq(ts_run(help, NULL, 0, 10000, &r), 0);
    cr_assert_eq(r.status, 0);
    cr_assert(strstr(r.out, "usage: kvs-convert") != NULL, "%s", r.out);
    ts_result_free(&r);
}
