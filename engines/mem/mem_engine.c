/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "mem" engine (mem_db.h): the vtable, the read and write paths,
 * opening and closing.
 *
 * Reads and writes are the table's (table.h): a get copies the value out
 * inside an epoch section without a lock, a write takes one stripe lock.
 * Expiry times are stored with the items; a get or a scan hides a key whose
 * time has passed, and KVS_OP_EXPIRE removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mem_db.h"

/* Chunks the slab maps as the data grows: address space first, memory
   as pages are touched. */
#define MEM_CHUNK ((size_t)64 << 20)
/* The slab's limit when max_memory is 0: more than any machine has. */
#define MEM_NO_LIMIT ((size_t)1 << 46)
/* The smallest max_memory. */
#define MEM_MIN_MEMORY ((size_t)1 << 20)

/*
 * max_memory is Redis's maxmemory with the noeviction policy: a write that
 * starts while the memory in use (the slab's pages handed out) is at the
 * limit is refused, one that starts below it is done whole, even if it
 * takes the memory past the limit. A batch is judged once, at its start,
 * so a batch (an MSET among others) is refused or done as a whole. Behind
 * that the slab has a hard limit an eighth higher: a batch bigger than
 * that headroom fails at it, set by set.
 */
static bool over_limit(struct mem_db *db)
{
    if (!db->opts.max_memory || kmem_slab_held(db->slab) < db->opts.max_memory)
        return false;
    /* Removed items hold their pages until their readers have left: free
       what can be freed before refusing. */
    kmem_table_reclaim(db->table, true);
    return kmem_slab_held(db->slab) >= db->opts.max_memory;
}

/* The table's KVS_ENOMEM is the hard limit when there is one. */
static int full(const struct mem_db *db, int rc)
{
    return rc == KVS_ENOMEM && db->opts.max_memory ? KVS_EFULL : rc;
}

static void wrote(struct mem_db *db, uint64_t n)
{
    atomic_fetch_add_explicit(&db->writes, n, memory_order_release);
}

/* ---- the read path ---- */

struct get_out {
    kvs_buf *value;
    int64_t *expire_at;
};

static int copy_out(void *ctx, const struct kmem_entry *e)
{
    struct get_out *g = ctx;
    if (e->expire_at && e->expire_at <= kvs_now_ms())
        return KVS_ENOTFOUND;
    int rc = kvs_buf_reserve(g->value, e->vlen ? e->vlen : 1);
    if (rc != 0)
        return rc;
    if (e->vlen)
        memcpy(g->value->data, e->value, e->vlen);
    g->value->len = e->vlen;
    if (g->expire_at)
        *g->expire_at = e->expire_at;
    return 0;
}

static int mem_get_ex(struct kvs_db *base, kvs_slice key, kvs_buf *value, int64_t *expire_at)
{
    struct get_out g = {value, expire_at};
    return kmem_table_get(mem_db_of(base)->table, key.data, key.len, copy_out, &g);
}

static int mem_get(struct kvs_db *base, kvs_slice key, kvs_buf *value)
{
    return mem_get_ex(base, key, value, NULL);
}

struct scan_out {
    kvs_scan_fn fn;
    void *ctx;
    unsigned flags;
    int64_t now;
};

static int scan_one(void *ctx, const struct kmem_entry *e)
{
    struct scan_out *s = ctx;
    bool expired = e->expire_at && e->expire_at <= s->now;
    if (expired != ((s->flags & KVS_SCAN_EXPIRED) != 0))
        return 0;
    kvs_slice value = kvs_slice_of(e->value, e->vlen);
    return s->fn(s->ctx, kvs_slice_of(e->key, e->klen),
                 (s->flags & KVS_SCAN_VALUES) ? &value : NULL, e->expire_at);
}

/* The table's cursors are positions in hash order, below 2^32; any other
   value (a client's, or RANDOMKEY's random start) is taken as the position
   of its top 32 bits. */
static int mem_scan(struct kvs_db *base, uint64_t cursor, size_t count, unsigned flags,
                    kvs_scan_fn fn, void *ctx, uint64_t *next)
{
    if (cursor >= KMEM_TABLE_SCAN_END)
        cursor >>= 32;
    struct scan_out s = {fn, ctx, flags, kvs_now_ms()};
    return kmem_table_scan(mem_db_of(base)->table, cursor, count, scan_one, &s, next);
}

/* ---- the write path ---- */

static int put(struct mem_db *db, kvs_slice key, kvs_slice value, int64_t expire_at)
{
    int rc = kmem_table_put(db->table, key.data, key.len, value.data, value.len, expire_at, NULL);
    if (rc != 0)
        return full(db, rc);
    wrote(db, 1);
    return 0;
}

static int mem_set(struct kvs_db *base, kvs_slice key, kvs_slice value)
{
    struct mem_db *db = mem_db_of(base);
    return over_limit(db) ? KVS_EFULL : put(db, key, value, 0);
}

static int mem_remove(struct kvs_db *base, kvs_slice key)
{
    struct mem_db *db = mem_db_of(base);
    int rc = kmem_table_remove(db->table, key.data, key.len);
    if (rc == 0)
        wrote(db, 1);
    return rc;
}

/* A batch is applied op by op: each is visible once applied, and a
   snapshot taken meanwhile holds a prefix of the batch (its cut falls
   between two ops), as kvs_db_write() allows. Sets refused for memory
   (over_limit) have the result KVS_EFULL; the other ops go on. */
static int mem_write(struct kvs_db *base, kvs_op *ops, size_t n)
{
    struct mem_db *db = mem_db_of(base);
    bool over = over_limit(db);
    for (size_t i = 0; i < n; i++) {
        kvs_op *op = &ops[i];
        int rc;
        switch (op->type) {
        case KVS_OP_SET:
            rc = over ? KVS_EFULL : put(db, op->key, op->value, op->expire_at);
            if (rc != 0 && rc != KVS_EFULL)
                return rc;
            op->result = rc;
            break;
        case KVS_OP_REMOVE:
            op->result = mem_remove(base, op->key);
            break;
        default: /* KVS_OP_EXPIRE */
            op->result =
                kmem_table_remove_expired(db->table, op->key.data, op->key.len, op->expire_at);
            if (op->result == 0)
                wrote(db, 1);
            break;
        }
    }
    return 0;
}

static int mem_clear(struct kvs_db *base)
{
    struct mem_db *db = mem_db_of(base);
    kmem_table_clear(db->table);
    wrote(db, 1);
    return 0;
}

/* Durable means in a snapshot for this engine. */
static int mem_save_op(struct kvs_db *base)
{
    return kmem_save(mem_db_of(base));
}

/* ---- figures ---- */

static int mem_stats(struct kvs_db *base, kvs_stats *st)
{
    struct mem_db *db = mem_db_of(base);
    struct kmem_table_figures f;
    kmem_table_figures(db->table, &f);
    memset(st, 0, sizeof(*st));
    st->keys = f.keys;
    st->expires = f.expires;
    st->expire_mean = f.expires ? f.expire_sum / (int64_t)f.expires : 0;
    st->live_bytes = f.bytes;
    st->memory_bytes = kmem_slab_held(db->slab);
    pthread_mutex_lock(&db->state_lock);
    st->disk_bytes = db->last_bytes;
    pthread_mutex_unlock(&db->state_lock);
    return 0;
}

static void emit_classes(const struct kmem_slab_stats *ss, kvs_info_fn fn, void *ctx)
{
    for (unsigned i = 0; i < ss->nclasses; i++) {
        const struct kmem_slab_class_stats *c = &ss->cls[i];
        if (c->pages == 0)
            continue;
        char name[40], value[160];
        snprintf(name, sizeof(name), "slab_class_%zu", c->size);
        snprintf(value, sizeof(value), "pages=%zu,items=%zu,per_page=%zu,requested_bytes=%zu",
                 c->pages, c->slots, c->per_page, c->requested);
        fn(ctx, name, value);
    }
}

/* The engine's figures for INFO: memory by the slab's account, the
   table, the classes that hold pages, and the snapshots. */
static int mem_info(struct kvs_db *base, kvs_info_fn fn, void *ctx)
{
    struct mem_db *db = mem_db_of(base);
    struct kmem_slab_stats *ss = malloc(sizeof(*ss));
    if (!ss)
        return KVS_ENOMEM;
    kmem_slab_stats(db->slab, ss);
    kvs_save_status sv;
    kmem_save_status(base, &sv);
    uint64_t figures[] = {
        ss->requested,
        ss->allocated,
        (ss->pages - ss->free_pages) * ss->page_size,
        ss->mapped,
        db->opts.max_memory,
        ss->page_size,
        ss->pages,
        ss->free_pages,
        ss->large_items,
        kmem_table_buckets(db->table),
        sv.saves,
        sv.last_bytes,
        (uint64_t)sv.last_ms,
    };
    static const char *const names[] = {
        "mem_used_bytes",   "mem_allocated_bytes", "mem_pages_bytes", "mem_mapped_bytes",
        "mem_max_memory",   "slab_page_size",      "slab_pages",      "slab_free_pages",
        "slab_large_items", "table_buckets",       "snapshots",       "snapshot_bytes",
        "snapshot_last_ms",
    };
    _Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(figures) / sizeof(figures[0]),
                   "a name per figure");
    kvs__info_figures(fn, ctx, names, figures, sizeof(figures) / sizeof(figures[0]));
    char frag[32];
    snprintf(frag, sizeof(frag), "%.3f", kmem_slab_fragmentation(ss));
    fn(ctx, "mem_fragmentation", frag);
    emit_classes(ss, fn, ctx);
    free(ss);
    return 0;
}

/* ---- open and close ---- */

static void db_free(struct mem_db *db)
{
    kmem_table_destroy(db->table);
    kmem_slab_destroy(db->slab);
    pthread_cond_destroy(&db->bg_cond);
    pthread_mutex_destroy(&db->state_lock);
    pthread_mutex_destroy(&db->save_lock);
    if (db->dir_fd >= 0)
        close(db->dir_fd);
    free(db->dir);
    free(db);
}

static struct mem_db *db_alloc(const char *dir, const kvs_options *opts)
{
    struct mem_db *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->dir_fd = -1;
    db->opts = *opts;
    pthread_mutex_init(&db->save_lock, NULL);
    pthread_mutex_init(&db->state_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->bg_cond, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&db->writes, 0);
    db->last_save = kvs_now_ms();
    db->dir = strdup(dir);
    if (!db->dir) {
        db_free(db);
        return NULL;
    }
    return db;
}

/* The slab for max_memory: pages of a 64th of it (64 KiB to 1 MiB), so
   that a small limit still holds pages of many classes, and the hard
   limit an eighth above it (over_limit says why). */
static int make_table(struct mem_db *db, char *why)
{
    size_t max = (size_t)db->opts.max_memory, limit = MEM_NO_LIMIT, page = KMEM_SLAB_PAGE_SIZE;
    if (max) {
        if (max < MEM_MIN_MEMORY || max > MEM_NO_LIMIT) {
            kvs__why(why, "max_memory of %zu bytes is out of range: from %zu to %zu", max,
                     MEM_MIN_MEMORY, MEM_NO_LIMIT);
            return KVS_EINVAL;
        }
        while (page > KMEM_SLAB_MIN_PAGE && page > max / 64)
            page /= 2;
        limit = max + (max / 8 > 16 * page ? max / 8 : 16 * page);
    }
    struct kmem_slab_config cfg = {.limit = limit, .page_size = page, .chunk_size = MEM_CHUNK};
    int rc = kmem_slab_create(&cfg, &db->slab);
    if (rc == 0)
        rc = kmem_table_create(db->slab, 0, 0, &db->table);
    if (rc != 0)
        kvs__why(why, "cannot set up the mem engine's memory for %s: %s", db->dir,
                 kvs_strerror(rc));
    return rc;
}

static int mem_open(const char *dir, const kvs_options *opts, struct kvs_db **dbp, char *why)
{
    struct mem_db *db = db_alloc(dir, opts);
    if (!db) {
        kvs__why(why, "out of memory opening %s", dir);
        return KVS_ENOMEM;
    }
    int rc;
    db->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (db->dir_fd < 0) {
        rc = kvs_err_from_errno(errno);
        kvs__why(why, "cannot open data directory %s: %s", dir, strerror(errno));
        goto out_free;
    }
    rc = make_table(db, why);
    if (rc == 0)
        rc = kmem_load(db, why);
    if (rc != 0)
        goto out_free;
    rc = kmem_bg_start(db);
    if (rc != 0) {
        kvs__why(why, "cannot start the snapshot thread for %s", dir);
        goto out_free;
    }
    *dbp = &db->base;
    return 0;

out_free:
    db_free(db);
    return rc;
}

static int close_with(struct kvs_db *base, bool save)
{
    struct mem_db *db = mem_db_of(base);
    kmem_bg_stop(db);
    int rc = 0;
    kvs_save_status st;
    kmem_save_status(base, &st);
    if (save && db->opts.snapshot_interval && st.changes)
        rc = kmem_save(db);
    db_free(db);
    return rc;
}

static int mem_close(struct kvs_db *base)
{
    return close_with(base, true);
}

static int mem_close_nosave(struct kvs_db *base)
{
    return close_with(base, false);
}

static const char *const signature_files[] = {KMEM_SNAP_NAME, KMEM_SNAP_TMP, NULL};

const struct kvs_engine kvs__mem_engine = {
    .abi = KVS_ENGINE_ABI,
    .name = "mem",
    .max_key = KMEM_MAX_KEY,
    .max_value = KMEM_MAX_VALUE,
    .signature_files = signature_files,
    .open = mem_open,
    .close = mem_close,
    .get = mem_get,
    .set = mem_set,
    .remove = mem_remove,
    .sync = mem_save_op,
    .stats = mem_stats,
    .clear = mem_clear,
    .compact = NULL,
    .write = mem_write,
    .scan = mem_scan,
    .traits = KVS_ENGINE_VOLATILE,
    .save = mem_save_op,
    .info = mem_info,
    .check = kmem_check,
    .get_ex = mem_get_ex,
    .bgsave = kmem_bgsave,
    .save_status = kmem_save_status,
    .close_nosave = mem_close_nosave,
};
