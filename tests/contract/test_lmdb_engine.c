/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Tests of the "lmdb" engine beyond the shared contract: the map grows when
 * full while readers run (a scenario of scenarios.c), another process growing the map is adopted
 * (MDB_MAP_RESIZED), a failed fsync makes the store refuse writes, the key
 * limit matches the library's, and the stats it reports.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "contract/scenarios.h"
#include "core/fileio.h"
#include "engines/lmdb/lmdb_internal.h"
#include "kvs/check.h"
#include "kvs/kvs.h"
#include "support/tmpdir.h"

#define MIB ((size_t)1 << 20)

static char dir[PATH_MAX];
static kvs_db *db;

/* Log lines arrive from any thread; the test waits on log_cond. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static int grown_lines, refusing_lines;

static void on_log(void *ctx, const char *line)
{
    (void)ctx;
    pthread_mutex_lock(&log_lock);
    if (strstr(line, "map grown"))
        grown_lines++;
    if (strstr(line, "refusing writes"))
        refusing_lines++;
    pthread_cond_broadcast(&log_cond);
    pthread_mutex_unlock(&log_lock);
}

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(dir), 0, "mkdtemp failed");
}

static void teardown(void)
{
    kvs_db_close(db);
    db = NULL;
    kvs__fault_set(KVS__FAULT_FSYNC, 0, 0);
    if (dir[0])
        ts_tmpdir_remove(dir);
}

TestSuite(lmdb, .init = setup, .fini = teardown, .timeout = 120);

static void open_lmdb(kvs_fsync policy)
{
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = "lmdb";
    opts.fsync = policy;
    opts.log = on_log;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &opts, &db, why);
    cr_assert_eq(rc, 0, "open: %s (%s)", kvs_err_name(rc), why);
}

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 12));
}

static bool value_is(const char *key, const void *want, size_t len)
{
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(db, kvs_slice_str(key), &buf);
    bool same = rc == 0 && buf.len == len && memcmp(buf.data, want, len) == 0;
    kvs_buf_free(&buf);
    return same;
}

Test(lmdb, map_grows_while_readers_run)
{
    enum { BIG = 80 }; /* 80 MiB of values in a 64 MiB map */
    open_lmdb(KVS_FSYNC_NO);
    char msg[256] = "";
    cr_assert(kvs_scn_big_writes(db, 3, BIG, msg, sizeof(msg)), "%s", msg);
    pthread_mutex_lock(&log_lock);
    int grown = grown_lines;
    pthread_mutex_unlock(&log_lock);
    cr_assert_geq(grown, 1, "the map never grew");

    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 32 + BIG);
    cr_assert_gt(st.disk_bytes, (uint64_t)BIG * MIB);
    cr_assert_geq(st.live_bytes, (uint64_t)BIG * MIB);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    open_lmdb(KVS_FSYNC_NO);
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 32 + BIG);
    cr_assert(value_is("small-3", "small value 3", 13));
}

/*
 * In a child process, open the environment with raw LMDB and a larger map,
 * and commit count 1 MiB values under the engine's tagged keys. The parent's
 * next transaction then finds data beyond its map (MDB_MAP_RESIZED).
 */
static void grow_from_other_process(size_t map, int first, int count)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        /* A stored value: the flags byte of one without an expiry time,
           then the value. */
        unsigned char *big = malloc(MIB + 1);
        int rc = big ? mdb_env_create(&env) : ENOMEM;
        if (rc == 0)
            rc = mdb_env_set_mapsize(env, map);
        if (rc == 0)
            rc = mdb_env_open(env, dir, MDB_NOSYNC, 0644);
        if (rc == 0)
            rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc == 0)
            rc = mdb_dbi_open(txn, NULL, 0, &dbi);
        for (int i = first; rc == 0 && i < first + count; i++) {
            char name[32];
            unsigned char key[LMDB_LIB_MAX_KEY];
            snprintf(name, sizeof(name), "other-%d", i);
            big[0] = 0;
            fill(big + 1, MIB, (unsigned)i);
            MDB_val k = kvs__lmdb_key(key, kvs_slice_str(name)), v = {MIB + 1, big};
            rc = mdb_put(txn, dbi, &k, &v, 0);
        }
        if (rc == 0)
            rc = mdb_txn_commit(txn);
        _exit(rc == 0 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child could not write");
}

Test(lmdb, adopts_map_grown_by_another_process)
{
    open_lmdb(KVS_FSYNC_NO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("mine"), kvs_slice_str("before")), 0);
    /* 70 MiB under a 96 MiB map: beyond our 64 MiB; our write adopts it. */
    grow_from_other_process(96 * MIB, 0, 70);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("mine"), kvs_slice_str("after")), 0);
    /* 40 MiB more under 160 MiB: beyond the adopted 96 MiB; a read adopts it. */
    grow_from_other_process(160 * MIB, 70, 40);
    unsigned char *big = malloc(MIB);
    cr_assert_not_null(big);
    fill(big, MIB, 100);
    char key[32];
    snprintf(key, sizeof(key), "other-%d", 100);
    bool same = value_is(key, big, MIB);
    free(big);
    cr_assert(same, "value written by the other process");
    cr_assert(value_is("mine", "after", 5));
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 111);
}

Test(lmdb, failed_sync_refuses_writes)
{
    open_lmdb(KVS_FSYNC_NO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("v")), 0);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    cr_assert_eq(kvs_db_sync(db), KVS_EIO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("w")), KVS_EREADONLY);
    cr_assert_eq(kvs_db_remove(db, kvs_slice_str("k")), KVS_EREADONLY);
    cr_assert_eq(kvs_db_clear(db), KVS_EREADONLY);
    /* The failure sticks: a later sync does not pretend all is well. */
    cr_assert_eq(kvs_db_sync(db), KVS_EIO);
    cr_assert(value_is("k", "v", 1), "reads go on after a failed sync");
    int rc = kvs_db_close(db);
    db = NULL;
    cr_assert_eq(rc, KVS_EIO, "close reports the failed sync: %s", kvs_err_name(rc));
    open_lmdb(KVS_FSYNC_NO);
    cr_assert(value_is("k", "v", 1));
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("again")), 0);
}

Test(lmdb, failed_background_sync_refuses_writes)
{
    open_lmdb(KVS_FSYNC_EVERYSEC);
    kvs__fault_set(KVS__FAULT_FSYNC, 1, KVS_EIO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("v")), 0);
    /* The everysec thread syncs within about a second and logs the failure. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&log_lock);
    int rc = 0;
    while (refusing_lines == 0 && rc == 0)
        rc = pthread_cond_timedwait(&log_cond, &log_lock, &deadline);
    int refusing = refusing_lines;
    pthread_mutex_unlock(&log_lock);
    cr_assert_eq(refusing, 1, "no failed background sync within 10 s");
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("w")), KVS_EREADONLY);
    cr_assert(value_is("k", "v", 1));
}

static int count_key(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    (void)key;
    (void)value;
    (*(size_t *)ctx)++;
    return 0;
}

Test(lmdb, key_limit_matches_the_library)
{
    open_lmdb(KVS_FSYNC_NO);
    const kvs_engine *e = kvs_engine_find("lmdb");
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    /* The directory is closed; a raw environment reads the library's limit. */
    MDB_env *env;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    int lib_max = mdb_env_get_maxkeysize(env);
    mdb_env_close(env);
    cr_assert_eq(kvs_engine_max_key(e) + LMDB_KEY_HEAD, (size_t)lib_max,
                 "max_key %zu, library %d: %d bytes go to the key's tag and hash",
                 kvs_engine_max_key(e), lib_max, LMDB_KEY_HEAD);
}

/* Stores of the earlier layouts, written by hand: layout 1 (a tag byte,
   the key), layout 2 (a tag, the key's hash, the key), both with bare
   values. Opening converts them, values and all, and they scan in hash
   order afterwards. */
Test(lmdb, earlier_layouts_are_converted_on_open)
{
    open_lmdb(KVS_FSYNC_NO);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 64 * MIB), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0644), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    /* More keys than one conversion batch, the empty key among them; half
       of them in each layout. */
    for (int i = 0; i < 5000; i++) {
        char name[32], key[64];
        int nlen = i == 0 ? 0 : snprintf(name, sizeof(name), "old-%d", i);
        size_t klen;
        if (i % 2 == 0) {
            key[0] = LMDB_V1_KEY_TAG;
            memcpy(key + 1, name, (size_t)nlen);
            klen = 1 + (size_t)nlen;
        } else {
            key[0] = LMDB_V2_KEY_TAG;
            uint64_t h = XXH3_64bits(name, (size_t)nlen);
            for (int b = 0; b < 8; b++)
                key[1 + b] = (char)(h >> (56 - 8 * b));
            memcpy(key + 9, name, (size_t)nlen);
            klen = 9 + (size_t)nlen;
        }
        /* The value: the name, so that it starts with any byte. */
        MDB_val k = {klen, key}, v = {(size_t)nlen, name};
        cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    open_lmdb(KVS_FSYNC_NO);
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 5000, "%llu keys", (unsigned long long)st.keys);
    cr_assert_eq(st.expires, 0);
    cr_assert(value_is("", "", 0));
    cr_assert(value_is("old-4999", "old-4999", 8));
    cr_assert(value_is("old-4998", "old-4998", 8));
    size_t seen = 0;
    uint64_t cursor = 0;
    do
        cr_assert_eq(kvs_db_scan(db, cursor, 700, 0, count_key, &seen, &cursor), 0);
    while (cursor != 0);
    cr_assert_eq(seen, 5000);
}

Test(lmdb, stats_and_no_compaction)
{
    open_lmdb(KVS_FSYNC_NO);
    unsigned char val[3000];
    fill(val, sizeof(val), 1);
    char key[32];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "s-%d", i);
            cr_assert_eq(kvs_db_set(db, kvs_slice_str(key), kvs_slice_of(val, sizeof(val))), 0);
        }
    }
    kvs_stats st;
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 200);
    cr_assert_geq(st.live_bytes, 200 * sizeof(val));
    cr_assert_geq(st.disk_bytes, st.live_bytes);
    cr_assert_gt(st.stale_bytes, 0, "overwrites left no free pages");
    cr_assert_eq(st.compactions, 0);
    cr_assert_eq(kvs_db_compact(db), KVS_ENOTSUP);
    cr_assert_eq(kvs_db_clear(db), 0);
    cr_assert_eq(kvs_db_stats(db, &st), 0);
    cr_assert_eq(st.keys, 0);
    cr_assert_eq(st.live_bytes, 0);
}

/* ---- a sync beside a failed one ---- */

static _Thread_local bool hold_my_sync;
static sem_t b_in_sync, a_done;

/* Trace hook: the thread marked hold_my_sync stops just before its fsync
   until the other thread's sync has failed. */
static void hold_sync(void *ctx, const struct kvs__trace_event *ev)
{
    (void)ctx;
    if (ev->op != KVS__TRACE_SYNC_BEGIN || !hold_my_sync)
        return;
    hold_my_sync = false;
    sem_post(&b_in_sync);
    sem_wait(&a_done);
}

static void *sync_b(void *arg)
{
    hold_my_sync = true;
    *(int *)arg = kvs_db_sync(db);
    return NULL;
}

/* Two syncs at once, the second to start failing: after a failed fdatasync
   the pages it should have written may be clean, so the other sync's
   success proves nothing, and it must report the failure too. */
Test(lmdb, sync_beside_a_failed_sync_fails)
{
    open_lmdb(KVS_FSYNC_NO);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("v")), 0);
    sem_init(&b_in_sync, 0, 0);
    sem_init(&a_done, 0, 0);
    kvs__trace_set(hold_sync, NULL);
    kvs__fault_set(KVS__FAULT_FSYNC, 2, KVS_EIO); /* B's call is the first, A's the second */
    int b_rc = -1;
    pthread_t b;
    cr_assert_eq(pthread_create(&b, NULL, sync_b, &b_rc), 0);
    sem_wait(&b_in_sync);
    int a_rc = kvs_db_sync(db);
    sem_post(&a_done);
    pthread_join(b, NULL);
    kvs__trace_set(NULL, NULL);
    cr_assert_eq(a_rc, KVS_EIO);
    cr_assert_eq(b_rc, KVS_EIO, "a sync said the data was durable: %s", kvs_err_name(b_rc));
}

/* A meta page whose magic is right but whose page size is not (a torn
   meta page after a machine crash under MDB_NOSYNC) is refused naming the
   file, by the engine and by its checker; mdb_env_open() alone divides by
   that size and dies of SIGFPE (the crash-state suite found one). */
Test(lmdb, meta_page_with_a_bad_page_size_is_refused)
{
    open_lmdb(KVS_FSYNC_ALWAYS);
    cr_assert_eq(kvs_db_set(db, kvs_slice_of("k", 1), kvs_slice_of("v", 1)), 0);
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    /* Page 0's free database md_pad (the page size): after the 16-byte page
       header, magic, version, address and map size. */
    uint32_t zero = 0, magic = 0;
    cr_assert_eq(fseek(f, 16, SEEK_SET), 0);
    cr_assert_eq(fread(&magic, sizeof(magic), 1, f), 1);
    cr_assert_eq(magic, 0xBEEFC0DEu, "not LMDB's meta page layout");
    cr_assert_eq(fseek(f, 40, SEEK_SET), 0);
    cr_assert_eq(fwrite(&zero, sizeof(zero), 1, f), 1);
    cr_assert_eq(fclose(f), 0);

    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = "lmdb";
    char why[KVS_WHY_MAX] = "";
    cr_assert_eq(kvs_db_open(dir, &opts, &db, why), KVS_ECORRUPT, "%s", why);
    cr_expect(strstr(why, "data.mdb") && strstr(why, "page size of 0"), "%s", why);

    char report[4096] = "";
    FILE *out = fmemopen(report, sizeof(report) - 1, "w");
    cr_assert_not_null(out);
    struct kvs_check_report r;
    int rc = kvs_dir_check(dir, NULL, out, &r, why);
    fclose(out);
    cr_expect(rc != 0 || r.problems > 0, "kvs-check found nothing: %s", report);
    cr_expect(strstr(report, "page size of 0") != NULL, "%s", report);
}

/* LMDB's default order (mdb_cmp_memn): memcmp over the shorter length,
   then the shorter first. */
static int memn_sign(const MDB_val *a, const MDB_val *b)
{
    size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
    int d = n ? memcmp(a->mv_data, b->mv_data, n) : 0;
    if (d == 0)
        d = a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
    return (d > 0) - (d < 0);
}

/* The engine's key comparison orders keys exactly as LMDB's default does,
   so that stores written with either (by an older kvs, LMDB's own tools,
   or the child of adopts_map_grown_by_another_process) stay readable by
   both. Keys of every length around the tag and hash (9 bytes), sharing
   prefixes of every length, from a few byte values so that ties are
   common. */
Test(lmdb, key_order_is_lmdbs_default)
{
    enum { KEYS = 400, MAXLEN = 14 };
    static unsigned char bytes[KEYS][MAXLEN];
    static MDB_val keys[KEYS];
    uint64_t seed = 42;
    for (size_t i = 0; i < KEYS; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t len = (size_t)(seed >> 33) % (MAXLEN + 1);
        for (size_t j = 0; j < len; j++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            /* 0, 1, 0x7f, 0x80, 0xff: signedness and carries show. */
            static const unsigned char pick[] = {0, 1, 0x7f, 0x80, 0xff};
            bytes[i][j] = i > 0 && (seed >> 40) % 4 != 0 ? bytes[i - 1][j] : pick[(seed >> 33) % 5];
        }
        keys[i] = (MDB_val){len, bytes[i]};
    }
    for (size_t i = 0; i < KEYS; i++) {
        for (size_t j = 0; j < KEYS; j++) {
            int got = kvs__lmdb_key_cmp(&keys[i], &keys[j]);
            cr_assert_eq((got > 0) - (got < 0), memn_sign(&keys[i], &keys[j]),
                         "keys %zu (%zu bytes) and %zu (%zu bytes)", i, keys[i].mv_size, j,
                         keys[j].mv_size);
        }
    }
}

/* A store in a directory of its own (the second of a test). */
static kvs_db *open_other(char *other)
{
    cr_assert_eq(ts_tmpdir_make(other), 0, "mkdtemp failed");
    kvs_options opts;
    kvs_options_init(&opts);
    opts.engine = "lmdb";
    opts.fsync = KVS_FSYNC_NO;
    kvs_db *d;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(other, &opts, &d, why);
    cr_assert_eq(rc, 0, "open: %s (%s)", kvs_err_name(rc), why);
    return d;
}

static bool holds(kvs_db *d, const char *key, const char *want)
{
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(d, kvs_slice_str(key), &buf);
    bool same = rc == 0 && buf.len == strlen(want) && memcmp(buf.data, want, buf.len) == 0;
    kvs_buf_free(&buf);
    return same;
}

static void *write_k(void *arg)
{
    char *val = arg;
    return (void *)(intptr_t)kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str(val));
}

/* A scan callback that reads the store again, inside the scan's read. */
static int get_inside(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)key;
    (void)value;
    (void)expire_at;
    if (!holds(db, "k", "3"))
        return KVS_EIO;
    (*(size_t *)ctx)++;
    return 0;
}

/* A thread keeps the read transaction of its first get of a store for its
   next ones (lmdb_txn.c). Each get still sees every write acknowledged
   before it, made by another thread; a get inside a scan's read uses
   another transaction; the thread's transaction of a store it no longer
   reads, and of a closed store, is not used for a store opened after
   (ASan: no use after free, no leak). */
Test(lmdb, a_threads_own_read_transaction)
{
    open_lmdb(KVS_FSYNC_NO);
    for (int i = 1; i <= 3; i++) {
        char val[8];
        snprintf(val, sizeof(val), "%d", i);
        pthread_t t;
        void *res;
        cr_assert_eq(pthread_create(&t, NULL, write_k, val), 0);
        cr_assert_eq(pthread_join(t, &res), 0);
        cr_assert_eq((intptr_t)res, 0);
        cr_assert(holds(db, "k", val), "the get after write %d", i);
    }
    size_t seen = 0;
    uint64_t next;
    cr_assert_eq(kvs_db_scan(db, 0, 100, 0, get_inside, &seen, &next), 0);
    cr_assert_eq(seen, 1);

    char other_dir[PATH_MAX];
    kvs_db *other = open_other(other_dir);
    cr_assert_eq(kvs_db_set(other, kvs_slice_str("k"), kvs_slice_str("other")), 0);
    for (int round = 0; round < 3; round++) {
        cr_assert(holds(other, "k", "other"));
        cr_assert(holds(db, "k", "3"));
    }
    cr_assert_eq(kvs_db_close(db), 0);
    db = NULL;
    cr_assert(holds(other, "k", "other"));
    cr_assert_eq(kvs_db_close(other), 0);
    ts_tmpdir_remove(other_dir);
    /* A store opened now may have the address of a closed one. */
    open_lmdb(KVS_FSYNC_NO);
    cr_assert(holds(db, "k", "3"));
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("k"), kvs_slice_str("4")), 0);
    cr_assert(holds(db, "k", "4"));
}
