/* SPDX-License-Identifier: BSD-3-Clause */
/* Thread scenarios of the mem engine's slab and table; see scenarios.h. */
#include "mem/scenarios.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engines/mem/slab.h"
#include "engines/mem/table.h"
#include "kvs/error.h"

/* The first failure any thread saw. */
struct verdict {
    pthread_mutex_t lock;
    atomic_bool failed;
    char msg[256];
};

static struct verdict verdict = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void verdict_reset(void)
{
    atomic_store(&verdict.failed, false);
    verdict.msg[0] = '\0';
}

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&verdict.lock);
    if (!atomic_load(&verdict.failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(verdict.msg, sizeof(verdict.msg), fmt, ap);
        va_end(ap);
        atomic_store(&verdict.failed, true);
    }
    pthread_mutex_unlock(&verdict.lock);
}

static bool failed(void)
{
    return atomic_load_explicit(&verdict.failed, memory_order_relaxed);
}

static bool verdict_get(char *msg, size_t size)
{
    if (!atomic_load(&verdict.failed))
        return true;
    snprintf(msg, size, "%s", verdict.msg);
    return false;
}

/* xorshift64*: each thread its own. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static size_t scaled(double scale, size_t n)
{
    size_t v = (size_t)((double)n * scale);
    return v ? v : 1;
}

static struct kmem_slab *growable_slab(size_t limit)
{
    struct kmem_slab_config cfg = {.limit = limit, .chunk_size = (size_t)16 << 20};
    struct kmem_slab *s = NULL;
    if (kmem_slab_create(&cfg, &s) != 0)
        fail("kmem_slab_create failed");
    return s;
}

static struct kmem_table *new_table(struct kmem_slab *s, size_t buckets)
{
    struct kmem_table *t = NULL;
    if (s && kmem_table_create(s, buckets, 0, &t) != 0)
        fail("kmem_table_create failed");
    return t;
}

static int start_threads(pthread_t *th, int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    for (int i = 0; i < n; i++) {
        if (pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0) {
            fail("pthread_create failed");
            return i;
        }
    }
    return n;
}

static void join_threads(pthread_t *th, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

/* ---- the slab under threads ---- */

struct slab_arg {
    struct kmem_slab *slab;
    size_t ops;
    uint64_t seed;
    unsigned char tag;
};

struct held {
    unsigned char *p;
    size_t size;
};

/* Fill (or check) the bytes a test owns in an allocation: all of a small
   one, the ends of a large one. */
static bool stamp(unsigned char *p, size_t size, unsigned char tag, bool check)
{
    size_t ends = size > 4096 ? 512 : size;
    for (size_t i = 0; i < ends; i++) {
        size_t at = i < ends / 2 || ends == size ? i : size - (ends - i);
        if (check && p[at] != tag)
            return false;
        p[at] = tag;
    }
    return true;
}

static size_t slab_size(uint64_t *seed)
{
    uint64_t r = rnd(seed) % 100;
    if (r < 70)
        return 1 + rnd(seed) % 2000;
    if (r < 95)
        return 2000 + rnd(seed) % 200000;
    return 600000 + rnd(seed) % 3000000;
}

static void *slab_worker(void *p)
{
    struct slab_arg *a = p;
    struct held held[128] = {{0}};
    for (size_t op = 0; op < a->ops && !failed(); op++) {
        struct held *h = &held[rnd(&a->seed) % 128];
        if (h->p) {
            if (!stamp(h->p, h->size, a->tag, true))
                fail("an allocation of %zu bytes was written by someone else", h->size);
            kmem_slab_free(a->slab, h->p, h->size);
            h->p = NULL;
        } else {
            h->size = slab_size(&a->seed);
            h->p = kmem_slab_alloc(a->slab, h->size);
            if (!h->p)
                fail("allocating %zu bytes failed with memory free", h->size);
            else
                stamp(h->p, h->size, a->tag, false);
        }
    }
    for (int i = 0; i < 128; i++)
        kmem_slab_free(a->slab, held[i].p, held[i].size);
    return NULL;
}

bool kmem_scn_slab_threads(double scale, char *msg, size_t size)
{
    verdict_reset();
    enum { THREADS = 4 };
    struct kmem_slab *s = growable_slab((size_t)2 << 30);
    if (!s)
        return verdict_get(msg, size);
    struct slab_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        args[i] = (struct slab_arg){s, scaled(scale, 20000), 0x9e3779b97f4a7c15u * (i + 1),
                                    (unsigned char)(0xa0 + i)};
    join_threads(th, start_threads(th, THREADS, slab_worker, args, sizeof(args[0])));
    struct kmem_slab_stats st;
    kmem_slab_stats(s, &st);
    if (st.requested != 0 || st.free_pages != st.pages || st.large_items != 0)
        fail("after every free: %zu bytes requested, %zu of %zu pages free, %zu large",
             st.requested, st.free_pages, st.pages, st.large_items);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}

/* ---- readers beside writers ---- */

/* Values: "KEY:VERSION:" then filler up to a length chosen by the writer;
   the filler byte is a function of the version. expire_at is the version. */
static size_t make_value(char *buf, size_t cap, const char *key, uint64_t version, size_t len)
{
    int n = snprintf(buf, cap, "%s:%" PRIu64 ":", key, version);
    size_t at = (size_t)n;
    if (len < at)
        len = at;
    if (len > cap)
        len = cap;
    memset(buf + at, 'a' + (int)(version % 26), len - at);
    return len;
}

/* Checks a value read for key; returns its version, or 0 (after fail())
   when it is not a value written for key. */
static uint64_t check_value(const char *key, const struct kmem_entry *e)
{
    size_t kl = strlen(key);
    const char *v = e->value;
    if (e->vlen < kl + 3 || memcmp(v, key, kl) != 0 || v[kl] != ':') {
        fail("key %s: a value of another key (%.*s)", key, (int)(e->vlen < 40 ? e->vlen : 40), v);
        return 0;
    }
    uint64_t version = 0;
    size_t i = kl + 1;
    while (i < e->vlen && v[i] >= '0' && v[i] <= '9')
        version = version * 10 + (uint64_t)(v[i++] - '0');
    if (i >= e->vlen || v[i] != ':' || (int64_t)version != e->expire_at) {
        fail("key %s: a malformed value or expire_at (version %" PRIu64 ", expire_at %" PRId64 ")",
             key, version, e->expire_at);
        return 0;
    }
    for (i++; i < e->vlen; i++) {
        if (v[i] != 'a' + (int)(version % 26)) {
            fail("key %s: a torn value (version %" PRIu64 ")", key, version);
            return 0;
        }
    }
    return version;
}

struct read_ctx {
    const char *key;
    uint64_t version;
};

static int read_cb(void *ctx, const struct kmem_entry *e)
{
    struct read_ctx *r = ctx;
    r->version = check_value(r->key, e);
    return 0;
}

enum { RW_WRITERS = 2, RW_READERS = 2, RW_KEYS = 2000 };

struct rw_shared {
    struct kmem_table *t;
    size_t ops;
    atomic_int writers_left;
};

struct rw_arg {
    struct rw_shared *sh;
    int id;
    uint64_t seed;
    /* writer: the last version it wrote of each of its keys; reader: the
       last version it read of each key of every writer */
    uint64_t version[RW_WRITERS * RW_KEYS];
    bool present[RW_KEYS]; /* writer: which of its keys are in the table */
    size_t reads;
};

static void key_name(char *buf, size_t cap, int writer, int i)
{
    snprintf(buf, cap, "w%d-%d", writer, i);
}

static void *rw_writer(void *p)
{
    struct rw_arg *a = p;
    char key[32], val[700];
    for (size_t op = 0; op < a->sh->ops && !failed(); op++) {
        int i = (int)(rnd(&a->seed) % RW_KEYS);
        key_name(key, sizeof(key), a->id, i);
        uint64_t r = rnd(&a->seed) % 100;
        if (r < 60) {
            uint64_t v = ++a->version[i];
            size_t len = make_value(val, sizeof(val), key, v, rnd(&a->seed) % 600);
            bool replaced;
            int rc = kmem_table_put(a->sh->t, key, strlen(key), val, len, (int64_t)v, &replaced);
            if (rc != 0 || replaced != a->present[i])
                fail("put %s: %d, replaced %d, expected %d", key, rc, replaced, a->present[i]);
            a->present[i] = true;
        } else if (r < 80) {
            int rc = kmem_table_remove(a->sh->t, key, strlen(key));
            if (rc != (a->present[i] ? 0 : KVS_ENOTFOUND))
                fail("remove %s: %d, present %d", key, rc, a->present[i]);
            a->present[i] = false;
        } else {
            struct read_ctx r = {key, 0};
            int rc = kmem_table_get(a->sh->t, key, strlen(key), read_cb, &r);
            if (rc != (a->present[i] ? 0 : KVS_ENOTFOUND) ||
                (rc == 0 && r.version != a->version[i]))
                fail("own get %s: %d, version %" PRIu64 ", expected %" PRIu64 " (present %d)", key,
                     rc, r.version, a->version[i], a->present[i]);
        }
    }
    atomic_fetch_sub(&a->sh->writers_left, 1);
    return NULL;
}

static void *rw_reader(void *p)
{
    struct rw_arg *a = p;
    char key[32];
    while (atomic_load(&a->sh->writers_left) > 0 && !failed()) {
        int w = (int)(rnd(&a->seed) % RW_WRITERS), i = (int)(rnd(&a->seed) % RW_KEYS);
        key_name(key, sizeof(key), w, i);
        struct read_ctx r = {key, 0};
        int rc = kmem_table_get(a->sh->t, key, strlen(key), read_cb, &r);
        uint64_t *last = &a->version[w * RW_KEYS + i];
        if (rc == 0 && r.version < *last)
            fail("get %s: version %" PRIu64 " after %" PRIu64, key, r.version, *last);
        else if (rc == 0)
            *last = r.version;
        else if (rc != KVS_ENOTFOUND)
            fail("get %s: %d", key, rc);
        a->reads++;
    }
    return NULL;
}

/* The final state equals the writers' models, by get and by a scan pass. */
struct tally {
    size_t visits;
};

static int tally_cb(void *ctx, const struct kmem_entry *e)
{
    (void)e;
    ((struct tally *)ctx)->visits++;
    return 0;
}

bool kmem_scn_readers_writers(double scale, char *msg, size_t size)
{
    verdict_reset();
    struct kmem_slab *s = growable_slab((size_t)1 << 30);
    struct kmem_table *t = new_table(s, 0);
    if (!t) {
        kmem_slab_destroy(s);
        return verdict_get(msg, size);
    }
    struct rw_shared sh = {.t = t, .ops = scaled(scale, 60000)};
    atomic_init(&sh.writers_left, RW_WRITERS);
    static struct rw_arg args[RW_WRITERS + RW_READERS];
    memset(args, 0, sizeof(args));
    pthread_t th[RW_WRITERS + RW_READERS];
    for (int i = 0; i < RW_WRITERS + RW_READERS; i++) {
        args[i].sh = &sh;
        args[i].id = i;
        args[i].seed = 0x2545f4914f6cdd1du * (uint64_t)(i + 7);
    }
    int started = start_threads(th, RW_WRITERS, rw_writer, args, sizeof(args[0]));
    int readers =
        start_threads(th + started, RW_READERS, rw_reader, args + RW_WRITERS, sizeof(args[0]));
    if (started < RW_WRITERS)
        atomic_store(&sh.writers_left, 0);
    join_threads(th, started + readers);

    size_t present = 0;
    char key[32];
    for (int w = 0; w < RW_WRITERS; w++) {
        for (int i = 0; i < RW_KEYS; i++) {
            key_name(key, sizeof(key), w, i);
            struct read_ctx r = {key, 0};
            int rc = kmem_table_get(t, key, strlen(key), read_cb, &r);
            present += args[w].present[i];
            if (rc != (args[w].present[i] ? 0 : KVS_ENOTFOUND) ||
                (rc == 0 && r.version != args[w].version[i]))
                fail("final get %s: %d, version %" PRIu64, key, rc, r.version);
        }
    }
    struct tally tally = {0};
    uint64_t cursor = 0;
    do {
        if (kmem_table_scan(t, cursor, 100, tally_cb, &tally, &cursor) != 0)
            fail("scan failed");
    } while (cursor != 0 && !failed());
    if (kmem_table_count(t) != present || tally.visits != present)
        fail("count %zu, a scan pass visited %zu, the models hold %zu", kmem_table_count(t),
             tally.visits, present);
    kmem_table_destroy(t);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}

/* ---- growth under readers ---- */

enum { GR_STABLE = 1000, GR_READERS = 2 };

struct gr_shared {
    struct kmem_table *t;
    atomic_bool stop;
};

struct gr_arg {
    struct gr_shared *sh;
    uint64_t seed;
    size_t reads;
};

static void stable_key(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "stable-%d", i);
}

static void *gr_reader(void *p)
{
    struct gr_arg *a = p;
    char key[32];
    while (!atomic_load(&a->sh->stop) && !failed()) {
        int i = (int)(rnd(&a->seed) % GR_STABLE);
        stable_key(key, sizeof(key), i);
        struct read_ctx r = {key, 0};
        int rc = kmem_table_get(a->sh->t, key, strlen(key), read_cb, &r);
        if (rc != 0 || r.version != (uint64_t)i + 1)
            fail("get %s while the table grows: %d, version %" PRIu64, key, rc, r.version);
        a->reads++;
    }
    return NULL;
}

/* Makes each item a growth moves take a while: readers run into half
   moved stripes thousands of times instead of a few. */
static void slow_move(void)
{
    for (volatile int i = 0; i < 300; i++)
        ;
}

bool kmem_scn_growth_under_readers(double scale, char *msg, size_t size)
{
    verdict_reset();
    struct kmem_slab *s = growable_slab((size_t)1 << 30);
    struct kmem_table *t = new_table(s, 0);
    if (!t) {
        kmem_slab_destroy(s);
        return verdict_get(msg, size);
    }
    char key[32], val[64];
    for (int i = 0; i < GR_STABLE; i++) {
        stable_key(key, sizeof(key), i);
        size_t len = make_value(val, sizeof(val), key, (uint64_t)i + 1, 20 + (size_t)i % 40);
        if (kmem_table_put(t, key, strlen(key), val, len, i + 1, NULL) != 0)
            fail("put %s failed", key);
    }
    struct gr_shared sh = {.t = t};
    atomic_init(&sh.stop, false);
    struct gr_arg args[GR_READERS];
    pthread_t th[GR_READERS];
    for (int i = 0; i < GR_READERS; i++)
        args[i] = (struct gr_arg){&sh, 0x9e3779b97f4a7c15u * (uint64_t)(i + 3), 0};
    int started = start_threads(th, GR_READERS, gr_reader, args, sizeof(args[0]));
    size_t adds = scaled(scale, 150000), first = kmem_table_buckets(t);
    kmem__table_move_hook = slow_move;
    for (size_t i = 0; i < adds && !failed(); i++) {
        snprintf(key, sizeof(key), "new-%zu", i);
        if (kmem_table_put(t, key, strlen(key), "x", 1, 0, NULL) != 0)
            fail("put %s failed", key);
    }
    kmem__table_move_hook = NULL;
    atomic_store(&sh.stop, true);
    join_threads(th, started);
    if (kmem_table_buckets(t) < first * 16)
        fail("the table grew from %zu to %zu buckets only, for %zu keys", first,
             kmem_table_buckets(t), kmem_table_count(t));
    kmem_table_destroy(t);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}

/* ---- scan passes beside writers ---- */

enum { SC_STABLE = 3000 };

struct sc_shared {
    struct kmem_table *t;
    atomic_bool scanning; /* the first step of a pass has run */
    atomic_bool stop;
    size_t adds;
};

static void *sc_writer(void *p)
{
    struct sc_shared *sh = p;
    char key[32];
    while (!atomic_load(&sh->scanning) && !failed())
        sched_yield();
    /* Add keys (the table grows), and remove each one a while later. */
    for (size_t i = 0; !atomic_load(&sh->stop) && !failed(); i++) {
        snprintf(key, sizeof(key), "n%zu", i);
        if (kmem_table_put(sh->t, key, strlen(key), "v", 1, 0, NULL) != 0)
            fail("put %s failed", key);
        if (i >= 1000 && i % 3 == 0) {
            snprintf(key, sizeof(key), "n%zu", i - 1000);
            kmem_table_remove(sh->t, key, strlen(key));
        }
        if (i == sh->adds)
            atomic_store(&sh->stop, true);
    }
    return NULL;
}

struct pass {
    unsigned char seen[SC_STABLE];
};

static int pass_cb(void *ctx, const struct kmem_entry *e)
{
    struct pass *p = ctx;
    char key[32];
    if (e->klen < 2 || e->klen >= sizeof(key))
        return 0;
    memcpy(key, e->key, e->klen);
    key[e->klen] = '\0';
    if (key[0] != 's')
        return 0;
    int i = atoi(key + 1);
    if (i < 0 || i >= SC_STABLE)
        fail("scan: an unknown key %s", key);
    else if (check_value(key, e) == (uint64_t)i + 1)
        p->seen[i] = 1;
    return 0;
}

bool kmem_scn_scan_beside_writers(double scale, char *msg, size_t size)
{
    verdict_reset();
    struct kmem_slab *s = growable_slab((size_t)1 << 30);
    struct kmem_table *t = new_table(s, 0);
    if (!t) {
        kmem_slab_destroy(s);
        return verdict_get(msg, size);
    }
    char key[32], val[64];
    for (int i = 0; i < SC_STABLE; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        size_t len = make_value(val, sizeof(val), key, (uint64_t)i + 1, 30);
        if (kmem_table_put(t, key, strlen(key), val, len, i + 1, NULL) != 0)
            fail("put %s failed", key);
    }
    struct sc_shared sh = {.t = t, .adds = scaled(scale, 200000)};
    atomic_init(&sh.scanning, false);
    atomic_init(&sh.stop, false);
    pthread_t th;
    bool started = start_threads(&th, 1, sc_writer, &sh, 0) == 1;
    size_t passes = 0, growths = 0, first = kmem_table_buckets(t);
    static struct pass pass;
    /* Passes until the writer is done, at least 3. */
    while (!failed() && (passes < 3 || !atomic_load(&sh.stop))) {
        memset(&pass, 0, sizeof(pass));
        uint64_t cursor = 0;
        size_t steps = 0, buckets = kmem_table_buckets(t);
        do {
            if (kmem_table_scan(t, cursor, 37, pass_cb, &pass, &cursor) != 0)
                fail("scan step failed");
            atomic_store(&sh.scanning, true);
            if (++steps > ((size_t)1 << 24))
                fail("a pass does not end (%zu steps)", steps);
        } while (cursor != 0 && !failed());
        for (int i = 0; i < SC_STABLE && !failed(); i++) {
            if (!pass.seen[i])
                fail("pass %zu (%zu steps, %zu -> %zu buckets) missed s%d", passes, steps, buckets,
                     kmem_table_buckets(t), i);
        }
        growths += kmem_table_buckets(t) > buckets;
        passes++;
    }
    atomic_store(&sh.stop, true);
    if (started)
        pthread_join(th, NULL);
    if (!failed() && kmem_table_buckets(t) < first * 8)
        fail("the table did not grow enough (%zu -> %zu buckets)", first, kmem_table_buckets(t));
    if (!failed() && growths == 0)
        fail("no pass saw the table grow (%zu passes)", passes);
    kmem_table_destroy(t);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}

/* ---- overwrites in a small arena ---- */

enum { CH_THREADS = 4, CH_KEYS = 200 };

struct ch_arg {
    struct kmem_table *t;
    int id;
    size_t ops;
    uint64_t seed;
    uint64_t version[CH_KEYS];
};

static void *ch_worker(void *p)
{
    struct ch_arg *a = p;
    char key[32], val[2100];
    for (size_t op = 0; op < a->ops && !failed(); op++) {
        int i = (int)(rnd(&a->seed) % CH_KEYS);
        snprintf(key, sizeof(key), "c%d-%d", a->id, i);
        uint64_t v = ++a->version[i];
        size_t len = make_value(val, sizeof(val), key, v, 100 + rnd(&a->seed) % 2000);
        int rc = kmem_table_put(a->t, key, strlen(key), val, len, (int64_t)v, NULL);
        if (rc != 0)
            fail("put %s (%zu bytes) after %zu overwrites: %d", key, len, op, rc);
    }
    return NULL;
}

bool kmem_scn_churn_small_arena(double scale, char *msg, size_t size)
{
    verdict_reset();
    /* 8 MiB of 128 KiB pages; live values: 800 keys of about 1.1 KB. */
    struct kmem_slab_config cfg = {.limit = (size_t)8 << 20, .page_size = (size_t)128 << 10};
    struct kmem_slab *s = NULL;
    if (kmem_slab_create(&cfg, &s) != 0) {
        fail("kmem_slab_create failed");
        return verdict_get(msg, size);
    }
    struct kmem_table *t = new_table(s, 0);
    static struct ch_arg args[CH_THREADS];
    pthread_t th[CH_THREADS];
    if (t) {
        for (int i = 0; i < CH_THREADS; i++)
            args[i] =
                (struct ch_arg){t, i, scaled(scale, 30000), 0x1234567u * (uint64_t)(i + 1), {0}};
        join_threads(th, start_threads(th, CH_THREADS, ch_worker, args, sizeof(args[0])));
        char key[32];
        for (int w = 0; w < CH_THREADS; w++) {
            for (int i = 0; i < CH_KEYS; i++) {
                snprintf(key, sizeof(key), "c%d-%d", w, i);
                struct read_ctx r = {key, 0};
                int rc = kmem_table_get(t, key, strlen(key), read_cb, &r);
                if (args[w].version[i] && (rc != 0 || r.version != args[w].version[i]))
                    fail("final get %s: %d, version %" PRIu64, key, rc, r.version);
            }
        }
    }
    kmem_table_destroy(t);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}

/* ---- snapshots beside writers ---- */

enum { SN_WRITERS = 2, SN_KEYS = 2000, SN_SNAPSHOTS = 12 };

struct sn_writer {
    struct kmem_table *t;
    int id;
    atomic_ulong done; /* ops applied, stored with release after each */
    atomic_bool *stop;
};

/* Op j of writer w: every 7th removes key j % SN_KEYS, the others set it
   to j. The state after a prefix of m ops is known from m alone. */
static void *sn_write(void *p)
{
    struct sn_writer *w = p;
    char key[32], val[32];
    for (unsigned long j = 0; !atomic_load(w->stop) && !failed(); j++) {
        snprintf(key, sizeof(key), "w%d-%lu", w->id, j % SN_KEYS);
        if (j % 7 == 6) {
            kmem_table_remove(w->t, key, strlen(key));
        } else {
            snprintf(val, sizeof(val), "%lu", j);
            if (kmem_table_put(w->t, key, strlen(key), val, strlen(val), 0, NULL) != 0)
                fail("put %s failed", key);
        }
        atomic_store_explicit(&w->done, j + 1, memory_order_release);
    }
    return NULL;
}

struct sn_image {
    struct sn_writer *w;
    unsigned long lo[SN_WRITERS];    /* ops done at the cut, at least */
    long value[SN_WRITERS][SN_KEYS]; /* -1: absent */
    size_t items;
};

static void sn_cut(void *ctx)
{
    struct sn_image *im = ctx;
    for (int i = 0; i < SN_WRITERS; i++)
        im->lo[i] = atomic_load_explicit(&im->w[i].done, memory_order_acquire);
}

static int sn_item(void *ctx, const struct kmem_entry *e)
{
    struct sn_image *im = ctx;
    char key[32] = "", val[32] = "";
    memcpy(key, e->key, e->klen < 31 ? e->klen : 31);
    memcpy(val, e->value, e->vlen < 31 ? e->vlen : 31);
    int w = -1;
    unsigned long k = 0;
    if (sscanf(key, "w%d-%lu", &w, &k) != 2 || w < 0 || w >= SN_WRITERS || k >= SN_KEYS) {
        fail("snapshot: an unknown key %s", key);
        return 0;
    }
    if (im->value[w][k] != -1)
        fail("snapshot: %s twice", key);
    im->value[w][k] = atol(val);
    im->items++;
    return 0;
}

/* Whether the image holds exactly the state after m ops of writer w. */
static bool sn_matches(const struct sn_image *im, int w, unsigned long m)
{
    for (unsigned long k = 0; k < SN_KEYS; k++) {
        long want = -1;
        if (m > k) {
            unsigned long last = k + (m - 1 - k) / SN_KEYS * SN_KEYS;
            want = last % 7 == 6 ? -1 : (long)last;
        }
        if (im->value[w][k] != want)
            return false;
    }
    return true;
}

bool kmem_scn_snapshot_beside_writers(double scale, char *msg, size_t size)
{
    verdict_reset();
    struct kmem_slab *s = growable_slab((size_t)1 << 30);
    struct kmem_table *t = new_table(s, 0);
    if (!t) {
        kmem_slab_destroy(s);
        return verdict_get(msg, size);
    }
    atomic_bool stop;
    atomic_init(&stop, false);
    struct sn_writer w[SN_WRITERS];
    for (int i = 0; i < SN_WRITERS; i++) {
        w[i] = (struct sn_writer){.t = t, .id = i, .stop = &stop};
        atomic_init(&w[i].done, 0);
    }
    pthread_t th[SN_WRITERS];
    int started = start_threads(th, SN_WRITERS, sn_write, w, sizeof(w[0]));
    struct sn_image *im = malloc(sizeof(*im));
    size_t rounds = scaled(scale, SN_SNAPSHOTS);
    for (size_t r = 0; r < rounds && im && !failed(); r++) {
        memset(im, 0, sizeof(*im));
        memset(im->value, 0xff, sizeof(im->value)); /* -1 */
        im->w = w;
        struct kmem_snapshot_calls calls = {.cut = sn_cut, .item = sn_item, .ctx = im};
        if (kmem_table_snapshot(t, &calls) != 0)
            fail("snapshot %zu failed", r);
        for (int i = 0; i < SN_WRITERS && !failed(); i++) {
            unsigned long hi = atomic_load(&w[i].done);
            /* The image's newest value bounds m: the ops after it until m
               can only be one remove. */
            long newest = -1;
            for (unsigned long k = 0; k < SN_KEYS; k++)
                if (im->value[i][k] > newest)
                    newest = im->value[i][k];
            unsigned long m = (unsigned long)(newest + 1);
            if (!sn_matches(im, i, m) && !sn_matches(im, i, m + 1))
                fail("snapshot %zu: writer %d's keys are no prefix of its ops (newest %ld)", r, i,
                     newest);
            else if (m + 1 < im->lo[i] || m > hi + 1)
                fail("snapshot %zu: writer %d: %lu ops, not between %lu done at the cut and %lu "
                     "after",
                     r, i, m, im->lo[i], hi);
        }
        sched_yield();
    }
    atomic_store(&stop, true);
    join_threads(th, started);
    free(im);
    kmem_table_destroy(t);
    kmem_slab_destroy(s);
    return verdict_get(msg, size);
}
