/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The kvs engine's index walk (klog_index_scan, engines/log/index.h), on
 * hashes chosen by hand: keys whose probe wraps past the end of the table,
 * full tables of clusters, and tables that grow or are rebuilt smaller
 * between the steps of a walk. The index stores hashes and locations only;
 * here every key is a distinct location, and the key comparison says
 * "another key" unless the locations are equal.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>

#include "engines/log/epoch.h"
#include "engines/log/index.h"

static struct klog_epoch epoch;
static struct klog_index ix;

static void setup(void)
{
    cr_assert_eq(klog_epoch_init(&epoch), 0);
    cr_assert_eq(klog_index_init(&ix, &epoch), 0);
}

static void teardown(void)
{
    klog_index_destroy(&ix);
    klog_epoch_destroy(&epoch);
}

TestSuite(log_index, .init = setup, .fini = teardown, .timeout = 60);

static int same(void *ctx, uint64_t loc)
{
    return loc == *(const uint64_t *)ctx;
}

/* Key number i: its location names it. */
static uint64_t loc_of(size_t i)
{
    return klog_loc(0, (uint32_t)i);
}

static void put(uint64_t hash, size_t i)
{
    uint64_t loc = loc_of(i), old;
    struct klog_index_pos pos;
    cr_assert_eq(klog_index_lookup_locked(&ix, hash, same, &loc, true, &pos), 0);
    klog_index_put_locked(&ix, &pos, hash, loc, &old);
}

static void del(uint64_t hash, size_t i)
{
    uint64_t loc = loc_of(i), old;
    struct klog_index_pos pos;
    cr_assert_eq(klog_index_lookup_locked(&ix, hash, same, &loc, false, &pos), 0);
    cr_assert(pos.found);
    klog_index_remove_locked(&ix, &pos, &old);
}

#define MAX 40000
static unsigned visits[MAX];
static uint64_t hashes[MAX];

static int count(void *ctx, uint64_t hash, uint64_t loc)
{
    (void)ctx;
    size_t i = klog_loc_off(loc);
    cr_assert_lt(i, MAX);
    cr_assert_eq(hash, hashes[i], "key %zu visited with another key's hash", i);
    visits[i]++;
    return 1;
}

static uint64_t step(uint64_t cursor, size_t want)
{
    uint64_t next = 99;
    cr_assert_eq(
        klog_index_scan(klog_index_table(&ix), cursor, want, want * 10, count, NULL, &next), 0);
    return next;
}

static void walk(size_t want)
{
    uint64_t cursor = 0;
    unsigned long steps = 0;
    do
        cursor = step(cursor, want);
    while (cursor != 0 && ++steps < 10000000);
    cr_assert_eq(cursor, 0, "the walk did not end");
}

static uint64_t rng_state = 1;

static uint64_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return rng_state ^ rng_state >> 29;
}

/* n keys: some homed in the last slots (their probes wrap to the start),
   some in the first, the rest anywhere. */
static void fill(size_t n)
{
    const struct klog_table *t = klog_index_table(&ix);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = rnd();
        /* The last slots of any table, or the first ones. */
        while (i % 5 == 0 && klog_index_order(t, h) >> 52 != 0xfff)
            h = rnd();
        while (i % 5 == 1 && klog_index_order(t, h) >> 52 != 0)
            h = rnd();
        hashes[i] = h;
        put(h, i);
    }
}

Test(log_index, full_walk_visits_each_key_once)
{
    fill(40);
    static const size_t wants[] = {1, 3, 10, SIZE_MAX / 16};
    for (size_t w = 0; w < sizeof(wants) / sizeof(wants[0]); w++) {
        for (size_t i = 0; i < MAX; i++)
            visits[i] = 0;
        walk(wants[w]);
        for (size_t i = 0; i < 40; i++)
            cr_assert_eq(visits[i], 1, "want %zu: key %zu visited %u times", wants[w], i,
                         visits[i]);
    }
}

Test(log_index, walk_survives_growth_and_shrinking)
{
    fill(100); /* keys 0..99 stay throughout */
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < MAX; i++)
            visits[i] = 0;
        uint64_t cursor = step(0, 7);
        size_t extra = 100 + (size_t)(rnd() % 20000);
        /* Grow: many more keys; then remove them and churn, so that the
           next growth rebuilds a table smaller than this one. */
        for (size_t i = 100; i < extra; i++) {
            hashes[i] = rnd();
            put(hashes[i], i);
        }
        while (cursor != 0) {
            cursor = step(cursor, 1 + (size_t)(rnd() % 50));
            if (rnd() % 8 == 0 && extra > 100) {
                for (size_t i = 100; i < extra; i++)
                    del(hashes[i], i);
                for (size_t i = 100; i < extra; i++) {
                    hashes[i] = rnd();
                    put(hashes[i], i);
                    del(hashes[i], i);
                }
                extra = 100;
            }
        }
        for (size_t i = 0; i < 100; i++)
            cr_assert_geq(visits[i], 1, "round %d: key %zu present throughout was missed", round,
                          i);
        for (size_t i = 100; i < extra; i++)
            del(hashes[i], i);
    }
}

static int by_order_of(const void *a, const void *b, void *t)
{
    uint64_t x = klog_index_order(t, *(const uint64_t *)a);
    uint64_t y = klog_index_order(t, *(const uint64_t *)b);
    return x < y ? -1 : x > y;
}

/* The longest run of used slots of the index's table. */
static size_t longest_cluster(void)
{
    const struct klog_table *t = klog_index_table(&ix);
    size_t longest = 0, run = 0;
    for (size_t i = 0; i <= 2 * t->mask + 1; i++) {
        run = atomic_load(&t->slot[i & t->mask].loc) == KLOG_LOC_EMPTY ? 0 : run + 1;
        if (run > longest)
            longest = run;
    }
    return longest;
}

/* Keys arriving in the order another index walks them (a store copied from
   a scan of another, hints written by compaction's walk read back at open)
   must not pile up in one cluster as the table grows: with placement by
   plain hash order they did, and inserting n keys took time quadratic in
   n. */
Test(log_index, keys_in_another_index_walk_order_spread)
{
    struct klog_epoch e2;
    struct klog_index other;
    cr_assert_eq(klog_epoch_init(&e2), 0);
    cr_assert_eq(klog_index_init(&other, &e2), 0);
    const struct klog_table *ot = klog_index_table(&other);
    cr_assert_neq(ot->salt, klog_index_table(&ix)->salt, "two indexes drew the same salt");
    for (size_t i = 0; i < MAX; i++)
        hashes[i] = rnd();
    qsort_r(hashes, MAX, sizeof(hashes[0]), by_order_of, (void *)ot);
    /* Look at the table as it grows, not only at the end: every growth
       rehashes the keys so far into their places. */
    for (size_t i = 0; i < MAX; i++) {
        put(hashes[i], i);
        if (i % 500 == 499) {
            size_t longest = longest_cluster();
            cr_assert_lt(longest, 200, "a cluster of %zu slots after %zu keys", longest, i + 1);
        }
    }
    klog_index_destroy(&other);
    klog_epoch_destroy(&e2);
}
