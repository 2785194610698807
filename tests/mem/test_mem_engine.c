/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine through libkvs (the contract suites run on it too; this
 * is what only it does): snapshots written and loaded back, a snapshot
 * that is one moment of a writer's order, torn and corrupt snapshots
 * refused naming the file and the offset (and checked and salvaged by
 * kvs_dir_check), a temporary file a crash left, the periodic snapshot
 * and BGSAVE, closing with and without a snapshot, and max_memory.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engines/mem/snapshot.h"
#include "kvs/check.h"
#include "kvs/engine.h"
#include "kvs/kvs.h"
#include "support/tmpdir.h"

static char dir[PATH_MAX], other[PATH_MAX];
static kvs_db *db;
static kvs_options opts;
static char why[KVS_WHY_MAX];

static void setup(void)
{
    cr_assert_eq(ts_tmpdir_make(dir), 0);
    cr_assert_eq(ts_tmpdir_make(other), 0);
    kvs_options_init(&opts);
    opts.engine = "mem";
    opts.snapshot_interval = 0; /* the tests save when they mean to */
}

static void stop_writer(void);

static void teardown(void)
{
    stop_writer(); /* a failed assertion leaves it running */
    kvs_db_close_nosave(db);
    db = NULL;
    ts_tmpdir_remove(dir);
    ts_tmpdir_remove(other);
}

TestSuite(mem_engine, .init = setup, .fini = teardown, .timeout = 120);

#define OK(expr)                                                                                   \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        cr_assert_eq(rc_, 0, "%s: %s", #expr, kvs_err_name(rc_));                                  \
    } while (0)

static int try_open(void)
{
    why[0] = '\0';
    return kvs_db_open(dir, &opts, &db, why);
}

static void open_db(void)
{
    int rc = try_open();
    cr_assert_eq(rc, 0, "open: %s (%s)", kvs_err_name(rc), why);
}

static void close_db(void)
{
    OK(kvs_db_close(db));
    db = NULL;
}

static kvs_slice sl(const char *s)
{
    return kvs_slice_str(s);
}

static void path_of(char *out, const char *name)
{
    snprintf(out, PATH_MAX + 32, "%s/%s", dir, name);
}

/* The value of key, or NULL when it is missing; *at gets its expiry. */
static char *get(const char *key, int64_t *at)
{
    kvs_buf b = KVS_BUF_INIT;
    int64_t t = 0;
    int rc = kvs_db_get_ex(db, sl(key), &b, &t);
    if (rc == KVS_ENOTFOUND)
        return NULL;
    cr_assert_eq(rc, 0, "get %s: %s", key, kvs_err_name(rc));
    char *s = malloc(b.len + 1);
    memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    kvs_buf_free(&b);
    if (at)
        *at = t;
    return s;
}

static void expect(const char *key, const char *want)
{
    char *v = get(key, NULL);
    if (!want)
        cr_assert_null(v, "%s should be missing, holds %s", key, v);
    else
        cr_assert(v && strcmp(v, want) == 0, "%s holds %s, not %s", key, v ? v : "nothing", want);
    free(v);
}

Test(mem_engine, snapshot_round_trip)
{
    open_db();
    char key[32], val[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        OK(kvs_db_set(db, sl(key), sl(val)));
    }
    int64_t later = kvs_now_ms() + 3600 * 1000;
    OK(kvs_db_set_ex(db, sl("expiring"), sl("soon"), later));
    OK(kvs_db_set_ex(db, sl("expired"), sl("gone"), kvs_now_ms() - 1));
    OK(kvs_db_set(db, sl("empty"), sl("")));
    /* Values past a page (a large run) and past a snapshot block. */
    size_t big = 3u << 20;
    char *large = malloc(big);
    for (size_t i = 0; i < big; i++)
        large[i] = (char)('a' + i % 26);
    OK(kvs_db_set(db, sl("large"), kvs_slice_of(large, big)));
    OK(kvs_db_remove(db, sl("k7")));
    OK(kvs_db_save(db));
    OK(kvs_db_close_nosave(db));
    db = NULL;

    open_db();
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        expect(key, i == 7 ? NULL : val);
    }
    int64_t at = 0;
    char *v = get("expiring", &at);
    cr_assert(v && strcmp(v, "soon") == 0);
    cr_assert_eq(at, later, "the expiry time comes back");
    free(v);
    expect("expired", NULL);
    expect("empty", "");
    kvs_buf b = KVS_BUF_INIT;
    OK(kvs_db_get(db, sl("large"), &b));
    cr_assert(b.len == big && memcmp(b.data, large, big) == 0, "the large value comes back");
    kvs_buf_free(&b);
    free(large);
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    /* 4999 + expiring + empty + large; the expired key was left out. */
    cr_assert_eq(st.keys, 5002);
    cr_assert_eq(st.expires, 1);
    cr_assert_gt(st.disk_bytes, 0);
}

Test(mem_engine, close_saves_only_with_an_interval)
{
    open_db();
    OK(kvs_db_set(db, sl("a"), sl("1")));
    close_db(); /* interval 0: no snapshot */
    open_db();
    expect("a", NULL);
    close_db();

    opts.snapshot_interval = 3600;
    open_db();
    OK(kvs_db_set(db, sl("a"), sl("2")));
    close_db(); /* changed since the last snapshot: one is written */
    open_db();
    expect("a", "2");
    OK(kvs_db_set(db, sl("a"), sl("3")));
    OK(kvs_db_close_nosave(db)); /* SHUTDOWN NOSAVE: the change is lost */
    db = NULL;
    open_db();
    expect("a", "2");
}

Test(mem_engine, save_status_and_bgsave)
{
    open_db();
    kvs_save_status st;
    OK(kvs_db_save_status(db, &st));
    cr_assert_eq(st.changes, 0);
    cr_assert_eq(st.saves, 0);
    cr_assert(!st.in_progress);
    OK(kvs_db_set(db, sl("a"), sl("1")));
    OK(kvs_db_set(db, sl("b"), sl("2")));
    OK(kvs_db_remove(db, sl("b")));
    cr_assert_eq(kvs_db_remove(db, sl("b")), KVS_ENOTFOUND);
    OK(kvs_db_save_status(db, &st));
    cr_assert_eq(st.changes, 3, "a remove that found nothing is no change");

    OK(kvs_db_bgsave(db, false));
    for (int i = 0; i < 1000; i++) {
        OK(kvs_db_save_status(db, &st));
        if (st.saves == 1 && !st.in_progress)
            break;
        usleep(10 * 1000);
    }
    cr_assert_eq(st.saves, 1, "the background save ran");
    cr_assert_eq(st.last_status, 0);
    cr_assert_eq(st.changes, 0);
    cr_assert_gt(st.last_bytes, 0);
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_NAME);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert_eq((uint64_t)sb.st_size, st.last_bytes);
}

Test(mem_engine, periodic_snapshot)
{
    opts.snapshot_interval = 1;
    open_db();
    kvs_save_status st;
    OK(kvs_db_set(db, sl("a"), sl("1")));
    for (int i = 0; i < 500; i++) {
        OK(kvs_db_save_status(db, &st));
        if (st.saves > 0)
            break;
        usleep(10 * 1000);
    }
    cr_assert_eq(st.saves, 1, "a snapshot within the interval");
    usleep(2500 * 1000);
    OK(kvs_db_save_status(db, &st));
    cr_assert_eq(st.saves, 1, "no snapshot while nothing changed");
    OK(kvs_db_close_nosave(db));
    db = NULL;
    opts.snapshot_interval = 0;
    open_db();
    expect("a", "1");
}

/* Write a store with a few blocks and save it; close without saving. */
static void make_snapshot(int keys)
{
    open_db();
    char key[32], val[300];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = '\0';
    for (int i = 0; i < keys; i++) {
        snprintf(key, sizeof(key), "key-%06d", i);
        OK(kvs_db_set(db, sl(key), sl(val)));
    }
    OK(kvs_db_save(db));
    OK(kvs_db_close_nosave(db));
    db = NULL;
}

static void expect_refused(const char *what, const char *offset)
{
    int rc = try_open();
    cr_assert_eq(rc, KVS_ECORRUPT, "%s: open gave %s", what, kvs_err_name(rc));
    cr_assert(strstr(why, KMEM_SNAP_NAME) && strstr(why, offset),
              "%s: the reason names the file and %s: %s", what, offset, why);
}

Test(mem_engine, corrupt_snapshots_are_refused)
{
    make_snapshot(10000); /* about 3 MiB: several blocks */
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_NAME);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);

    /* A byte of the first block's payload. */
    unsigned char c;
    off_t at = KMEM_SNAP_HDR + KMEM_SNAP_BLOCK_HDR + 100;
    cr_assert_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    cr_assert_eq(pwrite(fd, &c, 1, at), 1);
    expect_refused("a flipped byte", "offset 32:");
    c ^= 0x20;
    cr_assert_eq(pwrite(fd, &c, 1, at), 1);
    open_db(); /* repaired: loads again */
    OK(kvs_db_close_nosave(db));
    db = NULL;

    /* The header. */
    cr_assert_eq(pread(fd, &c, 1, 3), 1);
    c ^= 1;
    cr_assert_eq(pwrite(fd, &c, 1, 3), 1);
    expect_refused("a damaged header", "offset 0:");
    c ^= 1;
    cr_assert_eq(pwrite(fd, &c, 1, 3), 1);

    /* Torn: the end cut off. */
    cr_assert_eq(ftruncate(fd, sb.st_size - 10), 0);
    char off[48];
    snprintf(off, sizeof(off), "offset %lld:", (long long)(sb.st_size - 10 - 48));
    expect_refused("a torn snapshot", off);
    close(fd);
}

Test(mem_engine, check_reports_and_salvages_around_a_bad_block)
{
    make_snapshot(10000);
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_NAME);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char c;
    off_t at = KMEM_SNAP_HDR + KMEM_SNAP_BLOCK_HDR + 5000;
    cr_assert_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x80;
    cr_assert_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);

    char repair[PATH_MAX + 16];
    snprintf(repair, sizeof(repair), "%s/copy", other);
    FILE *out = tmpfile();
    struct kvs_check_report r;
    memset(&r, 0, sizeof(r));
    int rc = kvs_dir_check(dir, repair, out, &r, why);
    cr_assert_eq(rc, 0, "check: %s (%s)", kvs_err_name(rc), why);
    cr_assert_eq(r.corrupt, 1, "one damaged block");
    cr_assert_gt(r.problems, 0);
    cr_assert(r.salvaged > 0 && r.salvaged < 10000, "the other blocks are salvaged: %llu",
              (unsigned long long)r.salvaged);
    char text[4096] = "";
    rewind(out);
    size_t n = fread(text, 1, sizeof(text) - 1, out);
    text[n] = '\0';
    fclose(out);
    cr_assert(strstr(text, "offset 32 (a block fails its checksum"), "%s", text);

    /* The salvaged copy opens with what was salvaged. */
    kvs_db *copy;
    rc = kvs_db_open(repair, &opts, &copy, why);
    cr_assert_eq(rc, 0, "%s", why);
    kvs_stats st;
    OK(kvs_db_stats(copy, &st));
    cr_assert_eq(st.keys, r.salvaged);
    kvs_db_close_nosave(copy);
}

Test(mem_engine, a_leftover_temporary_file_is_deleted)
{
    make_snapshot(10);
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_TMP);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("half a snapshot", f);
    fclose(f);
    open_db();
    cr_assert_eq(access(p, F_OK), -1, "open deletes it");
    char *v = get("key-000003", NULL);
    cr_assert(v && strlen(v) == 299, "the snapshot loads");
    free(v);
}

/* Fill with values of len bytes until the store is full; returns how
   many went in. */
static int fill(const char *prefix, size_t len)
{
    char *val = malloc(len);
    memset(val, 'x', len);
    char key[48];
    int n = 0;
    for (;; n++) {
        snprintf(key, sizeof(key), "%s-%d", prefix, n);
        int rc = kvs_db_set(db, sl(key), kvs_slice_of(val, len));
        if (rc == KVS_EFULL)
            break;
        cr_assert_eq(rc, 0, "set %s: %s", key, kvs_err_name(rc));
        cr_assert_lt(n, 10000000, "never full");
    }
    free(val);
    return n;
}

Test(mem_engine, max_memory_refuses_writes_and_goes_on_with_reads_and_deletes)
{
    opts.max_memory = 16u << 20;
    open_db();
    int small = fill("small", 100);
    cr_assert_gt(small, 16 * 1024 * 1024 / 300, "most of the memory holds items: %d", small);
    char hundred[101];
    memset(hundred, 'x', 100);
    hundred[100] = '\0';
    expect("small-0", hundred); /* reads go on */
    OK(kvs_db_remove(db, sl("small-1")));
    /* Free every small item, then fill with large ones: the pages the
       small ones held serve the large class. */
    char key[48];
    for (int i = 0; i < small; i++) {
        snprintf(key, sizeof(key), "small-%d", i);
        int rc = kvs_db_remove(db, sl(key));
        cr_assert(rc == 0 || (i == 1 && rc == KVS_ENOTFOUND));
    }
    int large = fill("large", 100000);
    cr_assert_gt(large, (16 << 20) / 100000 * 7 / 10,
                 "after freeing small items, large ones fit: %d", large);
    kvs_stats st;
    OK(kvs_db_stats(db, &st));
    cr_assert_lt(st.live_bytes, (16u << 20) * 9 / 8, "the headroom holds: %llu bytes",
                 (unsigned long long)st.live_bytes);

    /* A batch when full: its sets are refused, its removes done. */
    kvs_op ops[3] = {
        {.type = KVS_OP_SET, .key = sl("new-1"), .value = sl("v")},
        {.type = KVS_OP_REMOVE, .key = sl("large-0")},
        {.type = KVS_OP_SET, .key = sl("new-2"), .value = sl("v")},
    };
    OK(kvs_db_write(db, ops, 3));
    cr_assert_eq(ops[0].result, KVS_EFULL);
    cr_assert_eq(ops[1].result, 0);
    cr_assert_eq(ops[2].result, KVS_EFULL);
    expect("large-0", NULL);
    expect("new-1", NULL);
}

Test(mem_engine, a_snapshot_past_max_memory_is_refused)
{
    make_snapshot(20000); /* about 6 MiB of items */
    opts.max_memory = 4u << 20;
    int rc = try_open();
    cr_assert_eq(rc, KVS_EFULL, "%s (%s)", kvs_err_name(rc), why);
    cr_assert(strstr(why, "max_memory"), "%s", why);
}

/* ---- a snapshot is one moment of the order of writes ---- */

#define RING 1000 /* keys the writer cycles through */

struct writer {
    kvs_db *db;
    atomic_bool stop;
    atomic_ulong done;
};

/* Write j sets key j % RING to j, for j = 0, 1, 2...: every prefix of the
   order gives one state, which a snapshot must be. */
static void *write_in_order(void *arg)
{
    struct writer *w = arg;
    char key[16], val[32];
    for (unsigned long j = 0; !atomic_load(&w->stop); j++) {
        snprintf(key, sizeof(key), "r%lu", j % RING);
        snprintf(val, sizeof(val), "%lu", j);
        if (kvs_db_set(w->db, sl(key), sl(val)) != 0)
            break;
        atomic_store(&w->done, j + 1);
    }
    return NULL;
}

static struct writer the_writer;
static pthread_t writer_thread;
static bool writer_running;

static void stop_writer(void)
{
    if (!writer_running)
        return;
    atomic_store(&the_writer.stop, true);
    pthread_join(writer_thread, NULL);
    writer_running = false;
}

struct seen {
    unsigned long j[RING];
    bool present[RING];
    unsigned long n;
};

static int note(void *ctx, kvs_slice key, kvs_slice value, int64_t at, uint64_t offset)
{
    struct seen *s = ctx;
    (void)at, (void)offset;
    char k[16] = "", v[32] = "";
    memcpy(k, key.data, key.len < 15 ? key.len : 15);
    memcpy(v, value.data, value.len < 31 ? value.len : 31);
    unsigned long i = strtoul(k + 1, NULL, 10);
    if (k[0] != 'r' || i >= RING || s->present[i])
        return KVS_ECORRUPT;
    s->present[i] = true;
    s->j[i] = strtoul(v, NULL, 10);
    s->n++;
    return 0;
}

Test(mem_engine, a_snapshot_is_a_prefix_of_the_writes)
{
    open_db();
    struct writer *w = &the_writer;
    w->db = db;
    cr_assert_eq(pthread_create(&writer_thread, NULL, write_in_order, w), 0);
    writer_running = true;
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_NAME);
    int checked = 0;
    for (int round = 0; round < 30; round++) {
        unsigned long before = atomic_load(&w->done);
        OK(kvs_db_save(db));
        unsigned long after = atomic_load(&w->done);
        int fd = open(p, O_RDONLY);
        cr_assert_geq(fd, 0);
        struct seen *s = calloc(1, sizeof(*s));
        struct kmem_snap_calls calls = {.record = note, .ctx = s};
        struct kmem_snap_summary sum;
        int rc = kmem_snap_read(fd, p, &calls, NULL, &sum, why);
        close(fd);
        cr_assert_eq(rc, 0, "%s", why);
        /* m: the writes the snapshot holds, from its newest value. */
        unsigned long m = 0;
        for (unsigned i = 0; i < RING; i++)
            if (s->present[i] && s->j[i] + 1 > m)
                m = s->j[i] + 1;
        cr_assert(m >= before && m <= after + 1,
                  "round %d: holds %lu writes, acknowledged %lu..%lu", round, m, before, after);
        for (unsigned long i = 0; i < RING; i++) {
            if (i >= m) {
                cr_assert(!s->present[i], "key %lu, never written by write %lu, is there", i, m);
                continue;
            }
            unsigned long want =
                i + (m - 1 - i) / RING * RING; /* the last write of key i before m */
            cr_assert(s->present[i] && s->j[i] == want,
                      "round %d: key %lu holds write %lu, but the snapshot of %lu writes has %lu",
                      round, i, s->present[i] ? s->j[i] : 0, m, want);
        }
        free(s);
        checked++;
    }
    stop_writer();
    cr_assert_eq(checked, 30);
}

Test(mem_engine, a_key_twice_in_a_snapshot_is_refused)
{
    make_snapshot(1); /* the ENGINE record */
    char p[PATH_MAX + 32];
    path_of(p, KMEM_SNAP_NAME);
    int fd = open(p, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    struct kmem_snap_writer w;
    kmem_snap_writer_init(&w, fd);
    OK(kmem_snap_add(&w, sl("a"), sl("1"), 0));
    OK(kmem_snap_add(&w, sl("b"), sl("2"), 0));
    OK(kmem_snap_add(&w, sl("a"), sl("3"), 0));
    OK(kmem_snap_finish(&w, kvs_now_ms()));
    kmem_snap_writer_free(&w);
    close(fd);
    /* The third record: header, block header, two records of 18 bytes. */
    char off[32];
    snprintf(off, sizeof(off), "offset %d:", KMEM_SNAP_HDR + KMEM_SNAP_BLOCK_HDR + 2 * 18);
    expect_refused("a key twice", off);
}
