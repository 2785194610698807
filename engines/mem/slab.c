/* SPDX-License-Identifier: BSD-3-Clause */
/* The slab allocator; see slab.h for the layout and the locks. */
#include "slab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kvs/error.h"

#define OS_PAGE ((size_t)4096)

/* What a page is doing (struct page.cls), besides serving class n. */
#define PAGE_POOL UINT32_MAX       /* free, in the pool */
#define PAGE_RUN (UINT32_MAX - 1)  /* first page of a large allocation */
#define PAGE_BODY (UINT32_MAX - 2) /* a later page of one */

/*
 * The metadata of one page, in its chunk's header. A class page's fields
 * belong to its class lock; cls and run of a pool or run page belong to
 * the pool lock.
 */
struct page {
    struct page *prev, *next; /* the class's list of pages with free slots */
    void *free;               /* freed slots, linked through their first word */
    uint32_t cls;             /* class number or PAGE_* */
    uint32_t live;            /* slots handed out */
    uint32_t bump;            /* slots used at least once since the page joined the class */
    uint32_t run;             /* PAGE_RUN: pages in the run */
};

/* A mapped chunk: this header, then its pages. */
struct chunk {
    struct chunk *next; /* the slab's chunks, oldest first (pool lock) */
    size_t map_len;     /* bytes mapped from this header on */
    char *pages;        /* the first page */
    uint32_t npages;
    uint32_t nfree;    /* pages in the pool (pool lock) */
    bool huge;         /* holds one large allocation; unmapped when it is freed */
    uint64_t *freemap; /* bit i set: page i is in the pool (pool lock) */
    struct page page[];
};

struct kmem_class {
    /* Protects everything below and the metadata of the class's pages;
       taken before the pool lock. */
    _Alignas(64) pthread_mutex_t lock;
    struct page *partial; /* pages with a free slot */
    size_t size;
    uint32_t per_page;
    size_t pages, slots, requested;
};

struct kmem_slab {
    size_t page_size;
    unsigned page_shift;
    uintptr_t align_mask; /* ~(chunk alignment - 1) */
    size_t chunk_size;    /* growable mode; 0 in fixed mode */
    size_t limit;
    unsigned nclasses;
    struct kmem_class cls[KMEM_SLAB_MAX_CLASSES];

    /* Protects the chunk list, every chunk's freemap and nfree, the pages
       in the pool and in runs, and the figures below. Taken after a class
       lock, never before one. */
    pthread_mutex_t pool_lock;
    struct chunk *chunks;
    size_t page_bytes; /* bytes of pages mapped (counted against limit) */
    size_t mapped;
    size_t pages, free_pages;
    size_t large_items, large_pages, large_requested;
    /* (pages - free_pages) * page_size, for kmem_slab_held() without the
       lock; written under it. */
    atomic_size_t held;
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

static bool is_pow2(size_t n)
{
    return n && (n & (n - 1)) == 0;
}

static size_t header_size(size_t npages)
{
    size_t words = (npages + 63) / 64;
    size_t fixed = sizeof(struct chunk) + npages * sizeof(struct page);
    return round_up(round_up(fixed, 8) + words * sizeof(uint64_t), OS_PAGE);
}

/* len bytes of fresh zeroed memory starting at a multiple of align. */
static void *map_aligned(size_t len, size_t align)
{
    size_t span = len + align;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    size_t tail = (size_t)(p + span - (a + len));
    if (tail)
        munmap(a + len, tail);
    return a;
}

/* Map a chunk of npages pages (huge: for one large allocation) and set
   its header up, every page in the pool. NULL when mmap fails. */
static struct chunk *chunk_map(struct kmem_slab *s, size_t npages, bool huge, size_t align)
{
    size_t hdr = header_size(npages);
    size_t len = hdr + npages * s->page_size;
    struct chunk *c = map_aligned(len, align);
    if (!c)
        return NULL;
    /* Huge pages where the kernel has them (transparent_hugepage set to
       madvise): items are reached at random, and a TLB miss costs as much
       as the cache miss beside it. Only advice: failure changes nothing. */
    madvise(c, len, MADV_HUGEPAGE);
    c->map_len = len;
    c->pages = (char *)c + hdr;
    c->npages = (uint32_t)npages;
    c->nfree = (uint32_t)npages;
    c->huge = huge;
    c->freemap = (uint64_t *)((char *)c + round_up(sizeof(*c) + npages * sizeof(struct page), 8));
    for (size_t i = 0; i < npages; i++) {
        c->page[i].cls = PAGE_POOL;
        c->freemap[i / 64] |= UINT64_C(1) << (i % 64);
    }
    return c;
}

static void chunk_add_locked(struct kmem_slab *s, struct chunk *c)
{
    struct chunk **pp = &s->chunks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
    s->page_bytes += (size_t)c->npages * s->page_size;
    s->mapped += c->map_len;
    s->pages += c->npages;
    s->free_pages += c->npages;
}

static void set_classes(struct kmem_slab *s, double factor, size_t min_size)
{
    size_t max = s->page_size / 2;
    size_t size = round_up(min_size, 8);
    unsigned n = 0;
    while (n < KMEM_SLAB_MAX_CLASSES - 1 && size < max) {
        s->cls[n++].size = size;
        size_t grown = round_up((size_t)((double)size * factor), 8);
        size = grown > size ? grown : size + 8;
    }
    s->cls[n++].size = max;
    s->nclasses = n;
    for (unsigned i = 0; i < n; i++)
        s->cls[i].per_page = (uint32_t)(s->page_size / s->cls[i].size);
}

int kmem_slab_create(const struct kmem_slab_config *cfg, struct kmem_slab **out)
{
    size_t page = cfg->page_size ? cfg->page_size : KMEM_SLAB_PAGE_SIZE;
    double factor = cfg->factor != 0 ? cfg->factor : KMEM_SLAB_FACTOR;
    size_t min_size = cfg->min_size ? cfg->min_size : KMEM_SLAB_MIN_SIZE;
    if (!is_pow2(page) || page < KMEM_SLAB_MIN_PAGE || page > ((size_t)1 << 30) ||
        !(factor >= 1.05 && factor <= 2) || min_size < 16 || min_size > page / 4 ||
        cfg->limit / page < 2 || cfg->limit / page > UINT32_MAX ||
        (cfg->chunk_size && (!is_pow2(cfg->chunk_size) || cfg->chunk_size / page < 4)))
        return KVS_EINVAL;

    struct kmem_slab *s = calloc(1, sizeof(*s));
    if (!s)
        return KVS_ENOMEM;
    s->page_size = page;
    s->page_shift = (unsigned)__builtin_ctzll(page);
    s->limit = cfg->limit;
    s->chunk_size = cfg->chunk_size;
    set_classes(s, factor, min_size);
    unsigned locks = 0;
    for (; locks < s->nclasses; locks++) {
        if (pthread_mutex_init(&s->cls[locks].lock, NULL) != 0)
            goto out_locks;
    }
    if (pthread_mutex_init(&s->pool_lock, NULL) != 0)
        goto out_locks;

    if (s->chunk_size) {
        s->align_mask = ~(uintptr_t)(s->chunk_size - 1);
    } else {
        /* Fixed mode: the whole arena now, as one chunk. */
        size_t npages = cfg->limit / page;
        size_t len = header_size(npages) + npages * page;
        size_t align = OS_PAGE;
        while (align < len)
            align <<= 1;
        struct chunk *c = chunk_map(s, npages, false, align);
        if (!c)
            goto out_pool;
        s->align_mask = ~(uintptr_t)(align - 1);
        chunk_add_locked(s, c); /* no other thread knows s yet */
    }
    *out = s;
    return 0;

out_pool:
    pthread_mutex_destroy(&s->pool_lock);
out_locks:
    while (locks > 0)
        pthread_mutex_destroy(&s->cls[--locks].lock);
    free(s);
    return KVS_ENOMEM;
}

void kmem_slab_destroy(struct kmem_slab *s)
{
    if (!s)
        return;
    struct chunk *c = s->chunks;
    while (c) {
        struct chunk *next = c->next;
        munmap(c, c->map_len);
        c = next;
    }
    for (unsigned i = 0; i < s->nclasses; i++)
        pthread_mutex_destroy(&s->cls[i].lock);
    pthread_mutex_destroy(&s->pool_lock);
    free(s);
}

size_t kmem_slab_max_class(const struct kmem_slab *s)
{
    return s->cls[s->nclasses - 1].size;
}

/* The smallest class that holds size (size <= the largest class). */
static unsigned class_of(const struct kmem_slab *s, size_t size)
{
    unsigned lo = 0, hi = s->nclasses - 1;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (s->cls[mid].size < size)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

size_t kmem_slab_footprint(const struct kmem_slab *s, size_t size)
{
    if (size == 0)
        return 0;
    if (size > kmem_slab_max_class(s))
        return round_up(size, s->page_size);
    return s->cls[class_of(s, size)].size;
}

static struct chunk *chunk_of(const struct kmem_slab *s, const void *p)
{
    return (struct chunk *)((uintptr_t)p & s->align_mask);
}

static struct page *page_of(const struct kmem_slab *s, const void *p)
{
    struct chunk *c = chunk_of(s, p);
    return &c->page[(size_t)((const char *)p - c->pages) >> s->page_shift];
}

static char *page_addr(const struct kmem_slab *s, struct page *pg)
{
    struct chunk *c = chunk_of(s, pg); /* the metadata lives in the chunk's header */
    return c->pages + ((size_t)(pg - c->page) << s->page_shift);
}

/* The first run of n free pages of c, or -1. */
static long find_run(const struct chunk *c, size_t n)
{
    size_t start = 0, len = 0;
    for (size_t w = 0; w * 64 < c->npages; w++) {
        uint64_t bits = c->freemap[w];
        if (len == 0 && bits == 0)
            continue; /* a whole word taken: skip it */
        if (bits == UINT64_MAX && w * 64 + 64 <= c->npages) {
            if (len == 0)
                start = w * 64;
            len += 64;
            if (len >= n)
                return (long)start;
            continue;
        }
        for (size_t b = 0; b < 64 && w * 64 + b < c->npages; b++) {
            if (bits >> b & 1) {
                if (len++ == 0)
                    start = w * 64 + b;
                if (len >= n)
                    return (long)start;
            } else {
                len = 0;
            }
        }
    }
    return -1;
}

static void take_run_locked(struct kmem_slab *s, struct chunk *c, size_t first, size_t n,
                            uint32_t cls)
{
    for (size_t i = first; i < first + n; i++) {
        c->freemap[i / 64] &= ~(UINT64_C(1) << (i % 64));
        c->page[i].cls = i == first ? cls : PAGE_BODY;
    }
    c->page[first].run = (uint32_t)n;
    c->nfree -= (uint32_t)n;
    s->free_pages -= n;
    atomic_store_explicit(&s->held, (s->pages - s->free_pages) * s->page_size,
                          memory_order_relaxed);
}

/*
 * Take n contiguous pages from the pool, mapping a chunk if none has them
 * and the limit allows (growable mode). cls is what the first page will
 * do. Returns the first page's metadata, or NULL.
 */
static struct page *pool_take(struct kmem_slab *s, size_t n, uint32_t cls)
{
    struct page *pg = NULL;
    pthread_mutex_lock(&s->pool_lock);
    for (struct chunk *c = s->chunks; c; c = c->next) {
        if (c->huge || c->nfree < n)
            continue;
        long first = find_run(c, n);
        if (first >= 0) {
            take_run_locked(s, c, (size_t)first, n, cls);
            pg = &c->page[first];
            goto out_unlock;
        }
    }
    if (!s->chunk_size || s->page_bytes >= s->limit)
        goto out_unlock;
    size_t room = (s->limit - s->page_bytes) / s->page_size;
    size_t regular = s->chunk_size / s->page_size - 1; /* the header takes the rest */
    size_t npages = n > regular ? n : (regular < room ? regular : room);
    if (npages < n || npages > room)
        goto out_unlock;
    struct chunk *c = chunk_map(s, npages, n > regular, s->chunk_size);
    if (!c)
        goto out_unlock;
    chunk_add_locked(s, c);
    take_run_locked(s, c, 0, n, cls);
    pg = &c->page[0];
out_unlock:
    pthread_mutex_unlock(&s->pool_lock);
    return pg;
}

/* Give the run starting at pg back to the pool; unmap a huge chunk. */
static void pool_give(struct kmem_slab *s, struct page *pg, size_t n)
{
    struct chunk *c = chunk_of(s, pg), *unmap = NULL;
    size_t first = (size_t)(pg - c->page);
    pthread_mutex_lock(&s->pool_lock);
    for (size_t i = first; i < first + n; i++) {
        c->freemap[i / 64] |= UINT64_C(1) << (i % 64);
        c->page[i].cls = PAGE_POOL;
    }
    c->nfree += (uint32_t)n;
    s->free_pages += n;
    if (c->huge) {
        struct chunk **pp = &s->chunks;
        while (*pp != c)
            pp = &(*pp)->next;
        *pp = c->next;
        s->page_bytes -= (size_t)c->npages * s->page_size;
        s->mapped -= c->map_len;
        s->pages -= c->npages;
        s->free_pages -= c->npages;
        unmap = c;
    }
    atomic_store_explicit(&s->held, (s->pages - s->free_pages) * s->page_size,
                          memory_order_relaxed);
    pthread_mutex_unlock(&s->pool_lock);
    if (unmap)
        munmap(unmap, unmap->map_len);
}

static void partial_push(struct kmem_class *k, struct page *pg)
{
    pg->prev = NULL;
    pg->next = k->partial;
    if (k->partial)
        k->partial->prev = pg;
    k->partial = pg;
}

static void partial_unlink(struct kmem_class *k, struct page *pg)
{
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        k->partial = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    pg->prev = pg->next = NULL;
}

static void *alloc_large(struct kmem_slab *s, size_t size)
{
    size_t n = round_up(size, s->page_size) >> s->page_shift;
    struct page *pg = pool_take(s, n, PAGE_RUN);
    if (!pg)
        return NULL;
    pthread_mutex_lock(&s->pool_lock);
    s->large_items++;
    s->large_pages += n;
    s->large_requested += size;
    pthread_mutex_unlock(&s->pool_lock);
    return page_addr(s, pg);
}

void *kmem_slab_alloc(struct kmem_slab *s, size_t size)
{
    if (size == 0)
        return NULL;
    if (size > kmem_slab_max_class(s))
        return alloc_large(s, size);
    unsigned ci = class_of(s, size);
    struct kmem_class *k = &s->cls[ci];
    void *p = NULL;
    pthread_mutex_lock(&k->lock);
    struct page *pg = k->partial;
    if (!pg) {
        pg = pool_take(s, 1, ci);
        if (!pg)
            goto out_unlock;
        pg->free = NULL;
        pg->live = pg->bump = 0;
        k->pages++;
        partial_push(k, pg);
    }
    if (pg->free) {
        p = pg->free;
        memcpy(&pg->free, p, sizeof(void *));
    } else {
        p = page_addr(s, pg) + (size_t)pg->bump++ * k->size;
    }
    if (++pg->live == k->per_page)
        partial_unlink(k, pg);
    k->slots++;
    k->requested += size;
out_unlock:
    pthread_mutex_unlock(&k->lock);
    return p;
}

void *kmem_slab_alloc_zero(struct kmem_slab *s, size_t size)
{
    void *p = kmem_slab_alloc(s, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void kmem_slab_free(struct kmem_slab *s, void *p, size_t size)
{
    if (!p)
        return;
    struct page *pg = page_of(s, p);
    if (size > kmem_slab_max_class(s)) {
        size_t n = pg->run; /* stable: the run is the caller's until pool_give */
        pthread_mutex_lock(&s->pool_lock);
        s->large_items--;
        s->large_pages -= n;
        s->large_requested -= size;
        pthread_mutex_unlock(&s->pool_lock);
        pool_give(s, pg, n);
        return;
    }
    struct kmem_class *k = &s->cls[class_of(s, size)];
    pthread_mutex_lock(&k->lock);
    bool was_full = pg->live == k->per_page;
    memcpy(p, &pg->free, sizeof(void *));
    pg->free = p;
    k->slots--;
    k->requested -= size;
    if (--pg->live == 0) {
        if (!was_full)
            partial_unlink(k, pg);
        k->pages--;
        pool_give(s, pg, 1); /* class lock, then pool lock */
    } else if (was_full) {
        partial_push(k, pg);
    }
    pthread_mutex_unlock(&k->lock);
}

size_t kmem_slab_held(struct kmem_slab *s)
{
    return atomic_load_explicit(&s->held, memory_order_relaxed);
}

size_t kmem_slab_room(struct kmem_slab *s)
{
    pthread_mutex_lock(&s->pool_lock);
    size_t room = s->free_pages * s->page_size;
    if (s->chunk_size && s->limit > s->page_bytes)
        room += (s->limit - s->page_bytes) / s->page_size * s->page_size;
    pthread_mutex_unlock(&s->pool_lock);
    return room;
}

void kmem_slab_stats(struct kmem_slab *s, struct kmem_slab_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->limit = s->limit;
    st->page_size = s->page_size;
    st->nclasses = s->nclasses;
    for (unsigned i = 0; i < s->nclasses; i++) {
        struct kmem_class *k = &s->cls[i];
        pthread_mutex_lock(&k->lock);
        st->cls[i] = (struct kmem_slab_class_stats){
            .size = k->size,
            .per_page = k->per_page,
            .pages = k->pages,
            .slots = k->slots,
            .requested = k->requested,
        };
        pthread_mutex_unlock(&k->lock);
        st->requested += st->cls[i].requested;
        st->allocated += st->cls[i].slots * st->cls[i].size;
    }
    pthread_mutex_lock(&s->pool_lock);
    st->mapped = s->mapped;
    st->pages = s->pages;
    st->free_pages = s->free_pages;
    st->large_items = s->large_items;
    st->large_pages = s->large_pages;
    st->requested += s->large_requested;
    st->allocated += s->large_pages * s->page_size;
    pthread_mutex_unlock(&s->pool_lock);
}

double kmem_slab_fragmentation(const struct kmem_slab_stats *st)
{
    size_t held = (st->pages - st->free_pages) * st->page_size;
    if (held == 0)
        return 0;
    return 1.0 - (double)st->requested / (double)held;
}
