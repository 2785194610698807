/* SPDX-License-Identifier: BSD-3-Clause */
/* The mem engine's hash table; see table.h for the design. */
#include "table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "epoch.h"
#include "kvs/error.h"

#define SB KMEM_TABLE_STRIPE_BITS
#define MAX_BITS 32
#define MAX_INITIAL_BITS 30
/* Old buckets moved, at least, after each write while the table grows. */
#define MOVE_BUCKETS 256
/* Chain steps between checks that a reader's stripe did not move. */
#define CHECK_EVERY 32
/* Retires by one thread between attempts to move the epoch on. */
#define ADVANCE_EVERY 32
/* Lock-free attempts of a get before it takes the stripe lock. */
#define GET_ATTEMPTS 3

struct kmem_item {
    _Atomic(struct kmem_item *) next; /* the chain */
    struct kmem_item *retired_next;   /* the stripe's retired items, once unlinked */
    int64_t expire_at;
    uint32_t hash; /* the top 32 bits of the key's hash: its home in every array */
    uint32_t gen;  /* the table's generation when it was linked (snapshots) */
    uint32_t klen;
    uint32_t vlen;
    unsigned char data[]; /* key, then value */
};

/* A bucket array, in slab memory. */
struct buckets {
    size_t alloc; /* bytes allocated */
    unsigned bits;
    struct buckets *retired_next;
    uint64_t retired_epoch;
    _Atomic(struct kmem_item *) head[];
};

/* What readers of a stripe read: written only while the stripe moves. */
struct stripe_rd {
    atomic_uint seq;               /* odd while the stripe moves to a larger array */
    _Atomic(struct buckets *) tab; /* the array that holds the stripe */
};

/* Items unlinked during one epoch, waiting for its readers to leave. */
struct bag {
    struct kmem_item *head;
    uint64_t epoch;
};

struct stripe {
    /* Protects the chains of the stripe's buckets (in whichever array),
       its move to a larger array, and bag. Taken before the slab's locks;
       never held while waiting for readers to leave. */
    _Alignas(64) pthread_mutex_t lock;
    struct bag bag[3]; /* bag[e % 3] holds what was retired during epoch e */
    /* While a snapshot runs: true until its walk has passed the stripe;
       kept holds the items of the cut that writes unlinked meanwhile. */
    bool snap_pending;
    struct kmem_item *kept;
};

struct kmem_table {
    struct kmem_slab *slab;
    uint64_t seed;
    struct kmem_epoch epoch;
    struct stripe_rd rd[KMEM_TABLE_STRIPES];
    struct stripe st[KMEM_TABLE_STRIPES];
    _Alignas(64) atomic_size_t count;
    atomic_size_t bytes;        /* of live keys and values */
    atomic_size_t expires;      /* live keys with an expiry time */
    _Atomic int64_t expire_sum; /* of their times */
    atomic_uint gen;            /* the snapshot generation (table.h) */
    atomic_uint cur_bits;       /* of cur, read without the resize lock */
    uint32_t snap_gen;          /* the last generation of the running snapshot's cut */
    pthread_mutex_t snap_lock;  /* one snapshot at a time; taken before stripe locks */

    /* Protects cur, starting and finishing a growth, grow_retry and
       retired. Taken with no stripe lock held. */
    _Alignas(64) pthread_mutex_t resize_lock;
    struct buckets *cur;            /* the array every stripe is in when not growing */
    _Atomic(struct buckets *) next; /* the array being grown into, or NULL */
    /* The growth's number << 32 | the next stripe to move: a thread claims
       a stripe of the growth it read, never of a later one. */
    atomic_uint_least64_t claim;
    atomic_uint moved; /* stripes moved in this growth */
    size_t grow_retry; /* no growth before this many keys (the last one failed) */
    struct buckets *retired;
};

/* Items to give back to the slab once the stripe lock is released. */
struct doomed {
    struct kmem_item *list[3];
};

static _Thread_local unsigned retires_by_thread;

#ifdef KMEM_TESTING
void (*kmem__table_move_hook)(void);
void (*kmem__table_walk_hook)(void);
_Atomic unsigned long kmem__table_locked_gets, kmem__table_rewalks;
#define TEST_HOOK(hook)                                                                            \
    do {                                                                                           \
        if (hook)                                                                                  \
            hook();                                                                                \
    } while (0)
#define TEST_COUNT(counter) atomic_fetch_add_explicit(&(counter), 1, memory_order_relaxed)
#else
#define TEST_HOOK(hook)                                                                            \
    do {                                                                                           \
    } while (0)
#define TEST_COUNT(counter)                                                                        \
    do {                                                                                           \
    } while (0)
#endif

static uint32_t hash_of(const struct kmem_table *t, const void *key, size_t klen)
{
    return (uint32_t)(XXH3_64bits_withSeed(key, klen, t->seed) >> 32);
}

static unsigned stripe_of(uint32_t h)
{
    return h >> (32 - SB);
}

static size_t home(const struct buckets *b, uint32_t h)
{
    return (size_t)(h >> (32 - b->bits));
}

static size_t item_size(size_t klen, size_t vlen)
{
    return sizeof(struct kmem_item) + klen + vlen;
}

static bool matches(const struct kmem_item *it, uint32_t h, const void *key, size_t klen)
{
    return it->hash == h && it->klen == klen && (klen == 0 || memcmp(it->data, key, klen) == 0);
}

static int call(kmem_entry_fn fn, void *ctx, const struct kmem_item *it)
{
    struct kmem_entry e = {
        .key = it->data,
        .klen = it->klen,
        .value = it->data + it->klen,
        .vlen = it->vlen,
        .expire_at = it->expire_at,
    };
    return fn(ctx, &e);
}

static size_t buckets_bytes(unsigned bits)
{
    return sizeof(struct buckets) + ((size_t)1 << bits) * sizeof(_Atomic(struct kmem_item *));
}

static struct buckets *buckets_new(struct kmem_slab *slab, unsigned bits)
{
    size_t bytes = buckets_bytes(bits);
    struct buckets *b = kmem_slab_alloc_zero(slab, bytes);
    if (b) {
        b->alloc = bytes;
        b->bits = bits;
    }
    return b;
}

static void free_item(struct kmem_table *t, struct kmem_item *it)
{
    kmem_slab_free(t->slab, it, item_size(it->klen, it->vlen));
}

static void free_doomed(struct kmem_table *t, struct doomed *d)
{
    for (int i = 0; i < 3; i++) {
        struct kmem_item *it = d->list[i];
        while (it) {
            struct kmem_item *next = it->retired_next;
            free_item(t, it);
            it = next;
        }
        d->list[i] = NULL;
    }
}

/* Move the bags whose readers have left (epoch two past theirs) to d. */
static void collect_locked(struct stripe *st, uint64_t now, struct doomed *d)
{
    for (int i = 0; i < 3; i++) {
        struct bag *b = &st->bag[i];
        if (b->head && b->epoch + 2 <= now) {
            d->list[i] = b->head;
            b->head = NULL;
        }
    }
}

/* Keep the unlinked item it until its readers have left. */
static void retire_locked(struct kmem_table *t, struct stripe *st, struct kmem_item *it,
                          struct doomed *d)
{
    uint64_t now = kmem_epoch_now(&t->epoch);
    collect_locked(st, now, d);
    /* bag[now % 3] is now empty or of this epoch: one three back is safe. */
    struct bag *b = &st->bag[now % 3];
    b->epoch = now;
    it->retired_next = b->head;
    b->head = it;
}

/* Whether generation a is at or before b (generations wrap). */
static bool gen_le(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) <= 0;
}

/* Dispose of the unlinked item it, unlinked by a write of generation now:
   keep it for the running snapshot if it belongs to the cut and the write
   does not (and the walk has not passed its stripe), else retire it. */
static void drop_locked(struct kmem_table *t, struct stripe *st, struct kmem_item *it, uint32_t now,
                        struct doomed *d)
{
    if (st->snap_pending && gen_le(it->gen, t->snap_gen) && !gen_le(now, t->snap_gen)) {
        it->retired_next = st->kept;
        st->kept = it;
        return;
    }
    retire_locked(t, st, it, d);
}

/* Count added in the figures and gone out of them (either may be NULL). */
static void account(struct kmem_table *t, const struct kmem_item *added,
                    const struct kmem_item *gone)
{
    size_t bytes = 0, expires = 0;
    int64_t sum = 0;
    if (added) {
        bytes += (size_t)added->klen + added->vlen;
        expires += added->expire_at != 0;
        sum += added->expire_at;
    }
    if (gone) {
        bytes -= (size_t)gone->klen + gone->vlen;
        expires -= gone->expire_at != 0;
        sum -= gone->expire_at;
    }
    if (bytes)
        atomic_fetch_add_explicit(&t->bytes, bytes, memory_order_relaxed);
    if (expires)
        atomic_fetch_add_explicit(&t->expires, expires, memory_order_relaxed);
    if (sum)
        atomic_fetch_add_explicit(&t->expire_sum, sum, memory_order_relaxed);
}

static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)ts.tv_sec;
    }
    return seed | 1;
}

int kmem_table_create(struct kmem_slab *slab, size_t buckets, uint64_t seed,
                      struct kmem_table **out)
{
    if (buckets > (size_t)1 << MAX_INITIAL_BITS)
        return KVS_EINVAL;
    unsigned bits = SB;
    while (((size_t)1 << bits) < buckets)
        bits++;
    struct kmem_table *t;
    if (posix_memalign((void **)&t, 64, sizeof(*t)) != 0)
        return KVS_ENOMEM;
    memset(t, 0, sizeof(*t));
    t->slab = slab;
    t->seed = seed ? seed : random_seed();
    if (kmem_epoch_init(&t->epoch) != 0)
        goto out_free;
    unsigned locks = 0;
    for (; locks < KMEM_TABLE_STRIPES; locks++) {
        if (pthread_mutex_init(&t->st[locks].lock, NULL) != 0)
            goto out_locks;
    }
    if (pthread_mutex_init(&t->resize_lock, NULL) != 0)
        goto out_locks;
    if (pthread_mutex_init(&t->snap_lock, NULL) != 0)
        goto out_resize;
    t->cur = buckets_new(slab, bits);
    if (!t->cur)
        goto out_snap;
    atomic_init(&t->cur_bits, bits);
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++)
        atomic_init(&t->rd[k].tab, t->cur);
    *out = t;
    return 0;

out_snap:
    pthread_mutex_destroy(&t->snap_lock);
out_resize:
    pthread_mutex_destroy(&t->resize_lock);
out_locks:
    while (locks > 0)
        pthread_mutex_destroy(&t->st[--locks].lock);
    kmem_epoch_destroy(&t->epoch);
out_free:
    free(t);
    return KVS_ENOMEM;
}

void kmem_table_destroy(struct kmem_table *t)
{
    if (!t)
        return;
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++) {
        struct buckets *b = atomic_load_explicit(&t->rd[k].tab, memory_order_relaxed);
        size_t per = (size_t)1 << (b->bits - SB);
        for (size_t i = (size_t)k * per; i < (size_t)(k + 1) * per; i++) {
            struct kmem_item *it = atomic_load_explicit(&b->head[i], memory_order_relaxed);
            while (it) {
                struct kmem_item *next = atomic_load_explicit(&it->next, memory_order_relaxed);
                free_item(t, it);
                it = next;
            }
        }
        struct doomed d;
        for (int i = 0; i < 3; i++)
            d.list[i] = t->st[k].bag[i].head;
        free_doomed(t, &d);
        pthread_mutex_destroy(&t->st[k].lock);
    }
    struct buckets *next = atomic_load_explicit(&t->next, memory_order_relaxed);
    if (next)
        kmem_slab_free(t->slab, next, next->alloc);
    kmem_slab_free(t->slab, t->cur, t->cur->alloc);
    while (t->retired) {
        struct buckets *b = t->retired;
        t->retired = b->retired_next;
        kmem_slab_free(t->slab, b, b->alloc);
    }
    pthread_mutex_destroy(&t->snap_lock);
    pthread_mutex_destroy(&t->resize_lock);
    kmem_epoch_destroy(&t->epoch);
    free(t);
}

size_t kmem_table_count(struct kmem_table *t)
{
    return atomic_load_explicit(&t->count, memory_order_relaxed);
}

size_t kmem_table_buckets(struct kmem_table *t)
{
    return (size_t)1 << atomic_load_explicit(&t->cur_bits, memory_order_relaxed);
}

/* Retired arrays whose readers have left, unlinked for freeing. */
static struct buckets *collect_arrays_locked(struct kmem_table *t)
{
    struct buckets *doomed = NULL, **pp = &t->retired;
    while (*pp) {
        struct buckets *b = *pp;
        if (kmem_epoch_safe(&t->epoch, b->retired_epoch)) {
            *pp = b->retired_next;
            b->retired_next = doomed;
            doomed = b;
        } else {
            pp = &b->retired_next;
        }
    }
    return doomed;
}

static void free_arrays(struct kmem_table *t, struct buckets *b)
{
    while (b) {
        struct buckets *next = b->retired_next;
        kmem_slab_free(t->slab, b, b->alloc);
        b = next;
    }
}

/* Start a growth if the keys outnumber the buckets and the slab has room
   for the doubled array and as much again for items. */
static void grow_start(struct kmem_table *t)
{
    pthread_mutex_lock(&t->resize_lock);
    struct buckets *doomed = collect_arrays_locked(t);
    unsigned bits = t->cur->bits;
    size_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
    if (atomic_load_explicit(&t->next, memory_order_relaxed) || bits >= MAX_BITS ||
        n <= (size_t)1 << bits || n < t->grow_retry)
        goto out_unlock;
    struct buckets *b = NULL;
    if (kmem_slab_room(t->slab) >= 2 * buckets_bytes(bits + 1))
        b = buckets_new(t->slab, bits + 1);
    if (!b) {
        t->grow_retry = n + n / 4 + 1;
        goto out_unlock;
    }
    uint64_t number = (atomic_load(&t->claim) >> 32) + 1;
    atomic_store(&t->moved, 0);
    atomic_store(&t->claim, number << 32);
    atomic_store_explicit(&t->next, b, memory_order_release);
out_unlock:
    pthread_mutex_unlock(&t->resize_lock);
    free_arrays(t, doomed);
}

/* The last stripe has moved: the new array is the array. */
static void grow_finish(struct kmem_table *t)
{
    pthread_mutex_lock(&t->resize_lock);
    struct buckets *old = t->cur;
    t->cur = atomic_load_explicit(&t->next, memory_order_relaxed);
    atomic_store_explicit(&t->cur_bits, t->cur->bits, memory_order_relaxed);
    atomic_store_explicit(&t->next, NULL, memory_order_relaxed);
    /* Readers that loaded old from a stripe before it moved may still be
       in it: retire it like an item. */
    old->retired_epoch = kmem_epoch_now(&t->epoch);
    old->retired_next = t->retired;
    t->retired = old;
    pthread_mutex_unlock(&t->resize_lock);
}

/* Move stripe k into the array being grown into. Returns the old buckets
   it moved. */
static size_t move_stripe(struct kmem_table *t, unsigned k)
{
    struct stripe_rd *rd = &t->rd[k];
    pthread_mutex_lock(&t->st[k].lock);
    struct buckets *from = atomic_load_explicit(&rd->tab, memory_order_relaxed);
    struct buckets *to = atomic_load_explicit(&t->next, memory_order_acquire);
    size_t per = (size_t)1 << (from->bits - SB);
    unsigned seq = atomic_load_explicit(&rd->seq, memory_order_relaxed);
    /* Odd before any link changes: a reader that loads a changed link
       (acquire, against the release stores below) sees the odd count. */
    atomic_store_explicit(&rd->seq, seq + 1, memory_order_relaxed);
    for (size_t i = (size_t)k * per; i < (size_t)(k + 1) * per; i++) {
        struct kmem_item *it = atomic_load_explicit(&from->head[i], memory_order_relaxed);
        while (it) {
            struct kmem_item *next = atomic_load_explicit(&it->next, memory_order_relaxed);
            _Atomic(struct kmem_item *) *head = &to->head[home(to, it->hash)];
            atomic_store_explicit(&it->next, atomic_load_explicit(head, memory_order_relaxed),
                                  memory_order_release);
            atomic_store_explicit(head, it, memory_order_release);
            it = next;
            TEST_HOOK(kmem__table_move_hook);
        }
    }
    /* seq_cst: no reader of a later epoch loads the old array from here
       (grow_finish() retires it after reading the epoch). */
    atomic_store_explicit(&rd->tab, to, memory_order_seq_cst);
    atomic_store_explicit(&rd->seq, seq + 2, memory_order_release);
    pthread_mutex_unlock(&t->st[k].lock);
    return per;
}

/* Move stripes of the current growth until MOVE_BUCKETS old buckets have
   moved or none is left to claim. */
static void grow_some(struct kmem_table *t)
{
    size_t moved = 0;
    while (moved < MOVE_BUCKETS) {
        uint64_t c = atomic_load(&t->claim);
        unsigned k = (unsigned)(c & UINT32_MAX);
        if (k >= KMEM_TABLE_STRIPES)
            return;
        if (!atomic_compare_exchange_weak(&t->claim, &c, c + 1))
            continue;
        moved += move_stripe(t, k);
        if (atomic_fetch_add(&t->moved, 1) + 1 == KMEM_TABLE_STRIPES) {
            grow_finish(t);
            return;
        }
    }
}

/* What every write does once it has released its stripe lock. */
static void after_write(struct kmem_table *t, bool retired, struct doomed *d)
{
    free_doomed(t, d);
    if (retired && ++retires_by_thread % ADVANCE_EVERY == 0)
        kmem_epoch_try_advance(&t->epoch);
    if (atomic_load_explicit(&t->next, memory_order_acquire))
        grow_some(t);
    else if (atomic_load_explicit(&t->count, memory_order_relaxed) >
             (size_t)1 << atomic_load_explicit(&t->cur_bits, memory_order_relaxed))
        grow_start(t);
}

/* The link that points to the key's item, or the null link at the end of
   its chain. Under the stripe lock. */
static _Atomic(struct kmem_item *) *link_locked(struct buckets *b, uint32_t h, const void *key,
                                                size_t klen)
{
    _Atomic(struct kmem_item *) *pp = &b->head[home(b, h)];
    struct kmem_item *it;
    while ((it = atomic_load_explicit(pp, memory_order_relaxed)) && !matches(it, h, key, klen))
        pp = &it->next;
    return pp;
}

int kmem_table_put(struct kmem_table *t, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t expire_at, bool *replaced)
{
    if (klen >= UINT32_MAX || vlen >= UINT32_MAX)
        return KVS_EINVAL;
    size_t size = item_size(klen, vlen);
    struct kmem_item *it = kmem_slab_alloc(t->slab, size);
    if (!it) {
        /* Full, unless retired items are waiting for their readers. */
        kmem_table_reclaim(t, true);
        it = kmem_slab_alloc(t->slab, size);
        if (!it)
            return KVS_ENOMEM;
    }
    uint32_t h = hash_of(t, key, klen);
    it->retired_next = NULL;
    it->expire_at = expire_at;
    it->hash = h;
    it->klen = (uint32_t)klen;
    it->vlen = (uint32_t)vlen;
    if (klen)
        memcpy(it->data, key, klen);
    if (vlen)
        memcpy(it->data + klen, value, vlen);

    unsigned k = stripe_of(h);
    struct stripe *st = &t->st[k];
    struct doomed d = {{NULL}};
    pthread_mutex_lock(&st->lock);
    it->gen = atomic_load_explicit(&t->gen, memory_order_relaxed);
    struct buckets *b = atomic_load_explicit(&t->rd[k].tab, memory_order_relaxed);
    _Atomic(struct kmem_item *) *pp = link_locked(b, h, key, klen);
    struct kmem_item *old = atomic_load_explicit(pp, memory_order_relaxed);
    atomic_store_explicit(&it->next,
                          old ? atomic_load_explicit(&old->next, memory_order_relaxed) : NULL,
                          memory_order_relaxed);
    /* Publishes the item. When it unlinks an old one, seq_cst: the store
       must be visible before retire_locked() reads the epoch (a release
       store could wait in the store buffer past that load, and a reader of
       the next epoch, which the grace period does not wait for, could
       still load the old item). */
    atomic_store_explicit(pp, it, old ? memory_order_seq_cst : memory_order_release);
    account(t, it, old);
    if (old)
        drop_locked(t, st, old, it->gen, &d);
    else
        atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    pthread_mutex_unlock(&st->lock);
    if (replaced)
        *replaced = old != NULL;
    after_write(t, old != NULL, &d);
    return 0;
}

/* Unlink the item *pp points to. Under its stripe's lock. */
static void unlink_locked(struct kmem_table *t, struct stripe *st, _Atomic(struct kmem_item *) *pp,
                          struct doomed *d)
{
    struct kmem_item *old = atomic_load_explicit(pp, memory_order_relaxed);
    /* seq_cst: visible before the epoch is read (kmem_table_put() says why). */
    atomic_store_explicit(pp, atomic_load_explicit(&old->next, memory_order_relaxed),
                          memory_order_seq_cst);
    atomic_fetch_sub_explicit(&t->count, 1, memory_order_relaxed);
    account(t, NULL, old);
    drop_locked(t, st, old, atomic_load_explicit(&t->gen, memory_order_relaxed), d);
}

/* Remove the key if it is there and, with expired_by >= 0, has an expiry
   time at or before expired_by. */
static int remove_if(struct kmem_table *t, const void *key, size_t klen, int64_t expired_by)
{
    uint32_t h = hash_of(t, key, klen);
    unsigned k = stripe_of(h);
    struct stripe *st = &t->st[k];
    struct doomed d = {{NULL}};
    pthread_mutex_lock(&st->lock);
    struct buckets *b = atomic_load_explicit(&t->rd[k].tab, memory_order_relaxed);
    _Atomic(struct kmem_item *) *pp = link_locked(b, h, key, klen);
    struct kmem_item *old = atomic_load_explicit(pp, memory_order_relaxed);
    if (!old || (expired_by >= 0 && (old->expire_at == 0 || old->expire_at > expired_by))) {
        pthread_mutex_unlock(&st->lock);
        return KVS_ENOTFOUND;
    }
    unlink_locked(t, st, pp, &d);
    pthread_mutex_unlock(&st->lock);
    after_write(t, true, &d);
    return 0;
}

int kmem_table_remove(struct kmem_table *t, const void *key, size_t klen)
{
    return remove_if(t, key, klen, -1);
}

int kmem_table_remove_expired(struct kmem_table *t, const void *key, size_t klen, int64_t at)
{
    return remove_if(t, key, klen, at < 0 ? 0 : at);
}

/* The buckets of stripe k in the array that holds it: [*first, *end). */
static struct buckets *stripe_range_locked(struct kmem_table *t, unsigned k, size_t *first,
                                           size_t *end)
{
    struct buckets *b = atomic_load_explicit(&t->rd[k].tab, memory_order_relaxed);
    size_t per = (size_t)1 << (b->bits - SB);
    *first = (size_t)k * per;
    *end = *first + per;
    return b;
}

void kmem_table_clear(struct kmem_table *t)
{
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++) {
        struct stripe *st = &t->st[k];
        struct doomed d = {{NULL}};
        bool any = false;
        pthread_mutex_lock(&st->lock);
        size_t i, end;
        struct buckets *b = stripe_range_locked(t, k, &i, &end);
        for (; i < end; i++) {
            while (atomic_load_explicit(&b->head[i], memory_order_relaxed)) {
                unlink_locked(t, st, &b->head[i], &d);
                any = true;
            }
        }
        pthread_mutex_unlock(&st->lock);
        free_doomed(t, &d);
        if (any)
            kmem_epoch_try_advance(&t->epoch);
    }
}

void kmem_table_figures(struct kmem_table *t, struct kmem_table_figures *f)
{
    f->keys = atomic_load_explicit(&t->count, memory_order_relaxed);
    f->bytes = atomic_load_explicit(&t->bytes, memory_order_relaxed);
    f->expires = atomic_load_explicit(&t->expires, memory_order_relaxed);
    f->expire_sum = atomic_load_explicit(&t->expire_sum, memory_order_relaxed);
}

/* Walk stripe k for the snapshot whose cut is t->snap_gen: its items of
   the cut, then the kept ones (retired once written). Returns item's first
   error, or rc if it is one (then only passes the stripe). */
static int snapshot_stripe(struct kmem_table *t, unsigned k, const struct kmem_snapshot_calls *c,
                           int rc)
{
    struct stripe *st = &t->st[k];
    struct doomed d = {{NULL}};
    pthread_mutex_lock(&st->lock);
    size_t i, end;
    struct buckets *b = stripe_range_locked(t, k, &i, &end);
    for (; i < end && rc == 0; i++) {
        struct kmem_item *it = atomic_load_explicit(&b->head[i], memory_order_relaxed);
        for (; it && rc == 0; it = atomic_load_explicit(&it->next, memory_order_relaxed)) {
            if (gen_le(it->gen, t->snap_gen))
                rc = call(c->item, c->ctx, it);
        }
    }
    struct kmem_item *kept = st->kept;
    for (struct kmem_item *it = kept; it && rc == 0; it = it->retired_next)
        rc = call(c->item, c->ctx, it);
    st->kept = NULL;
    st->snap_pending = false;
    while (kept) {
        struct kmem_item *next = kept->retired_next;
        retire_locked(t, st, kept, &d);
        kept = next;
    }
    pthread_mutex_unlock(&st->lock);
    free_doomed(t, &d);
    return rc;
}

int kmem_table_snapshot(struct kmem_table *t, const struct kmem_snapshot_calls *c)
{
    pthread_mutex_lock(&t->snap_lock);
    /* The cut is generation G and before: first every stripe learns that
       items of G that writes of a later generation unlink are to be kept
       (writes meanwhile are of G and in the cut), then the generation
       moves on. */
    uint32_t g = atomic_load_explicit(&t->gen, memory_order_relaxed);
    t->snap_gen = g;
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++) {
        pthread_mutex_lock(&t->st[k].lock);
        t->st[k].snap_pending = true;
        pthread_mutex_unlock(&t->st[k].lock);
    }
    if (c->cut)
        c->cut(c->ctx);
    atomic_store_explicit(&t->gen, g + 1, memory_order_release);

    int rc = 0;
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++) {
        rc = snapshot_stripe(t, k, c, rc);
        if (rc == 0 && c->stripe_done)
            rc = c->stripe_done(c->ctx);
    }
    kmem_epoch_try_advance(&t->epoch);
    pthread_mutex_unlock(&t->snap_lock);
    return rc;
}

/* A get under the stripe lock, when the stripe moves beside the reader. */
static int get_locked(struct kmem_table *t, unsigned k, uint32_t h, const void *key, size_t klen,
                      kmem_entry_fn fn, void *ctx)
{
    pthread_mutex_lock(&t->st[k].lock);
    struct buckets *b = atomic_load_explicit(&t->rd[k].tab, memory_order_relaxed);
    struct kmem_item *it = atomic_load_explicit(link_locked(b, h, key, klen), memory_order_relaxed);
    int rc = it ? call(fn, ctx, it) : KVS_ENOTFOUND;
    pthread_mutex_unlock(&t->st[k].lock);
    return rc;
}

/*
 * Look for the key in its chain without a lock (inside an epoch section).
 * Returns the item, or NULL; *torn tells a NULL that may be wrong because
 * the stripe moved (its count is no longer s1).
 */
static struct kmem_item *find(struct buckets *b, atomic_uint *seq, unsigned s1, uint32_t h,
                              const void *key, size_t klen, bool *torn)
{
    unsigned steps = 0;
    struct kmem_item *it = atomic_load_explicit(&b->head[home(b, h)], memory_order_acquire);
    for (; it; it = atomic_load_explicit(&it->next, memory_order_acquire)) {
        if (matches(it, h, key, klen))
            return it;
        TEST_HOOK(kmem__table_walk_hook);
        if (++steps % CHECK_EVERY == 0 && atomic_load_explicit(seq, memory_order_acquire) != s1)
            break; /* the chain may have been relinked under us */
    }
    /* Every link above was an acquire load: this load comes after them. */
    *torn = atomic_load_explicit(seq, memory_order_acquire) != s1;
    return NULL;
}

int kmem_table_get(struct kmem_table *t, const void *key, size_t klen, kmem_entry_fn fn, void *ctx)
{
    uint32_t h = hash_of(t, key, klen);
    unsigned k = stripe_of(h);
    struct stripe_rd *rd = &t->rd[k];
    unsigned token = kmem_epoch_enter(&t->epoch);
    int rc;
    for (int attempt = 0;; attempt++) {
        unsigned s1 = atomic_load_explicit(&rd->seq, memory_order_acquire);
        if ((s1 & 1) || attempt == GET_ATTEMPTS) {
            TEST_COUNT(kmem__table_locked_gets);
            rc = get_locked(t, k, h, key, klen, fn, ctx);
            break;
        }
        bool torn = false;
        struct kmem_item *it = find(atomic_load_explicit(&rd->tab, memory_order_acquire), &rd->seq,
                                    s1, h, key, klen, &torn);
        if (it) {
            /* Found is always right: an item reached through any links was
               linked while this get ran, and items never change. */
            rc = call(fn, ctx, it);
            break;
        }
        if (!torn) {
            rc = KVS_ENOTFOUND;
            break;
        }
        TEST_COUNT(kmem__table_rewalks);
    }
    kmem_epoch_exit(&t->epoch, token);
    return rc;
}

int kmem_table_scan(struct kmem_table *t, uint64_t cursor, size_t want, kmem_entry_fn fn, void *ctx,
                    uint64_t *next)
{
    if (cursor >= KMEM_TABLE_SCAN_END)
        return KVS_EINVAL;
    if (want == 0)
        want = 1;
    if (atomic_load_explicit(&t->count, memory_order_relaxed) == 0) {
        /* Nothing present now was present at the pass's first step. */
        *next = 0;
        return 0;
    }
    size_t max_buckets = want < SIZE_MAX / 32 ? 64 + 16 * want : SIZE_MAX;
    uint64_t pos = cursor;
    size_t seen = 0, walked = 0;
    int rc = 0;
    unsigned token = kmem_epoch_enter(&t->epoch);
    while (pos < KMEM_TABLE_SCAN_END && seen < want && walked < max_buckets) {
        unsigned k = (unsigned)(pos >> (32 - SB));
        struct stripe_rd *rd = &t->rd[k];
        unsigned s1 = atomic_load_explicit(&rd->seq, memory_order_acquire);
        if (s1 & 1) {
            /* The stripe is moving: wait for its lock (a move never waits
               for readers, so this cannot deadlock). */
            pthread_mutex_lock(&t->st[k].lock);
            pthread_mutex_unlock(&t->st[k].lock);
            continue;
        }
        struct buckets *b = atomic_load_explicit(&rd->tab, memory_order_acquire);
        uint64_t i = pos >> (32 - b->bits);
        uint64_t end = (i + 1) << (32 - b->bits);
        size_t n = 0, steps = 0;
        bool torn = false;
        struct kmem_item *it = atomic_load_explicit(&b->head[i], memory_order_acquire);
        for (; it; it = atomic_load_explicit(&it->next, memory_order_acquire)) {
            if (it->hash >= pos) { /* keys below pos were visited by an earlier step */
                rc = call(fn, ctx, it);
                if (rc != 0)
                    goto out_exit;
                n++;
            }
            TEST_HOOK(kmem__table_walk_hook);
            if (++steps % CHECK_EVERY == 0 &&
                atomic_load_explicit(&rd->seq, memory_order_acquire) != s1) {
                torn = true;
                break;
            }
        }
        if (torn || atomic_load_explicit(&rd->seq, memory_order_acquire) != s1) {
            TEST_COUNT(kmem__table_rewalks);
            continue; /* walk the bucket again, in the array the stripe moved to */
        }
        seen += n;
        walked++;
        pos = end;
    }
    *next = pos >= KMEM_TABLE_SCAN_END ? 0 : pos;
out_exit:
    kmem_epoch_exit(&t->epoch, token);
    return rc;
}

void kmem_table_reclaim(struct kmem_table *t, bool wait)
{
    if (wait)
        kmem_epoch_synchronize(&t->epoch);
    else
        kmem_epoch_try_advance(&t->epoch);
    uint64_t now = kmem_epoch_now(&t->epoch);
    for (unsigned k = 0; k < KMEM_TABLE_STRIPES; k++) {
        struct doomed d = {{NULL}};
        pthread_mutex_lock(&t->st[k].lock);
        collect_locked(&t->st[k], now, &d);
        pthread_mutex_unlock(&t->st[k].lock);
        free_doomed(t, &d);
    }
    pthread_mutex_lock(&t->resize_lock);
    struct buckets *doomed = collect_arrays_locked(t);
    pthread_mutex_unlock(&t->resize_lock);
    free_arrays(t, doomed);
}
