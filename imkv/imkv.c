/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libimkv: the ht_* interface (imkv.h) over the mem engine's table and slab
 * (engines/mem/table.h, slab.h). The slab runs in fixed mode: one mapping
 * of IMKV_MEMORY bytes made by ht_init(), holding every item and bucket
 * array; lookups copy into a buffer of the calling thread's own.
 */
#include "imkv.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engines/mem/slab.h"
#include "engines/mem/table.h"
#include "kvs/error.h"

/* The ht_* functions are the shared library's only exports. */
#define API __attribute__((visibility("default")))

#define DEFAULT_MEMORY ((size_t)64 << 20)
#define MIN_MEMORY ((size_t)2 << 20)
#define MAX_BUCKETS (1u << 30)

struct imkv {
    struct kmem_slab *slab;
    struct kmem_table *table;
};

/* Serialises ht_init() and ht_destroy(). Every other call reads the
   table they publish without it. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct imkv *) the_table;

/*
 * Lookup buffers, one per thread that looked something up. All of them are
 * on one list so that ht_destroy() can free them (and so that a program that
 * exits without ht_destroy() still reaches them: nothing is lost). A thread
 * finds its own through thread-local pointers; the thread's exit frees it
 * through a pthread key whose value is the buffer's id, not its address,
 * since ht_destroy() may have freed the buffer first.
 */
struct tbuf {
    struct tbuf *next;
    uint64_t id;
    char *data;
    size_t cap;
};

/* Protects bufs and next_id. Taken with no other lock, or after
   init_lock. */
static pthread_mutex_t bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tbuf *bufs;
static uint64_t next_id = 1;
/* Moved on by ht_destroy(): a thread's pointer from before is gone. */
static atomic_uint_least64_t bufs_gen;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;
static _Thread_local struct tbuf *my_buf;
static _Thread_local uint64_t my_gen;

static void tbuf_free(struct tbuf *b)
{
    free(b->data);
    free(b);
}

/* At a thread's exit: free its buffer if ht_destroy() has not. */
static void on_thread_exit(void *value)
{
    uint64_t id = (uint64_t)(uintptr_t)value;
    struct tbuf *found = NULL;
    pthread_mutex_lock(&bufs_lock);
    for (struct tbuf **pp = &bufs; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&bufs_lock);
    if (found)
        tbuf_free(found);
}

static void make_exit_key(void)
{
    exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* The calling thread's buffer, made on first use; NULL without memory. */
static struct tbuf *thread_buf(void)
{
    uint64_t gen = atomic_load_explicit(&bufs_gen, memory_order_acquire);
    if (my_buf && my_gen == gen)
        return my_buf;
    pthread_once(&key_once, make_exit_key);
    struct tbuf *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_mutex_lock(&bufs_lock);
    b->id = next_id++;
    b->next = bufs;
    bufs = b;
    pthread_mutex_unlock(&bufs_lock);
    if (exit_key_ok)
        pthread_setspecific(exit_key, (void *)(uintptr_t)b->id);
    my_buf = b;
    my_gen = gen;
    return b;
}

/* IMKV_MEMORY: unset or empty for the default, else decimal bytes. */
static bool memory_from_env(size_t *out)
{
    const char *s = getenv("IMKV_MEMORY");
    if (!s || !*s) {
        *out = DEFAULT_MEMORY;
        return true;
    }
    size_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || n > (SIZE_MAX - 9) / 10)
            return false;
        n = n * 10 + (size_t)(*s - '0');
    }
    *out = n;
    return n >= MIN_MEMORY;
}

/* 1 MiB pages (memcached's), smaller for a small arena so that it has 64
   pages or more to share between classes. */
static size_t page_for(size_t memory)
{
    size_t page = (size_t)1 << 20;
    while (page > ((size_t)64 << 10) && memory / page < 64)
        page >>= 1;
    return page;
}

API HT_RET ht_init(unsigned int num_buckets)
{
    size_t memory;
    if (num_buckets == 0 || num_buckets > MAX_BUCKETS || !memory_from_env(&memory))
        return HT_INIT_FAILED;
    HT_RET ret = HT_INIT_FAILED;
    pthread_mutex_lock(&init_lock);
    if (atomic_load_explicit(&the_table, memory_order_relaxed))
        goto out_unlock;
    struct imkv *h = calloc(1, sizeof(*h));
    if (!h)
        goto out_unlock;
    struct kmem_slab_config cfg = {.limit = memory, .page_size = page_for(memory)};
    if (kmem_slab_create(&cfg, &h->slab) != 0)
        goto out_free;
    if (kmem_table_create(h->slab, num_buckets, 0, &h->table) != 0)
        goto out_slab;
    atomic_store_explicit(&the_table, h, memory_order_release);
    ret = HT_INIT_OK;
    goto out_unlock;

out_slab:
    kmem_slab_destroy(h->slab);
out_free:
    free(h);
out_unlock:
    pthread_mutex_unlock(&init_lock);
    return ret;
}

API HT_RET ht_insert(char *key, char *val)
{
    struct imkv *h = atomic_load_explicit(&the_table, memory_order_acquire);
    if (!h || !key || !val)
        return HT_INSERT_FAILED;
    int rc = kmem_table_put(h->table, key, strlen(key), val, strlen(val), 0, NULL);
    return rc == 0 ? HT_INSERT_OK : HT_INSERT_FAILED;
}

/* Copy the value, NUL-terminated, into the thread's buffer (ctx). */
static int copy_out(void *ctx, const struct kmem_entry *e)
{
    struct tbuf *b = ctx;
    size_t need = e->vlen + 1;
    /* Grow as needed; give a big buffer back once values are much smaller. */
    if (need > b->cap || (b->cap > ((size_t)64 << 10) && need < b->cap / 4)) {
        size_t cap = need < 64 ? 64 : need;
        char *data = malloc(cap);
        if (!data)
            return KVS_ENOMEM;
        free(b->data);
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data, e->value, e->vlen);
    b->data[e->vlen] = '\0';
    return 0;
}

API HT_RET ht_lookup(char *key, char **val)
{
    if (!val)
        return HT_NOTFOUND;
    *val = NULL;
    struct imkv *h = atomic_load_explicit(&the_table, memory_order_acquire);
    if (!h || !key)
        return HT_NOTFOUND;
    struct tbuf *b = thread_buf();
    if (!b || kmem_table_get(h->table, key, strlen(key), copy_out, b) != 0)
        return HT_NOTFOUND;
    *val = b->data;
    return HT_FOUND;
}

API HT_RET ht_delete(char *key)
{
    struct imkv *h = atomic_load_explicit(&the_table, memory_order_acquire);
    if (!h || !key)
        return HT_DELETE_FAILED;
    return kmem_table_remove(h->table, key, strlen(key)) == 0 ? HT_DELETE_OK : HT_DELETE_FAILED;
}

API void ht_destroy(void)
{
    pthread_mutex_lock(&init_lock);
    struct imkv *h = atomic_exchange(&the_table, NULL);
    if (h) {
        kmem_table_destroy(h->table);
        kmem_slab_destroy(h->slab);
        free(h);
    }
    pthread_mutex_lock(&bufs_lock);
    struct tbuf *list = bufs;
    bufs = NULL;
    atomic_fetch_add(&bufs_gen, 1);
    pthread_mutex_unlock(&bufs_lock);
    pthread_mutex_unlock(&init_lock);
    while (list) {
        struct tbuf *next = list->next;
        tbuf_free(list);
        list = next;
    }
}
