/* SPDX-License-Identifier: BSD-3-Clause */
/* The model of the crash-state test; see model.h. */
#include "model.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash/crash.h"
#include "trace.h"

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "crashstate: out of memory\n");
        abort();
    }
    return q;
}

#define PUSH(arr, n, cap, v)                                                                       \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 64;                                                          \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
        (arr)[(n)++] = (v);                                                                        \
    } while (0)

void m_init(struct model *m, kvs_fsync policy)
{
    memset(m, 0, sizeof(*m));
    m->policy = policy;
    pthread_mutex_init(&m->lock, NULL);
    for (int k = 0; k < M_NKEYS; k++)
        m->now[k] = -1;
    m->next_serial = 1;
}

void m_free(struct model *m)
{
    free(m->ops);
    for (int k = 0; k < M_NKEYS; k++)
        free(m->key_ops[k]);
    free(m->syncs);
    free(m->begins);
    free(m->ends);
    free(m->sync_ends);
    free(m->sync_begin_max);
    pthread_mutex_destroy(&m->lock);
    memset(m, 0, sizeof(*m));
}

static char key_names[M_NKEYS][8];

static void name_keys(void)
{
    for (int k = 0; k < M_NKEYS; k++)
        snprintf(key_names[k], sizeof(key_names[k]), "k%02d", k);
}

const char *m_key(int k)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, name_keys);
    return key_names[k];
}

static void error(struct model *m, const char *what, int rc)
{
    pthread_mutex_lock(&m->lock);
    if (m->errors++ == 0)
        snprintf(m->first_error, sizeof(m->first_error), "%s: %s", what, kvs_strerror(rc));
    pthread_mutex_unlock(&m->lock);
}

/* Record an operation of key; returns its number. */
static size_t add_op(struct model *m, struct m_op op)
{
    pthread_mutex_lock(&m->lock);
    size_t i = m->nops;
    PUSH(m->ops, m->nops, m->cap_ops, op);
    PUSH(m->key_ops[op.key], m->nkey_ops[op.key], m->cap_key_ops[op.key], i);
    m->now[op.key] = op.serial;
    pthread_mutex_unlock(&m->lock);
    return i;
}

static uint64_t take_serial(struct model *m)
{
    return __atomic_fetch_add(&m->next_serial, 1, __ATOMIC_RELAXED);
}

/* Every other write carries an expiry time, far in the future and told by
   its serial, so that a state shows whether a value came back with its
   own time (record format, hints, compaction copies). */
static int64_t expiry_of(uint64_t serial)
{
    return serial % 2 ? INT64_C(4000000000000) + (int64_t)serial : 0;
}

int m_set(struct model *m, kvs_db *db, int key)
{
    char v[CX_VALUE_MAX];
    uint64_t serial = take_serial(m);
    size_t len = cx_value(v, m_key(key), 0, serial, M_SPREAD);
    long begin = tr_mark(M_MARK(M_OP_BEGIN, serial));
    int rc = kvs_db_set_ex(db, kvs_slice_of(m_key(key), strlen(m_key(key))), kvs_slice_of(v, len),
                           expiry_of(serial));
    long end = rc == 0 ? tr_mark(M_MARK(M_OP_END, serial)) : -1;
    add_op(m, (struct m_op){
                  .key = key, .serial = (int64_t)serial, .id = serial, .begin = begin, .end = end});
    if (rc != 0)
        error(m, "set", rc);
    return rc;
}

int m_del(struct model *m, kvs_db *db, int key)
{
    uint64_t serial = take_serial(m);
    bool present = m->now[key] >= 0;
    long begin = tr_mark(M_MARK(M_OP_BEGIN, serial));
    int rc = kvs_db_remove(db, kvs_slice_of(m_key(key), strlen(m_key(key))));
    long end = rc == 0 || rc == KVS_ENOTFOUND ? tr_mark(M_MARK(M_OP_END, serial)) : -1;
    if (rc == KVS_ENOTFOUND && !present)
        return rc; /* nothing changed */
    add_op(m, (struct m_op){.key = key, .serial = -1, .id = serial, .begin = begin, .end = end});
    if (rc != 0)
        error(m, present ? "remove of a present key" : "remove of a missing key found it", rc);
    return rc;
}

int m_batch(struct model *m, kvs_db *db, const int *keys, const bool *del, size_t n)
{
    kvs_op ops[16];
    char vals[16][CX_VALUE_MAX];
    int64_t serials[16];
    if (n > 16)
        n = 16;
    uint64_t first = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t serial = take_serial(m);
        if (i == 0)
            first = serial;
        const char *k = m_key(keys[i]);
        ops[i] = (kvs_op){.type = del[i] ? KVS_OP_REMOVE : KVS_OP_SET,
                          .key = kvs_slice_of(k, strlen(k)),
                          .expire_at = del[i] ? 0 : expiry_of(serial)};
        serials[i] = del[i] ? -1 : (int64_t)serial;
        if (!del[i]) {
            size_t len = cx_value(vals[i], k, 0, serial, M_SPREAD);
            ops[i].value = kvs_slice_of(vals[i], len);
        }
    }
    long begin = tr_mark(M_MARK(M_OP_BEGIN, first));
    int rc = kvs_db_write(db, ops, n);
    long end = rc == 0 ? tr_mark(M_MARK(M_OP_END, first)) : -1;
    for (size_t i = 0; i < n; i++) {
        bool present = m->now[keys[i]] >= 0;
        if (rc == 0 && del[i] && ops[i].result == KVS_ENOTFOUND && !present)
            continue;
        add_op(m,
               (struct m_op){
                   .key = keys[i], .serial = serials[i], .id = first, .begin = begin, .end = end});
        if (rc == 0 && del[i] && (ops[i].result == 0) != present)
            error(m, "batch remove disagrees with the model", KVS_EINVAL);
    }
    if (rc != 0)
        error(m, "batch", rc);
    return rc;
}

int m_clear(struct model *m, kvs_db *db)
{
    long begin = tr_mark(M_MARK(M_OP_BEGIN, 0));
    int rc = kvs_db_clear(db);
    long end = rc == 0 ? tr_mark(M_MARK(M_OP_END, 0)) : -1;
    for (int k = 0; k < M_NKEYS; k++)
        add_op(m, (struct m_op){.key = k, .serial = -1, .begin = begin, .end = end, .clear = true});
    if (rc != 0)
        error(m, "clear", rc);
    return rc;
}

static int checkpoint(struct model *m, kvs_db *db, bool close)
{
    pthread_mutex_lock(&m->lock);
    size_t n = m->nsyncs;
    PUSH(m->syncs, m->nsyncs, m->cap_syncs, ((struct m_sync){-1, -1}));
    pthread_mutex_unlock(&m->lock);
    long begin = tr_mark(M_MARK(M_SYNC_BEGIN, n));
    int rc = close ? kvs_db_close(db) : kvs_db_sync(db);
    long end = rc == 0 ? tr_mark(M_MARK(M_SYNC_END, n)) : -1;
    pthread_mutex_lock(&m->lock);
    m->syncs[n] = (struct m_sync){begin, end};
    pthread_mutex_unlock(&m->lock);
    if (rc != 0)
        error(m, close ? "close" : "sync", rc);
    return rc;
}

int m_sync(struct model *m, kvs_db *db)
{
    return checkpoint(m, db, false);
}

int m_close(struct model *m, kvs_db *db)
{
    return checkpoint(m, db, true);
}

void m_note(unsigned n)
{
    tr_mark(M_MARK(M_NOTE, n));
}

/* ---- checking ---- */

static int by_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static int by_end(const void *a, const void *b)
{
    const struct m_sync *x = a, *y = b;
    return x->end < y->end ? -1 : x->end > y->end;
}

void m_finish(struct model *m)
{
    m->begins = xrealloc(NULL, (m->nops + 1) * sizeof(long));
    m->ends = xrealloc(NULL, (m->nops + 1) * sizeof(long));
    m->nbegins = m->nends = 0;
    for (size_t i = 0; i < m->nops; i++) {
        m->begins[m->nbegins++] = m->ops[i].begin;
        if (m->ops[i].end >= 0)
            m->ends[m->nends++] = m->ops[i].end;
    }
    qsort(m->begins, m->nbegins, sizeof(long), by_long);
    qsort(m->ends, m->nends, sizeof(long), by_long);
    /* Syncs by end; the failed ones (end -1) first, skipped below. */
    qsort(m->syncs, m->nsyncs, sizeof(*m->syncs), by_end);
    m->sync_ends = xrealloc(NULL, (m->nsyncs + 1) * sizeof(long));
    m->sync_begin_max = xrealloc(NULL, (m->nsyncs + 1) * sizeof(long));
    long max = -1;
    for (size_t i = 0; i < m->nsyncs; i++) {
        m->sync_ends[i] = m->syncs[i].end;
        if (m->syncs[i].end >= 0 && m->syncs[i].begin > max)
            max = m->syncs[i].begin;
        m->sync_begin_max[i] = max;
    }
}

/* How many of the sorted v are below x. */
static size_t count_below(const long *v, size_t n, long x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Operations that returned before this trace index are durable at cut. */
static long durable_before(const struct model *m, size_t cut)
{
    if (m->policy == KVS_FSYNC_ALWAYS)
        return (long)cut;
    size_t n = count_below(m->sync_ends, m->nsyncs, (long)cut);
    return n ? m->sync_begin_max[n - 1] : -1;
}

uint64_t m_epoch(const struct model *m, size_t cut)
{
    uint64_t durable = count_below(m->ends, m->nends, durable_before(m, cut));
    uint64_t begun = count_below(m->begins, m->nbegins, (long)cut);
    return durable << 32 | begun;
}

static void say(char *report, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *report, size_t size, const char *fmt, ...)
{
    size_t used = strlen(report);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report + used, size - used, fmt, ap);
    va_end(ap);
}

static void value_name(int64_t serial, char *buf, size_t size)
{
    if (serial < 0)
        snprintf(buf, size, "absent");
    else
        snprintf(buf, size, "#%" PRId64, serial);
}

/* Explain to report what key k may show at cut and why found is not it. */
static void explain(const struct model *m, int k, size_t cut, long durable, size_t d, bool has_d,
                    int64_t found, char *report, size_t size)
{
    char name[32];
    value_name(found, name, sizeof(name));
    say(report, size, "  key %s: found %s; allowed:", m_key(k), name);
    const size_t *ko = m->key_ops[k];
    const struct m_op *dop = has_d ? &m->ops[ko[d]] : NULL;
    value_name(dop ? dop->serial : -1, name, sizeof(name));
    if (dop)
        say(report, size, " %s (%s returned at event %ld, durable from event %ld)", name,
            dop->clear ? "clear" : "write", dop->end, durable);
    else
        say(report, size, " absent (no durable write)");
    for (size_t j = has_d ? d + 1 : 0; j < m->nkey_ops[k]; j++) {
        const struct m_op *o = &m->ops[ko[j]];
        if (o->begin >= (long)cut)
            break;
        value_name(o->serial, name, sizeof(name));
        say(report, size, ", %s (began at event %ld)", name, o->begin);
    }
    say(report, size, "\n");
    for (size_t j = 0; has_d && found >= 0 && j < d; j++) {
        const struct m_op *o = &m->ops[ko[j]];
        if (o->serial == found) {
            const struct m_op *next = &m->ops[ko[j + 1]];
            value_name(next->serial, name, sizeof(name));
            say(report, size,
                "    %s was written at events %ld..%ld and superseded by %s%s at events "
                "%ld..%ld, before the checkpoint\n",
                m_key(k), o->begin, o->end, name, next->clear ? " (clear)" : "", next->begin,
                next->end);
            return;
        }
    }
}

unsigned m_check(const struct model *m, size_t cut, kvs_db *db, char *report, size_t size,
                 struct m_problem *wrong, size_t *nwrong)
{
    unsigned problems = 0;
    long durable = durable_before(m, cut);
    kvs_buf v = KVS_BUF_INIT;
    uint64_t present = 0;
    for (int k = 0; k < M_NKEYS; k++) {
        const char *key = m_key(k);
        int64_t at = -1;
        int rc = kvs_db_get_ex(db, kvs_slice_of(key, strlen(key)), &v, &at);
        int64_t found = -1;
        if (rc == 0) {
            unsigned writer;
            uint64_t serial;
            if (!cx_value_parse(v.data, v.len, key, &writer, &serial)) {
                say(report, size, "  key %s: a value that is no write of it (%zu bytes)\n", key,
                    v.len);
                problems++;
                continue;
            }
            if (at != expiry_of(serial)) {
                say(report, size,
                    "  key %s: #%" PRIu64 " came back with expiry %" PRId64
                    ", written with %" PRId64 "\n",
                    key, serial, at, expiry_of(serial));
                problems++;
                continue;
            }
            found = (int64_t)serial;
            present++;
        } else if (rc != KVS_ENOTFOUND) {
            say(report, size, "  key %s: get failed: %s\n", key, kvs_strerror(rc));
            problems++;
            continue;
        }
        /* The last operation that was durable at the cut, then the rest. */
        const size_t *ko = m->key_ops[k];
        size_t n = m->nkey_ops[k], d = 0;
        bool has_d = false;
        for (size_t j = 0; j < n; j++) {
            const struct m_op *o = &m->ops[ko[j]];
            if (o->end >= 0 && o->end < durable) {
                d = j;
                has_d = true;
            }
        }
        bool ok = has_d ? m->ops[ko[d]].serial == found : found == -1;
        for (size_t j = has_d ? d + 1 : 0; !ok && j < n; j++) {
            const struct m_op *o = &m->ops[ko[j]];
            if (o->begin >= (long)cut)
                break;
            ok = o->serial == found;
        }
        if (!ok) {
            explain(m, k, cut, durable, d, has_d, found, report, size);
            problems++;
            if (wrong && *nwrong < M_PROBLEMS_MAX)
                wrong[(*nwrong)++] =
                    (struct m_problem){k, found, has_d ? m->ops[ko[d]].serial : -1};
        }
    }
    kvs_buf_free(&v);
    kvs_stats st;
    if (kvs_db_stats(db, &st) == 0 && st.keys != present) {
        say(report, size, "  the store counts %" PRIu64 " keys, %" PRIu64 " of them readable\n",
            st.keys, present);
        problems++;
    }
    return problems;
}

void m_describe_mark(const struct model *m, uint64_t mark, char *buf, size_t size)
{
    uint64_t arg = M_MARK_ARG(mark);
    switch (M_MARK_KIND(mark)) {
    case M_OP_BEGIN:
    case M_OP_END: {
        const char *what = "?";
        const char *key = "";
        size_t n = 0;
        for (size_t i = 0; i < m->nops; i++) {
            const struct m_op *o = &m->ops[i];
            if (o->id == arg && (arg != 0 || o->clear)) {
                if (n++ == 0) {
                    what = o->clear ? "clear" : o->serial < 0 ? "remove" : "set";
                    key = o->clear ? "" : m_key(o->key);
                }
            }
        }
        if (n == 0 && arg != 0)
            what = "remove of a missing key (no change)";
        if (n > 1 && arg != 0) {
            what = "batch from";
            key = "";
        }
        snprintf(buf, size, "%s %s #%" PRIu64 " %s", what, key, arg,
                 M_MARK_KIND(mark) == M_OP_BEGIN ? "begins" : "returned");
        break;
    }
    case M_SYNC_BEGIN:
        snprintf(buf, size, "checkpoint %" PRIu64 " (sync or close) begins", arg);
        break;
    case M_SYNC_END:
        snprintf(buf, size, "checkpoint %" PRIu64 " returned", arg);
        break;
    case M_NOTE:
        snprintf(buf, size, "note %" PRIu64, arg);
        break;
    default:
        snprintf(buf, size, "mark %#" PRIx64, mark);
    }
}
