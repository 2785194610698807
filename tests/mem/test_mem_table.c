/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's table (engines/mem/table.h): get, put, remove, growth,
 * the scan cursor's guarantees across growth, a full arena, and the thread
 * scenarios of scenarios.c.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/mem/slab.h"
#include "engines/mem/table.h"
#include "kvs/error.h"
#include "mem/scenarios.h"

#define MiB ((size_t)1 << 20)

static struct kmem_slab *slab;
static struct kmem_table *table;

static void open_growable(void)
{
    struct kmem_slab_config cfg = {.limit = (size_t)1 << 30, .chunk_size = 16 * MiB};
    cr_assert_eq(kmem_slab_create(&cfg, &slab), 0);
    cr_assert_eq(kmem_table_create(slab, 0, 0, &table), 0);
}

static void close_all(void)
{
    kmem_table_destroy(table);
    kmem_slab_destroy(slab);
}

TestSuite(mem_table, .init = open_growable, .fini = close_all, .timeout = 120);

/* What a get saw. */
struct got {
    char value[4096];
    size_t vlen;
    int64_t expire_at;
};

static int copy_cb(void *ctx, const struct kmem_entry *e)
{
    struct got *g = ctx;
    cr_assert_leq(e->vlen, sizeof(g->value));
    memcpy(g->value, e->value, e->vlen);
    g->vlen = e->vlen;
    g->expire_at = e->expire_at;
    return 0;
}

static int put_str(const char *k, const char *v)
{
    return kmem_table_put(table, k, strlen(k), v, strlen(v), 0, NULL);
}

static void expect_value(const char *k, const char *v)
{
    struct got g;
    cr_assert_eq(kmem_table_get(table, k, strlen(k), copy_cb, &g), 0, "get %s", k);
    cr_assert_eq(g.vlen, strlen(v), "%s", k);
    cr_assert_eq(memcmp(g.value, v, g.vlen), 0, "%s", k);
}

static void expect_missing(const char *k)
{
    struct got g;
    cr_assert_eq(kmem_table_get(table, k, strlen(k), copy_cb, &g), KVS_ENOTFOUND, "get %s", k);
}

Test(mem_table, put_get_replace_remove)
{
    bool replaced = true;
    expect_missing("a");
    cr_assert_eq(kmem_table_put(table, "a", 1, "one", 3, 1700000000123, &replaced), 0);
    cr_assert_not(replaced);
    struct got g;
    cr_assert_eq(kmem_table_get(table, "a", 1, copy_cb, &g), 0);
    cr_assert_eq(g.vlen, 3);
    cr_assert_eq(g.expire_at, 1700000000123);
    cr_assert_eq(kmem_table_put(table, "a", 1, "uno", 3, 0, &replaced), 0);
    cr_assert(replaced);
    cr_assert_eq(kmem_table_get(table, "a", 1, copy_cb, &g), 0);
    cr_assert_eq(g.expire_at, 0, "a write replaces the expiry too");
    expect_value("a", "uno");
    cr_assert_eq(kmem_table_count(table), 1);
    cr_assert_eq(kmem_table_remove(table, "a", 1), 0);
    cr_assert_eq(kmem_table_remove(table, "a", 1), KVS_ENOTFOUND);
    expect_missing("a");
    cr_assert_eq(kmem_table_count(table), 0);
}

Test(mem_table, keys_and_values_are_bytes)
{
    /* Keys that differ after a NUL, an empty key, an empty value. */
    cr_assert_eq(kmem_table_put(table, "k\0a", 3, "1\0x", 3, 0, NULL), 0);
    cr_assert_eq(kmem_table_put(table, "k\0b", 3, "2", 1, 0, NULL), 0);
    cr_assert_eq(kmem_table_put(table, "", 0, "empty key", 9, 0, NULL), 0);
    cr_assert_eq(kmem_table_put(table, "ev", 2, NULL, 0, 0, NULL), 0);
    struct got g;
    cr_assert_eq(kmem_table_get(table, "k\0a", 3, copy_cb, &g), 0);
    cr_assert(g.vlen == 3 && memcmp(g.value, "1\0x", 3) == 0);
    cr_assert_eq(kmem_table_get(table, "k", 1, copy_cb, &g), KVS_ENOTFOUND);
    cr_assert_eq(kmem_table_get(table, "", 0, copy_cb, &g), 0);
    cr_assert_eq(g.vlen, 9);
    cr_assert_eq(kmem_table_get(table, "ev", 2, copy_cb, &g), 0);
    cr_assert_eq(g.vlen, 0);
    cr_assert_eq(kmem_table_count(table), 4);
}

static int stop_cb(void *ctx, const struct kmem_entry *e)
{
    (void)ctx;
    (void)e;
    return KVS_EIO;
}

Test(mem_table, a_callback_error_is_returned)
{
    cr_assert_eq(put_str("k", "v"), 0);
    cr_assert_eq(kmem_table_get(table, "k", 1, stop_cb, NULL), KVS_EIO);
    uint64_t next = 77;
    cr_assert_eq(kmem_table_scan(table, 0, 1000, stop_cb, NULL, &next),
                 KVS_EIO); /* one step: every bucket */
    cr_assert_eq(next, 77, "*next untouched on error");
}

Test(mem_table, grows_and_keeps_every_key)
{
    size_t n = 200000;
    cr_assert_eq(kmem_table_buckets(table), KMEM_TABLE_MIN_BUCKETS);
    char k[32], v[48];
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key:%zu", i);
        snprintf(v, sizeof(v), "value of %zu", i);
        cr_assert_eq(put_str(k, v), 0);
    }
    cr_assert_eq(kmem_table_count(table), n);
    /* Grown to about one bucket per key (the last doubling may still be
       moving stripes: it finishes with further writes). */
    cr_assert_geq(kmem_table_buckets(table), (size_t)131072);
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key:%zu", i);
        snprintf(v, sizeof(v), "value of %zu", i);
        expect_value(k, v);
    }
    for (size_t i = 0; i < n; i += 2) {
        snprintf(k, sizeof(k), "key:%zu", i);
        cr_assert_eq(kmem_table_remove(table, k, strlen(k)), 0);
    }
    cr_assert_eq(kmem_table_count(table), n / 2);
    snprintf(k, sizeof(k), "key:%zu", (size_t)1);
    expect_value(k, "value of 1");
}

Test(mem_table, starts_with_the_buckets_asked_for)
{
    struct kmem_table *t = NULL;
    cr_assert_eq(kmem_table_create(slab, 5000, 0, &t), 0);
    cr_assert_eq(kmem_table_buckets(t), 8192);
    kmem_table_destroy(t);
    cr_assert_eq(kmem_table_create(slab, ((size_t)1 << 30) + 1, 0, &t), KVS_EINVAL);
    kmem_table_destroy(NULL);
}

/* A scan's record of the keys "key:I" it visited. */
struct visits {
    unsigned char *seen;
    size_t n;
    size_t total;
    size_t dups;
};

static int visit_cb(void *ctx, const struct kmem_entry *e)
{
    struct visits *v = ctx;
    char k[32];
    cr_assert_lt(e->klen, sizeof(k));
    memcpy(k, e->key, e->klen);
    k[e->klen] = '\0';
    size_t i;
    cr_assert_eq(sscanf(k, "key:%zu", &i), 1, "%s", k);
    cr_assert_lt(i, v->n);
    v->dups += v->seen[i] != 0;
    v->seen[i] = 1;
    v->total++;
    return 0;
}

/* visit_cb for the keys "key:I", ignoring the keys grow_now() adds. */
static int visit_grow_cb(void *ctx, const struct kmem_entry *e)
{
    if (e->klen > 5 && memcmp(e->key, "grow:", 5) == 0)
        return 0;
    return visit_cb(ctx, e);
}

static void put_keys(size_t from, size_t to)
{
    char k[32];
    for (size_t i = from; i < to; i++) {
        snprintf(k, sizeof(k), "key:%zu", i);
        cr_assert_eq(put_str(k, "v"), 0);
    }
}

Test(mem_table, a_pass_visits_every_key_once_when_nothing_changes)
{
    size_t n = 50000;
    put_keys(0, n);
    struct visits v = {calloc(n, 1), n, 0, 0};
    uint64_t cursor = 0;
    size_t steps = 0;
    do {
        uint64_t before = cursor;
        cr_assert_eq(kmem_table_scan(table, cursor, 100, visit_cb, &v, &cursor), 0);
        cr_assert(cursor == 0 || cursor > before, "the cursor moves forward");
        steps++;
    } while (cursor != 0);
    cr_assert_eq(v.total, n);
    cr_assert_eq(v.dups, 0);
    cr_assert(steps > n / 200 && steps < n / 50, "%zu steps of about 100 keys", steps);
    free(v.seen);
}

static int count_cb(void *ctx, const struct kmem_entry *e)
{
    (void)e;
    (*(size_t *)ctx)++;
    return 0;
}

Test(mem_table, a_sparse_table_keeps_steps_short)
{
    /* 2^20 buckets (2^12 hash positions each) and one key. */
    struct kmem_table *t = NULL;
    cr_assert_eq(kmem_table_create(slab, (size_t)1 << 20, 0, &t), 0);
    cr_assert_eq(kmem_table_put(t, "only", 4, "v", 1, 0, NULL), 0);
    size_t visits = 0, steps = 0;
    uint64_t cursor = 0, prev = 0;
    do {
        cr_assert_eq(kmem_table_scan(t, cursor, 10, count_cb, &visits, &cursor), 0);
        uint64_t end = cursor ? cursor : KMEM_TABLE_SCAN_END;
        cr_assert_leq(end - prev, (uint64_t)(64 + 16 * 10) << 12, "a step walked too far");
        prev = end;
        steps++;
    } while (cursor != 0);
    cr_assert_eq(visits, 1);
    cr_assert_geq(steps, ((size_t)1 << 20) / (64 + 16 * 10));
    kmem_table_destroy(t);
}

Test(mem_table, a_pass_visits_every_key_present_throughout_while_the_table_grows)
{
    /* 2000 keys present throughout; between steps 150,000 more arrive, so
       the table doubles seven times during the pass. */
    size_t stable = 2000, total = 152000;
    put_keys(0, stable);
    struct visits v = {calloc(total, 1), total, 0, 0};
    uint64_t cursor = 0;
    size_t next_key = stable, steps = 0, first = kmem_table_buckets(table);
    do {
        cr_assert_eq(kmem_table_scan(table, cursor, 10, visit_cb, &v, &cursor), 0);
        if (next_key < total) {
            put_keys(next_key, next_key + 1500);
            next_key += 1500;
        }
        steps++;
    } while (cursor != 0);
    for (size_t i = 0; i < stable; i++)
        cr_assert(v.seen[i], "key:%zu missed (%zu steps)", i, steps);
    cr_assert_geq(kmem_table_buckets(table), first * 64);
    free(v.seen);
}

Test(mem_table, a_pass_ends_while_keys_keep_coming)
{
    put_keys(0, 1000);
    size_t total = 1000 + 400000;
    struct visits v = {calloc(total, 1), total, 0, 0};
    uint64_t cursor = 0;
    size_t next_key = 1000, steps = 0;
    do {
        cr_assert_eq(kmem_table_scan(table, cursor, 5, visit_cb, &v, &cursor), 0);
        /* Faster than the pass can visit them, until memory of the test
           runs out. */
        if (next_key + 20 <= total) {
            put_keys(next_key, next_key + 20);
            next_key += 20;
        }
        steps++;
    } while (cursor != 0);
    for (size_t i = 0; i < 1000; i++)
        cr_assert(v.seen[i], "key:%zu missed", i);
    cr_assert_lt(steps, (size_t)1 << 20);
    free(v.seen);
}

Test(mem_table, a_cursor_past_the_end_is_refused)
{
    uint64_t next = 5;
    cr_assert_eq(kmem_table_scan(table, KMEM_TABLE_SCAN_END, 10, stop_cb, NULL, &next), KVS_EINVAL);
    cr_assert_eq(next, 5);
    /* Any position below the end is a valid start. */
    cr_assert_eq(kmem_table_scan(table, KMEM_TABLE_SCAN_END - 1, 10, stop_cb, NULL, &next), 0);
    cr_assert_eq(next, 0);
}

/* A table in a small fixed arena: a full arena refuses writes, deletes
   make room again, and retired values do not count once reclaimed. */
Test(mem_table, a_full_arena_refuses_then_takes_writes_again)
{
    struct kmem_slab_config cfg = {.limit = 4 * MiB, .page_size = 64 << 10};
    struct kmem_slab *s = NULL;
    struct kmem_table *t = NULL;
    cr_assert_eq(kmem_slab_create(&cfg, &s), 0);
    cr_assert_eq(kmem_table_create(s, 0, 0, &t), 0);
    char k[32], v[200];
    memset(v, 'x', sizeof(v));
    size_t n = 0;
    for (;; n++) {
        snprintf(k, sizeof(k), "key:%zu", n);
        int rc = kmem_table_put(t, k, strlen(k), v, 100, 0, NULL);
        if (rc != 0) {
            cr_assert_eq(rc, KVS_ENOMEM);
            break;
        }
    }
    cr_assert_gt(n, 20000, "only %zu items of about 150 bytes in 4 MiB", n);
    cr_assert_eq(kmem_table_count(t), n);
    /* The refused key is not there; the others are. */
    struct got g;
    cr_assert_eq(kmem_table_get(t, k, strlen(k), copy_cb, &g), KVS_ENOTFOUND);
    cr_assert_eq(kmem_table_get(t, "key:0", 5, copy_cb, &g), 0);
    /* A replacement needs room for the new item beside the old one, which
       readers may still hold: in a full arena it is refused, the old value
       kept. */
    cr_assert_eq(kmem_table_put(t, "key:1", 5, "new", 3, 0, NULL), KVS_ENOMEM);
    cr_assert_eq(kmem_table_get(t, "key:1", 5, copy_cb, &g), 0);
    cr_assert_eq(g.vlen, 100);
    /* With one slot free, overwrites go on: each old value's slot is
       reclaimed once no reader can hold it. */
    snprintf(k, sizeof(k), "key:%zu", n - 1);
    cr_assert_eq(kmem_table_remove(t, k, strlen(k)), 0);
    n--;
    for (size_t i = 0; i < 2000; i++) {
        snprintf(k, sizeof(k), "key:%zu", i % 100);
        cr_assert_eq(kmem_table_put(t, k, strlen(k), v, 100, 0, NULL), 0, "overwrite %zu", i);
    }
    /* Remove every key: then values twice as large fill the arena as well. */
    for (size_t i = 0; i < n; i++) {
        snprintf(k, sizeof(k), "key:%zu", i);
        cr_assert_eq(kmem_table_remove(t, k, strlen(k)), 0);
    }
    size_t m = 0;
    for (;; m++) {
        snprintf(k, sizeof(k), "big:%zu", m);
        if (kmem_table_put(t, k, strlen(k), v, 200, 0, NULL) != 0)
            break;
    }
    cr_assert_gt(m, n * 4 / 10, "%zu of 200 bytes after %zu of 100", m, n);
    kmem_table_destroy(t);
    struct kmem_slab_stats st;
    kmem_slab_stats(s, &st);
    cr_assert_eq(st.requested, 0, "the table gave everything back");
    cr_assert_eq(st.free_pages, st.pages);
    kmem_slab_destroy(s);
}

Test(mem_table, huge_values)
{
    size_t len = 100 * MiB;
    char *big = malloc(len);
    cr_assert_not_null(big);
    memset(big, 'z', len);
    big[len - 1] = '!';
    cr_assert_eq(kmem_table_put(table, "big", 3, big, len, 0, NULL), 0);
    struct kmem_slab_stats st;
    kmem_slab_stats(slab, &st);
    cr_assert_eq(st.large_items, 1);
    free(big);
    cr_assert_eq(kmem_table_remove(table, "big", 3), 0);
    kmem_table_reclaim(table, true);
    kmem_slab_stats(slab, &st);
    cr_assert_eq(st.large_items, 0, "reclaimed once no reader can hold it");
}

/*
 * A stripe moved under a reader, at a chosen step (the KMEM_TESTING walk
 * hook): the reader has loaded an item of its chain and not yet its link;
 * then writes make the table double and every stripe move. The item's link
 * now leads into the new array, where the rest of the old chain is not.
 */
static size_t hook_fired, hook_next_key;

/* Write until the table has doubled and every stripe has moved. */
static void grow_now(void)
{
    size_t buckets = kmem_table_buckets(table);
    char k[32];
    while (kmem_table_buckets(table) == buckets) {
        snprintf(k, sizeof(k), "grow:%zu", hook_next_key++);
        cr_assert_eq(put_str(k, "g"), 0);
    }
}

static void grow_once_hook(void)
{
    if (hook_fired++ == 0)
        grow_now();
}

Test(mem_table, a_get_finds_its_key_when_the_stripe_moves_under_it)
{
    /* 1000 keys in 1024 buckets: a quarter of them sit behind another key
       of their bucket, where a get walks past an item first. */
    put_keys(0, 1000);
    char k[32];
    size_t tried = 0;
    for (size_t i = 0; i < 1000 && !hook_fired; i++, tried++) {
        snprintf(k, sizeof(k), "key:%zu", i);
        unsigned long rewalks = kmem__table_rewalks;
        kmem__table_walk_hook = grow_once_hook;
        struct got g;
        int rc = kmem_table_get(table, k, strlen(k), copy_cb, &g);
        kmem__table_walk_hook = NULL;
        cr_assert_eq(rc, 0, "%s not found after its stripe moved under the get", k);
        cr_assert(g.vlen == 1 && g.value[0] == 'v');
        if (hook_fired)
            cr_assert_gt(kmem__table_rewalks, rewalks, "the get noticed the move and walked again");
    }
    cr_assert_geq(hook_fired, 1, "no key sat behind another (%zu tried)", tried);
    cr_assert_eq(kmem_table_buckets(table), 2 * KMEM_TABLE_MIN_BUCKETS);
}

Test(mem_table, a_scan_step_misses_nothing_when_stripes_move_under_it)
{
    /* A pass whose steps make the table double mid-chain, several times. */
    size_t n = 3000;
    put_keys(0, n);
    struct visits v = {calloc(n, 1), n, 0, 0};
    uint64_t cursor = 0;
    size_t growths = 0, first = kmem_table_buckets(table);
    unsigned long rewalks = kmem__table_rewalks;
    do {
        hook_fired = 0;
        kmem__table_walk_hook = growths < 4 ? grow_once_hook : NULL;
        cr_assert_eq(kmem_table_scan(table, cursor, 50, visit_grow_cb, &v, &cursor), 0);
        kmem__table_walk_hook = NULL;
        growths += hook_fired > 0;
    } while (cursor != 0);
    for (size_t i = 0; i < n; i++)
        cr_assert(v.seen[i], "key:%zu missed", i);
    cr_assert_eq(growths, 4);
    cr_assert_eq(kmem_table_buckets(table), first << 4);
    cr_assert_gt(kmem__table_rewalks, rewalks);
    free(v.seen);
}

Test(mem_table, threads_readers_writers)
{
    char msg[256] = "";
    cr_assert(kmem_scn_readers_writers(1, msg, sizeof(msg)), "%s", msg);
}

Test(mem_table, threads_growth_under_readers)
{
    char msg[256] = "";
    cr_assert(kmem_scn_growth_under_readers(1, msg, sizeof(msg)), "%s", msg);
}

Test(mem_table, threads_scan_beside_writers)
{
    char msg[256] = "";
    cr_assert(kmem_scn_scan_beside_writers(1, msg, sizeof(msg)), "%s", msg);
}

Test(mem_table, threads_churn_small_arena)
{
    char msg[256] = "";
    cr_assert(kmem_scn_churn_small_arena(1, msg, sizeof(msg)), "%s", msg);
}

Test(mem_table, threads_snapshot_beside_writers)
{
    char msg[256] = "";
    cr_assert(kmem_scn_snapshot_beside_writers(1, msg, sizeof(msg)), "%s", msg);
}
