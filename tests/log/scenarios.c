/* SPDX-License-Identifier: BSD-3-Clause */
/* The threaded tests of the kvs engine; see scenarios.h. */
#include "scenarios.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/fileio.h"
#include "support.h"

#define NKEYS 1000

static kvs_db *shared;

static bool open_store(const char *dir, const kvs_options *o)
{
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, o, &shared, why);
    if (rc != 0)
        lt_fail("open %s: %s (%s)", dir, kvs_strerror(rc), why);
    return rc == 0;
}

static void close_store(void)
{
    int rc = kvs_db_close(shared);
    if (rc != 0)
        lt_fail("close: %s", kvs_strerror(rc));
    shared = NULL;
}

/* The verdict: true, or false with the first failure in msg. */
static bool verdict(char *msg, size_t size)
{
    if (lt_failures() == 0)
        return true;
    snprintf(msg, size, "%lu failures, first: %s", lt_failures(), lt_first_failure());
    return false;
}

static void start(pthread_t *t, size_t n, void *(*fn)(void *), void *args, size_t arg_size)
{
    for (size_t i = 0; i < n; i++) {
        void *arg = args ? (char *)args + i * arg_size : (void *)i;
        if (pthread_create(&t[i], NULL, fn, arg) != 0) {
            lt_fail("pthread_create %zu", i);
            t[i] = 0;
        }
    }
}

static void join(pthread_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (t[i])
            pthread_join(t[i], NULL);
    }
}

static void set_version(unsigned k, unsigned ver)
{
    char key[16], val[512];
    snprintf(key, sizeof(key), "key%u", k);
    size_t len = lt_value(val, sizeof(val), k, ver);
    int rc = kvs_db_set(shared, kvs_slice_str(key), kvs_slice_of(val, len));
    if (rc != 0)
        lt_fail("set key%u: %s", k, kvs_strerror(rc));
}

/* Every key below n holds version ver[k] (or the single version one). */
static void expect_versions(unsigned n, const unsigned *ver, unsigned one)
{
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    for (unsigned k = 0; k < n && lt_failures() == 0; k++) {
        snprintf(key, sizeof(key), "key%u", k);
        int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
        long want = ver ? (long)ver[k] : (long)one;
        long got = rc == 0 ? lt_value_check(buf.data, buf.len, k) : -1;
        if (got != want)
            lt_fail("key%u: %s, version %ld, want %ld", k, kvs_strerror(rc), got, want);
    }
    kvs_buf_free(&buf);
}

/* ---- a thousand writers, a hundred readers ---- */

static void *set_own_key(void *arg)
{
    set_version((unsigned)(size_t)arg, 1);
    return NULL;
}

bool lt_scn_thousand_writers(const char *dir, char *msg, size_t size)
{
    static pthread_t t[1000];
    kvs_options o;
    lt_opts(&o);
    o.segment_max_bytes = 8 << 10; /* writers cross segment switches */
    lt_fail_reset();
    if (!open_store(dir, &o))
        return verdict(msg, size);
    start(t, 1000, set_own_key, NULL, 0);
    join(t, 1000);
    kvs_stats st;
    kvs_db_stats(shared, &st);
    if (st.keys != 1000)
        lt_fail("%llu keys after 1000 writers", (unsigned long long)st.keys);
    expect_versions(1000, NULL, 1);
    close_store();
    if (open_store(dir, &o)) {
        expect_versions(1000, NULL, 1);
        close_store();
    }
    return verdict(msg, size);
}

static void *get_all(void *arg)
{
    (void)arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    for (unsigned round = 0; round < 5; round++) {
        for (unsigned k = 0; k < 200; k++) {
            snprintf(key, sizeof(key), "key%u", k);
            int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
            if (rc != 0 || lt_value_check(buf.data, buf.len, k) != 1)
                lt_fail("get key%u: %s", k, kvs_strerror(rc));
        }
        if (kvs_db_get(shared, kvs_slice_str("absent"), &buf) != KVS_ENOTFOUND)
            lt_fail("absent key found");
    }
    kvs_buf_free(&buf);
    return NULL;
}

bool lt_scn_hundred_readers(const char *dir, char *msg, size_t size)
{
    static pthread_t t[100];
    kvs_options o;
    lt_opts(&o);
    lt_fail_reset();
    if (!open_store(dir, &o))
        return verdict(msg, size);
    for (unsigned k = 0; k < 200; k++)
        set_version(k, 1);
    start(t, 100, get_all, NULL, 0);
    join(t, 100);
    close_store();
    return verdict(msg, size);
}

/* ---- readers beside a writer ---- */

#define HOT 4 /* keys the writer keeps rewriting */
#define WRITES 20000

static atomic_bool writer_done;

/* Rewrites the hot keys with rising versions, removes and re-creates them,
   adds fresh keys (so that the index grows) and now and then clears or
   compacts the store. Versions are the loop counter: every write, also
   after a remove or a clear, carries a higher version than all before. */
static void *writer(void *arg)
{
    (void)arg;
    char key[16];
    for (unsigned i = 1; i <= WRITES && lt_failures() == 0; i++) {
        unsigned k = i % HOT;
        set_version(k, i);
        snprintf(key, sizeof(key), "key%u", k);
        int rc;
        if (i % 7 == 0 && (rc = kvs_db_remove(shared, kvs_slice_str(key))) != 0)
            lt_fail("remove: %s", kvs_strerror(rc));
        set_version(HOT + i % 5000, i);
        if (i % 4999 == 0 && (rc = kvs_db_clear(shared)) != 0)
            lt_fail("clear: %s", kvs_strerror(rc));
        if (i % 3001 == 0 && (rc = kvs_db_compact(shared)) != 0)
            lt_fail("compact: %s", kvs_strerror(rc));
    }
    atomic_store(&writer_done, true);
    return NULL;
}

static void *reader(void *arg)
{
    unsigned seed = (unsigned)(size_t)arg + 1;
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    long last[HOT] = {0};
    unsigned long reads = 0;
    while ((!atomic_load(&writer_done) || reads < 1000) && lt_failures() == 0) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % HOT;
        snprintf(key, sizeof(key), "key%u", k);
        int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
        reads++;
        if (rc == KVS_ENOTFOUND)
            continue;
        long ver = rc == 0 ? lt_value_check(buf.data, buf.len, k) : -1;
        if (ver < 0)
            lt_fail("get key%u: %s, %zu bytes", k, kvs_strerror(rc), buf.len);
        else if (ver < last[k])
            lt_fail("get key%u: version %ld after %ld", k, ver, last[k]);
        last[k] = ver;
    }
    kvs_buf_free(&buf);
    return NULL;
}

bool lt_scn_readers_beside_writer(const char *dir, char *msg, size_t size)
{
    kvs_options o;
    lt_opts(&o);
    o.fsync = KVS_FSYNC_EVERYSEC;
    o.segment_max_bytes = 8 << 10;
    o.compact_min_stale_bytes = 64 << 10;
    o.compact_min_stale_ratio = 0.3;
    lt_fail_reset();
    if (!open_store(dir, &o))
        return verdict(msg, size);
    atomic_store(&writer_done, false);
    pthread_t w, r[4];
    start(&w, 1, writer, NULL, 0);
    start(r, 4, reader, NULL, 0);
    join(&w, 1);
    join(r, 4);
    close_store();
    return verdict(msg, size);
}

/* ---- compaction beside readers and writers ---- */

#define WORKERS 4
#define OPS 40000

static atomic_int running;
static unsigned final_version[NKEYS];

struct worker {
    unsigned id;
    unsigned seed;
    unsigned seen[NKEYS]; /* highest version this thread saw, per key */
};

static unsigned next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Each worker owns the keys k with k % WORKERS == id and writes them with
   rising versions; it reads every key and checks the value is whole, of
   its key, never older than one it saw, and its own last write. */
static void *work(void *arg)
{
    struct worker *w = arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    for (unsigned op = 0; op < OPS && lt_failures() == 0; op++) {
        unsigned k = next_rand(&w->seed) % NKEYS;
        if (k % WORKERS == w->id && next_rand(&w->seed) % 2) {
            set_version(k, ++w->seen[k]);
            final_version[k] = w->seen[k];
            continue;
        }
        snprintf(key, sizeof(key), "key%u", k);
        int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
        long ver = rc == 0 ? lt_value_check(buf.data, buf.len, k) : -1;
        if (ver < 0)
            lt_fail("get key%u: %s, %zu bytes", k, kvs_strerror(rc), buf.len);
        else if ((unsigned long)ver < w->seen[k])
            lt_fail("get key%u: version %ld after %u", k, ver, w->seen[k]);
        else if (k % WORKERS == w->id && (unsigned long)ver != w->seen[k])
            lt_fail("get key%u: version %ld, own write was %u", k, ver, w->seen[k]);
        else
            w->seen[k] = (unsigned)ver;
    }
    kvs_buf_free(&buf);
    atomic_fetch_sub(&running, 1);
    return NULL;
}

bool lt_scn_compaction_beside_workers(const char *dir, char *msg, size_t size)
{
    static struct worker w[WORKERS];
    pthread_t t[WORKERS];
    kvs_options o;
    lt_opts(&o);
    o.segment_max_bytes = 8 << 10;
    o.compact_min_stale_bytes = 16 << 10;
    o.compact_min_stale_ratio = 0.3;
    lt_fail_reset();
    if (!open_store(dir, &o))
        return verdict(msg, size);
    for (unsigned k = 0; k < NKEYS; k++)
        set_version(k, 0);
    memset(final_version, 0, sizeof(final_version));
    memset(w, 0, sizeof(w));
    for (unsigned i = 0; i < WORKERS; i++) {
        w[i].id = i;
        w[i].seed = 7 + i;
    }
    atomic_store(&running, WORKERS);
    start(t, WORKERS, work, w, sizeof(w[0]));
    unsigned explicit = 0;
    while (atomic_load(&running) > 0 && lt_failures() == 0) {
        int rc = kvs_db_compact(shared);
        if (rc != 0)
            lt_fail("compact: %s", kvs_strerror(rc));
        explicit ++;
    }
    join(t, WORKERS);
    kvs_stats st;
    kvs_db_stats(shared, &st);
    if (explicit < 2 || st.compactions < explicit)
        lt_fail("%u explicit compactions, %llu in all", explicit,
                (unsigned long long)st.compactions);
    if (st.keys != NKEYS)
        lt_fail("%llu keys, want %u", (unsigned long long)st.keys, NKEYS);
    expect_versions(NKEYS, final_version, 0);
    close_store();
    if (open_store(dir, &o)) {
        expect_versions(NKEYS, final_version, 0);
        close_store();
    }
    return verdict(msg, size);
}

/* ---- background compaction bounds the directory ---- */

bool lt_scn_directory_stops_growing(const char *dir, char *msg, size_t size)
{
    kvs_options o;
    lt_opts(&o);
    o.segment_max_bytes = 16 << 10;
    o.compact_min_stale_bytes = 32 << 10;
    o.compact_min_stale_ratio = 0.5;
    lt_fail_reset();
    if (!open_store(dir, &o))
        return verdict(msg, size);
    const unsigned rounds = 80;
    uint64_t max_dir = 0, written = 0;
    kvs_stats st;
    for (unsigned r = 0; r < rounds && lt_failures() == 0; r++) {
        for (unsigned k = 0; k < NKEYS; k++)
            set_version(k, r);
        kvs_db_stats(shared, &st);
        written += st.live_bytes;
        uint64_t now = lt_dir_bytes(dir);
        if (now > max_dir)
            max_dir = now;
    }
    kvs_db_stats(shared, &st);
    /* Unbounded, the directory would hold every byte written (rounds x
       live = 80 x). Compaction rewrites a segment when half of it is
       stale, a few segments at a time, so the directory stays near
       2 x live: 1.5 to 2.1 x measured under ASan on an idle machine, and
       from 1.5 to 5.8 x (median 2.3 x) with the suites of tests/log run
       beside it (ctest -j2), which slow compaction's fsyncs down. Before
       (everything compacted at once) it peaked at 5.7 to 6.4 x idle and
       over 20 x loaded. The bound leaves room for a slow, shared machine. */
    if (st.compactions < 5)
        lt_fail("only %llu compactions", (unsigned long long)st.compactions);
    if (max_dir > 8 * st.live_bytes)
        lt_fail("directory grew to %llu bytes for %llu live, %llu written",
                (unsigned long long)max_dir, (unsigned long long)st.live_bytes,
                (unsigned long long)written);
    close_store();
    if (open_store(dir, &o)) {
        static unsigned last[NKEYS];
        for (unsigned k = 0; k < NKEYS; k++)
            last[k] = rounds - 1;
        expect_versions(NKEYS, last, 0);
        if (lt_dir_bytes(dir) > 8 * st.live_bytes)
            lt_fail("directory holds %llu bytes after reopen",
                    (unsigned long long)lt_dir_bytes(dir));
        close_store();
    }
    return verdict(msg, size);
}

/* ---- group commit under "always" ---- */

#define GC_THREADS 50
#define GC_WRITES 40
#define GC_OWN 4 /* keys per thread */

static unsigned gc_final[GC_THREADS * GC_OWN];

/* Thread t owns keys t * GC_OWN ...; write i sets one of them to version
   i, every fifth write sets all of them at once with kvs_db_write. */
static void *gc_writer(void *arg)
{
    unsigned t = (unsigned)(size_t)arg;
    char keys[GC_OWN][16], vals[GC_OWN][512];
    kvs_op ops[GC_OWN];
    for (unsigned i = 1; i <= GC_WRITES && lt_failures() == 0; i++) {
        if (i % 5 != 0) {
            unsigned k = t * GC_OWN + i % GC_OWN;
            set_version(k, i);
            gc_final[k] = i;
            continue;
        }
        for (unsigned j = 0; j < GC_OWN; j++) {
            unsigned k = t * GC_OWN + j;
            snprintf(keys[j], sizeof(keys[j]), "key%u", k);
            size_t len = lt_value(vals[j], sizeof(vals[j]), k, i);
            ops[j] =
                (kvs_op){KVS_OP_SET, kvs_slice_str(keys[j]), kvs_slice_of(vals[j], len), -1, 0};
        }
        int rc = kvs_db_write(shared, ops, GC_OWN);
        if (rc != 0)
            lt_fail("batch of thread %u: %s", t, kvs_strerror(rc));
        for (unsigned j = 0; j < GC_OWN; j++)
            gc_final[t * GC_OWN + j] = i;
    }
    return NULL;
}

/* Reads the writers' keys until they are done: whole values only. */
static void *gc_reader(void *arg)
{
    (void)arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    unsigned seed = 3;
    while (!atomic_load(&writer_done) && lt_failures() == 0) {
        unsigned k = next_rand(&seed) % (GC_THREADS * GC_OWN);
        snprintf(key, sizeof(key), "key%u", k);
        int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
        if (rc != KVS_ENOTFOUND && (rc != 0 || lt_value_check(buf.data, buf.len, k) < 0))
            lt_fail("get key%u: %s, %zu bytes", k, kvs_strerror(rc), buf.len);
    }
    kvs_buf_free(&buf);
    return NULL;
}

bool lt_scn_group_commit(const char *dir, char *msg, size_t size)
{
    static pthread_t t[GC_THREADS];
    pthread_t r;
    kvs_options o;
    lt_opts(&o);
    o.fsync = KVS_FSYNC_ALWAYS;
    o.segment_max_bytes = 8 << 10; /* seals (each an fsync) during group commits */
    lt_fail_reset();
    memset(gc_final, 0, sizeof(gc_final));
    if (!open_store(dir, &o))
        return verdict(msg, size);
    atomic_store(&writer_done, false);
    start(&r, 1, gc_reader, NULL, 0);
    start(t, GC_THREADS, gc_writer, NULL, 0);
    join(t, GC_THREADS);
    atomic_store(&writer_done, true);
    join(&r, 1);
    expect_versions(GC_THREADS * GC_OWN, gc_final, 0);
    close_store();
    if (open_store(dir, &o)) {
        expect_versions(GC_THREADS * GC_OWN, gc_final, 0);
        close_store();
    }
    return verdict(msg, size);
}

/* ---- a failed fsync under group commit ---- */

#define GF_THREADS 16
#define GF_OWN 8
#define GF_WRITES 200

static unsigned gf_acked[GF_THREADS * GF_OWN];
static int gf_error[GF_THREADS];
static atomic_uint gf_writes;

/* Writes its keys until a write fails; remembers the last acknowledged
   version of each and the first error. */
static void *gf_writer(void *arg)
{
    unsigned t = (unsigned)(size_t)arg;
    char keys[2][16], vals[2][512];
    for (unsigned i = 1; i <= GF_WRITES; i++) {
        unsigned k = t * GF_OWN + i % GF_OWN, k2 = t * GF_OWN + (i + 1) % GF_OWN;
        int rc;
        if (i % 3 == 0) {
            snprintf(keys[0], sizeof(keys[0]), "key%u", k);
            snprintf(keys[1], sizeof(keys[1]), "key%u", k2);
            size_t l0 = lt_value(vals[0], sizeof(vals[0]), k, i);
            size_t l1 = lt_value(vals[1], sizeof(vals[1]), k2, i);
            kvs_op ops[2] = {
                {KVS_OP_SET, kvs_slice_str(keys[0]), kvs_slice_of(vals[0], l0), -1, 0},
                {KVS_OP_SET, kvs_slice_str(keys[1]), kvs_slice_of(vals[1], l1), -1, 0},
            };
            rc = kvs_db_write(shared, ops, 2);
        } else {
            snprintf(keys[0], sizeof(keys[0]), "key%u", k);
            size_t l0 = lt_value(vals[0], sizeof(vals[0]), k, i);
            rc = kvs_db_set(shared, kvs_slice_str(keys[0]), kvs_slice_of(vals[0], l0));
        }
        if (rc != 0) {
            gf_error[t] = rc;
            return NULL;
        }
        gf_acked[k] = i;
        if (i % 3 == 0)
            gf_acked[k2] = i;
        atomic_fetch_add(&gf_writes, 1);
    }
    return NULL;
}

/* What the store holds for key k: its version, 0 when missing, -1 bad. */
static long gf_version(unsigned k)
{
    kvs_buf buf = KVS_BUF_INIT;
    char key[16];
    snprintf(key, sizeof(key), "key%u", k);
    int rc = kvs_db_get(shared, kvs_slice_str(key), &buf);
    long v = rc == KVS_ENOTFOUND ? 0 : rc == 0 ? lt_value_check(buf.data, buf.len, k) : -1;
    kvs_buf_free(&buf);
    return v;
}

bool lt_scn_group_commit_failure(const char *dir, char *msg, size_t size)
{
    static pthread_t t[GF_THREADS];
    kvs_options o;
    lt_opts(&o);
    o.fsync = KVS_FSYNC_ALWAYS;
    lt_fail_reset();
    memset(gf_acked, 0, sizeof(gf_acked));
    memset(gf_error, 0, sizeof(gf_error));
    atomic_store(&gf_writes, 0);
    if (!open_store(dir, &o))
        return verdict(msg, size);
    start(t, GF_THREADS, gf_writer, NULL, 0);
    /* Let group commits get going, then fail the third fsync from now. */
    while (atomic_load(&gf_writes) < 100 && lt_failures() == 0)
        sched_yield();
    kvs__fault_set(KVS__FAULT_FSYNC, 3, KVS_EIO);
    join(t, GF_THREADS);
    kvs__fault_set(KVS__FAULT_FSYNC, 0, 0);
    unsigned eio = 0;
    for (unsigned i = 0; i < GF_THREADS; i++) {
        if (gf_error[i] == KVS_EIO)
            eio++;
        else if (gf_error[i] != KVS_EREADONLY)
            lt_fail("thread %u ended with %s, want an error after the failed fsync", i,
                    gf_error[i] ? kvs_strerror(gf_error[i]) : "no error");
    }
    if (eio == 0)
        lt_fail("no writer got the failed fsync's error");
    /* What was acknowledged is visible, and nothing that failed is. */
    for (unsigned k = 0; k < GF_THREADS * GF_OWN && lt_failures() == 0; k++) {
        long v = gf_version(k);
        if (v != (long)gf_acked[k])
            lt_fail("key%u: version %ld, acknowledged %u", k, v, gf_acked[k]);
    }
    int rc = kvs_db_set(shared, kvs_slice_str("after"), kvs_slice_str("failure"));
    if (rc != KVS_EREADONLY)
        lt_fail("set after the failure: %s", kvs_strerror(rc));
    close_store();
    /* After a reopen every acknowledged write is there (a write that
       failed may be there too: it reached the file, not the disk). */
    if (open_store(dir, &o)) {
        for (unsigned k = 0; k < GF_THREADS * GF_OWN && lt_failures() == 0; k++) {
            long v = gf_version(k);
            if (v < (long)gf_acked[k])
                lt_fail("key%u after reopen: version %ld, acknowledged %u", k, v, gf_acked[k]);
        }
        close_store();
    }
    return verdict(msg, size);
}
