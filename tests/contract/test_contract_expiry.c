/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine contract of expiry times (kvs.h, "Expiry"), run through the
 * public API against every registered engine, with the clock expiry is
 * judged by moved by the test (kvs__now_hook).
 *
 * What is checked: a key stored with a time reads back with it; once the
 * clock passes it the key reads as absent and scans skip it (or visit only
 * such keys, with KVS_SCAN_EXPIRED), while it stays counted until removed;
 * KVS_OP_EXPIRE removes exactly the keys whose time is at or before the one
 * given; a write without a time clears one; times and counts survive a
 * reopen, and a key whose time passed while the store was closed reads as
 * absent; a compaction drops expired keys where the engine compacts;
 * negative times are refused.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "kvs/engine.h"
#include "kvs/kvs.h"
#include "support/params.h"
#include "support/tmpdir.h"

static char dir[PATH_MAX];
static const char *engine = "?";
static kvs_db *db;
static int64_t clock_ms = INT64_C(1800000000000); /* 2027-01-15 */

static int64_t test_clock(void)
{
    return clock_ms;
}

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(dir), 0, "mkdtemp failed");
    kvs__now_hook = test_clock;
}

static void teardown(void)
{
    kvs_db_close(db);
    db = NULL;
    kvs__now_hook = NULL;
    if (dir[0])
        ts_tmpdir_remove(dir);
}

TestSuite(contract_expiry, .init = setup, .fini = teardown, .timeout = 120);

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, 0, "[%s] %s: %s", engine, #expr, kvs_err_name(rc_));                     \
    } while (0)

static void open_engine(const char *name)
{
    engine = name;
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = KVS_FSYNC_NO;
    opts.segment_max_bytes = 4096; /* several segments, for compaction */
    opts.compact_min_stale_bytes = UINT64_MAX;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    cr_assert_eq(rc, 0, "[%s] open: %s (%s)", engine, kvs_err_name(rc), why);
}

static void reopen(void)
{
    OK(kvs_db_close(db));
    db = NULL;
    open_engine(engine);
}

static void set_ex(const char *key, const char *val, int64_t at)
{
    OK(kvs_db_set_ex(db, kvs_slice_str(key), kvs_slice_str(val), at));
}

/* key holds val with expiry time at (val NULL: absent). */
static void expect(const char *key, const char *val, int64_t at)
{
    kvs_buf buf = KVS_BUF_INIT;
    int64_t got_at = -1;
    int rc = kvs_db_get_ex(db, kvs_slice_str(key), &buf, &got_at);
    if (!val) {
        cr_assert_eq(rc, KVS_ENOTFOUND, "[%s] %s: %s, expected absent", engine, key,
                     kvs_err_name(rc));
    } else {
        cr_assert_eq(rc, 0, "[%s] %s: %s", engine, key, kvs_err_name(rc));
        cr_assert(buf.len == strlen(val) && memcmp(buf.data, val, buf.len) == 0,
                  "[%s] %s: wrong value", engine, key);
        cr_assert_eq(got_at, at, "[%s] %s: expiry %lld, expected %lld", engine, key,
                     (long long)got_at, (long long)at);
    }
    kvs_buf_free(&buf);
}

static kvs_stats stats(void)
{
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    return st;
}

/* Keys one pass visits with flags, as a bit per key number "k<i>". */
struct seen {
    unsigned mask;
    unsigned others;
    int64_t at[32];
};

static int note(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)value;
    struct seen *s = ctx;
    int i;
    char name[16];
    if (key.len >= sizeof(name))
        return 0;
    memcpy(name, key.data, key.len);
    name[key.len] = '\0';
    if (sscanf(name, "k%d", &i) == 1 && i >= 0 && i < 32) {
        s->mask |= 1u << i;
        s->at[i] = expire_at;
    } else {
        s->others++;
    }
    return 0;
}

static struct seen pass(unsigned flags)
{
    struct seen s = {0};
    uint64_t cursor = 0;
    do
        OK(kvs_db_scan(db, cursor, 3, flags, note, &s, &cursor));
    while (cursor != 0);
    return s;
}

ParameterizedTestParameters(contract_expiry, times_read_back_and_expire)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_expiry, times_read_back_and_expire)
{
    open_engine(p->name);
    int64_t t = clock_ms;
    set_ex("k0", "zero", 0);
    set_ex("k1", "one", t + 1000);
    set_ex("k2", "two", t + 2000);
    OK(kvs_db_set(db, kvs_slice_str("k3"), kvs_slice_str("three")));
    expect("k0", "zero", 0);
    expect("k1", "one", t + 1000);
    expect("k2", "two", t + 2000);
    expect("k3", "three", 0);
    kvs_stats st = stats();
    cr_assert_eq(st.keys, 4);
    cr_assert_eq(st.expires, 2);
    cr_assert_eq(st.expire_mean, t + 1500, "[%s] mean %lld", engine, (long long)st.expire_mean);
    struct seen s = pass(KVS_SCAN_VALUES);
    cr_assert_eq(s.mask, 0xf);
    cr_assert_eq(s.at[1], t + 1000);
    cr_assert_eq(pass(KVS_SCAN_EXPIRED).mask, 0, "[%s] nothing has expired yet", engine);

    /* The clock reaches k1's time: k1 is gone for reads and scans, and
       still counted and found by an expired-keys scan. */
    clock_ms = t + 1000;
    expect("k1", NULL, 0);
    expect("k2", "two", t + 2000);
    cr_assert_eq(pass(0).mask, 0xd);
    s = pass(KVS_SCAN_EXPIRED | KVS_SCAN_VALUES);
    cr_assert_eq(s.mask, 0x2, "[%s] expired scan: %#x", engine, s.mask);
    cr_assert_eq(s.at[1], t + 1000);
    cr_assert_eq(stats().keys, 4);
    cr_assert_eq(stats().expires, 2);
}

ParameterizedTestParameters(contract_expiry, expire_op_removes_only_expired_keys)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_expiry, expire_op_removes_only_expired_keys)
{
    open_engine(p->name);
    int64_t t = clock_ms;
    set_ex("k0", "a", t + 100);
    set_ex("k1", "b", t + 200);
    set_ex("k2", "c", 0);
    kvs_op ops[4] = {
        {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k0"), .expire_at = t + 150},
        {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k1"), .expire_at = t + 150},
        {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k2"), .expire_at = t + 150},
        {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k9"), .expire_at = t + 150},
    };
    OK(kvs_db_write(db, ops, 4));
    cr_assert_eq(ops[0].result, 0, "[%s] k0 expired at t+100", engine);
    cr_assert_eq(ops[1].result, KVS_ENOTFOUND, "[%s] k1 expires at t+200", engine);
    cr_assert_eq(ops[2].result, KVS_ENOTFOUND, "[%s] k2 has no time", engine);
    cr_assert_eq(ops[3].result, KVS_ENOTFOUND, "[%s] k9 is absent", engine);
    kvs_stats st = stats();
    cr_assert_eq(st.keys, 2);
    cr_assert_eq(st.expires, 1);
    cr_assert_eq(st.expire_mean, t + 200);

    /* A write renews a key: an expire with an older reading removes
       nothing, and a write without a time clears it. */
    set_ex("k1", "b2", 0);
    kvs_op again = {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k1"), .expire_at = t + 300};
    OK(kvs_db_write(db, &again, 1));
    cr_assert_eq(again.result, KVS_ENOTFOUND);
    expect("k1", "b2", 0);
    cr_assert_eq(stats().expires, 0);
    cr_assert_eq(stats().expire_mean, 0);
}

ParameterizedTestParameters(contract_expiry, times_survive_a_reopen)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_expiry, times_survive_a_reopen)
{
    open_engine(p->name);
    int64_t t = clock_ms;
    char key[16], val[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        set_ex(key, val, i % 2 ? t + 1000 * i : 0);
    }
    /* Compact (where the engine can) so that the kvs engine reads times
       back from hint files too. */
    int rc = kvs_db_compact(db);
    cr_assert(rc == 0 || rc == KVS_ENOTSUP, "[%s] compact: %s", engine, kvs_err_name(rc));
    set_ex("k20", "late", t + 500);
    reopen();
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        expect(key, val, i % 2 ? t + 1000 * i : 0);
    }
    expect("k20", "late", t + 500);
    kvs_stats st = stats();
    cr_assert_eq(st.keys, 21);
    cr_assert_eq(st.expires, 11);

    /* Time passes while the store is closed. */
    OK(kvs_db_close(db));
    db = NULL;
    clock_ms = t + 10000;
    open_engine(p->name);
    expect("k1", NULL, 0);
    expect("k9", NULL, 0);
    expect("k11", "v11", t + 11000);
    expect("k20", NULL, 0);
    expect("k2", "v2", 0);
    cr_assert_eq(pass(0).mask, 0xfffff & ~(0x2u | 0x8u | 0x20u | 0x80u | 0x200u));
}

ParameterizedTestParameters(contract_expiry, compaction_drops_expired_keys)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_expiry, compaction_drops_expired_keys)
{
    open_engine(p->name);
    int64_t t = clock_ms;
    char key[16];
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        set_ex(key, "a value long enough to fill a few segments of four kilobytes......",
               i < 20 ? t + 100 : 0);
    }
    clock_ms = t + 100;
    int rc = kvs_db_compact(db);
    if (rc == KVS_ENOTSUP)
        cr_skip_test("[%s] no compaction", engine);
    OK(rc);
    kvs_stats st = stats();
    cr_assert_eq(st.keys, 10, "[%s] %llu keys after compaction", engine,
                 (unsigned long long)st.keys);
    cr_assert_eq(st.expires, 0);
    reopen();
    cr_assert_eq(stats().keys, 10);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kvs_buf buf = KVS_BUF_INIT;
        cr_assert_eq(kvs_db_get(db, kvs_slice_str(key), &buf), i < 20 ? KVS_ENOTFOUND : 0);
        kvs_buf_free(&buf);
    }
}

ParameterizedTestParameters(contract_expiry, negative_times_refused)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_expiry, negative_times_refused)
{
    open_engine(p->name);
    cr_assert_eq(kvs_db_set_ex(db, kvs_slice_str("k"), kvs_slice_str("v"), -1), KVS_EINVAL);
    kvs_op op = {.type = KVS_OP_EXPIRE, .key = kvs_slice_str("k"), .expire_at = -5};
    cr_assert_eq(kvs_db_write(db, &op, 1), KVS_EINVAL);
    cr_assert_eq(stats().keys, 0);
}
