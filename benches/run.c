/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The timed part of kvs-bench (see run.h): worker threads, one operation
 * function per kind, per-thread latency histograms merged at the end, and
 * the first failure reported and made to stop the others.
 */
#include "run.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"

atomic_bool bench_interrupted;

/* What the workers of one run share. */
struct shared {
    const run_spec *spec;
    pthread_barrier_t barrier;
    atomic_bool stop; /* set by the first failure */
    /* Guards err and failed: the first failing worker writes its message. */
    pthread_mutex_t lock;
    int failed;
    char err[512];
};

struct worker {
    struct shared *sh;
    unsigned tid;
    uint64_t first; /* first key number (sequential kinds) */
    uint64_t count; /* operations to do */
    uint64_t done;
    uint64_t rng;
    uint64_t start_ns, end_ns;
    uint8_t *key;
    uint8_t *val;
    kvs_buf out;
    hist lat;
    /* Sets gathered for one kvs_db_write() (spec->batch > 1). */
    kvs_op *ops;
    uint8_t *bkeys, *bvals;
    size_t nops;
    /* OP_SCAN: where the pass is, and what it and the last step visited. */
    uint64_t cursor, pass_keys, step_keys;
};

typedef int (*op_fn)(struct worker *w, uint64_t n);

static int fail(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct worker *w, const char *fmt, ...)
{
    struct shared *sh = w->sh;
    pthread_mutex_lock(&sh->lock);
    if (!sh->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->err, sizeof(sh->err), fmt, ap);
        va_end(ap);
        sh->failed = 1;
    }
    pthread_mutex_unlock(&sh->lock);
    atomic_store(&sh->stop, true);
    return -1;
}

static kvs_slice key_slice(struct worker *w, uint64_t id)
{
    key_make(w->sh->spec->ks, id, w->key);
    return kvs_slice_of(w->key, w->sh->spec->ks->key_size);
}

/* Write the gathered sets as one batch; each counts the batch's latency. */
static int flush_batch(struct worker *w)
{
    if (w->nops == 0)
        return 0;
    uint64_t t0 = now_ns();
    int rc = kvs_db_write(w->sh->spec->db, w->ops, w->nops);
    uint64_t ns = now_ns() - t0;
    for (size_t i = 0; i < w->nops; i++)
        hist_add(&w->lat, ns);
    size_t n = w->nops;
    w->nops = 0;
    if (rc != 0)
        return fail(w, "batch of %zu sets: %s", n, kvs_strerror(rc));
    return 0;
}

static int batched_set(struct worker *w, uint64_t id)
{
    const run_spec *s = w->sh->spec;
    uint8_t *key = w->bkeys + w->nops * s->ks->key_size;
    uint8_t *val = w->bvals + w->nops * s->ks->value_size;
    key_make(s->ks, id, key);
    value_make(s->ks, id, s->version, val);
    w->ops[w->nops++] = (kvs_op){KVS_OP_SET, kvs_slice_of(key, s->ks->key_size),
                                 kvs_slice_of(val, s->ks->value_size), 0, 0};
    return w->nops == s->batch ? flush_batch(w) : 0;
}

static int timed_set(struct worker *w, uint64_t id, const char *what)
{
    const run_spec *s = w->sh->spec;
    if (w->ops) /* batching (the background writer never does) */
        return batched_set(w, id);
    kvs_slice key = key_slice(w, id);
    value_make(s->ks, id, s->version, w->val);
    uint64_t t0 = now_ns();
    int rc = kvs_db_set(s->db, key, kvs_slice_of(w->val, s->ks->value_size));
    hist_add(&w->lat, now_ns() - t0);
    if (rc != 0)
        return fail(w, "%s of key id %016" PRIx64 ": %s", what, id, kvs_strerror(rc));
    return 0;
}

static int timed_get_check(struct worker *w, uint64_t id)
{
    const run_spec *s = w->sh->spec;
    kvs_slice key = key_slice(w, id);
    uint64_t t0 = now_ns();
    int rc = kvs_db_get(s->db, key, &w->out);
    hist_add(&w->lat, now_ns() - t0);
    if (rc != 0)
        return fail(w, "get of key id %016" PRIx64 ": %s", id, kvs_strerror(rc));
    char why[128];
    if (!value_check(s->ks, id, s->max_version, w->out.data, w->out.len, why, sizeof(why)))
        return fail(w, "get of key id %016" PRIx64 " returned a wrong value: %s", id, why);
    return 0;
}

static int op_insert(struct worker *w, uint64_t n)
{
    return timed_set(w, key_id(w->sh->spec->ks, w->first + n), "set");
}

static int op_overwrite(struct worker *w, uint64_t n)
{
    (void)n;
    uint64_t i = rng_below(&w->rng, w->sh->spec->keys);
    return timed_set(w, key_id(w->sh->spec->ks, i), "overwrite");
}

static int op_read(struct worker *w, uint64_t n)
{
    (void)n;
    uint64_t i = rng_below(&w->rng, w->sh->spec->keys);
    return timed_get_check(w, key_id(w->sh->spec->ks, i));
}

static int op_miss(struct worker *w, uint64_t n)
{
    (void)n;
    const run_spec *s = w->sh->spec;
    uint64_t id = key_id(s->ks, MISS_BASE + (rng_next(&w->rng) & (MISS_BASE - 1)));
    kvs_slice key = key_slice(w, id);
    uint64_t t0 = now_ns();
    int rc = kvs_db_get(s->db, key, &w->out);
    hist_add(&w->lat, now_ns() - t0);
    if (rc == 0)
        return fail(w, "get of never-written key id %016" PRIx64 " found a value", id);
    if (rc != KVS_ENOTFOUND)
        return fail(w, "get of missing key id %016" PRIx64 ": %s", id, kvs_strerror(rc));
    return 0;
}

static int op_mixed(struct worker *w, uint64_t n)
{
    if (rng_below(&w->rng, 10) == 0)
        return op_overwrite(w, n);
    return op_read(w, n);
}

static int op_delete(struct worker *w, uint64_t n)
{
    const run_spec *s = w->sh->spec;
    uint64_t id = key_id(s->ks, w->first + n);
    kvs_slice key = key_slice(w, id);
    uint64_t t0 = now_ns();
    int rc = kvs_db_remove(s->db, key);
    hist_add(&w->lat, now_ns() - t0);
    if (rc != 0)
        return fail(w, "remove of key id %016" PRIx64 ": %s", id, kvs_strerror(rc));
    return 0;
}

static int op_named_set(struct worker *w, uint64_t n)
{
    char key[32];
    int len = snprintf(key, sizeof(key), "key%" PRIu64, w->first + n + 1);
    uint64_t t0 = now_ns();
    int rc = kvs_db_set(w->sh->spec->db, kvs_slice_of(key, (size_t)len), kvs_slice_str("value"));
    hist_add(&w->lat, now_ns() - t0);
    if (rc != 0)
        return fail(w, "set of %s: %s", key, kvs_strerror(rc));
    return 0;
}

static int count_key(void *ctx, kvs_slice key, const kvs_slice *value, int64_t expire_at)
{
    (void)expire_at;
    (void)key;
    (void)value;
    ((struct worker *)ctx)->step_keys++;
    return 0;
}

/* One step of a pass; a pass over an unchanging store visits every key
   exactly once (kvs.h), which is checked. */
static int op_scan(struct worker *w, uint64_t n)
{
    (void)n;
    const run_spec *s = w->sh->spec;
    w->step_keys = 0;
    uint64_t t0 = now_ns();
    int rc = kvs_db_scan(s->db, w->cursor, SCAN_STEP, 0, count_key, w, &w->cursor);
    hist_add(&w->lat, now_ns() - t0);
    if (rc != 0)
        return fail(w, "scan step: %s", kvs_strerror(rc));
    w->pass_keys += w->step_keys;
    if (w->cursor == 0) {
        if (!s->bg_writer && w->pass_keys != s->keys)
            return fail(w, "a scan pass visited %" PRIu64 " keys of %" PRIu64, w->pass_keys,
                        s->keys);
        w->pass_keys = 0;
    }
    return 0;
}

static op_fn op_for(op_kind kind)
{
    switch (kind) {
    case OP_INSERT:
        return op_insert;
    case OP_OVERWRITE:
        return op_overwrite;
    case OP_READ:
        return op_read;
    case OP_MISS:
        return op_miss;
    case OP_MIXED:
        return op_mixed;
    case OP_DELETE:
        return op_delete;
    case OP_NAMED_SET:
        return op_named_set;
    case OP_SCAN:
        return op_scan;
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    op_fn op = op_for(sh->spec->kind);
    pthread_barrier_wait(&sh->barrier);
    w->start_ns = now_ns();
    /* A scan step is as many operations as keys it visited. */
    bool scan = sh->spec->kind == OP_SCAN;
    for (uint64_t n = 0; n < w->count;) {
        if (atomic_load_explicit(&sh->stop, memory_order_relaxed) ||
            atomic_load_explicit(&bench_interrupted, memory_order_relaxed))
            break;
        if (op(w, n) != 0)
            break;
        uint64_t did = scan ? w->step_keys : 1;
        w->done += did;
        n += did ? did : 1;
    }
    if (flush_batch(w) != 0)
        w->done = 0;
    w->end_ns = now_ns();
    return NULL;
}

/* Operations of a kind in all, and whether threads take contiguous ranges. */
static uint64_t total_ops(const run_spec *s, int *ranged)
{
    *ranged = s->kind == OP_INSERT || s->kind == OP_DELETE || s->kind == OP_NAMED_SET;
    return s->kind == OP_INSERT || s->kind == OP_DELETE ? s->keys : s->ops;
}

static int workers_init(struct worker *ws, struct shared *sh, const run_spec *s)
{
    int ranged;
    uint64_t total = total_ops(s, &ranged);
    uint64_t next = 0;
    for (unsigned t = 0; t < s->threads; t++) {
        struct worker *w = &ws[t];
        w->sh = sh;
        w->tid = t;
        w->count = total / s->threads + (t < total % s->threads);
        w->first = ranged ? next : 0;
        next += w->count;
        w->rng = s->seed ^ (0x9e3779b97f4a7c15ull * (t + 1));
        rng_next(&w->rng);
        w->out = (kvs_buf)KVS_BUF_INIT;
        w->key = malloc(s->ks->key_size);
        w->val = malloc(s->ks->value_size);
        hist_init(&w->lat);
        if (!w->key || !w->val)
            return -1;
        if (s->batch > 1) {
            w->ops = calloc(s->batch, sizeof(*w->ops));
            w->bkeys = malloc(s->batch * s->ks->key_size);
            w->bvals = malloc(s->batch * s->ks->value_size);
            if (!w->ops || !w->bkeys || !w->bvals)
                return -1;
        }
    }
    return 0;
}

static void workers_free(struct worker *ws, unsigned n)
{
    for (unsigned t = 0; t < n; t++) {
        free(ws[t].key);
        free(ws[t].val);
        free(ws[t].ops);
        free(ws[t].bkeys);
        free(ws[t].bvals);
        kvs_buf_free(&ws[t].out);
    }
    free(ws);
}

/* ---- the background writer of read-while-* ---- */

struct bg {
    struct worker w; /* its own stream, buffers and histogram (unused) */
    atomic_bool stop;
    atomic_ullong writes;
    pthread_t tid;
};

static void *bg_main(void *arg)
{
    struct bg *bg = arg;
    while (!atomic_load_explicit(&bg->stop, memory_order_relaxed) &&
           !atomic_load_explicit(&bg->w.sh->stop, memory_order_relaxed)) {
        if (op_overwrite(&bg->w, 0) != 0)
            break;
        atomic_fetch_add_explicit(&bg->writes, 1, memory_order_relaxed);
    }
    return NULL;
}

static uint64_t compactions_now(kvs_db *db)
{
    kvs_stats st;
    return kvs_db_stats(db, &st) == 0 ? st.compactions : 0;
}

/* Start the writer, then wait for a compaction to complete (so that they
   run from now on) or for the time limit. */
static int bg_start(struct bg *bg, struct shared *sh)
{
    const run_spec *s = sh->spec;
    bg->w = (struct worker){.sh = sh, .rng = s->seed ^ 0x5bd1e995u};
    rng_next(&bg->w.rng);
    bg->w.key = malloc(s->ks->key_size);
    bg->w.val = malloc(s->ks->value_size);
    hist_init(&bg->w.lat);
    atomic_init(&bg->stop, false);
    atomic_init(&bg->writes, 0);
    if (!bg->w.key || !bg->w.val || pthread_create(&bg->tid, NULL, bg_main, bg) != 0)
        return -1;
    uint64_t before = compactions_now(s->db), deadline = now_ns() + s->wait_compaction_ns;
    while (compactions_now(s->db) == before && now_ns() < deadline && !atomic_load(&sh->stop) &&
           !atomic_load(&bench_interrupted)) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void bg_stop(struct bg *bg)
{
    atomic_store(&bg->stop, true);
    pthread_join(bg->tid, NULL);
    free(bg->w.key);
    free(bg->w.val);
}

int run_ops(const run_spec *spec, run_result *res, char *err, size_t size)
{
    struct shared sh = {.spec = spec};
    struct worker *ws = calloc(spec->threads, sizeof(*ws));
    pthread_t *tids = calloc(spec->threads, sizeof(*tids));
    unsigned started = 0;
    int rc = -1;
    if (!ws || !tids || workers_init(ws, &sh, spec) != 0) {
        snprintf(err, size, "out of memory for %u threads", spec->threads);
        goto out_free;
    }
    pthread_mutex_init(&sh.lock, NULL);
    pthread_barrier_init(&sh.barrier, NULL, spec->threads);
    struct bg *bg = NULL;
    uint64_t bg_writes0 = 0, compactions0 = 0;
    if (spec->bg_writer) {
        bg = calloc(1, sizeof(*bg));
        if (!bg || bg_start(bg, &sh) != 0) {
            fprintf(stderr, "kvs-bench: cannot start the background writer\n");
            exit(1);
        }
        bg_writes0 = atomic_load(&bg->writes);
        compactions0 = compactions_now(spec->db);
    }
    for (; started < spec->threads; started++) {
        if (pthread_create(&tids[started], NULL, worker_main, &ws[started]) != 0)
            break;
    }
    if (started < spec->threads) {
        /* The barrier waits for every thread: the ones started would hang.
           Nothing can release them but exiting. */
        fprintf(stderr, "kvs-bench: cannot start thread %u of %u\n", started + 1, spec->threads);
        exit(1);
    }
    uint64_t first = UINT64_MAX, last = 0;
    hist_init(&res->lat);
    res->ops = 0;
    for (unsigned t = 0; t < started; t++) {
        pthread_join(tids[t], NULL);
        if (ws[t].start_ns < first)
            first = ws[t].start_ns;
        if (ws[t].end_ns > last)
            last = ws[t].end_ns;
        hist_merge(&res->lat, &ws[t].lat);
        res->ops += ws[t].done;
    }
    res->wall_ns = last > first ? last - first : 0;
    res->bg_writes = res->compactions = 0;
    if (bg) {
        res->bg_writes = atomic_load(&bg->writes) - bg_writes0;
        res->compactions = compactions_now(spec->db) - compactions0;
        bg_stop(bg);
        free(bg);
    }
    pthread_barrier_destroy(&sh.barrier);
    pthread_mutex_destroy(&sh.lock);
    if (sh.failed) {
        snprintf(err, size, "%s", sh.err);
        rc = -1;
    } else {
        rc = atomic_load(&bench_interrupted) ? 1 : 0;
    }
out_free:
    free(tids);
    workers_free(ws, ws ? spec->threads : 0);
    return rc;
}
