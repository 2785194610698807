/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O faults: make the Nth write, fsync or rename of a workload fail, for
 * every N up to the number of such calls the workload makes, and check what
 * the engine acknowledged against what survives a reopen.
 *
 * The workload is a fixed list of sets, removes and compactions (kvs, with
 * 4 KiB segments so that segments rotate and compactions have several
 * inputs and outputs) or syncs (lmdb). A clean run first measures how many
 * calls of each kind every operation makes (the fileio layer has no
 * counter, so a countdown is armed before the operation and drained by
 * cheap probe calls after it). Then for each N the workload runs with the
 * Nth call failing with KVS_EIO or KVS_ENOSPC, and:
 *  - the operation the fault lands in returns an error (a set or remove is
 *    never acknowledged; a compaction may report it or absorb it);
 *  - after a failed fsync of the write path every write answers
 *    KVS_EREADONLY while every read still answers with the acknowledged
 *    value; after any other fault the rest of the workload must succeed;
 *  - once disarmed, the store reopens holding every acknowledged write with
 *    its exact value and no acknowledged remove undone. The write whose
 *    fsync failed may be there or not (its bytes reached the kernel).
 *
 * lmdb does its own reads and writes: only its sync path (kvs_db_sync, the
 * everysec thread, close) goes through fileio, so only fsync faults apply.
 *
 * The kvs engine's index takes a fixed salt (kvs__klog_test_salt), so that
 * its compactions lay out their outputs, and so call the fileio layer,
 * the same way in every run.
 *
 * Stores live under /dev/shm when it exists (files on tmpfs, where an fsync
 * costs nothing: the faults are injected, not real), else under /tmp.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fileio.h"
#include "engines/log/index.h"
#include "kvs/kvs.h"
#include "support/server.h"

#define NOPS 100
#define NKEYS 16
/* Countdown armed while measuring one operation; must exceed its calls. */
#define PROBE_BIG 512
/* The error the measuring countdown injects: no real call returns it. */
#define PROBE_ERR KVS_EPROTO

enum op_kind { OP_SET, OP_DEL, OP_BATCH, OP_COMPACT, OP_SYNC };

/* A batch (kvs_db_write) is a set of key, a remove of key2, a set of key3. */
#define BATCH_OPS 3

struct op {
    enum op_kind kind;
    unsigned key, ver;
    unsigned key2, key3, ver3; /* OP_BATCH */
};

static bool is_write(const struct op *o)
{
    return o->kind == OP_SET || o->kind == OP_DEL || o->kind == OP_BATCH;
}

static const char *const kind_names[] = {"write", "fsync", "rename"};

struct fixture {
    const char *engine;
    kvs_fsync policy;
    struct op ops[NOPS];
    unsigned long calls[NOPS][KVS__FAULT_NOPS]; /* per operation, from the clean run */
    char base[PATH_MAX];
    int devnull;
};

static void make_ops(struct fixture *f)
{
    bool kvs = strcmp(f->engine, "kvs") == 0;
    for (unsigned i = 0; i < NOPS; i++) {
        struct op *o = &f->ops[i];
        if (i % 25 == 24)
            *o = (struct op){.kind = kvs ? OP_COMPACT : OP_SYNC};
        else if (!kvs && i % 10 == 9)
            *o = (struct op){.kind = OP_SYNC};
        else if (i % 5 == 3)
            *o = (struct op){.kind = OP_DEL, .key = (i * 7) % NKEYS};
        else if (i % 7 == 5)
            *o = (struct op){.kind = OP_BATCH,
                             .key = (i * 3) % NKEYS,
                             .ver = i + 1,
                             .key2 = (i * 5 + 1) % NKEYS,
                             .key3 = (i * 13 + 2) % NKEYS,
                             .ver3 = i + 1001};
        else
            *o = (struct op){.kind = OP_SET, .key = (i * 11) % NKEYS, .ver = i + 1};
    }
}

static void key_of(char *out, size_t size, unsigned k)
{
    snprintf(out, size, "key-%02u", k);
}

/* 50..900 bytes: a few records fill a 4 KiB segment. */
static size_t value_of(char *out, size_t size, unsigned k, unsigned ver)
{
    size_t len = 50 + (k * 131 + ver * 61) % 850;
    cr_assert(len < size);
    int n = snprintf(out, size, "%u@%u:", k, ver);
    for (size_t j = (size_t)n; j < len; j++)
        out[j] = (char)('a' + (j * 7 + k + ver) % 26);
    return len;
}

static kvs_db *open_store(struct fixture *f, const char *dir)
{
    kvs_options o;
    kvs_options_init(&o);
    o.engine = f->engine;
    o.fsync = f->policy;
    o.segment_max_bytes = 4096;
    o.compact_min_stale_bytes = UINT64_MAX; /* compactions only where the workload says */
    kvs_db *db;
    char why[KVS_WHY_MAX] = "";
    int rc = kvs_db_open(dir, &o, &db, why);
    cr_assert_eq(rc, 0, "open %s: %s (%s)", dir, kvs_strerror(rc), why);
    return db;
}

static int run_op(kvs_db *db, const struct op *o)
{
    char k[16], v[1024];
    key_of(k, sizeof(k), o->key);
    switch (o->kind) {
    case OP_SET: {
        size_t len = value_of(v, sizeof(v), o->key, o->ver);
        return kvs_db_set(db, kvs_slice_of(k, strlen(k)), kvs_slice_of(v, len));
    }
    case OP_DEL: {
        int rc = kvs_db_remove(db, kvs_slice_of(k, strlen(k)));
        return rc == KVS_ENOTFOUND ? 0 : rc;
    }
    case OP_BATCH: {
        char k2[16], k3[16], v3[1024];
        size_t len = value_of(v, sizeof(v), o->key, o->ver);
        key_of(k2, sizeof(k2), o->key2);
        key_of(k3, sizeof(k3), o->key3);
        size_t len3 = value_of(v3, sizeof(v3), o->key3, o->ver3);
        kvs_op ops[BATCH_OPS] = {
            {KVS_OP_SET, kvs_slice_of(k, strlen(k)), kvs_slice_of(v, len), 0, 0},
            {KVS_OP_REMOVE, kvs_slice_of(k2, strlen(k2)), kvs_slice_of(NULL, 0), 0, 0},
            {KVS_OP_SET, kvs_slice_of(k3, strlen(k3)), kvs_slice_of(v3, len3), 0, 0},
        };
        return kvs_db_write(db, ops, BATCH_OPS);
    }
    case OP_COMPACT:
        return kvs_db_compact(db);
    case OP_SYNC:
        return kvs_db_sync(db);
    }
    return KVS_EINVAL;
}

/* One call of kind through fileio that cannot do anything. */
static int probe_call(struct fixture *f, enum kvs__fault_op kind)
{
    switch (kind) {
    case KVS__FAULT_WRITE:
        return kvs__pwrite_all(f->devnull, "x", 1, 0);
    case KVS__FAULT_FSYNC:
        return kvs__fdatasync(f->devnull); /* EINVAL: a real failure, not ours */
    default:
        return kvs__rename(AT_FDCWD, "/nonexistent-kvs-a", "/nonexistent-kvs-b");
    }
}

/* Calls of kind made since the countdown was armed at PROBE_BIG. */
static unsigned long drain(struct fixture *f, enum kvs__fault_op kind)
{
    for (unsigned long i = 1; i <= PROBE_BIG; i++) {
        if (probe_call(f, kind) == PROBE_ERR)
            return PROBE_BIG - i;
    }
    cr_assert_fail("the %s countdown fired inside an operation: raise PROBE_BIG", kind_names[kind]);
    return 0;
}

static void measure(struct fixture *f)
{
    char dir[PATH_MAX + 32];
    snprintf(dir, sizeof(dir), "%s/clean", f->base);
    kvs_db *db = open_store(f, dir);
    for (unsigned i = 0; i < NOPS; i++) {
        for (int k = 0; k < KVS__FAULT_NOPS; k++)
            kvs__fault_set(k, PROBE_BIG, PROBE_ERR);
        int rc = run_op(db, &f->ops[i]);
        cr_assert(rc == 0 || rc == KVS_ENOTSUP, "clean run, op %u: %s", i, kvs_strerror(rc));
        for (int k = 0; k < KVS__FAULT_NOPS; k++)
            f->calls[i][k] = drain(f, k);
    }
    for (int k = 0; k < KVS__FAULT_NOPS; k++)
        kvs__fault_set(k, 0, 0);
    kvs_db_close(db);
    ts_tmpdir_remove(dir);
}

/* What the store must hold: ver of each key, 0 absent. A key the failed
   write touched may instead hold one of its alternatives (what a prefix of
   the failed write would have left). */
#define NALT (BATCH_OPS + 1)
struct model {
    unsigned state[NKEYS];
    unsigned alt[NKEYS][NALT];
    unsigned nalt[NKEYS];
};

/* Apply the first n changes of o (all: BATCH_OPS). */
static void apply_n(unsigned *state, const struct op *o, unsigned n)
{
    if (o->kind == OP_SET && n)
        state[o->key] = o->ver;
    else if (o->kind == OP_DEL && n)
        state[o->key] = 0;
    else if (o->kind == OP_BATCH) {
        if (n > 0)
            state[o->key] = o->ver;
        if (n > 1)
            state[o->key2] = 0;
        if (n > 2)
            state[o->key3] = o->ver3;
    }
}

static void apply(struct model *m, const struct op *o)
{
    apply_n(m->state, o, BATCH_OPS);
}

/* The failed write o may have left any prefix of its changes. */
static void allow_prefixes(struct model *m, const struct op *o)
{
    for (unsigned n = 1; n <= BATCH_OPS; n++) {
        unsigned s[NKEYS];
        memcpy(s, m->state, sizeof(s));
        apply_n(s, o, n);
        for (unsigned k = 0; k < NKEYS; k++) {
            if (s[k] != m->state[k] && m->nalt[k] < NALT)
                m->alt[k][m->nalt[k]++] = s[k];
        }
    }
}

/* Whether a get of key returning rc and buf found version ver (0: absent). */
static bool holds(int rc, const kvs_buf *buf, unsigned key, unsigned ver)
{
    if (!ver)
        return rc == KVS_ENOTFOUND;
    char v[1024];
    size_t len = value_of(v, sizeof(v), key, ver);
    return rc == 0 && buf->len == len && memcmp(buf->data, v, len) == 0;
}

static void expect_contents(kvs_db *db, const struct model *m, const char *when)
{
    kvs_buf buf = KVS_BUF_INIT;
    for (unsigned key = 0; key < NKEYS; key++) {
        char k[16], v[1024];
        key_of(k, sizeof(k), key);
        int rc = kvs_db_get(db, kvs_slice_of(k, strlen(k)), &buf);
        unsigned want = m->state[key];
        bool alt = false;
        for (unsigned a = 0; a < m->nalt[key] && !alt; a++)
            alt = holds(rc, &buf, key, m->alt[key][a]);
        if (alt)
            continue;
        if (!want) {
            cr_assert_eq(rc, KVS_ENOTFOUND, "%s: removed %s is back (%s)", when, k,
                         kvs_strerror(rc));
            continue;
        }
        size_t len = value_of(v, sizeof(v), key, want);
        cr_assert_eq(rc, 0, "%s: acknowledged %s: %s", when, k, kvs_strerror(rc));
        cr_assert(buf.len == len && memcmp(buf.data, v, len) == 0,
                  "%s: %s holds another value than version %u", when, k, want);
    }
    kvs_buf_free(&buf);
}

struct tally {
    unsigned long points;      /* faults injected */
    unsigned long write_ops;   /* landed in a set or remove, which failed */
    unsigned long maint_ops;   /* landed in a compaction or sync */
    unsigned long absorbed;    /* ... which still returned 0 */
    unsigned long readonly;    /* the store refused writes afterwards */
    unsigned long maybe_there; /* keys of the failed write changed after reopen */
};

/* Run the workload with the nth call of kind failing with err. */
static void run_fault(struct fixture *f, enum kvs__fault_op kind, unsigned long n, int err,
                      struct tally *t)
{
    char dir[PATH_MAX + 32], when[128];
    snprintf(dir, sizeof(dir), "%s/f-%s-%lu", f->base, kind_names[kind], n);
    kvs_db *db = open_store(f, dir);
    struct model m = {0};
    const struct op *failed = NULL;
    kvs__fault_set(kind, n, err);
    unsigned long before = 0;
    bool hit = false, ro = false;
    for (unsigned i = 0; i < NOPS; i++) {
        const struct op *o = &f->ops[i];
        bool here = !hit && before < n && n <= before + f->calls[i][kind];
        before += f->calls[i][kind];
        snprintf(when, sizeof(when), "%s %s #%lu (%s), op %u", f->engine, kind_names[kind], n,
                 kvs_strerror(err), i);
        int rc = run_op(db, o);
        if (rc == KVS_ENOTSUP)
            rc = 0;
        if (!here) {
            if (ro && is_write(o)) {
                cr_assert_eq(rc, KVS_EREADONLY, "%s: a write after the failed fsync: %s", when,
                             kvs_strerror(rc));
                continue;
            }
            cr_assert(rc == 0 || ro, "%s: the store did not recover from the fault: %s", when,
                      kvs_strerror(rc));
            if (rc == 0)
                apply(&m, o);
            continue;
        }
        hit = true;
        t->points++;
        struct model now = m;
        if (is_write(o)) {
            t->write_ops++;
            cr_assert_neq(rc, 0, "%s: a write whose %s failed was acknowledged", when,
                          kind_names[kind]);
            cr_assert(rc == err || rc == KVS_EREADONLY, "%s: returned %s", when, kvs_strerror(rc));
            /* A batch may have applied a prefix (kvs.h); after a reopen, so
               may a single write whose fsync failed: it reached the kernel. */
            if (o->kind == OP_BATCH)
                allow_prefixes(&now, o);
            if (kind == KVS__FAULT_FSYNC || o->kind == OP_BATCH) {
                allow_prefixes(&m, o);
                failed = o;
            }
        } else {
            t->maint_ops++;
            t->absorbed += rc == 0;
        }
        /* Reads go on, with the acknowledged values (a failed single
   write is not visible in this session). */
        expect_contents(db, &now, when);
        /* Does the store still take writes? */
        char k[] = "probe";
        int wrc = kvs_db_set(db, kvs_slice_of(k, 5), kvs_slice_of(k, 5));
        if (wrc == 0)
            wrc = kvs_db_remove(db, kvs_slice_of(k, 5));
        ro = wrc != 0;
        if (ro) {
            cr_assert_eq(wrc, KVS_EREADONLY, "%s: write after the fault: %s", when,
                         kvs_strerror(wrc));
            t->readonly++;
        }
        if (kind == KVS__FAULT_FSYNC && is_write(o))
            cr_assert(ro, "%s: writes accepted after a failed fsync", when);
        if (kind != KVS__FAULT_FSYNC)
            cr_assert(!ro, "%s: writes refused after a failed %s", when, kind_names[kind]);
    }
    cr_assert(hit, "%s call #%lu never came", kind_names[kind], n);
    kvs_db_close(db);
    kvs__fault_set(kind, 0, 0);

    db = open_store(f, dir);
    snprintf(when, sizeof(when), "%s %s #%lu (%s), after reopen", f->engine, kind_names[kind], n,
             kvs_strerror(err));
    expect_contents(db, &m, when);
    if (failed) {
        kvs_buf buf = KVS_BUF_INIT;
        bool changed = false;
        for (unsigned key = 0; key < NKEYS; key++) {
            char k[16];
            key_of(k, sizeof(k), key);
            int rc = kvs_db_get(db, kvs_slice_of(k, strlen(k)), &buf);
            changed = changed || !holds(rc, &buf, key, m.state[key]);
        }
        t->maybe_there += changed;
        kvs_buf_free(&buf);
    }
    /* The reopened store takes writes again. */
    char k[] = "after";
    cr_assert_eq(kvs_db_set(db, kvs_slice_of(k, 5), kvs_slice_of(k, 5)), 0, "%s: set", when);
    kvs_db_close(db);
    ts_tmpdir_remove(dir);
}

/* Static: a failed assertion ends the test's process without freeing it;
   the suite's fini removes its directory. */
static struct fixture fixture;

static void cleanup(void)
{
    if (fixture.base[0])
        ts_tmpdir_remove(fixture.base);
    fixture.base[0] = '\0';
}

TestSuite(faults, .fini = cleanup);

static void sweep(const char *engine, kvs_fsync policy, enum kvs__fault_op kind)
{
    struct fixture *f = &fixture;
    memset(f, 0, sizeof(*f));
    f->engine = engine;
    f->policy = policy;
    kvs__klog_test_salt = UINT64_C(0x5a17ed5a17ed5a17);
    make_ops(f);
    const char *shm = "/dev/shm";
    struct stat st;
    if (stat(shm, &st) == 0 && S_ISDIR(st.st_mode))
        setenv("TMPDIR", shm, 1);
    cr_assert_eq(ts_tmpdir_make(f->base), 0);
    f->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cr_assert(f->devnull >= 0);
    measure(f);
    unsigned long total = 0;
    for (unsigned i = 0; i < NOPS; i++)
        total += f->calls[i][kind];
    static const int errs[] = {KVS_EIO, KVS_ENOSPC};
    for (size_t e = 0; e < 2; e++) {
        struct tally t = {0};
        for (unsigned long n = 1; n <= total; n++)
            run_fault(f, kind, n, errs[e], &t);
        printf("faults: %s (fsync %s) %s %s: %lu points injected (%lu in writes, all refused; "
               "%lu in compactions/syncs, %lu absorbed); read-only after %lu; the failed write "
               "(partly) there after reopen %lu times\n",
               engine, kvs_fsync_name(policy), kind_names[kind], kvs_err_name(errs[e]), t.points,
               t.write_ops, t.maint_ops, t.absorbed, t.readonly, t.maybe_there);
        fflush(stdout);
    }
    close(f->devnull);
    cleanup();
}

Test(faults, kvs_write)
{
    sweep("kvs", KVS_FSYNC_ALWAYS, KVS__FAULT_WRITE);
}

Test(faults, kvs_fsync)
{
    sweep("kvs", KVS_FSYNC_ALWAYS, KVS__FAULT_FSYNC);
}

Test(faults, kvs_rename)
{
    sweep("kvs", KVS_FSYNC_ALWAYS, KVS__FAULT_RENAME);
}

/* Under "no" the write path fsyncs only when it seals a segment. */
Test(faults, kvs_policy_no)
{
    sweep("kvs", KVS_FSYNC_NO, KVS__FAULT_WRITE);
    sweep("kvs", KVS_FSYNC_NO, KVS__FAULT_FSYNC);
}

Test(faults, lmdb_fsync)
{
    sweep("lmdb", KVS_FSYNC_NO, KVS__FAULT_FSYNC);
}

/* lmdb writes and renames through LMDB itself: the workload makes none
   through fileio, so there is no fault point to inject there. */
Test(faults, lmdb_has_no_write_or_rename_points)
{
    struct fixture *f = &fixture;
    f->engine = "lmdb";
    f->policy = KVS_FSYNC_ALWAYS; /* LMDB syncs its commits itself */
    make_ops(f);
    cr_assert_eq(ts_tmpdir_make(f->base), 0);
    f->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    measure(f);
    unsigned long w = 0, r = 0;
    for (unsigned i = 0; i < NOPS; i++) {
        w += f->calls[i][KVS__FAULT_WRITE];
        r += f->calls[i][KVS__FAULT_RENAME];
    }
    printf("faults: lmdb write: %lu points, rename: %lu points (LMDB does its own I/O)\n", w, r);
    cr_expect_eq(w, 0);
    cr_expect_eq(r, 0);
    close(f->devnull);
    cleanup();
}

/*
 * The smallest case the kvs_write sweep found: a batch whose records span a
 * segment rotation, the write of its last record failing. The batch reports
 * the error; a set after it must be applied before it is acknowledged.
 */
Test(faults, kvs_batch_write_fault_across_rotation)
{
    char dir[PATH_MAX + 16];
    cr_assert_eq(ts_tmpdir_make(fixture.base), 0);
    snprintf(dir, sizeof(dir), "%s/store", fixture.base);
    kvs_options o;
    kvs_options_init(&o);
    o.engine = "kvs";
    o.fsync = KVS_FSYNC_ALWAYS;
    o.segment_max_bytes = 4096;
    kvs_db *db;
    cr_assert_eq(kvs_db_open(dir, &o, &db, NULL), 0);
    static char v[2000];
    memset(v, 'v', sizeof(v));
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("b"), kvs_slice_str("old")), 0);
    /* a and the remove of b fill the first segment; c goes to a new one. */
    kvs_op ops[3] = {
        {KVS_OP_SET, kvs_slice_str("a"), kvs_slice_of(v, sizeof(v)), 0, 0},
        {KVS_OP_REMOVE, kvs_slice_str("b"), kvs_slice_of(NULL, 0), 0, 0},
        {KVS_OP_SET, kvs_slice_str("c"), kvs_slice_of(v, sizeof(v)), 0, 0},
    };
    /* Writes: a and b together, the new segment's header, then c. */
    kvs__fault_set(KVS__FAULT_WRITE, 3, KVS_EIO);
    cr_expect_eq(kvs_db_write(db, ops, 3), KVS_EIO);
    kvs__fault_set(KVS__FAULT_WRITE, 0, 0);
    cr_assert_eq(kvs_db_set(db, kvs_slice_str("probe"), kvs_slice_str("x")), 0);
    kvs_buf buf = KVS_BUF_INIT;
    int rc = kvs_db_get(db, kvs_slice_str("probe"), &buf);
    cr_expect_eq(rc, 0, "an acknowledged set is not visible: %s", kvs_strerror(rc));
    rc = kvs_db_get(db, kvs_slice_str("c"), &buf);
    cr_expect_eq(rc, KVS_ENOTFOUND, "the failed record is visible: %s", kvs_strerror(rc));
    kvs_buf_free(&buf);
    kvs_db_close(db);
    cleanup();
}
