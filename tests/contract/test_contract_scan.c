/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine contract of kvs_db_scan(), run through the public API against
 * every registered engine, as the main contract suite (test_contract.c)
 * does.
 *
 * What is checked: a pass over a store that does not change visits every
 * key exactly once with its value, whatever the count per step, and binary
 * and empty keys among them; values only when asked for; a pass survives
 * the keyspace growing and shrinking between its steps, visiting every key
 * present throughout; an error from the callback ends the step; a cleared
 * store scans empty; and passes beside a writer and a compaction
 * (scenarios_scan.c, which the TSan build runs too).
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

TestSuite(contract_scan, .init = setup, .fini = teardown, .timeout = 240);

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, 0, "[%s] %s: %s", engine, #expr, kvs_err_name(rc_));                     \
    } while (0)

static void open_engine(const struct ts_engine_param *p)
{
    engine = p->name;
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = engine;
    opts.fsync = KVS_FSYNC_NO;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    cr_assert_eq(rc, 0, "[%s] open: %s (%s)", engine, kvs_err_name(rc), why);
}

/* Keys "k<i>" for i < n; key 0 is the empty key and key 1 holds NUL bytes. */
static size_t key_of(char *out, size_t size, int i)
{
    if (i == 0)
        return 0;
    if (i == 1) {
        memcpy(out, "k\0\1\0", 4);
        return 4;
    }
    return (size_t)snprintf(out, size, "k%d", i);
}

/* The index i of a key made by key_of(), or -1. */
static int index_of(kvs_slice key)
{
    if (key.len == 0)
        return 0;
    if (key.len == 4 && memcmp(key.data, "k\0\1\0", 4) == 0)
        return 1;
    char buf[32];
    if (key.len >= sizeof(buf) || ((const char *)key.data)[0] != 'k')
        return -1;
    memcpy(buf, (const char *)key.data + 1, key.len - 1);
    buf[key.len - 1] = '\0';
    char *end;
    long i = strtol(buf, &end, 10);
    return *end == '\0' && i >= 2 ? (int)i : -1;
}

static void put_keys(int from, int to)
{
    char key[32], val[48];
    for (int i = from; i < to; i++) {
        size_t klen = key_of(key, sizeof(key), i);
        int vlen = snprintf(val, sizeof(val), "value of %d", i);
        OK(kvs_db_set(db, kvs_slice_of(key, klen), kvs_slice_of(val, (size_t)vlen)));
    }
}

static void remove_keys(int from, int to)
{
    char key[32];
    for (int i = from; i < to; i++)
        OK(kvs_db_remove(db, kvs_slice_of(key, key_of(key, sizeof(key), i))));
}

#define MAX_KEYS 20000

/* What a pass saw: visits per key index, and the first wrong thing. */
struct tally {
    unsigned visits[MAX_KEYS];
    unsigned other; /* keys not made by key_of() */
    bool want_values;
    char bad[128];
};

static int count_visit(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    struct tally *t = ctx;
    int i = index_of(key);
    if (i < 0 || i >= MAX_KEYS) {
        t->other++;
        return 0;
    }
    t->visits[i]++;
    char want[48];
    int len = snprintf(want, sizeof(want), "value of %d", i);
    if (t->bad[0])
        return 0;
    if (t->want_values && (!value || value->len != (size_t)len || memcmp(value->data, want, len)))
        snprintf(t->bad, sizeof(t->bad), "key %d came with a wrong value", i);
    if (!t->want_values && value)
        snprintf(t->bad, sizeof(t->bad), "key %d came with a value not asked for", i);
    return 0;
}

/* One step; returns the next cursor. */
static uint64_t step(struct tally *t, uint64_t cursor, size_t count)
{
    uint64_t next = 12345;
    OK(kvs_db_scan(db, cursor, count, t->want_values ? KVS_SCAN_VALUES : 0, count_visit, t, &next));
    return next;
}

/* A whole pass, bounded. */
static void full_pass(struct tally *t, size_t count)
{
    uint64_t cursor = 0;
    unsigned long steps = 0;
    do
        cursor = step(t, cursor, count);
    while (cursor != 0 && ++steps < 10000000);
    cr_assert_eq(cursor, 0, "[%s] the pass did not end", engine);
}

static struct tally *new_tally(bool values)
{
    struct tally *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    t->want_values = values;
    return t;
}

ParameterizedTestParameters(contract_scan, empty_store)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_scan, empty_store)
{
    open_engine(p);
    struct tally *t = new_tally(true);
    cr_assert_eq(step(t, 0, 10), 0, "[%s] an empty store needs one step", engine);
    cr_assert_eq(t->other, 0);
    free(t);
}

ParameterizedTestParameters(contract_scan, every_key_exactly_once)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_scan, every_key_exactly_once)
{
    open_engine(p);
    put_keys(0, 3000);
    static const size_t counts[] = {1, 7, 100, 5000};
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        for (int values = 0; values <= 1; values++) {
            struct tally *t = new_tally(values);
            full_pass(t, counts[c]);
            cr_assert_eq(t->bad[0], '\0', "[%s] count %zu: %s", engine, counts[c], t->bad);
            cr_assert_eq(t->other, 0, "[%s] keys that were never set", engine);
            for (int i = 0; i < 3000; i++)
                cr_assert_eq(t->visits[i], 1, "[%s] count %zu: key %d visited %u times", engine,
                             counts[c], i, t->visits[i]);
            free(t);
        }
    }
}

ParameterizedTestParameters(contract_scan, pass_survives_growth_between_steps)
{
    return ts_engine_params();
}

/* 200 keys at the start; 8000 more added in the middle of the pass. */
ParameterizedTest(struct ts_engine_param *p, contract_scan, pass_survives_growth_between_steps)
{
    open_engine(p);
    put_keys(0, 200);
    struct tally *t = new_tally(true);
    uint64_t cursor = step(t, 0, 20);
    cr_assert_neq(cursor, 0, "[%s] 200 keys in one step of 20", engine);
    put_keys(200, 8200);
    unsigned long steps = 0;
    while (cursor != 0 && ++steps < 1000000)
        cursor = step(t, cursor, 20);
    cr_assert_eq(cursor, 0);
    cr_assert_eq(t->bad[0], '\0', "[%s] %s", engine, t->bad);
    for (int i = 0; i < 200; i++)
        cr_assert_geq(t->visits[i], 1, "[%s] key %d present throughout was missed", engine, i);
    free(t);
}

ParameterizedTestParameters(contract_scan, pass_survives_shrinking_between_steps)
{
    return ts_engine_params();
}

/* 10000 keys, 9800 of them removed in the middle of the pass (and the
   keyspace churned, so that tables are rebuilt smaller). */
ParameterizedTest(struct ts_engine_param *p, contract_scan, pass_survives_shrinking_between_steps)
{
    open_engine(p);
    put_keys(0, 10000);
    struct tally *t = new_tally(false);
    uint64_t cursor = 0;
    for (int i = 0; i < 5; i++)
        cursor = step(t, cursor, 300);
    cr_assert_neq(cursor, 0);
    remove_keys(200, 10000);
    for (int round = 0; round < 3; round++) {
        put_keys(10000, 14000);
        remove_keys(10000, 14000);
    }
    unsigned long steps = 0;
    while (cursor != 0 && ++steps < 1000000)
        cursor = step(t, cursor, 50);
    cr_assert_eq(cursor, 0);
    cr_assert_eq(t->bad[0], '\0', "[%s] %s", engine, t->bad);
    for (int i = 0; i < 200; i++)
        cr_assert_geq(t->visits[i], 1, "[%s] key %d present throughout was missed", engine, i);
    free(t);
}

static int fail_third(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    (void)key;
    (void)value;
    return ++*(int *)ctx == 3 ? KVS_ENOMEM : 0;
}

ParameterizedTestParameters(contract_scan, callback_error_ends_the_step)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_scan, callback_error_ends_the_step)
{
    open_engine(p);
    put_keys(0, 100);
    int calls = 0;
    uint64_t next = 777;
    cr_assert_eq(kvs_db_scan(db, 0, 50, 0, fail_third, &calls, &next), KVS_ENOMEM);
    cr_assert_eq(calls, 3, "[%s] the step went on after the error", engine);
    cr_assert_eq(next, 777, "[%s] the cursor was written after an error", engine);
}

ParameterizedTestParameters(contract_scan, cleared_store_scans_empty)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_scan, cleared_store_scans_empty)
{
    open_engine(p);
    put_keys(0, 500);
    OK(kvs_db_clear(db));
    struct tally *t = new_tally(false);
    full_pass(t, 10);
    for (int i = 0; i < 500; i++)
        cr_assert_eq(t->visits[i], 0, "[%s] key %d after a clear", engine, i);
    free(t);
}

ParameterizedTestParameters(contract_scan, passes_beside_writer_and_compaction)
{
    return ts_engine_params();
}

ParameterizedTest(struct ts_engine_param *p, contract_scan, passes_beside_writer_and_compaction)
{
    open_engine(p);
    char msg[256] = "";
    cr_assert(kvs_scn_scan_beside_writers(db, 5, msg, sizeof(msg)), "[%s] %s", engine, msg);
}
