/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine contract of kvs_db_write(): batches of sets and removes, run
 * through the public API against every registered engine, as the main
 * contract suite (test_contract.c) does, under each fsync policy where the
 * policy changes the engine's path (the kvs engine queues a batch for a
 * group commit under "always").
 *
 * What is checked: ops apply in order (a set then a remove of one key in
 * the same batch, a remove then a set), each op's result (a remove of a
 * missing key is KVS_ENOTFOUND), a batch that fails validation applies
 * nothing, large and many-op batches, persistence after a reopen, and
 * batches from many threads beside a reader (scenarios.c, which the TSan
 * build runs too).
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

/* One test case: an engine under a policy. */
struct write_param {
    char name[32];
    kvs_fsync policy;
};

static struct criterion_test_params write_params(void)
{
    static const kvs_fsync policies[] = {KVS_FSYNC_ALWAYS, KVS_FSYNC_EVERYSEC, KVS_FSYNC_NO};
    size_t n = kvs_engine_count() * 3;
    struct write_param *p = cr_calloc(n, sizeof(*p));
    for (size_t i = 0; p && i < n; i++) {
        snprintf(p[i].name, sizeof(p[i].name), "%s", kvs_engine_name(kvs_engine_at(i / 3)));
        p[i].policy = policies[i % 3];
    }
    return cr_make_param_array(struct write_param, p, p ? n : 0, ts_free_params);
}

static char dir[PATH_MAX];
static const char *engine = "?";
static kvs_fsync policy;
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

TestSuite(contract_write, .init = setup, .fini = teardown, .timeout = 120);

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, 0, "[%s/%s] %s: %s", engine, kvs_fsync_name(policy), #expr,              \
                     kvs_err_name(rc_));                                                           \
    } while (0)

#define FAILS(expr, code)                                                                          \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, (code), "[%s/%s] %s: %s, expected %s", engine, kvs_fsync_name(policy),   \
                     #expr, kvs_err_name(rc_), kvs_err_name(code));                                \
    } while (0)

static void open_db(void)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = policy;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    cr_assert_eq(rc, 0, "[%s] open %s: %s (%s)", engine, dir, kvs_err_name(rc), why);
}

static void open_param(const struct write_param *p)
{
    engine = p->name;
    policy = p->policy;
    open_db();
}

static void reopen(void)
{
    int rc = kvs_db_close(db);
    db = NULL;
    cr_assert_eq(rc, 0, "[%s] close: %s", engine, kvs_err_name(rc));
    open_db();
}

static kvs_slice sl(const char *s)
{
    return kvs_slice_str(s);
}

static kvs_op set_op(const char *key, const char *value)
{
    return (kvs_op){KVS_OP_SET, sl(key), sl(value), -1, 0};
}

static kvs_op remove_op(const char *key)
{
    return (kvs_op){KVS_OP_REMOVE, sl(key), {NULL, 0}, -1, 0};
}

static void expect_str(const char *key, const char *value)
{
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(db, sl(key), &buf);
    if (!value) {
        kvs_buf_free(&buf);
        cr_assert_eq(rc, KVS_ENOTFOUND, "[%s/%s] %s: %s, expected it missing", engine,
                     kvs_fsync_name(policy), key, kvs_err_name(rc));
        return;
    }
    bool same = rc == 0 && buf.len == strlen(value) && memcmp(buf.data, value, buf.len) == 0;
    kvs_buf_free(&buf);
    cr_assert(same, "[%s/%s] %s: %s, expected \"%s\"", engine, kvs_fsync_name(policy), key,
              kvs_err_name(rc), value);
}

static uint64_t key_count(void)
{
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    return st.keys;
}

ParameterizedTestParameters(contract_write, ops_apply_in_order)
{
    return write_params();
}

ParameterizedTest(struct write_param *p, contract_write, ops_apply_in_order)
{
    open_param(p);
    OK(kvs_db_set(db, sl("old"), sl("before the batch")));
    kvs_op ops[] = {
        set_op("a", "1"), set_op("b", "2"), set_op("a", "3"),   remove_op("b"),   remove_op("none"),
        remove_op("old"), remove_op("old"), set_op("c", ""),    remove_op("c"),   set_op("c", "4"),
        set_op("d", "5"), remove_op("d"),   remove_op("never"), set_op("e", "6"), set_op("e", "7"),
    };
    static const int want[] = {
        0, 0, 0, 0, KVS_ENOTFOUND, 0, KVS_ENOTFOUND, 0, 0, 0, 0, 0, KVS_ENOTFOUND, 0, 0,
    };
    size_t n = sizeof(ops) / sizeof(ops[0]);
    OK(kvs_db_write(db, ops, n));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ops[i].result, want[i], "[%s/%s] op %zu: result %s, expected %s", engine,
                     kvs_fsync_name(policy), i, kvs_err_name(ops[i].result), kvs_err_name(want[i]));
    for (int round = 0; round < 2; round++) {
        expect_str("a", "3");
        expect_str("b", NULL);
        expect_str("c", "4");
        expect_str("d", NULL);
        expect_str("e", "7");
        expect_str("old", NULL);
        cr_assert_eq(key_count(), 3);
        reopen();
    }
    OK(kvs_db_write(db, ops, 0)); /* an empty batch is a no-op */
    cr_assert_eq(key_count(), 3);
}

ParameterizedTestParameters(contract_write, bad_batch_applies_nothing)
{
    return write_params();
}

ParameterizedTest(struct write_param *p, contract_write, bad_batch_applies_nothing)
{
    open_param(p);
    const kvs_engine *e = kvs_db_engine(db);
    OK(kvs_db_set(db, sl("kept"), sl("as it was")));
    size_t max_key = kvs_engine_max_key(e);
    char *long_key = malloc(max_key + 1);
    cr_assert_not_null(long_key);
    memset(long_key, 'k', max_key + 1);

    kvs_op ops[3] = {set_op("x", "1"), remove_op("kept"), set_op("y", "2")};
    ops[2].key = kvs_slice_of(long_key, max_key + 1);
    FAILS(kvs_db_write(db, ops, 3), KVS_EKEYSIZE);
    ops[2] = remove_op("y");
    ops[2].key = kvs_slice_of(long_key, max_key + 1);
    FAILS(kvs_db_write(db, ops, 3), KVS_EKEYSIZE);
    ops[2] = set_op("y", "2");
    ops[2].value = kvs_slice_of(NULL, 1);
    FAILS(kvs_db_write(db, ops, 3), KVS_EINVAL);
    ops[2] = set_op("y", "2");
    ops[2].type = (kvs_op_type)42;
    FAILS(kvs_db_write(db, ops, 3), KVS_EINVAL);
    size_t max_value = kvs_engine_max_value(e);
    if (max_value < SIZE_MAX) {
        static const char small[1];
        ops[2] = set_op("y", "2");
        ops[2].value = kvs_slice_of(small, max_value + 1);
        FAILS(kvs_db_write(db, ops, 3), KVS_EVALSIZE);
    }
    FAILS(kvs_db_write(db, NULL, 1), KVS_EINVAL);
    FAILS(kvs_db_write(NULL, ops, 1), KVS_EINVAL);
    free(long_key);
    for (int round = 0; round < 2; round++) {
        expect_str("x", NULL);
        expect_str("y", NULL);
        expect_str("kept", "as it was");
        cr_assert_eq(key_count(), 1);
        reopen();
    }
}

ParameterizedTestParameters(contract_write, large_batches_persist)
{
    return write_params();
}

/* Thousands of ops (more than one buffer's worth for the kvs engine), a
   few of them with 1 MiB values, and removes of keys set earlier in it. */
ParameterizedTest(struct write_param *p, contract_write, large_batches_persist)
{
    open_param(p);
    enum { N = 6000, BIG = 1 << 20 };
    kvs_op *ops = calloc(N, sizeof(*ops));
    char(*keys)[24] = calloc(N, sizeof(*keys));
    char(*vals)[200] = calloc(N, sizeof(*vals));
    unsigned char *big = malloc(BIG);
    cr_assert(ops && keys && vals && big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)(i * 7 + i / 4096);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "many-%d", i % 5000);
        int len = snprintf(vals[i], sizeof(vals[i]), "value %d %*s", i, (i * 13) % 150, "");
        if (i >= 5000) /* the last 1000 remove every fifth key of the first 5000 */
            ops[i] = (kvs_op){KVS_OP_REMOVE, sl(keys[(i - 5000) * 5]), {NULL, 0}, -1, 0};
        else if (i % 1000 == 999)
            ops[i] = (kvs_op){KVS_OP_SET, sl(keys[i]), kvs_slice_of(big, BIG), -1, 0};
        else
            ops[i] = (kvs_op){KVS_OP_SET, sl(keys[i]), kvs_slice_of(vals[i], (size_t)len), -1, 0};
    }
    OK(kvs_db_write(db, ops, N));
    for (int i = 0; i < N; i++)
        cr_assert_eq(ops[i].result, 0, "[%s] op %d: %s", engine, i, kvs_err_name(ops[i].result));
    kvs_buf buf = KVS_BUF_INIT;
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(key_count(), 4000);
        for (int i = 0; i < 5000; i++) {
            int rc = kvs_db_get(db, sl(keys[i]), &buf);
            if (i % 5 == 0) {
                cr_assert_eq(rc, KVS_ENOTFOUND, "[%s] %s: %s", engine, keys[i], kvs_err_name(rc));
                continue;
            }
            cr_assert_eq(rc, 0, "[%s] %s: %s", engine, keys[i], kvs_err_name(rc));
            const void *want = ops[i].value.data;
            size_t len = ops[i].value.len;
            cr_assert(buf.len == len && memcmp(buf.data, want, len) == 0, "[%s] %s: wrong value",
                      engine, keys[i]);
        }
        reopen();
    }
    kvs_buf_free(&buf);
    free(big);
    free(vals);
    free(keys);
    free(ops);
}

ParameterizedTestParameters(contract_write, batches_from_threads)
{
    return write_params();
}

ParameterizedTest(struct write_param *p, contract_write, batches_from_threads)
{
    char msg[256] = "";
    open_param(p);
    cr_assert(kvs_scn_batches(db, 8, 25, msg, sizeof(msg)), "[%s/%s] %s", engine,
              kvs_fsync_name(policy), msg);
    reopen();
    cr_assert(kvs_scn_batches_visible(db, 8, 25, msg, sizeof(msg)), "[%s/%s] after reopen: %s",
              engine, kvs_fsync_name(policy), msg);
}
