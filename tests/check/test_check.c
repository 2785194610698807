/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * kvs-check end to end: build stores through libkvs, damage their files the
 * way a crash or a bad disk would, run the kvs-check binary and look at its
 * exit status, its report (file and offset of each finding), the store its
 * --repair writes, and the original directory, which must not change.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs/engine.h"
#include "kvs/kvs.h"
#include "support/server.h"

#define NKEYS 200

static char dir[PATH_MAX + 16], work[PATH_MAX];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(work), 0);
    snprintf(dir, sizeof(dir), "%s/store", work);
}

static void teardown(void)
{
    ts_tmpdir_remove(work);
}

TestSuite(check, .init = setup, .fini = teardown);

static void key_of(char *out, size_t size, unsigned i)
{
    snprintf(out, size, "key-%04u", i);
}

/* Value of key i at version v: 40..300 bytes, recognisable. */
static size_t value_of(char *out, size_t size, unsigned i, unsigned v)
{
    size_t len = 40 + (i * 37 + v * 11) % 260;
    cr_assert(len < size);
    int n = snprintf(out, size, "v%u-of-%u:", v, i);
    for (size_t j = (size_t)n; j < len; j++)
        out[j] = (char)('a' + (i + j + v) % 26);
    return len;
}

static kvs_db *open_store(const char *path, const char *engine)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = engine;
    o.fsync = KVS_FSYNC_NO;
    o.segment_max_bytes = 4096;
    o.compact_min_stale_bytes = UINT64_MAX; /* only explicit compactions */
    kvs_db *db;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(path, &o, &db, why);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", path, kvs_strerror(rc), why);
    return db;
}

static void put(kvs_db *db, unsigned i, unsigned v)
{
    char k[32], val[512];
    key_of(k, sizeof(k), i);
    size_t len = value_of(val, sizeof(val), i, v);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(k, strlen(k)), kvs_slice_of(val, len)), 0);
}

/*
 * The model the stores are built to: keys 0..NKEYS-1 written at version 1,
 * every third rewritten at version 2, every fifth removed, a compaction in
 * the middle (so that there are compaction outputs with hints), then keys
 * NKEYS..NKEYS+9 written last. state[i]: 0 absent, else the version.
 */
static unsigned state[NKEYS + 10];

static void build(const char *engine)
{
    kvs_db *db = open_store(dir, engine);
    memset(state, 0, sizeof(state));
    for (unsigned i = 0; i < NKEYS; i++) {
        put(db, i, 1);
        state[i] = 1;
    }
    for (unsigned i = 0; i < NKEYS; i += 3) {
        put(db, i, 2);
        state[i] = 2;
    }
    for (unsigned i = 0; i < NKEYS; i += 5) {
        char k[32];
        key_of(k, sizeof(k), i);
        cr_assert_eq(kvs_db_remove(db, kvs_slice_of(k, strlen(k))), 0);
        state[i] = 0;
    }
    int rc = kvs_db_compact(db);
    cr_assert(rc == 0 || rc == KVS_ENOTSUP, "compact: %s", kvs_strerror(rc));
    for (unsigned i = NKEYS; i < NKEYS + 10; i++) {
        put(db, i, 3);
        state[i] = 3;
    }
    cr_assert_eq(kvs_db_close(db), 0);
}

static unsigned live_keys(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < NKEYS + 10; i++)
        n += state[i] != 0;
    return n;
}

/* Run kvs-check with up to two more arguments; the result is the caller's. */
static void run_check(ts_result *r, const char *a1, const char *a2)
{
    const char *argv[] = {KVS_CHECK_BIN, dir, a1, a2, NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 60000, r), 0);
    cr_assert(!r->timed_out);
}

static void expect_in(const ts_result *r, const char *needle)
{
    cr_expect(strstr(r->out, needle) != NULL, "'%s' not in the report:\n%s\n%s", needle, r->out,
              r->err);
}

/* Check what a store at path holds against state[], skipping key skip. */
static void expect_store(const char *path, const char *engine, long skip1, long skip2)
{
    kvs_db *db = open_store(path, engine);
    kvs_buf buf = KVS_BUF_INIT;
    for (unsigned i = 0; i < NKEYS + 10; i++) {
        if ((long)i == skip1 || (long)i == skip2)
            continue;
        char k[32], val[512];
        key_of(k, sizeof(k), i);
        int rc = kvs_db_get(db, kvs_slice_of(k, strlen(k)), &buf);
        if (!state[i]) {
            cr_expect_eq(rc, KVS_ENOTFOUND, "%s: removed key %u is back", path, i);
            continue;
        }
        size_t len = value_of(val, sizeof(val), i, state[i]);
        cr_expect_eq(rc, 0, "%s: key %u: %s", path, i, kvs_strerror(rc));
        if (rc == 0)
            cr_expect(buf.len == len && memcmp(buf.data, val, len) == 0, "%s: key %u differs", path,
                      i);
    }
    kvs_buf_free(&buf);
    kvs_db_close(db);
}

/* Every file of dir, concatenated with its name, for before/after compares. */
static char *snapshot(const char *path, size_t *len)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    cr_assert(n >= 0);
    char *all = NULL;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        char file[PATH_MAX * 2];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        struct stat st;
        if (names[i]->d_name[0] != '.' && strcmp(names[i]->d_name, "lock.mdb") != 0 &&
            stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t flen;
            char *data = ts_read_file(file, &flen);
            cr_assert(data);
            size_t nlen = strlen(names[i]->d_name) + 1;
            all = realloc(all, total + nlen + flen);
            cr_assert(all);
            memcpy(all + total, names[i]->d_name, nlen);
            memcpy(all + total + nlen, data, flen);
            total += nlen + flen;
            free(data);
        }
        free(names[i]);
    }
    free(names);
    *len = total;
    return all;
}

/* The newest and the oldest segment file names of dir. */
static void segments(char *oldest, char *newest)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert(n > 0);
    oldest[0] = newest[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (strncmp(nm, "seg-", 4) == 0 && l > 4 && strcmp(nm + l - 4, ".log") == 0) {
            if (!oldest[0])
                snprintf(oldest, 256, "%s", nm);
            snprintf(newest, 256, "%s", nm);
        }
        free(names[i]);
    }
    free(names);
    cr_assert(oldest[0] && strcmp(oldest, newest) != 0, "want two segments at least");
}

static off_t file_size(const char *name)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

static void flip(const char *name, off_t off)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDWR);
    cr_assert(fd >= 0);
    unsigned char b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

Test(check, clean_kvs_store)
{
    build("kvs");
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    char line[64];
    snprintf(line, sizeof(line), "live keys: %u\n", live_keys());
    expect_in(&r, line);
    expect_in(&r, "result: clean");
    expect_in(&r, "engine: kvs");
    cr_expect(strstr(r.out, "hints: 0 checked") == NULL, "no hint was checked:\n%s", r.out);
    ts_result_free(&r);
}

Test(check, torn_tail_and_corruption_reported_and_repaired)
{
    build("kvs");
    char oldest[256], newest[256];
    segments(oldest, newest);
    /* The last record written is key NKEYS+9's: cut it in half. */
    char val[512];
    off_t last = 24 + 8 + (off_t)value_of(val, sizeof(val), NKEYS + 9, 3);
    off_t size = file_size(newest);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, newest);
    cr_assert_eq(truncate(path, size - last / 2), 0);
    /* The oldest segment holds the compaction's first output; its first
       record starts after the 32-byte header. Damage its key. */
    flip(oldest, 32 + 24 + 2);

    size_t before_len, after_len;
    char *before = snapshot(dir, &before_len);
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "torn tail: %s/%s at offset %lld", dir, newest,
             (long long)(size - last));
    expect_in(&r, want);
    snprintf(want, sizeof(want), "corrupt record: %s/%s at offset 32 (checksum mismatch", dir,
             oldest);
    expect_in(&r, want);
    expect_in(&r, "bad hint: "); /* the damaged segment no longer matches its hint */
    expect_in(&r, "result: PROBLEMS");
    ts_result_free(&r);

    /* Repair: every intact key is in the new store. The damaged record was
       the first key the compaction copied: find it by elimination. */
    char out[PATH_MAX + 16];
    snprintf(out, sizeof(out), "%s/repaired", work);
    run_check(&r, "--repair", out);
    cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
    expect_in(&r, "repaired into ");
    ts_result_free(&r);

    kvs_db *db = open_store(out, "kvs");
    kvs_buf buf = KVS_BUF_INIT;
    long lost = -1;
    for (unsigned i = 0; i < NKEYS; i++) {
        char k[32];
        key_of(k, sizeof(k), i);
        if (state[i] && kvs_db_get(db, kvs_slice_of(k, strlen(k)), &buf) == KVS_ENOTFOUND) {
            cr_expect_eq(lost, -1, "more than one key lost: %ld and %u", lost, i);
            lost = i;
        }
    }
    kvs_buf_free(&buf);
    kvs_db_close(db);
    cr_expect_neq(lost, -1, "the damaged record's key survived the repair");
    expect_store(out, "kvs", lost, NKEYS + 9);

    /* The repaired store checks clean; the original did not change. */
    const char *argv[] = {KVS_CHECK_BIN, out, NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 60000, &r), 0);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    ts_result_free(&r);
    char *after = snapshot(dir, &after_len);
    cr_expect(before_len == after_len && memcmp(before, after, before_len) == 0,
              "kvs-check changed the original directory");
    free(before);
    free(after);
}

Test(check, corruption_mid_newest_segment_is_not_a_torn_tail)
{
    build("kvs");
    char oldest[256], newest[256];
    segments(oldest, newest);
    flip(newest, 32 + 30); /* the first record of the newest segment */
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 1);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "corrupt record: %s/%s at offset 32", dir, newest);
    expect_in(&r, want);
    cr_expect(strstr(r.out, "torn tail:") == NULL, "%s", r.out);
    ts_result_free(&r);
}

Test(check, repair_refuses_a_used_directory)
{
    build("kvs");
    ts_result r;
    run_check(&r, "--repair", dir);
    cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
    ts_result_free(&r);
    char out[PATH_MAX + 16];
    snprintf(out, sizeof(out), "%s/full", work);
    mkdir(out, 0755);
    snprintf(out, sizeof(out), "%s/full/x", work);
    fclose(fopen(out, "w"));
    snprintf(out, sizeof(out), "%s/full", work);
    run_check(&r, "--repair", out);
    cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
    cr_expect(strstr(r.err, "not empty") != NULL, "%s", r.err);
    ts_result_free(&r);
}

Test(check, refuses_a_store_in_use_and_bad_usage)
{
    build("kvs");
    kvs_db *db = open_store(dir, "kvs");
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 2, "%s%s", r.out, r.err);
    ts_result_free(&r);
    kvs_db_close(db);
    const char *argv[] = {KVS_CHECK_BIN, NULL};
    cr_assert_eq(ts_run(argv, NULL, 0, 60000, &r), 0);
    cr_expect_eq(r.status, 2);
    ts_result_free(&r);
    const char *argv2[] = {KVS_CHECK_BIN, "/nonexistent/kvs-dir", NULL};
    cr_assert_eq(ts_run(argv2, NULL, 0, 60000, &r), 0);
    cr_expect_eq(r.status, 2);
    ts_result_free(&r);
}

Test(check, lmdb_store_checked_and_copied)
{
    build("lmdb");
    size_t before_len, after_len;
    char *before = snapshot(dir, &before_len);
    ts_result r;
    char out[PATH_MAX + 16];
    snprintf(out, sizeof(out), "%s/copy", work);
    run_check(&r, "--repair", out);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    char line[64];
    snprintf(line, sizeof(line), "live keys: %u\n", live_keys());
    expect_in(&r, line);
    expect_in(&r, "engine: lmdb");
    ts_result_free(&r);
    expect_store(out, "lmdb", -1, -1);
    char *after = snapshot(dir, &after_len);
    cr_expect(before_len == after_len && memcmp(before, after, before_len) == 0,
              "kvs-check changed data.mdb");
    free(before);
    free(after);
}

Test(check, leftovers_of_a_crash_are_notes_not_problems)
{
    build("kvs");
    char path[PATH_MAX * 2];
    snprintf(path, sizeof(path), "%s/seg-0000000099-0001.log.tmp", dir);
    fclose(fopen(path, "w"));
    snprintf(path, sizeof(path), "%s/seg-0000000098-0001.hint", dir);
    fclose(fopen(path, "w"));
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 0, "%s%s", r.out, r.err);
    expect_in(&r, "leftover: ");
    expect_in(&r, "seg-0000000099-0001.log.tmp (an interrupted compaction's");
    expect_in(&r, "seg-0000000098-0001.hint (hint of a missing segment");
    expect_in(&r, "leftovers: 2");
    ts_result_free(&r);
}

Test(check, damaged_hint_is_reported)
{
    build("kvs");
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert(n > 0);
    char hint[256] = "";
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]->d_name);
        if (!hint[0] && l > 5 && strcmp(names[i]->d_name + l - 5, ".hint") == 0)
            snprintf(hint, sizeof(hint), "%s", names[i]->d_name);
        free(names[i]);
    }
    free(names);
    cr_assert(hint[0], "the compaction wrote no hint");
    flip(hint, 40); /* inside the first entry */
    ts_result r;
    run_check(&r, NULL, NULL);
    cr_expect_eq(r.status, 1, "%s%s", r.out, r.err);
    char want[PATH_MAX * 2];
    snprintf(want, sizeof(want), "bad hint: %s/%s (checksum mismatch", dir, hint);
    expect_in(&r, want);
    ts_result_free(&r);
}

/* Every engine's checker counts the keys with a time and those past it. */
Test(check, expiry_times_counted_on_every_engine)
{
    for (size_t e = 0; e < kvs_engine_count(); e++) {
        const char *engine = kvs_engine_name(kvs_engine_at(e));
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0);
        kvs_db *db = open_store(dir, engine);
        int64_t soon = kvs_now_ms() + 300;
        for (unsigned i = 0; i < 100; i++) {
            char k[32];
            key_of(k, sizeof(k), i);
            /* 30 keys expire in 2100, 10 in 300 ms, 60 never. */
            int64_t at = i < 30 ? INT64_C(4102444800000) : i < 40 ? soon : 0;
            cr_assert_eq(kvs_db_set_ex(db, kvs_slice_of(k, strlen(k)), kvs_slice_of("v", 1), at),
                         0);
        }
        cr_assert_eq(kvs_db_close(db), 0);
        while (kvs_now_ms() <= soon)
            usleep(20000);
        ts_result r;
        run_check(&r, NULL, NULL);
        cr_expect_eq(r.status, 0, "[%s] %s%s", engine, r.out, r.err);
        cr_expect(strstr(r.out, "expiry: 40 ") && strstr(r.out, ", 10 of them past it"), "[%s] %s",
                  engine, r.out);
        ts_result_free(&r);
    }
}
