/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slab allocator under the mem engine's table and libimkv: item memory
 * without a malloc per item, as memcached lays it out.
 *
 * - Memory is mapped in chunks: one chunk of the whole arena at create time
 *   (fixed mode, libimkv's "one large chunk"), or chunks of chunk_size
 *   mapped as needed until the limit (growable mode, the engine). Each chunk
 *   starts with a header (the metadata of its pages) and is aligned to a
 *   power of two, so that the chunk of any pointer is that pointer with its
 *   low bits cleared: a free needs no search.
 * - A chunk is cut into pages (1 MiB by default). A page serves one size
 *   class at a time. Class sizes grow by a factor (1.25 by default) from a
 *   small minimum, rounded to 8 bytes, up to half a page.
 * - Freed slots go back to their page's free list. A page whose last slot is
 *   freed returns to the shared pool of free pages, where any class (or a
 *   large item) can take it: freeing many small items and then allocating
 *   many large ones works while memory is free.
 * - An allocation larger than the largest class takes a run of contiguous
 *   free pages from the pool (first fit, in the lowest chunk that has one).
 *   In growable mode, one that no chunk can hold gets a chunk of its own,
 *   unmapped when it is freed; so items up to the limit work (512 MiB values
 *   for the engine). In fixed mode a large item needs a free run: pages held
 *   by classes can make one impossible while enough pages are free in total.
 * - Thread-safe: each class has its own lock for its pages, and one pool
 *   lock covers the free pages and the chunk list. Lock order: class, then
 *   pool. No function waits for anything but these locks.
 * - A slot is only memory: the slab keeps nothing in it while it is handed
 *   out, and while it is free its first 8 bytes link the page's free list.
 *
 * Ownership: kmem_slab_create() maps the memory and kmem_slab_destroy()
 * unmaps all of it, whatever is still allocated. Callers pass the size they
 * allocated back to kmem_slab_free(): that is how the slab finds the class.
 */
#ifndef KVS_MEM_SLAB_H
#define KVS_MEM_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#define KMEM_SLAB_MAX_CLASSES 64
#define KMEM_SLAB_PAGE_SIZE ((size_t)1 << 20)
#define KMEM_SLAB_MIN_PAGE ((size_t)64 << 10)
#define KMEM_SLAB_FACTOR 1.25
#define KMEM_SLAB_MIN_SIZE 48

struct kmem_slab;

struct kmem_slab_config {
    size_t limit;      /* bytes of memory at most (page bytes; headers on top) */
    size_t page_size;  /* 0: 1 MiB; else a power of two, at least 64 KiB */
    size_t chunk_size; /* 0: fixed mode, one chunk of limit bytes mapped at
                          create; else growable mode, chunks of this many
                          bytes (a power of two, at least 4 pages) mapped as
                          needed */
    double factor;     /* growth of class sizes, 0: 1.25; from 1.05 to 2 */
    size_t min_size;   /* smallest class, 0: 48 bytes; at least 16 */
};

/* Figures of one size class. */
struct kmem_slab_class_stats {
    size_t size;      /* bytes per slot */
    size_t per_page;  /* slots per page */
    size_t pages;     /* pages the class holds */
    size_t slots;     /* slots handed out */
    size_t requested; /* bytes the callers asked for in those slots */
};

struct kmem_slab_stats {
    size_t limit;       /* the configured limit */
    size_t page_size;   /* bytes per page */
    size_t mapped;      /* bytes mapped, chunk headers included */
    size_t pages;       /* pages in mapped chunks */
    size_t free_pages;  /* pages in the pool */
    size_t requested;   /* bytes callers asked for and hold ("used") */
    size_t allocated;   /* bytes of the slots and runs they hold */
    size_t large_items; /* allocations past the largest class */
    size_t large_pages; /* pages those hold */
    unsigned nclasses;
    struct kmem_slab_class_stats cls[KMEM_SLAB_MAX_CLASSES];
};

/*
 * kmem_slab_create - set up an allocator.
 * In fixed mode the whole arena is mapped now (address space; the kernel
 * backs pages as they are touched). Returns 0 with *out set, KVS_EINVAL
 * (a configuration out of range, or a limit under two pages) or KVS_ENOMEM
 * (nothing mapped).
 */
int kmem_slab_create(const struct kmem_slab_config *cfg, struct kmem_slab **out);

/* Unmap everything the slab holds. Accepts NULL. No other call may run. */
void kmem_slab_destroy(struct kmem_slab *s);

/*
 * kmem_slab_alloc - size bytes (8-byte aligned, uninitialised; a large
 * allocation is page aligned within its chunk). Returns NULL when no slot
 * of its class, no free page and no room under the limit is left, or for
 * size 0. Any thread.
 */
void *kmem_slab_alloc(struct kmem_slab *s, size_t size);

/*
 * kmem_slab_alloc_zero - kmem_slab_alloc() and zeroed.
 */
void *kmem_slab_alloc_zero(struct kmem_slab *s, size_t size);

/* kmem_slab_free - give back p, allocated with this size. Accepts NULL.
   Any thread. */
void kmem_slab_free(struct kmem_slab *s, void *p, size_t size);

/* The slot size an allocation of size bytes takes (the page-rounded run
   for a large one); 0 for 0. */
size_t kmem_slab_footprint(const struct kmem_slab *s, size_t size);

/* Bytes of pages not handed out: those in the pool and, in growable mode,
   those the limit still allows mapping. */
size_t kmem_slab_room(struct kmem_slab *s);

/* Bytes of the pages handed out (to classes and large runs): the memory
   in use, slots free in class pages included. One load, no lock: for a
   check on every write. */
size_t kmem_slab_held(struct kmem_slab *s);

/* The largest size served by a class; larger ones take runs of pages. */
size_t kmem_slab_max_class(const struct kmem_slab *s);

/* A copy of the figures, taking each lock in turn (consistent per class,
   not across classes while others allocate). */
void kmem_slab_stats(struct kmem_slab *s, struct kmem_slab_stats *st);

/* Of the bytes in pages handed out (to classes and large runs), the share
   not holding requested bytes: 0 when nothing is lost to rounding and
   partly empty pages, towards 1 when most is. */
double kmem_slab_fragmentation(const struct kmem_slab_stats *st);

#endif
