/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine through the public API, single-threaded: the contract's
 * basics, persistence, binary and empty keys and values, big records,
 * stats, clear and an explicit compaction.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static char *dir;
static kvs_options opts;

static void setup(void)
{
    dir = lt_tmpdir_or_fail();
    lt_opts(&opts);
}

static void teardown(void)
{
    lt_rmrf(dir);
    free(dir);
}

TestSuite(log_basic, .init = setup, .fini = teardown, .timeout = 60);

Test(log_basic, set_get_overwrite_remove)
{
    kvs_db *db = lt_open(dir, &opts);
    cr_assert_str_eq(kvs_engine_name(kvs_db_engine(db)), "kvs");
    lt_set(db, "a", "1");
    lt_expect(db, "a", "1");
    lt_set(db, "a", "2");
    lt_expect(db, "a", "2");
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("a")), 0);
    lt_expect(db, "a", NULL);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("a")), KVS_ENOTFOUND);
    lt_set(db, "a", "3");
    lt_expect(db, "a", "3");
    cr_assert_eq(kvs_db_close(db), 0);
}

Test(log_basic, missing_key_leaves_buffer_untouched)
{
    kvs_db *db = lt_open(dir, &opts);
    kvs_buf buf = KVS_BUF_INIT;
    cr_assert_eq(kvs_buf_set(&buf, "keep", 4), 0);
    cr_assert_eq(kvs_db_get(db, kvs_slice_str("nope"), &buf), KVS_ENOTFOUND);
    cr_assert_eq(buf.len, 4);
    cr_assert_eq(memcmp(buf.data, "keep", 4), 0);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("nope")), KVS_ENOTFOUND);
    kvs_buf_free(&buf);
    kvs_db_close(db);
}

Test(log_basic, persists_across_reopen)
{
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[32];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(val, sizeof(val), "val%d", i);
        lt_set(db, key, val);
    }
    for (int i = 0; i < 500; i += 2) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(val, sizeof(val), "new%d", i);
        lt_set(db, key, val);
    }
    for (int i = 0; i < 500; i += 5) {
        snprintf(key, sizeof(key), "key%d", i);
        cr_assert_eq(kvs_db_remove(db, kvs_slice_str(key)), 0);
    }
    cr_assert_eq(kvs_db_close(db), 0);

    db = lt_open(dir, &opts);
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        snprintf(val, sizeof(val), "%s%d", i % 2 ? "val" : "new", i);
        lt_expect(db, key, i % 5 == 0 ? NULL : val);
    }
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 400);
    kvs_db_close(db);
}

Test(log_basic, binary_and_empty_keys_and_values)
{
    static const char k1[] = {'a', '\0', 'b'};
    static const char k2[] = {'a', '\0', 'c'};
    static const char v1[] = {'\0', '\0', 'x', '\0'};
    kvs_db *db = lt_open(dir, &opts);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(k1, 3), kvs_slice_of(v1, 4)), 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(k2, 3), kvs_slice_of("", 0)), 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(NULL, 0), kvs_slice_str("empty key")), 0);
    for (int round = 0; round < 2; round++) {
        kvs_buf buf = KVS_BUF_INIT;
        cr_assert_eq(kvs_db_get(db, kvs_slice_of(k1, 3), &buf), 0);
        cr_assert_eq(buf.len, 4);
        cr_assert_eq(memcmp(buf.data, v1, 4), 0);
        cr_assert_eq(kvs_db_get(db, kvs_slice_of(k2, 3), &buf), 0);
        cr_assert_eq(buf.len, 0);
        cr_assert_eq(kvs_db_get(db, kvs_slice_of("", 0), &buf), 0);
        cr_assert_eq(buf.len, 9);
        cr_assert_eq(kvs_db_get(db, kvs_slice_of("a", 1), &buf), KVS_ENOTFOUND);
        kvs_buf_free(&buf);
        kvs_db_close(db);
        db = lt_open(dir, &opts);
    }
    cr_assert_eq(kvs_db_remove(db, kvs_slice_of("", 0)), 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of("", 0), kvs_slice_of("", 0)), 0);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    kvs_buf buf = KVS_BUF_INIT;
    cr_assert_eq(kvs_db_get(db, kvs_slice_of("", 0), &buf), 0);
    cr_assert_eq(buf.len, 0);
    kvs_buf_free(&buf);
    kvs_db_close(db);
}

/* Values of 1 MiB, and records bigger than a segment (4 KiB here). */
Test(log_basic, big_values)
{
    opts.segment_max_bytes = 4096;
    size_t sizes[] = {1u << 20, 100000, 10, 5000, 4096};
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    kvs_db *db = lt_open(dir, &opts);
    char *val = malloc(1u << 20);
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "big%zu", i);
        memset(val, (int)('A' + i), sizes[i]);
        cr_assert_eq(kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, sizes[i])), 0);
    }
    for (int round = 0; round < 2; round++) {
        kvs_buf buf = KVS_BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof(key), "big%zu", i);
            memset(val, (int)('A' + i), sizes[i]);
            cr_assert_eq(kvs_db_get(db, kvs_slice_str(key), &buf), 0);
            cr_assert_eq(buf.len, sizes[i]);
            cr_assert_eq(memcmp(buf.data, val, sizes[i]), 0);
        }
        kvs_buf_free(&buf);
        kvs_db_close(db);
        db = lt_open(dir, &opts);
    }
    free(val);
    kvs_db_close(db);
}

Test(log_basic, key_limit)
{
    kvs_db *db = lt_open(dir, &opts);
    size_t max = kvs_engine_max_key(kvs_db_engine(db));
    cr_assert_geq(max, 65535);
    char *key = malloc(max + 1);
    memset(key, 'k', max + 1);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(key, max), kvs_slice_str("v")), 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(key, max + 1), kvs_slice_str("v")), KVS_EKEYSIZE);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    kvs_buf buf = KVS_BUF_INIT;
    cr_assert_eq(kvs_db_get(db, kvs_slice_of(key, max), &buf), 0);
    cr_assert_eq(buf.len, 1);
    kvs_buf_free(&buf);
    free(key);
    kvs_db_close(db);
}

/* Enough keys to grow the index many times, with removals among them. */
Test(log_basic, many_keys)
{
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i * 3);
        lt_set(db, key, val);
        if (i % 3 == 0) {
            snprintf(key, sizeof(key), "k%d", i / 2);
            kvs_db_remove(db, kvs_slice_str(key));
        }
    }
    kvs_stats before;
    kvs_db_stats(db, &before);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    kvs_stats after;
    kvs_db_stats(db, &after);
    cr_assert_eq(after.keys, before.keys);
    cr_assert_eq(after.live_bytes, before.live_bytes);
    cr_assert_eq(after.stale_bytes, before.stale_bytes);
    kvs_buf buf = KVS_BUF_INIT;
    uint64_t found = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (kvs_db_get(db, kvs_slice_str(key), &buf) == 0) {
            snprintf(val, sizeof(val), "v%d", i * 3);
            cr_assert(buf.len == strlen(val) && memcmp(buf.data, val, buf.len) == 0);
            found++;
        }
    }
    cr_assert_eq(found, after.keys);
    kvs_buf_free(&buf);
    kvs_db_close(db);
}

Test(log_basic, stats_count_bytes)
{
    kvs_db *db = lt_open(dir, &opts);
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 0);
    cr_assert_eq(st.live_bytes, 0);
    lt_set(db, "abc", "12345");
    lt_set(db, "de", "");
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 2);
    cr_assert_eq(st.live_bytes, 3 + 5 + 2);
    cr_assert_eq(st.stale_bytes, 0);
    /* ENGINE is the only file that is not the engine's. */
    char path[512];
    lt_path(path, sizeof(path), dir, "ENGINE");
    cr_assert_eq(st.disk_bytes, lt_dir_bytes(dir) - lt_file_size(path));
    lt_set(db, "abc", "1");
    kvs_db_stats(db, &st);
    cr_assert_eq(st.live_bytes, 3 + 1 + 2);
    cr_assert_gt(st.stale_bytes, 8);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("de")), 0);
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 1);
    cr_assert_eq(st.live_bytes, 4);
    kvs_db_close(db);
}

Test(log_basic, clear_removes_everything_durably)
{
    opts.segment_max_bytes = 4096;
    kvs_db *db = lt_open(dir, &opts);
    char key[32];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        lt_set(db, key, "some value that fills segments");
    }
    cr_assert_eq(kvs_db_clear(db), 0);
    lt_expect(db, "key1", NULL);
    kvs_stats st;
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 0);
    char names[16][64];
    cr_assert_eq(lt_list(dir, ".log", names, 16), 1, "old segments left after clear");
    lt_set(db, "after", "clear");
    kvs_db_close(db);

    db = lt_open(dir, &opts);
    lt_expect(db, "key1", NULL);
    lt_expect(db, "key299", NULL);
    lt_expect(db, "after", "clear");
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 1);
    /* A compaction after a clear drops the clear record; nothing returns. */
    cr_assert_eq(kvs_db_compact(db), 0);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    lt_expect(db, "key1", NULL);
    lt_expect(db, "after", "clear");
    kvs_db_close(db);
}

Test(log_basic, explicit_compaction)
{
    opts.segment_max_bytes = 4096;
    opts.compact_min_stale_bytes = UINT64_MAX; /* only explicit ones */
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[64];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "key%d", i);
            snprintf(val, sizeof(val), "value %d of round %d", i, round);
            lt_set(db, key, val);
        }
    }
    for (int i = 0; i < 200; i += 4) {
        snprintf(key, sizeof(key), "key%d", i);
        cr_assert_eq(kvs_db_remove(db, kvs_slice_str(key)), 0);
    }
    kvs_stats before, after;
    kvs_db_stats(db, &before);
    cr_assert_gt(before.stale_bytes, before.live_bytes);
    cr_assert_eq(kvs_db_compact(db), 0);
    kvs_db_stats(db, &after);
    cr_assert_eq(after.compactions, 1);
    cr_assert_eq(after.keys, 150);
    cr_assert_eq(after.live_bytes, before.live_bytes);
    cr_assert_eq(after.stale_bytes, 0);
    cr_assert_lt(after.disk_bytes, before.disk_bytes / 3);
    char names[64][64];
    size_t nhint = lt_list(dir, ".hint", names, 64);
    size_t nseg = lt_list(dir, ".log", names, 64);
    cr_assert_gt(nseg, 0);
    cr_assert_eq(nhint, nseg, "every output has a hint");
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "key%d", i);
            snprintf(val, sizeof(val), "value %d of round %d", i, 4);
            lt_expect(db, key, i % 4 == 0 ? NULL : val);
        }
        kvs_db_close(db);
        db = lt_open(dir, &opts);
    }
    /* Compacting again with nothing written in between works too. */
    cr_assert_eq(kvs_db_compact(db), 0);
    cr_assert_eq(kvs_db_compact(db), 0);
    lt_expect(db, "key1", "value 1 of round 4");
    kvs_db_close(db);
}
