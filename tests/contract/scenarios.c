/* SPDX-License-Identifier: BSD-3-Clause */
/* The thread scenarios of the engine contract; see scenarios.h. */
#include "scenarios.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

static bool fail(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *msg, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    return false;
}

static kvs_slice sl(const char *s)
{
    return kvs_slice_str(s);
}

/* Threads start together at a gate, so that they really overlap. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void gate_wait(void)
{
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/*
 * Start n threads fn(args + i * size) with small stacks, open the gate, run
 * body (if any) on the calling thread, and join them all. Returns how many
 * could be started; the others never ran.
 */
static size_t run_threads(size_t n, void *(*fn)(void *), void *args, size_t size,
                          void (*body)(void *), void *body_arg)
{
    pthread_t *tids = calloc(n, sizeof(*tids));
    if (!tids)
        return 0;
    gate_set(false);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    size_t started = 0;
    while (started < n &&
           pthread_create(&tids[started], &attr, fn, (char *)args + started * size) == 0)
        started++;
    pthread_attr_destroy(&attr);
    gate_set(true);
    if (body)
        body(body_arg);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    return started;
}

/* How a group of threads fared: the first error and how many went wrong. */
struct tally {
    int errors, first_rc;
    int wrong; /* values that were not what was written */
};

static void tally_error(struct tally *t, int rc)
{
    if (t->errors++ == 0)
        t->first_rc = rc;
}

static bool tally_ok(const struct tally *t, const char *who, char *msg, size_t size)
{
    if (t->errors)
        return fail(msg, size, "%s: %d errors, first %s", who, t->errors,
                    kvs_err_name(t->first_rc));
    if (t->wrong)
        return fail(msg, size, "%s: %d reads returned a value never written", who, t->wrong);
    return true;
}

struct writer {
    kvs_db *db;
    int id;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char key[32], val[32];
    snprintf(key, sizeof(key), "thread-%d", w->id);
    snprintf(val, sizeof(val), "value-%d", w->id);
    gate_wait();
    w->rc = kvs_db_set(w->db, sl(key), sl(val));
    return NULL;
}

bool kvs_scn_writers(kvs_db *db, int n, char *msg, size_t size)
{
    struct writer *w = calloc((size_t)n, sizeof(*w));
    if (!w)
        return fail(msg, size, "out of memory");
    for (int i = 0; i < n; i++)
        w[i] = (struct writer){.db = db, .id = i};
    size_t started = run_threads((size_t)n, writer_main, w, sizeof(*w), NULL, NULL);
    struct tally t = {0};
    for (size_t i = 0; i < started; i++) {
        if (w[i].rc != 0)
            tally_error(&t, w[i].rc);
    }
    free(w);
    if (started != (size_t)n)
        return fail(msg, size, "only %zu of %d threads started", started, n);
    return tally_ok(&t, "writers", msg, size);
}

static bool value_is(kvs_db *db, kvs_buf *buf, const char *key, const void *want, size_t len,
                     int *rc)
{
    *rc = kvs_db_get(db, sl(key), buf);
    return *rc == 0 && buf->len == len && (len == 0 || memcmp(buf->data, want, len) == 0);
}

bool kvs_scn_writers_visible(kvs_db *db, int n, char *msg, size_t size)
{
    kvs_buf buf = KVS_BUF_INIT;
    char key[32], val[32];
    int rc = 0, i;
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "thread-%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        if (!value_is(db, &buf, key, val, strlen(val), &rc))
            break;
    }
    kvs_buf_free(&buf);
    if (i < n)
        return fail(msg, size, "thread-%d: %s", i, rc ? kvs_err_name(rc) : "wrong value");
    kvs_stats st;
    rc = kvs_db_stats(db, &st);
    if (rc != 0)
        return fail(msg, size, "stats: %s", kvs_err_name(rc));
    if (st.keys != (uint64_t)n)
        return fail(msg, size, "stats: %llu keys, expected %d", (unsigned long long)st.keys, n);
    return true;
}

enum { SHARED_KEYS = 16 };

static void shared_key(char *buf, size_t size, int i)
{
    snprintf(buf, size, "shared-%d", i);
}

static void shared_val(char *buf, size_t size, int i)
{
    snprintf(buf, size, "shared value %d %0*d", i, i * 7, 0);
}

struct reader {
    kvs_db *db;
    int id, reads;
    struct tally t;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[32], want[160];
    gate_wait();
    for (int n = 0; n < r->reads; n++) {
        int i = (r->id + n) % SHARED_KEYS, rc;
        shared_key(key, sizeof(key), i);
        shared_val(want, sizeof(want), i);
        if (!value_is(r->db, &buf, key, want, strlen(want), &rc)) {
            if (rc != 0)
                tally_error(&r->t, rc);
            else
                r->t.wrong++;
        }
    }
    kvs_buf_free(&buf);
    return NULL;
}

bool kvs_scn_readers(kvs_db *db, int threads, int reads, char *msg, size_t size)
{
    char key[32], val[160];
    for (int i = 0; i < SHARED_KEYS; i++) {
        shared_key(key, sizeof(key), i);
        shared_val(val, sizeof(val), i);
        int rc = kvs_db_set(db, sl(key), sl(val));
        if (rc != 0)
            return fail(msg, size, "set %s: %s", key, kvs_err_name(rc));
    }
    struct reader *r = calloc((size_t)threads, sizeof(*r));
    if (!r)
        return fail(msg, size, "out of memory");
    for (int i = 0; i < threads; i++)
        r[i] = (struct reader){.db = db, .id = i, .reads = reads};
    size_t started = run_threads((size_t)threads, reader_main, r, sizeof(*r), NULL, NULL);
    struct tally t = {0};
    for (size_t i = 0; i < started; i++) {
        t.errors += r[i].t.errors;
        t.wrong += r[i].t.wrong;
        if (!t.first_rc)
            t.first_rc = r[i].t.first_rc;
    }
    free(r);
    if (started != (size_t)threads)
        return fail(msg, size, "only %zu of %d threads started", started, threads);
    return tally_ok(&t, "readers", msg, size);
}

/*
 * Overwrites. Generation g of key k has a length and bytes computed from
 * (k, g) and starts with "kk:gggggg|", so that a reader can tell a written
 * value from anything else (torn, mixed or stale bytes).
 */
enum { OW_KEYS = 8, OW_GENS = 300, OW_HEADER = 16, OW_MAX = OW_HEADER + 6000 };

static size_t ow_value(unsigned char *buf, int k, int g)
{
    size_t len = OW_HEADER + ((size_t)g * 7919 + (size_t)k * 131) % 6000;
    memset(buf, (g * 31 + k) & 0xff, len);
    snprintf((char *)buf, OW_HEADER, "%02d:%06d|", k, g);
    return len;
}

struct ow_reader {
    kvs_db *db;
    atomic_bool *done;
    int id;
    long reads;
    int backwards;
    struct tally t;
};

/* The generation of a value read for key k, or -1 if it was never written. */
static int ow_generation(const kvs_buf *buf, int k, unsigned char *want)
{
    char head[OW_HEADER + 1] = "";
    if (buf->len >= OW_HEADER)
        memcpy(head, buf->data, OW_HEADER);
    int hk = -1, g = -1;
    if (sscanf(head, "%2d:%6d|", &hk, &g) != 2 || hk != k || g < 0 || g > OW_GENS)
        return -1;
    if (buf->len != ow_value(want, k, g) || memcmp(buf->data, want, buf->len) != 0)
        return -1;
    return g;
}

static void *ow_reader_main(void *arg)
{
    struct ow_reader *r = arg;
    int last_gen[OW_KEYS] = {0};
    unsigned char *want = malloc(OW_MAX);
    kvs_buf buf = KVS_BUF_INIT;
    gate_wait();
    if (!want)
        tally_error(&r->t, KVS_ENOMEM);
    for (long n = 0; want && (n < 10 || !atomic_load(r->done)); n++) {
        int k = (int)((n + r->id) % OW_KEYS);
        char key[32];
        snprintf(key, sizeof(key), "ow-%d", k);
        int rc = kvs_db_get(r->db, sl(key), &buf);
        r->reads++;
        if (rc != 0) {
            tally_error(&r->t, rc);
            continue;
        }
        int g = ow_generation(&buf, k, want);
        if (g < 0) {
            r->t.wrong++;
            continue;
        }
        if (g < last_gen[k]) /* a later read never returns an older value */
            r->backwards++;
        last_gen[k] = g;
    }
    free(want);
    kvs_buf_free(&buf);
    return NULL;
}

struct ow_writer {
    kvs_db *db;
    atomic_bool *done;
    unsigned char *val;
    int rc;
};

static void ow_write_all(void *arg)
{
    struct ow_writer *w = arg;
    for (int g = 1; g <= OW_GENS && w->rc == 0; g++) {
        for (int k = 0; k < OW_KEYS && w->rc == 0; k++) {
            char key[32];
            snprintf(key, sizeof(key), "ow-%d", k);
            size_t len = ow_value(w->val, k, g);
            w->rc = kvs_db_set(w->db, sl(key), kvs_slice_of(w->val, len));
        }
    }
    atomic_store(w->done, true);
}

bool kvs_scn_overwrites(kvs_db *db, int readers, char *msg, size_t size)
{
    atomic_bool done = false;
    unsigned char *val = malloc(OW_MAX);
    struct ow_reader *r = calloc((size_t)readers, sizeof(*r));
    bool ok = val && r;
    if (!ok)
        fail(msg, size, "out of memory");
    char key[32];
    for (int k = 0; ok && k < OW_KEYS; k++) {
        snprintf(key, sizeof(key), "ow-%d", k);
        int rc = kvs_db_set(db, sl(key), kvs_slice_of(val, ow_value(val, k, 0)));
        if (rc != 0)
            ok = fail(msg, size, "set %s: %s", key, kvs_err_name(rc));
    }
    struct ow_writer w = {.db = db, .done = &done, .val = val};
    size_t started = 0;
    if (ok) {
        for (int i = 0; i < readers; i++)
            r[i] = (struct ow_reader){.db = db, .done = &done, .id = i};
        /* The writer runs on this thread once the readers are released. */
        started = run_threads((size_t)readers, ow_reader_main, r, sizeof(*r), ow_write_all, &w);
    }
    if (ok && started != (size_t)readers)
        ok = fail(msg, size, "only %zu of %d threads started", started, readers);
    if (ok && w.rc != 0)
        ok = fail(msg, size, "writer: %s", kvs_err_name(w.rc));
    for (int i = 0; ok && i < readers; i++) {
        char who[32];
        snprintf(who, sizeof(who), "reader %d", i);
        ok = tally_ok(&r[i].t, who, msg, size);
        if (ok && r[i].backwards)
            ok = fail(msg, size, "%s: %d reads went back in time", who, r[i].backwards);
    }
    kvs_buf buf = KVS_BUF_INIT;
    for (int k = 0; ok && k < OW_KEYS; k++) {
        snprintf(key, sizeof(key), "ow-%d", k);
        int rc = kvs_db_get(db, sl(key), &buf);
        if (rc != 0 || ow_generation(&buf, k, val) != OW_GENS)
            ok = fail(msg, size, "%s does not hold the last value: %s", key, kvs_err_name(rc));
    }
    kvs_buf_free(&buf);
    free(r);
    free(val);
    return ok;
}

/* Big writes: readers check small keys while 1 MiB values go in. */
struct big_reader {
    kvs_db *db;
    atomic_bool *done;
    struct tally t;
};

static void *big_reader_main(void *arg)
{
    struct big_reader *r = arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[32], want[32];
    gate_wait();
    for (long n = 0; n < 100 || !atomic_load(r->done); n++) {
        int i = (int)(n % 32), rc;
        snprintf(key, sizeof(key), "small-%d", i);
        snprintf(want, sizeof(want), "small value %d", i);
        if (!value_is(r->db, &buf, key, want, strlen(want), &rc)) {
            if (rc != 0)
                tally_error(&r->t, rc);
            else
                r->t.wrong++;
        }
    }
    kvs_buf_free(&buf);
    return NULL;
}

static void big_fill(unsigned char *buf, int i)
{
    for (size_t j = 0; j < MIB; j++)
        buf[j] = (unsigned char)(i * 131 + j * 7 + (j >> 12));
}

struct big_writer {
    kvs_db *db;
    atomic_bool *done;
    unsigned char *val;
    int mib;
    struct tally t;
};

static void big_write_all(void *arg)
{
    struct big_writer *w = arg;
    for (int i = 0; i < w->mib; i++) {
        char key[32];
        snprintf(key, sizeof(key), "big-%d", i);
        big_fill(w->val, i);
        int rc = kvs_db_set(w->db, sl(key), kvs_slice_of(w->val, MIB));
        if (rc != 0)
            tally_error(&w->t, rc);
    }
    atomic_store(w->done, true);
}

bool kvs_scn_big_writes(kvs_db *db, int readers, int mib, char *msg, size_t size)
{
    char key[32], val[32];
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof(key), "small-%d", i);
        snprintf(val, sizeof(val), "small value %d", i);
        int rc = kvs_db_set(db, sl(key), sl(val));
        if (rc != 0)
            return fail(msg, size, "set %s: %s", key, kvs_err_name(rc));
    }
    atomic_bool done = false;
    struct big_writer w = {.db = db, .done = &done, .val = malloc(MIB), .mib = mib};
    struct big_reader *r = calloc((size_t)readers, sizeof(*r));
    bool ok = w.val && r;
    if (!ok)
        fail(msg, size, "out of memory");
    size_t started = 0;
    if (ok) {
        for (int i = 0; i < readers; i++)
            r[i] = (struct big_reader){.db = db, .done = &done};
        started = run_threads((size_t)readers, big_reader_main, r, sizeof(*r), big_write_all, &w);
    }
    if (ok && started != (size_t)readers)
        ok = fail(msg, size, "only %zu of %d threads started", started, readers);
    if (ok)
        ok = tally_ok(&w.t, "writer", msg, size);
    for (int i = 0; ok && i < readers; i++)
        ok = tally_ok(&r[i].t, "reader", msg, size);
    kvs_buf buf = KVS_BUF_INIT;
    for (int i = 0; ok && i < mib; i++) {
        snprintf(key, sizeof(key), "big-%d", i);
        big_fill(w.val, i);
        int rc;
        if (!value_is(db, &buf, key, w.val, MIB, &rc))
            ok = fail(msg, size, "%s: %s", key, rc ? kvs_err_name(rc) : "wrong value");
    }
    kvs_buf_free(&buf);
    free(r);
    free(w.val);
    return ok;
}

/*
 * Batches. Thread t owns keys "batch-t-k" (k < BATCH_KEYS). In round r it
 * writes one batch: every key set to generation r, then key r % BATCH_KEYS
 * removed, then a key it never writes removed (KVS_ENOTFOUND). After round
 * r the thread's key r % BATCH_KEYS is missing and the others hold
 * generation r.
 */
enum { BATCH_KEYS = 10, BATCH_OPS = BATCH_KEYS + 2, BATCH_VAL = 240 };

static size_t batch_value(char *buf, int t, int k, int r)
{
    int n = snprintf(buf, BATCH_VAL, "%d:%d:%d|", t, k, r);
    size_t len = (size_t)n + (size_t)(k * 37 + r * 11) % (BATCH_VAL - 32);
    memset(buf + n, 'a' + (char)((t + k + r) % 26), len - (size_t)n);
    return len;
}

/* The generation of a well-formed value of (t, k), or -1. */
static int batch_generation(const kvs_buf *buf, int t, int k)
{
    char head[32];
    int r = -1, n = 0;
    size_t len = buf->len < sizeof(head) - 1 ? buf->len : sizeof(head) - 1;
    memcpy(head, buf->data, len);
    head[len] = '\0';
    int tt, kk;
    if (sscanf(head, "%d:%d:%d|%n", &tt, &kk, &r, &n) != 3 || tt != t || kk != k || n == 0)
        return -1;
    char want[BATCH_VAL];
    size_t want_len = batch_value(want, t, k, r);
    return want_len == buf->len && memcmp(want, buf->data, want_len) == 0 ? r : -1;
}

struct batcher {
    kvs_db *db;
    int id, rounds;
    atomic_bool *done;
    struct tally t;
};

static void *batcher_main(void *arg)
{
    struct batcher *b = arg;
    char keys[BATCH_OPS][32], vals[BATCH_KEYS][BATCH_VAL];
    kvs_op ops[BATCH_OPS];
    gate_wait();
    for (int r = 0; r < b->rounds; r++) {
        for (int k = 0; k < BATCH_KEYS; k++) {
            snprintf(keys[k], sizeof(keys[k]), "batch-%d-%d", b->id, k);
            size_t len = batch_value(vals[k], b->id, k, r);
            ops[k] = (kvs_op){KVS_OP_SET, sl(keys[k]), kvs_slice_of(vals[k], len), -1, 0};
        }
        ops[BATCH_KEYS] = (kvs_op){KVS_OP_REMOVE, sl(keys[r % BATCH_KEYS]), {NULL, 0}, -1, 0};
        snprintf(keys[BATCH_KEYS + 1], sizeof(keys[0]), "batch-%d-none", b->id);
        ops[BATCH_KEYS + 1] = (kvs_op){KVS_OP_REMOVE, sl(keys[BATCH_KEYS + 1]), {NULL, 0}, -1, 0};
        int rc = kvs_db_write(b->db, ops, BATCH_OPS);
        if (rc != 0) {
            tally_error(&b->t, rc);
            break;
        }
        for (int i = 0; i <= BATCH_KEYS; i++)
            b->t.wrong += ops[i].result != 0;
        b->t.wrong += ops[BATCH_KEYS + 1].result != KVS_ENOTFOUND;
    }
    atomic_store(b->done, true);
    return NULL;
}

/* The caller's thread reads the batchers' keys until they are all done:
   every value found must be one they wrote. */
struct batch_reader {
    struct batcher *b;
    int threads;
    struct tally t;
};

static void batch_read_all(void *arg)
{
    struct batch_reader *br = arg;
    kvs_buf buf = KVS_BUF_INIT;
    char key[32];
    unsigned seed = 1;
    for (;;) {
        int running = 0;
        for (int i = 0; i < br->threads; i++)
            running += !atomic_load(br->b[i].done);
        if (!running)
            break;
        seed = seed * 1103515245u + 12345u;
        int t = (int)((seed >> 8) % (unsigned)br->threads), k = (int)((seed >> 20) % BATCH_KEYS);
        snprintf(key, sizeof(key), "batch-%d-%d", t, k);
        int rc = kvs_db_get(br->b[0].db, sl(key), &buf);
        if (rc == 0 && batch_generation(&buf, t, k) < 0)
            br->t.wrong++;
        else if (rc != 0 && rc != KVS_ENOTFOUND)
            tally_error(&br->t, rc);
    }
    kvs_buf_free(&buf);
}

bool kvs_scn_batches(kvs_db *db, int threads, int rounds, char *msg, size_t size)
{
    struct batcher *b = calloc((size_t)threads, sizeof(*b));
    atomic_bool *done = calloc((size_t)threads, sizeof(*done));
    if (!b || !done) {
        free(b);
        free(done);
        return fail(msg, size, "out of memory");
    }
    for (int i = 0; i < threads; i++) {
        atomic_init(&done[i], false);
        b[i] = (struct batcher){.db = db, .id = i, .rounds = rounds, .done = &done[i]};
    }
    struct batch_reader br = {.b = b, .threads = threads};
    size_t started = run_threads((size_t)threads, batcher_main, b, sizeof(*b), batch_read_all, &br);
    bool ok = started == (size_t)threads ||
              fail(msg, size, "only %zu of %d threads started", started, threads);
    for (int i = 0; ok && i < threads; i++)
        ok = tally_ok(&b[i].t, "batch writer", msg, size);
    if (ok)
        ok = tally_ok(&br.t, "reader", msg, size);
    free(b);
    free(done);
    return ok && kvs_scn_batches_visible(db, threads, rounds, msg, size);
}

bool kvs_scn_batches_visible(kvs_db *db, int threads, int rounds, char *msg, size_t size)
{
    kvs_buf buf = KVS_BUF_INIT;
    char key[32];
    bool ok = true;
    for (int t = 0; ok && t < threads; t++) {
        for (int k = 0; ok && k < BATCH_KEYS; k++) {
            snprintf(key, sizeof(key), "batch-%d-%d", t, k);
            int rc = kvs_db_get(db, sl(key), &buf);
            bool gone = k == (rounds - 1) % BATCH_KEYS;
            if (gone && rc != KVS_ENOTFOUND)
                ok = fail(msg, size, "%s: %s, expected it removed", key, kvs_err_name(rc));
            else if (!gone && (rc != 0 || batch_generation(&buf, t, k) != rounds - 1))
                ok = fail(msg, size, "%s: %s, generation %d, expected %d", key, kvs_err_name(rc),
                          rc ? -1 : batch_generation(&buf, t, k), rounds - 1);
        }
    }
    kvs_buf_free(&buf);
    return ok;
}
