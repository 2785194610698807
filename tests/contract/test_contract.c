/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine contract: one suite, run through the public kvs.h API against
 * every registered engine. The parameters are the registry's names, read
 * from kvs_engine_count()/kvs_engine_at(), so an engine gets the whole
 * suite by registering. Criterion runs each (test, engine) pair in its own
 * process; parameters reach that process through Criterion's shared arena,
 * hence cr_calloc() and a name stored inline rather than a pointer.
 *
 * Each test gets a fresh directory under /tmp (setup) that is removed with
 * the store closed whatever the outcome (teardown). The tests with threads
 * call the scenarios of scenarios.c, which the TSan build also runs outside
 * Criterion (threads_main.c).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/scenarios.h"
#include "kvs/kvs.h"
#include "support/params.h"
#include "support/tmpdir.h"

/* Per-test state; every test runs in its own process. */
static char dir[PATH_MAX];
static const char *engine = "?";
static kvs_db *db;

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(dir), 0, "mkdtemp failed");
}

static void teardown(void)
{
    kvs_db_close(db);
    db = NULL;
    if (dir[0])
        ts_tmpdir_remove(dir);
}

TestSuite(contract, .init = setup, .fini = teardown, .timeout = 120);

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, 0, "[%s] %s: %s", engine, #expr, kvs_err_name(rc_));                     \
    } while (0)

#define FAILS(expr, code)                                                                          \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (code), "[%s] %s: %s, expected %s", engine, #expr, kvs_err_name(rc_),    \
                     kvs_err_name(code));                                                          \
    } while (0)

static void open_with(kvs_fsync policy)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = policy;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    cr_assert_eq(rc, 0, "[%s] open %s: %s (%s)", engine, dir, kvs_err_name(rc), why);
}

/* Most tests run under "no": the policies are the subject of their own test. */
static void open_param(const struct ts_engine_param *p)
{
    engine = p->name;
    open_with(KVS_FSYNC_NO);
}

static void close_db(void)
{
    int rc = kvs_db_close(db);
    db = NULL;
    cr_assert_eq(rc, 0, "[%s] close: %s", engine, kvs_err_name(rc));
}

static void reopen(void)
{
    close_db();
    open_with(KVS_FSYNC_NO);
}

static kvs_slice sl(const char *s)
{
    return kvs_slice_str(s);
}

/* Assert that key holds exactly len bytes equal to want. */
static void expect_value(kvs_slice key, const void *want, size_t len)
{
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(db, key, &buf);
    cr_assert_eq(rc, 0, "[%s] get of a %zu-byte key: %s", engine, key.len, kvs_err_name(rc));
    bool same = buf.len == len && (len == 0 || memcmp(buf.data, want, len) == 0);
    size_t got = buf.len;
    kvs_buf_free(&buf);
    cr_assert(same, "[%s] value of a %zu-byte key: %zu bytes, expected %zu", engine, key.len, got,
              len);
}

static void expect_str(const char *key, const char *value)
{
    expect_value(sl(key), value, strlen(value));
}

static void expect_missing(kvs_slice key)
{
    kvs_buf buf = KVS_BUF_INIT;
    FAILS(kvs_db_get(db, key, &buf), KVS_ENOTFOUND);
    kvs_buf_free(&buf);
}

static uint64_t key_count(void)
{
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    return st.keys;
}

ParameterizedTestParameters(contract, set_get_overwrite_remove)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, set_get_overwrite_remove)
{
    open_param(p);
    OK(kvs_db_set(db, sl("alpha"), sl("one")));
    OK(kvs_db_set(db, sl("beta"), sl("two")));
    expect_str("alpha", "one");
    expect_str("beta", "two");
    OK(kvs_db_set(db, sl("alpha"), sl("a longer replacement value")));
    expect_str("alpha", "a longer replacement value");
    OK(kvs_db_set(db, sl("alpha"), sl("x")));
    expect_str("alpha", "x");
    OK(kvs_db_remove(db, sl("alpha")));
    expect_missing(sl("alpha"));
    FAILS(kvs_db_remove(db, sl("alpha")), KVS_ENOTFOUND);
    expect_str("beta", "two");
    OK(kvs_db_set(db, sl("alpha"), sl("back")));
    expect_str("alpha", "back");
}

ParameterizedTestParameters(contract, missing_key_leaves_buffer_untouched)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, missing_key_leaves_buffer_untouched)
{
    open_param(p);
    OK(kvs_db_set(db, sl("present"), sl("value")));
    kvs_buf buf = KVS_BUF_INIT;
    OK(kvs_buf_set(&buf, "sentinel", 8));
    void *data = buf.data;
    size_t cap = buf.cap;
    int rc = kvs_db_get(db, sl("absent"), &buf);
    bool untouched =
        buf.data == data && buf.cap == cap && buf.len == 8 && memcmp(buf.data, "sentinel", 8) == 0;
    kvs_buf_free(&buf);
    cr_assert_eq(rc, KVS_ENOTFOUND, "[%s] get of a missing key: %s", engine, kvs_err_name(rc));
    cr_assert(untouched, "[%s] get of a missing key changed the buffer", engine);
    FAILS(kvs_db_remove(db, sl("absent")), KVS_ENOTFOUND);
    cr_assert_eq(key_count(), 1);
}

ParameterizedTestParameters(contract, persists_across_reopen)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, persists_across_reopen)
{
    open_param(p);
    char key[32], val[64];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "first-%d", i);
        OK(kvs_db_set(db, sl(key), sl(val)));
    }
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        OK(kvs_db_remove(db, sl(key)));
        snprintf(key, sizeof(key), "key-%d", 50 + i);
        snprintf(val, sizeof(val), "second-%d", 50 + i);
        OK(kvs_db_set(db, sl(key), sl(val)));
    }
    reopen();
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        if (i < 10) {
            expect_missing(sl(key));
            continue;
        }
        snprintf(val, sizeof(val), "%s-%d", i >= 50 && i < 60 ? "second" : "first", i);
        expect_str(key, val);
    }
    cr_assert_eq(key_count(), 90);
}

ParameterizedTestParameters(contract, nul_bytes_in_keys_and_values)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, nul_bytes_in_keys_and_values)
{
    open_param(p);
    const char k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a', 0}, k4[] = {0};
    const char v1[] = {0, 1, 0, 2}, v2[] = {'x', 0, 0}, v3[] = {0}, v4[] = {0, 0, 0, 0, 0, 'z'};
    OK(kvs_db_set(db, kvs_slice_of(k1, sizeof(k1)), kvs_slice_of(v1, sizeof(v1))));
    OK(kvs_db_set(db, kvs_slice_of(k2, sizeof(k2)), kvs_slice_of(v2, sizeof(v2))));
    OK(kvs_db_set(db, kvs_slice_of(k3, sizeof(k3)), kvs_slice_of(v3, sizeof(v3))));
    OK(kvs_db_set(db, kvs_slice_of(k4, sizeof(k4)), kvs_slice_of(v4, sizeof(v4))));
    OK(kvs_db_set(db, sl("a"), sl("plain")));
    for (int round = 0; round < 2; round++) {
        expect_value(kvs_slice_of(k1, sizeof(k1)), v1, sizeof(v1));
        expect_value(kvs_slice_of(k2, sizeof(k2)), v2, sizeof(v2));
        expect_value(kvs_slice_of(k3, sizeof(k3)), v3, sizeof(v3));
        expect_value(kvs_slice_of(k4, sizeof(k4)), v4, sizeof(v4));
        expect_str("a", "plain");
        cr_assert_eq(key_count(), 5);
        reopen();
    }
    OK(kvs_db_remove(db, kvs_slice_of(k3, sizeof(k3))));
    expect_missing(kvs_slice_of(k3, sizeof(k3)));
    expect_str("a", "plain");
    expect_value(kvs_slice_of(k1, sizeof(k1)), v1, sizeof(v1));
}

ParameterizedTestParameters(contract, empty_values)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, empty_values)
{
    open_param(p);
    OK(kvs_db_set(db, sl("empty"), sl("")));
    OK(kvs_db_set(db, sl("null-data"), kvs_slice_of(NULL, 0)));
    OK(kvs_db_set(db, sl("was-full"), sl("something")));
    OK(kvs_db_set(db, sl("was-full"), sl("")));
    for (int round = 0; round < 2; round++) {
        /* An empty value is found, with length 0, unlike a missing key. */
        kvs_buf buf = KVS_BUF_INIT;
        OK(kvs_buf_set(&buf, "junk", 4));
        int rc = kvs_db_get(db, sl("empty"), &buf);
        size_t len = buf.len;
        kvs_buf_free(&buf);
        cr_assert_eq(rc, 0, "[%s] get of an empty value: %s", engine, kvs_err_name(rc));
        cr_assert_eq(len, 0, "[%s] empty value came back with %zu bytes", engine, len);
        expect_value(sl("null-data"), "", 0);
        expect_value(sl("was-full"), "", 0);
        cr_assert_eq(key_count(), 3);
        reopen();
    }
    OK(kvs_db_remove(db, sl("empty")));
    expect_missing(sl("empty"));
}

ParameterizedTestParameters(contract, empty_key)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, empty_key)
{
    open_param(p);
    const char nul = 0;
    OK(kvs_db_set(db, sl(""), sl("empty key")));
    OK(kvs_db_set(db, kvs_slice_of(&nul, 1), sl("nul key")));
    OK(kvs_db_set(db, sl("k"), sl("k key")));
    for (int round = 0; round < 2; round++) {
        expect_str("", "empty key");
        expect_value(kvs_slice_of(NULL, 0), "empty key", 9);
        expect_value(kvs_slice_of(&nul, 1), "nul key", 7);
        expect_str("k", "k key");
        cr_assert_eq(key_count(), 3);
        reopen();
    }
    OK(kvs_db_set(db, sl(""), sl("")));
    expect_value(sl(""), "", 0);
    OK(kvs_db_remove(db, kvs_slice_of(NULL, 0)));
    expect_missing(sl(""));
    FAILS(kvs_db_remove(db, sl("")), KVS_ENOTFOUND);
    expect_value(kvs_slice_of(&nul, 1), "nul key", 7);
    expect_str("k", "k key");
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

ParameterizedTestParameters(contract, one_mib_values)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, one_mib_values)
{
    enum { MIB = 1 << 20, N = 4 };
    open_param(p);
    unsigned char *vals = malloc((size_t)N * MIB);
    cr_assert_not_null(vals);
    char key[32];
    for (int i = 0; i < N; i++) {
        fill_pattern(vals + (size_t)i * MIB, MIB, (unsigned)i + 1);
        snprintf(key, sizeof(key), "big-%d", i);
        OK(kvs_db_set(db, sl(key), kvs_slice_of(vals + (size_t)i * MIB, MIB)));
    }
    fill_pattern(vals, MIB, 99); /* overwrite big-0 with other bytes */
    OK(kvs_db_set(db, sl("big-0"), kvs_slice_of(vals, MIB)));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "big-%d", i);
            expect_value(sl(key), vals + (size_t)i * MIB, MIB);
        }
        reopen();
    }
    free(vals);
}

ParameterizedTestParameters(contract, key_and_value_limits)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, key_and_value_limits)
{
    open_param(p);
    const kvs_engine *e = kvs_db_engine(db);
    size_t max = kvs_engine_max_key(e);
    if (max > ((size_t)64 << 20))
        cr_skip_test("[%s] max_key %zu is too large to build a key over it", engine, max);
    char *key = malloc(max + 1);
    cr_assert_not_null(key);
    memset(key, 'x', max + 1);

    /* Exactly at the limit works; keys differing only in the last byte stay
       distinct, so nothing was truncated. */
    key[max - 1] = 'a';
    OK(kvs_db_set(db, kvs_slice_of(key, max), sl("at the limit a")));
    key[max - 1] = 'b';
    OK(kvs_db_set(db, kvs_slice_of(key, max), sl("at the limit b")));
    expect_value(kvs_slice_of(key, max), "at the limit b", 14);
    key[max - 1] = 'a';
    expect_value(kvs_slice_of(key, max), "at the limit a", 14);
    OK(kvs_db_remove(db, kvs_slice_of(key, max)));
    expect_missing(kvs_slice_of(key, max));

    /* One byte over is refused, and stores nothing. */
    kvs_buf buf = KVS_BUF_INIT;
    FAILS(kvs_db_set(db, kvs_slice_of(key, max + 1), sl("over")), KVS_EKEYSIZE);
    FAILS(kvs_db_get(db, kvs_slice_of(key, max + 1), &buf), KVS_EKEYSIZE);
    FAILS(kvs_db_remove(db, kvs_slice_of(key, max + 1)), KVS_EKEYSIZE);
    cr_assert_eq(buf.len, 0);
    cr_assert_eq(key_count(), 1);
    free(key);

    /* The wrapper refuses a value over the limit before reading it. */
    size_t max_value = kvs_engine_max_value(e);
    if (max_value < SIZE_MAX) {
        static const char small[1];
        FAILS(kvs_db_set(db, sl("v"), kvs_slice_of(small, max_value + 1)), KVS_EVALSIZE);
        expect_missing(sl("v"));
    }
}

/* The thread scenarios live in scenarios.c, where TSan can run them too. */
#define SCENARIO(call)                                                                             \
    do {                                                                                           \
        char msg_[256] = "";                                                                       \
        cr_assert(call, "[%s] %s", engine, msg_);                                                  \
    } while (0)

ParameterizedTestParameters(contract, thousand_writer_threads)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, thousand_writer_threads)
{
    open_param(p);
    SCENARIO(kvs_scn_writers(db, 1000, msg_, sizeof(msg_)));
    SCENARIO(kvs_scn_writers_visible(db, 1000, msg_, sizeof(msg_)));
    reopen();
    SCENARIO(kvs_scn_writers_visible(db, 1000, msg_, sizeof(msg_)));
}

ParameterizedTestParameters(contract, hundred_reader_threads)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, hundred_reader_threads)
{
    open_param(p);
    SCENARIO(kvs_scn_readers(db, 100, 100, msg_, sizeof(msg_)));
}

ParameterizedTestParameters(contract, readers_during_overwrites)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, readers_during_overwrites)
{
    open_param(p);
    SCENARIO(kvs_scn_overwrites(db, 4, msg_, sizeof(msg_)));
}

ParameterizedTestParameters(contract, stats_count_keys)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, stats_count_keys)
{
    open_param(p);
    cr_assert_eq(key_count(), 0);
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "s-%d", i);
        OK(kvs_db_set(db, sl(key), sl("some value")));
    }
    cr_assert_eq(key_count(), 10);
    OK(kvs_db_set(db, sl("s-1"), sl("overwritten")));
    OK(kvs_db_set(db, sl("s-2"), sl("")));
    cr_assert_eq(key_count(), 10);
    OK(kvs_db_remove(db, sl("s-3")));
    OK(kvs_db_remove(db, sl("s-4")));
    FAILS(kvs_db_remove(db, sl("s-4")), KVS_ENOTFOUND);
    cr_assert_eq(key_count(), 8);
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    cr_assert_gt(st.live_bytes, 0, "[%s] live_bytes 0 with 8 keys", engine);
    /* A volatile engine has nothing on disk before its first snapshot. */
    if (!(kvs_engine_traits(kvs_db_engine(db)) & KVS_ENGINE_VOLATILE))
        cr_assert_gt(st.disk_bytes, 0, "[%s] disk_bytes 0 with 8 keys", engine);
    reopen();
    cr_assert_eq(key_count(), 8);
}

ParameterizedTestParameters(contract, clear_removes_everything)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, clear_removes_everything)
{
    open_param(p);
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "c-%d", i);
        OK(kvs_db_set(db, sl(key), sl("doomed")));
    }
    int rc = kvs_db_clear(db);
    if (rc == KVS_ENOTSUP)
        cr_skip_test("[%s] has no clear", engine);
    cr_assert_eq(rc, 0, "[%s] clear: %s", engine, kvs_err_name(rc));
    cr_assert_eq(key_count(), 0);
    expect_missing(sl("c-0"));
    FAILS(kvs_db_remove(db, sl("c-1")), KVS_ENOTFOUND);
    OK(kvs_db_set(db, sl("after"), sl("clear")));
    OK(kvs_db_clear(db)); /* twice, and on a nearly empty store */
    OK(kvs_db_set(db, sl("c-5"), sl("reborn")));
    reopen();
    cr_assert_eq(key_count(), 1);
    expect_missing(sl("c-0"));
    expect_missing(sl("after"));
    expect_str("c-5", "reborn");
}

ParameterizedTestParameters(contract, every_fsync_policy_round_trips)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract, every_fsync_policy_round_trips)
{
    static const kvs_fsync policies[] = {KVS_FSYNC_ALWAYS, KVS_FSYNC_EVERYSEC, KVS_FSYNC_NO};
    engine = p->name;
    char key[32];
    for (size_t i = 0; i < 3; i++) {
        const char *name = kvs_fsync_name(policies[i]);
        open_with(policies[i]);
        if (i > 0) {
            snprintf(key, sizeof(key), "policy-%s", kvs_fsync_name(policies[i - 1]));
            expect_str(key, kvs_fsync_name(policies[i - 1]));
            OK(kvs_db_remove(db, sl(key)));
        }
        snprintf(key, sizeof(key), "policy-%s", name);
        OK(kvs_db_set(db, sl(key), sl("overwritten below")));
        OK(kvs_db_set(db, sl(key), sl(name)));
        OK(kvs_db_set(db, sl("always-there"), sl(name)));
        expect_str(key, name);
        OK(kvs_db_sync(db));
        close_db();
    }
    open_with(KVS_FSYNC_EVERYSEC);
    expect_missing(sl("policy-always"));
    expect_missing(sl("policy-everysec"));
    expect_str("policy-no", "no");
    expect_str("always-there", "no");
    cr_assert_eq(key_count(), 2);
}
