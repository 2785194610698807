/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Opening a kvs store after crashes and damage: torn tails are cut and
 * logged, corruption elsewhere fails the open naming file and offset, bad
 * or missing hints are rebuilt from their segments, and leftovers of an
 * interrupted compaction are settled without losing or resurrecting keys.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "engines/log/klog_db.h"
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

TestSuite(log_recovery, .init = setup, .fini = teardown, .timeout = 120);

#define SEG1 "seg-0000000001-0000.log"

static void key_of(char *out, size_t size, int i)
{
    snprintf(out, size, "key%03d", i);
}

static void val_of(char *out, size_t size, int i)
{
    snprintf(out, size, "value number %d with some padding", i);
}

/* Write n keys in one session; ends[i] is the segment's size after key i
   (so record i spans ends[i-1] .. ends[i]). */
static void write_keys_at(int n, uint64_t *ends)
{
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[64], path[512];
    lt_path(path, sizeof(path), dir, SEG1);
    for (int i = 0; i < n; i++) {
        key_of(key, sizeof(key), i);
        val_of(val, sizeof(val), i);
        lt_set(db, key, val);
        ends[i] = lt_file_size(path);
    }
    cr_assert_eq(kvs_db_close(db), 0);
}

/* Write n keys; *before is the segment's size before the last record. */
static void write_keys(int n, uint64_t *before, uint64_t *after)
{
    uint64_t ends[64];
    cr_assert_leq(n, 64);
    cr_assert_geq(n, 2);
    write_keys_at(n, ends);
    *before = ends[n - 2];
    *after = ends[n - 1];
}

/* A fresh directory holding this test's ENGINE file and seg as SEG1. */
static char *copy_store(const char *seg)
{
    char *d = lt_tmpdir_or_fail();
    char from[512], to[512];
    lt_path(from, sizeof(from), dir, "ENGINE");
    lt_path(to, sizeof(to), d, "ENGINE");
    lt_copy(from, to);
    lt_path(to, sizeof(to), d, SEG1);
    lt_copy(seg, to);
    return d;
}

static void expect_keys(kvs_db *db, int n)
{
    char key[32], val[64];
    for (int i = 0; i < n; i++) {
        key_of(key, sizeof(key), i);
        val_of(val, sizeof(val), i);
        lt_expect(db, key, val);
    }
}

Test(log_recovery, torn_tail_cut_at_every_offset)
{
    uint64_t before, after;
    write_keys(20, &before, &after);
    char seg[512];
    lt_path(seg, sizeof(seg), dir, SEG1);
    for (uint64_t cut = before; cut < after; cut++) {
        char *d = copy_store(seg);
        char path[512];
        lt_path(path, sizeof(path), d, SEG1);
        cr_assert_eq(truncate(path, (off_t)cut), 0);
        lt_log_clear();
        kvs_db *db = lt_open(d, &opts);
        expect_keys(db, 19);
        lt_expect(db, "key019", NULL);
        if (cut > before) {
            char want[128];
            snprintf(want, sizeof(want), "at offset %llu", (unsigned long long)before);
            cr_assert(strstr(lt_log_text(), "cutting torn record") && strstr(lt_log_text(), want),
                      "cut %llu not logged: %s", (unsigned long long)cut, lt_log_text());
        }
        cr_assert_eq(lt_file_size(path), before, "torn bytes left on disk");
        lt_set(db, "later", "write");
        kvs_db_close(db);
        db = lt_open(d, &opts);
        expect_keys(db, 19);
        lt_expect(db, "key019", NULL);
        lt_expect(db, "later", "write");
        kvs_db_close(db);
        lt_rmrf(d);
        free(d);
    }
}

/* After a power loss the file can end in zeros instead of records. */
Test(log_recovery, zero_tail_cut)
{
    uint64_t before, after;
    write_keys(10, &before, &after);
    char path[512];
    lt_path(path, sizeof(path), dir, SEG1);
    cr_assert_eq(truncate(path, (off_t)after + 4096), 0);
    lt_log_clear();
    kvs_db *db = lt_open(dir, &opts);
    expect_keys(db, 10);
    cr_assert_not_null(strstr(lt_log_text(), "cutting torn record"));
    cr_assert_eq(lt_file_size(path), after);
    kvs_db_close(db);
}

Test(log_recovery, flipped_byte_in_middle_record_fails_open)
{
    /* Record 1 of 3. */
    uint64_t ends[3];
    write_keys_at(3, ends);
    uint64_t start = ends[0], end = ends[1];
    char seg[512];
    lt_path(seg, sizeof(seg), dir, SEG1);
    for (uint64_t off = start; off < end; off++) {
        char *d = copy_store(seg);
        char path[512], want[600];
        lt_path(path, sizeof(path), d, SEG1);
        lt_flip(path, off);
        kvs_db *db = NULL;
        char why[KVS_WHY_MAX] = "";
        int rc = kvs_db_open(d, &opts, &db, why);
        cr_assert_eq(rc, KVS_ECORRUPT, "flip at %llu: %s", (unsigned long long)off,
                     kvs_strerror(rc));
        snprintf(want, sizeof(want), "corrupt record in %s at offset %llu", path,
                 (unsigned long long)start);
        cr_assert_not_null(strstr(why, want), "why: %s (want %s)", why, want);
        cr_assert_eq(lt_file_size(path), lt_file_size(seg), "nothing was cut");
        lt_rmrf(d);
        free(d);
    }
}

/* Only the newest segment may have a torn tail: a bad last record of an
   older one is corruption. */
Test(log_recovery, bad_tail_of_older_segment_fails_open)
{
    opts.segment_max_bytes = 4096;
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[64];
    for (int i = 0; i < 200; i++) {
        key_of(key, sizeof(key), i);
        val_of(val, sizeof(val), i);
        lt_set(db, key, val);
    }
    kvs_db_close(db);
    char path[512];
    lt_path(path, sizeof(path), dir, SEG1);
    lt_flip(path, lt_file_size(path) - 1);
    char why[KVS_WHY_MAX] = "";
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_ECORRUPT);
    cr_assert_not_null(strstr(why, SEG1), "why: %s", why);
}

Test(log_recovery, damaged_segment_headers)
{
    uint64_t a, b;
    write_keys(5, &a, &b);
    kvs_db *db = lt_open(dir, &opts);
    lt_set(db, "second", "segment");
    kvs_db_close(db);
    char path[512], why[KVS_WHY_MAX];

    /* A version from the future: KVS_EVERSION, not corruption. */
    lt_path(path, sizeof(path), dir, SEG1);
    FILE *f = fopen(path, "r+b");
    unsigned char head[KLOG_SEG_HDR];
    cr_assert_eq(fread(head, 1, sizeof(head), f), sizeof(head));
    unsigned char saved[KLOG_SEG_HDR];
    memcpy(saved, head, sizeof(head));
    head[8] = KLOG_SEG_VERSION + 1;
    kvs__put_le32(head + 28, XXH32(head, 28, 0));
    rewind(f);
    cr_assert_eq(fwrite(head, 1, sizeof(head), f), sizeof(head));
    fflush(f);
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_EVERSION);
    cr_assert_not_null(strstr(why, SEG1), "why: %s", why);

    /* A damaged header of an older segment. */
    memcpy(head, saved, sizeof(head));
    head[20] ^= 1;
    rewind(f);
    cr_assert_eq(fwrite(head, 1, sizeof(head), f), sizeof(head));
    fclose(f);
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_ECORRUPT);
    cr_assert_not_null(strstr(why, SEG1), "why: %s", why);
}

/* A crash right after creating the newest segment leaves it empty or cut
   inside its header; it held nothing and is deleted. */
Test(log_recovery, torn_new_segment_deleted)
{
    uint64_t a, b;
    write_keys(5, &a, &b);
    static const uint64_t sizes[] = {0, 7, 32};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char path[512];
        lt_path(path, sizeof(path), dir, "seg-0000000007-0000.log");
        FILE *f = fopen(path, "wb");
        for (uint64_t j = 0; j < sizes[i]; j++)
            fputc(0, f);
        fclose(f);
        lt_log_clear();
        kvs_db *db = lt_open(dir, &opts);
        expect_keys(db, 5);
        cr_assert_eq(access(path, F_OK), -1, "empty torn segment kept");
        cr_assert_not_null(strstr(lt_log_text(), "seg-0000000007-0000.log"));
        kvs_db_close(db);
    }
}

/* After a power loss the header of a segment created just before can be
   cut short or hold garbage (it reaches the disk with the segment's first
   fsync, so nothing in the segment was synced). With no whole record after
   it, the segment held nothing: deleted (the crash-state suite found the
   open refusing such stores). A bad header followed by records is damage:
   refused. */
Test(log_recovery, torn_new_segment_header_deleted)
{
    uint64_t a, b;
    write_keys(5, &a, &b);
    char path[512];
    lt_path(path, sizeof(path), dir, "seg-0000000007-0000.log");
    unsigned char head[KLOG_SEG_HDR];
    klog_seg_head_encode(head, 7, 0);
    for (int variant = 0; variant < 3; variant++) {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        if (variant == 0) {
            fwrite(head, 1, 10, f); /* a prefix of the header */
        } else if (variant == 1) {
            fwrite(head, 1, 10, f); /* the rest garbage */
            for (int j = 10; j < KLOG_SEG_HDR + 40; j++)
                fputc(0xa5 ^ j, f);
        } else {
            head[3] ^= 0x40; /* a damaged magic, then nothing but zeros */
            fwrite(head, 1, sizeof(head), f);
            head[3] ^= 0x40;
            for (int j = 0; j < 100; j++)
                fputc(0, f);
        }
        fclose(f);
        lt_log_clear();
        kvs_db *db = lt_open(dir, &opts);
        expect_keys(db, 5);
        cr_assert_eq(access(path, F_OK), -1, "variant %d: torn segment kept", variant);
        cr_assert_not_null(strstr(lt_log_text(), "torn before its header was complete"),
                           "variant %d: %s", variant, lt_log_text());
        kvs_db_close(db);
    }

    /* A damaged header, then a whole record: not a torn creation. */
    kvs_db *db = lt_open(dir, &opts);
    lt_set(db, "after", "the repairs");
    kvs_db_close(db);
    char names[8][64];
    size_t n = lt_list(dir, ".log", names, 8);
    cr_assert_geq(n, 1);
    lt_path(path, sizeof(path), dir, names[n - 1]);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 3, SEEK_SET), 0);
    fputc(0xff, f);
    fclose(f);
    char why[KVS_WHY_MAX] = "";
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_ECORRUPT, "why: %s", why);
    cr_assert_not_null(strstr(why, names[n - 1]), "why: %s", why);
}

/* Compact a store of n keys (key i = value i) into outputs with hints. */
static void compacted_store(int n)
{
    opts.segment_max_bytes = 4096;
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[64];
    for (int i = 0; i < n; i++) {
        key_of(key, sizeof(key), i);
        lt_set(db, key, "overwritten");
        val_of(val, sizeof(val), i);
        lt_set(db, key, val);
    }
    cr_assert_eq(kvs_db_compact(db), 0);
    cr_assert_eq(kvs_db_close(db), 0);
}

static void read_file(const char *path, unsigned char **data, size_t *len)
{
    *len = (size_t)lt_file_size(path);
    *data = malloc(*len + 1);
    FILE *f = fopen(path, "rb");
    cr_assert_eq(fread(*data, 1, *len, f), *len);
    fclose(f);
}

/* Each way of damaging a hint: flip a byte, cut it, empty it, remove it. */
static void hint_damage(int how)
{
    compacted_store(300);
    char names[64][64];
    size_t n = lt_list(dir, ".hint", names, 64);
    cr_assert_gt(n, 1);
    char path[512];
    lt_path(path, sizeof(path), dir, names[n / 2]);
    unsigned char *orig;
    size_t orig_len;
    read_file(path, &orig, &orig_len);
    if (how == 0)
        lt_flip(path, orig_len / 2);
    else if (how == 1)
        cr_assert_eq(truncate(path, (off_t)orig_len - 5), 0);
    else if (how == 2)
        cr_assert_eq(truncate(path, 0), 0);
    else
        cr_assert_eq(unlink(path), 0);

    lt_log_clear();
    kvs_db *db = lt_open(dir, &opts);
    expect_keys(db, 300);
    if (how != 3)
        cr_assert(strstr(lt_log_text(), "ignoring hint") && strstr(lt_log_text(), names[n / 2]),
                  "log: %s", lt_log_text());
    kvs_db_close(db);

    /* Rebuilt, byte for byte, so the next open uses it. */
    unsigned char *now;
    size_t now_len;
    read_file(path, &now, &now_len);
    cr_assert_eq(now_len, orig_len);
    cr_assert_eq(memcmp(now, orig, orig_len), 0, "rebuilt hint differs");
    lt_log_clear();
    db = lt_open(dir, &opts);
    cr_assert_null(strstr(lt_log_text(), "hint"), "log: %s", lt_log_text());
    expect_keys(db, 300);
    kvs_db_close(db);
    free(orig);
    free(now);
}

Test(log_recovery, flipped_hint_rebuilt)
{
    hint_damage(0);
}

Test(log_recovery, truncated_hint_rebuilt)
{
    hint_damage(1);
}

Test(log_recovery, empty_hint_rebuilt)
{
    hint_damage(2);
}

Test(log_recovery, segment_without_hint_scanned)
{
    hint_damage(3);
}

Test(log_recovery, leftover_files_deleted)
{
    compacted_store(50);
    static const char *const junk[] = {
        "seg-0000000099-0001.log.tmp",  /* an output being written */
        "seg-0000000099-0001.hint.tmp", /* its hint */
        "seg-0000000098-0003.hint",     /* a hint whose segment is gone */
    };
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        lt_path(path, sizeof(path), dir, junk[i]);
        FILE *f = fopen(path, "wb");
        fputs("junk", f);
        fclose(f);
    }
    lt_log_clear();
    kvs_db *db = lt_open(dir, &opts);
    for (size_t i = 0; i < 3; i++) {
        lt_path(path, sizeof(path), dir, junk[i]);
        cr_assert_eq(access(path, F_OK), -1, "%s kept", junk[i]);
        cr_assert_not_null(strstr(lt_log_text(), junk[i]), "log: %s", lt_log_text());
    }
    expect_keys(db, 50);
    /* New files get names that sort after every name seen, also deleted
       ones, so a deleted file can never pass for a new one. */
    lt_set(db, "fresh", "write");
    lt_path(path, sizeof(path), dir, "seg-0000000100-0000.log");
    cr_assert_eq(access(path, F_OK), 0);
    kvs_db_close(db);
}

/* ---- compaction interrupted at each step ---- */

#define NKEYS 300

/* A deterministic workload: the model is what the store must hold. */
struct model {
    char val[NKEYS][64];
    bool live[NKEYS];
};

static void apply_set(kvs_db *db, struct model *m, int k, int ver)
{
    char key[32];
    key_of(key, sizeof(key), k);
    snprintf(m->val[k], sizeof(m->val[k]), "key %d version %d", k, ver);
    m->live[k] = true;
    if (db)
        lt_set(db, key, m->val[k]);
}

static void apply_remove(kvs_db *db, struct model *m, int k)
{
    char key[32];
    key_of(key, sizeof(key), k);
    if (db)
        cr_assert_eq(kvs_db_remove(db, kvs_slice_str(key)), m->live[k] ? 0 : KVS_ENOTFOUND);
    m->live[k] = false;
}

/*
 * Writes, a finished compaction (so the next one has hinted inputs), then
 * writes that remove and rewrite keys living in its outputs. db NULL only
 * computes the model.
 */
static void workload(kvs_db *db, struct model *m)
{
    memset(m, 0, sizeof(*m));
    for (int k = 0; k < NKEYS; k++)
        apply_set(db, m, k, 1);
    for (int k = 0; k < NKEYS; k += 3)
        apply_remove(db, m, k);
    for (int k = 0; k < NKEYS; k += 4)
        apply_set(db, m, k, 2);
    if (db)
        cr_assert_eq(kvs_db_compact(db), 0);
    for (int k = 1; k < NKEYS; k += 5)
        apply_remove(db, m, k);
    for (int k = 2; k < NKEYS; k += 7)
        apply_set(db, m, k, 3);
    for (int k = 0; k < NKEYS; k += 11)
        apply_remove(db, m, k);
}

static void check_model(kvs_db *db, const struct model *m)
{
    char key[32];
    for (int k = 0; k < NKEYS; k++) {
        key_of(key, sizeof(key), k);
        lt_expect(db, key, m->live[k] ? m->val[k] : NULL);
    }
}

static int crash_step;

static void crash_here(int step)
{
    if (step == crash_step)
        _exit(42);
}

static void crash_at(int step, const char *expect_log)
{
    opts.segment_max_bytes = 4096;
    opts.compact_min_stale_bytes = UINT64_MAX; /* no background compaction */
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        kvs_db *db = NULL;
        if (kvs_db_open(dir, &opts, &db, NULL) != 0)
            _exit(1);
        struct model m;
        workload(db, &m);
        crash_step = step;
        kvs__log_crash_hook = crash_here;
        kvs_db_compact(db);
        _exit(2); /* the step was never reached */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42, "child did not stop at step %d",
              step);

    struct model m;
    workload(NULL, &m);
    lt_log_clear();
    kvs_db *db = lt_open(dir, &opts);
    check_model(db, &m);
    if (expect_log)
        cr_assert_not_null(strstr(lt_log_text(), expect_log), "log: %s", lt_log_text());
    /* Everything compacts cleanly afterwards and stays right. */
    cr_assert_eq(kvs_db_compact(db), 0);
    check_model(db, &m);
    kvs_stats st;
    kvs_db_stats(db, &st);
    cr_assert_eq(st.stale_bytes, 0);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    check_model(db, &m);
    char names[8][64];
    cr_assert_eq(lt_list(dir, ".tmp", names, 8), 0);
    kvs_db_close(db);
}

Test(log_recovery, compaction_crash_leaves_temp_files)
{
    crash_at(1, ".tmp, left by an interrupted compaction");
}

Test(log_recovery, compaction_crash_segment_without_hint)
{
    crash_at(2, ".tmp, left by an interrupted compaction");
}

Test(log_recovery, compaction_crash_outputs_beside_inputs)
{
    crash_at(3, NULL);
}

Test(log_recovery, compaction_crash_after_index_switch)
{
    crash_at(4, NULL);
}

Test(log_recovery, compaction_crash_hint_without_segment)
{
    crash_at(5, "its segment is gone");
}

Test(log_recovery, compaction_crash_after_last_step)
{
    crash_at(6, NULL);
}

/* Damage after open: a get verifies every record it returns, and a
   compaction refuses to copy a bad record into a fresh segment. */
Test(log_recovery, damage_found_while_running)
{
    kvs_db *db = lt_open(dir, &opts);
    char path[512];
    lt_path(path, sizeof(path), dir, SEG1);
    lt_set(db, "a", "first value");
    lt_set(db, "b", "second value");
    uint64_t b_end = lt_file_size(path);
    lt_set(db, "c", "third value");
    lt_flip(path, b_end - 3);

    kvs_buf buf = KVS_BUF_INIT;
    cr_assert_eq(kvs_db_get(db, kvs_slice_str("b"), &buf), KVS_ECORRUPT);
    kvs_buf_free(&buf);
    lt_expect(db, "a", "first value");
    lt_expect(db, "c", "third value");
    lt_log_clear();
    cr_assert_eq(kvs_db_compact(db), KVS_ECORRUPT);
    cr_assert_not_null(strstr(lt_log_text(), "corrupt record in"), "log: %s", lt_log_text());
    char names[8][64];
    cr_assert_eq(lt_list(dir, ".tmp", names, 8), 0, "compaction left temp files");
    cr_assert_eq(access(path, F_OK), 0, "a segment was dropped");
    lt_set(db, "d", "still writable");
    kvs_db_close(db);

    char why[KVS_WHY_MAX] = "";
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_ECORRUPT);
    cr_assert_not_null(strstr(why, SEG1), "why: %s", why);
}

/* A clear interrupted while it deletes the old segments: the synced clear
   record makes whatever is left replay to nothing. */
Test(log_recovery, clear_interrupted)
{
    opts.segment_max_bytes = 4096;
    opts.compact_min_stale_bytes = UINT64_MAX;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        kvs_db *db = NULL;
        if (kvs_db_open(dir, &opts, &db, NULL) != 0)
            _exit(1);
        struct model m;
        workload(db, &m);
        crash_step = 5; /* the first old segment is gone, its hint not yet */
        kvs__log_crash_hook = crash_here;
        kvs_db_clear(db);
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42, "child did not stop");
    lt_log_clear();
    kvs_db *db = lt_open(dir, &opts);
    cr_assert_not_null(strstr(lt_log_text(), "its segment is gone"), "log: %s", lt_log_text());
    kvs_stats st;
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 0);
    char key[32];
    for (int k = 0; k < NKEYS; k++) {
        key_of(key, sizeof(key), k);
        lt_expect(db, key, NULL);
    }
    /* Compacting drops the clear record and the old segments together. */
    cr_assert_eq(kvs_db_compact(db), 0);
    kvs_db_close(db);
    db = lt_open(dir, &opts);
    kvs_db_stats(db, &st);
    cr_assert_eq(st.keys, 0);
    kvs_db_close(db);
}

/* Slots of the index's current table. */
static size_t index_slots(kvs_db *db)
{
    return klog_index_table(&klog_db_of(db)->index)->mask + 1;
}

/* Whether the epoch holds objects retired and not yet freed. */
static bool epoch_pending(kvs_db *db)
{
    struct klog_epoch *e = &klog_db_of(db)->epoch;
    pthread_mutex_lock(&e->lock);
    bool pending = e->retired != NULL;
    pthread_mutex_unlock(&e->lock);
    return pending;
}

/* The replay at open grows the index table from its smallest size, as the
   writes did. Nobody can read the index during the replay, so the tables
   it outgrows are freed as they are replaced: before, they waited for the
   background thread's reclaim, a second later, and a server restarted on
   1M keys held 32 MB of them when it began to answer. After the reopen
   the table is the size the writes left, and nothing waits in the epoch
   (its thread's first reclaim is a second away). Both replay paths: a
   compaction output read from its hint, and segments scanned. */
Test(log_recovery, reopen_leaves_no_outgrown_tables)
{
    opts.compact_min_stale_bytes = UINT64_MAX;
    enum { N = 20000 };
    kvs_db *db = lt_open(dir, &opts);
    char key[32], val[64];
    for (int i = 0; i < 2 * N; i++) {
        if (i == N)
            cr_assert_eq(kvs_db_compact(db), 0);
        snprintf(key, sizeof(key), "key%06d", i);
        val_of(val, sizeof(val), i);
        lt_set(db, key, val);
    }
    size_t slots = index_slots(db);
    kvs_db_close(db);
    char names[8][64];
    cr_assert_geq(lt_list(dir, ".hint", names, 8), 1, "the compaction left no hint");

    db = lt_open(dir, &opts);
    cr_assert_not(epoch_pending(db), "tables outgrown during the replay are still held");
    cr_assert_eq(index_slots(db), slots, "%zu slots after the reopen, %zu before", index_slots(db),
                 slots);
    snprintf(key, sizeof(key), "key%06d", 2 * N - 1);
    val_of(val, sizeof(val), 2 * N - 1);
    lt_expect(db, key, val);
    kvs_db_close(db);
}
