/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Background compaction of the kvs engine is incremental (compact.c and
 * select.c): only segments whose own stale share passed the threshold are
 * rewritten, a few at a time, and a tombstone in such a segment is kept
 * when an older segment that stays could still hold a put it hides, and
 * dropped when its key was written again since.
 *
 * The stores are built with compaction off, then reopened with it on, so
 * that which segments are due is known when the first write after the
 * reopen wakes the background thread; the tests wait for its log line.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engines/log/klog_db.h"
#include "helpers.h"

static char *dir;
static kvs_options opts;

static void setup(void)
{
    dir = lt_tmpdir_or_fail();
    lt_opts(&opts);
    opts.segment_max_bytes = 4096;
    opts.compact_min_stale_ratio = 0.5;
}

static void teardown(void)
{
    lt_rmrf(dir);
    free(dir);
}

TestSuite(log_compact, .init = setup, .fini = teardown, .timeout = 60);

static kvs_db *open_with_compaction(bool on)
{
    opts.compact_min_stale_bytes = on ? 1024 : UINT64_MAX;
    return lt_open(dir, &opts);
}

/* A 100-byte value naming the key and a version. */
static void value(char *out, const char *key, int ver)
{
    memset(out, ' ', 100);
    int n = snprintf(out, 101, "%.32s version %d", key, ver);
    if (n >= 0 && n < 100)
        out[n] = ' '; /* padded with blanks to 100 bytes */
    out[100] = '\0';
}

static void set_ver(kvs_db *db, const char *key, int ver)
{
    char val[101];
    value(val, key, ver);
    lt_set(db, key, val);
}

static void expect_ver(kvs_db *db, const char *key, int ver)
{
    char val[101];
    value(val, key, ver);
    lt_expect(db, key, ver < 0 ? NULL : val);
}

/* A record that fills a fresh 4 KiB segment exactly, so that the next
   record starts another. */
static void fill_segment(kvs_db *db, const char *key)
{
    size_t len = 4096 - 32 - 24 - strlen(key);
    char *val = malloc(len);
    cr_assert_not_null(val);
    memset(val, 'p', len);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, len)), 0);
    free(val);
}

/* Compaction outputs (sub above 0) without a hint: the ones holding kept
   tombstones. */
static size_t tombstone_outputs(void)
{
    char logs[256][64], hints[256][64];
    size_t nlog = lt_list(dir, ".log", logs, 256), nhint = lt_list(dir, ".hint", hints, 256);
    size_t n = 0;
    for (size_t i = 0; i < nlog; i++) {
        if (strncmp(logs[i] + 15, "0000", 4) == 0)
            continue;
        char hint[64];
        snprintf(hint, sizeof(hint), "%.19s.hint", logs[i]);
        bool found = false;
        for (size_t j = 0; j < nhint && !found; j++)
            found = strcmp(hints[j], hint) == 0;
        n += !found;
    }
    return n;
}

/*
 * Old segments hold puts of a0..a299 and, one in ten records, d0..d29;
 * a later segment holds the tombstones of d0..d29 and puts of f0..f24,
 * all overwritten after. Only that segment is due: compacting it alone
 * must keep the tombstones, or the old puts of d* would come back.
 */
static void build_removals(kvs_db *db, bool set_again)
{
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "a%03d", i);
        set_ver(db, key, 1);
        if (i % 10 == 0) {
            snprintf(key, sizeof(key), "d%02d", i / 10);
            set_ver(db, key, 1);
        }
    }
    fill_segment(db, "p");
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "d%02d", i);
        cr_assert_eq(kvs_db_remove(db, kvs_slice_str(key)), 0);
    }
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "f%02d", i);
        set_ver(db, key, 1);
    }
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "f%02d", i);
        set_ver(db, key, 2);
    }
    for (int i = 0; set_again && i < 30; i++) {
        snprintf(key, sizeof(key), "d%02d", i);
        set_ver(db, key, 3);
    }
}

static void check_removals(kvs_db *db, bool set_again)
{
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "a%03d", i);
        expect_ver(db, key, 1);
    }
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "d%02d", i);
        expect_ver(db, key, set_again ? 3 : -1);
    }
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof(key), "f%02d", i);
        expect_ver(db, key, 2);
    }
}

/* Reopen with compaction on and wake it with one write; wait for it. */
static kvs_db *compact_in_background(void)
{
    lt_log_clear();
    kvs_db *db = open_with_compaction(true);
    lt_set(db, "wake", "up");
    cr_assert(lt_log_wait("kvs: compacted", 20), "no compaction: %s", lt_log_text());
    return db;
}

Test(log_compact, kept_tombstones_hide_older_puts)
{
    kvs_db *db = open_with_compaction(false);
    build_removals(db, false);
    check_removals(db, false);
    kvs_db_close(db);

    db = compact_in_background();
    check_removals(db, false);
    cr_assert_eq(kvs_db_close(db), 0);
    cr_assert_eq(tombstone_outputs(), 1, "the tombstones were not kept apart");
    char first[512];
    lt_path(first, sizeof(first), dir, "seg-0000000001-0000.log");
    cr_assert_eq(access(first, F_OK), 0, "an old segment that was not due got compacted");

    db = lt_open(dir, &opts);
    check_removals(db, false);
    /* Compacting everything drops the kept tombstones with the old puts. */
    cr_assert_eq(kvs_db_compact(db), 0);
    check_removals(db, false);
    kvs_stats st;
    kvs_db_stats(db, &st);
    cr_assert_eq(st.stale_bytes, 0);
    kvs_db_close(db);
    cr_assert_eq(tombstone_outputs(), 0);
    db = lt_open(dir, &opts);
    check_removals(db, false);
    kvs_db_close(db);
}

Test(log_compact, tombstones_of_keys_set_again_are_dropped)
{
    kvs_db *db = open_with_compaction(false);
    build_removals(db, true);
    kvs_db_close(db);

    db = compact_in_background();
    check_removals(db, true);
    kvs_db_close(db);
    cr_assert_eq(tombstone_outputs(), 0, "tombstones of live keys were kept");
    db = lt_open(dir, &opts);
    check_removals(db, true);
    kvs_db_close(db);
}

/* Cold keys in old segments, hot keys rewritten over and over: compaction
   rewrites the hot segments only, and the directory stays small. */
Test(log_compact, cold_segments_stay_put)
{
    kvs_db *db = open_with_compaction(true);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "c%03d", i);
        set_ver(db, key, 1);
    }
    fill_segment(db, "p");
    for (int round = 1; round <= 100; round++) {
        for (int i = 0; i < 30; i++) {
            snprintf(key, sizeof(key), "h%02d", i);
            set_ver(db, key, round);
        }
    }
    /* 300 + 30 keys of about 128 bytes and a 4 KiB record: without
       compaction the hot keys alone would have written 380 KiB. The
       background thread may still be catching up: wait for it. */
    kvs_stats st;
    uint64_t bytes = 0;
    for (int tries = 0; tries < 2000; tries++) {
        kvs_db_stats(db, &st);
        bytes = lt_dir_bytes(dir);
        if (st.compactions >= 5 && bytes < 3 * (st.live_bytes + 4096))
            break;
        usleep(10000);
    }
    cr_assert_geq(st.compactions, 5);
    cr_assert_lt(bytes, 3 * (st.live_bytes + 4096), "directory: %llu bytes for %llu live",
                 (unsigned long long)bytes, (unsigned long long)st.live_bytes);
    kvs_db_close(db);
    for (int i = 1; i <= 9; i += 2) {
        char name[64], path[512];
        snprintf(name, sizeof(name), "seg-%010d-0000.log", i);
        lt_path(path, sizeof(path), dir, name);
        cr_assert_eq(access(path, F_OK), 0, "cold segment %s was compacted", name);
    }
    db = lt_open(dir, &opts);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "c%03d", i);
        expect_ver(db, key, 1);
    }
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "h%02d", i);
        expect_ver(db, key, 100);
    }
    kvs_db_close(db);
}

/* ---- the segment list while writers add segments (audit bug 2) ---- */

static kvs_db *hook_db;
static int hook_writes;

/* At STEP_RENAMED the compaction has reserved the slots its outputs take in
   the segment list; writers then add segments until the list is full. */
static void fill_segment_list(int step)
{
    if (step != 3 || hook_writes > 0)
        return;
    struct klog_db *db = klog_db_of(hook_db);
    for (hook_writes = 1; hook_writes <= 40; hook_writes++) {
        pthread_mutex_lock(&db->wlock);
        bool full = db->nsegs == db->segs_cap;
        pthread_mutex_unlock(&db->wlock);
        if (full)
            break;
        char key[16];
        snprintf(key, sizeof(key), "s%02d", hook_writes);
        size_t len = 4096 - 32 - 24 - strlen(key);
        char val[4096];
        memset(val, 's', len);
        kvs_db_set(hook_db, kvs_slice_str(key), kvs_slice_of(val, len));
    }
}

/* The removals segment compacts into two outputs (kept tombstones and
   puts), one more than its inputs: the list must have room for both even
   after writers filled it in the meantime (ASan sees the overflow). */
Test(log_compact, outputs_fit_beside_segments_added_meanwhile)
{
    kvs_db *db = open_with_compaction(false);
    build_removals(db, false);
    kvs_db_close(db);

    hook_writes = 0;
    lt_log_clear();
    hook_db = db = open_with_compaction(true);
    kvs__log_crash_hook = fill_segment_list;
    lt_set(db, "wake", "up");
    bool compacted = lt_log_wait("kvs: compacted", 20);
    kvs__log_crash_hook = NULL;
    cr_assert(compacted, "no compaction: %s", lt_log_text());
    cr_assert_gt(hook_writes, 1, "the hook added no segment");
    check_removals(db, false);
    cr_assert_eq(kvs_db_close(db), 0);
    cr_assert_eq(tombstone_outputs(), 1, "the compaction did not have two outputs");
    db = lt_open(dir, &opts);
    check_removals(db, false);
    lt_expect(db, "wake", "up");
    kvs_db_close(db);
}

/* ---- the index walk while writers reuse slots (audit) ---- */

static const char *walk_key; /* removed when the walk reaches its slot */
static char walk_other[16];  /* set then, taking the freed slot */
static size_t walk_slot;     /* the slot walk_key is in */
static bool walk_done;

static void reuse_slot(uint64_t hash)
{
    if (walk_done || hash != klog_key_hash(walk_key, strlen(walk_key)))
        return;
    walk_done = true;
    kvs_db_remove(hook_db, kvs_slice_str(walk_key));
    kvs_db_set(hook_db, kvs_slice_str(walk_other), kvs_slice_str("other"));
}

/* The slot holding the key of hash h; asserts there is one. */
static size_t slot_of(struct klog_db *db, uint64_t h)
{
    const struct klog_table *t = klog_index_table(&db->index);
    for (size_t i = 0; i <= t->mask; i++) {
        if (klog_loc_live(atomic_load(&t->slot[i].loc)) && atomic_load(&t->slot[i].hash) == h)
            return i;
    }
    cr_assert_fail("no slot holds the key");
    return 0;
}

/* Compaction walks the index slot by slot. If the key it copies is removed
   and another key takes its slot between reading the location and the
   copy, the copy must still be filed under its own key: after a restart
   the removed key stays removed and the count of keys is right. */
Test(log_compact, walk_files_copies_under_their_own_key)
{
    opts.compact_min_stale_bytes = UINT64_MAX;
    kvs_db *db = lt_open(dir, &opts);
    char key[16];
    for (int ver = 1; ver <= 3; ver++) {
        for (int i = 0; i < 10; i++) {
            snprintf(key, sizeof(key), "w%d", i);
            set_ver(db, key, ver);
        }
    }
    struct klog_db *ldb = klog_db_of(db);
    walk_key = "w3";
    walk_slot = slot_of(ldb, klog_key_hash(walk_key, strlen(walk_key)));
    /* Another key whose probe starts at that slot, where it is the first
       free one once walk_key is removed. */
    const struct klog_table *t = klog_index_table(&ldb->index);
    bool found = false;
    for (int i = 0; i < 1000000 && !found; i++) {
        snprintf(walk_other, sizeof(walk_other), "o%d", i);
        found = klog_index_home(t, klog_key_hash(walk_other, strlen(walk_other))) == walk_slot;
    }
    cr_assert(found);

    hook_db = db;
    walk_done = false;
    kvs__log_walk_hook = reuse_slot;
    int rc = kvs_db_compact(db);
    kvs__log_walk_hook = NULL;
    cr_assert_eq(rc, 0);
    cr_assert(walk_done, "the walk never reached the key (was the index walked?)");
    lt_expect(db, walk_key, NULL);
    lt_expect(db, walk_other, "other");
    kvs_db_close(db);

    db = lt_open(dir, &opts);
    kvs_stats st;
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 10, "%llu keys after the restart", (unsigned long long)st.keys);
    lt_expect(db, walk_key, NULL);
    lt_expect(db, walk_other, "other");
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "w%d", i);
        if (strcmp(key, walk_key) != 0)
            expect_ver(db, key, 3);
    }
    /* A later compaction finds every location in place. */
    cr_assert_eq(kvs_db_compact(db), 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("after"), kvs_slice_str("ok")), 0);
    kvs_db_close(db);
}

/* Keys whose home is the index's last slot: their probes wrap to slot 0,
   where a walk of the index in slot order meets them first. A full
   compaction copies them like any other key. */
Test(log_compact, walk_copies_keys_that_wrap_around_the_index)
{
    opts.compact_min_stale_bytes = UINT64_MAX;
    kvs_db *db = lt_open(dir, &opts);
    const struct klog_table *t = klog_index_table(&klog_db_of(db)->index);
    char key[32], wrapped_keys[12][32];
    int wrapped = 0;
    for (int i = 0; wrapped < 12 && i < 10000000; i++) {
        snprintf(key, sizeof(key), "wrap%d", i);
        if (klog_index_order(t, klog_key_hash(key, strlen(key))) >> 52 == 0xfff) {
            set_ver(db, key, 1);
            snprintf(wrapped_keys[wrapped++], sizeof(wrapped_keys[0]), "%s", key);
        }
    }
    cr_assert_eq(wrapped, 12);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "other%d", i);
        set_ver(db, key, 1);
    }
    kvs_stats st;
    cr_assert_eq(kvs_db_compact(db), 0);
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 1012);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 1012, "%llu keys after compaction and reopen",
                 (unsigned long long)st.keys);
    for (int i = 0; i < 12; i++)
        expect_ver(db, wrapped_keys[i], 1);
    kvs_db_close(db);
}

/* ---- kept tombstones and the active segment (crash-state suite) ---- */

static bool tomb_seen, tomb_synced;

/* At STEP_FIRST_RENAMED the first output, which holds the kept tombstones,
   has just appeared: everything appended before it must be on disk. */
static void check_synced(int step)
{
    if (step != 2 || tomb_seen)
        return;
    struct klog_db *db = klog_db_of(hook_db);
    pthread_mutex_lock(&db->wlock);
    uint64_t lsn = db->lsn;
    pthread_mutex_unlock(&db->wlock);
    pthread_mutex_lock(&db->sync_lock);
    tomb_synced = db->durable >= lsn;
    pthread_mutex_unlock(&db->sync_lock);
    tomb_seen = true;
}

/* A tombstone is kept when its key's newest record may be in the page
   cache of the active segment only; the output holding it replays after
   every sealed segment, so it must not appear before that record is on
   disk, or a power loss could leave it hiding an older, synced put. */
Test(log_compact, kept_tombstones_appear_after_the_log_is_synced)
{
    kvs_db *db = open_with_compaction(false);
    build_removals(db, false);
    kvs_db_close(db);

    tomb_seen = tomb_synced = false;
    lt_log_clear();
    hook_db = db = open_with_compaction(true);
    kvs__log_crash_hook = check_synced;
    lt_set(db, "wake", "up"); /* fsync "no": only in the page cache */
    bool compacted = lt_log_wait("kvs: compacted", 20);
    kvs__log_crash_hook = NULL;
    cr_assert(compacted, "no compaction: %s", lt_log_text());
    cr_assert(tomb_seen, "no output was renamed");
    cr_assert(tomb_synced, "the tombstone output appeared before the log was synced");
    kvs_db_close(db);
    cr_assert_eq(tombstone_outputs(), 1);
}
