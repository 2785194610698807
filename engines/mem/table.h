/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mem engine's table (and libimkv's): a chained hash table in slab
 * memory that many threads read and write at once.
 *
 * Items. An item is one slab allocation: a 40-byte header (chain link,
 * retire link, expire_at, 32 bits of hash, snapshot generation, lengths)
 * then the key and the value bytes. An item never changes once it is
 * linked: a write links a new item in the place of the old one, and the old
 * one is retired and freed after a grace period (epoch.h).
 *
 * Concurrency: lock-free readers, striped writers.
 * - Writers lock one of KMEM_TABLE_STRIPES stripes (the top 10 bits of the
 *   key's hash) and change one chain with release stores, as RCU lists do:
 *   insert at the head, unlink by pointing the predecessor past the item,
 *   replace by linking the new item where the old one was.
 * - Readers take no lock: inside an epoch section they walk the chain with
 *   acquire loads, compare, and copy the value out (or call back with it).
 *   A removed item stays readable until every reader that might hold it has
 *   left its section. So a reader never waits for a writer, and never
 *   touches freed memory; two readers on two cores write only their own
 *   epoch counters, which is what lets lookups scale. Why not striped
 *   read/write locks: every lookup would write the lock's cache line, and
 *   on two cores that line moves back and forth on most lookups.
 * - The one time a reader waits: its stripe is being moved to a grown
 *   table (below), which holds that stripe's lock for one stripe's share of
 *   the buckets.
 *
 * Growth. Bucket arrays have 2^b buckets and a key's bucket is the top b
 * bits of its hash ("ordered homes"), so doubling splits bucket i into 2i
 * and 2i+1 and a stripe is a contiguous range of buckets in every array.
 * When the items outnumber the buckets, a writer allocates the doubled
 * array from the slab; then, after each write, the writer moves the next
 * stripes (at least 256 old buckets' worth) under their own locks, one at
 * a time, as Redis rehashes incrementally. Each stripe has its own pointer
 * to the array that holds it, and a sequence count that is odd while it
 * moves: a reader that walked a chain while its stripe moved may have been
 * led astray, and checks the count before trusting "not found". When the
 * last stripe has moved, the old array is retired like an item. If the
 * slab has no room for a bigger array, the table keeps its size (chains
 * grow longer) and tries again after a quarter more items.
 *
 * Iteration (kmem_table_scan). The cursor is a position in hash order:
 * every key whose 32-bit hash is below it has been visited. A step visits
 * whole buckets from the cursor on and returns the end of the last one.
 * Because bucket boundaries of an array are boundaries in every larger one,
 * the cursor means the same however the table grows between steps: a key
 * present for the whole pass is visited at least once, and a pass ends
 * after at most 2^32 hash positions while keys are added. A step is a
 * reader (no lock); a bucket walked while its stripe moved is walked again,
 * so a key may be visited twice.
 *
 * Snapshots (kmem_table_snapshot): one point in the order of acknowledged
 * writes, without stopping writers.
 * - Every item records the table's generation when it was linked (gen),
 *   read under its stripe lock; a remove reads it too. A write that
 *   returned before another began has a generation no later than it.
 * - A snapshot's cut is the generation G current when it starts: the
 *   writes of G and before are in it, later ones are not, so it never
 *   holds a write without one that returned before that write began.
 * - It first marks every stripe "pending", one stripe lock at a time; then
 *   moves the generation to G+1. From then on a write of G+1 that replaces
 *   or removes an item of G or before, in a stripe still pending, hands the
 *   old item to the stripe's kept list instead of retiring it.
 * - The walk goes stripe by stripe in hash order, each under its lock
 *   (exact: no key twice), writing items of generation <= G and skipping
 *   newer ones; then it writes the stripe's kept items, retires them and
 *   clears "pending". Every key of the cut appears exactly once, with its
 *   value at the cut. A stripe is locked for as long as its items take to
 *   copy out (about a thousandth of the table); no thread ever holds two
 *   stripe locks.
 *
 * Thread rules: any function, from any thread, except create and destroy.
 * The callbacks of kmem_table_get() and kmem_table_scan() run inside a read
 * section (or, rarely, under a stripe lock) and must not call into the same
 * table. Lock order: stripe lock, then the slab's locks; the resize lock is
 * taken with no stripe lock held; no thread waits for readers (epoch) while
 * holding a stripe lock.
 */
#ifndef KVS_MEM_TABLE_H
#define KVS_MEM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slab.h"

#define KMEM_TABLE_STRIPE_BITS 10
#define KMEM_TABLE_STRIPES (1u << KMEM_TABLE_STRIPE_BITS)
/* Fewest buckets: one per stripe. */
#define KMEM_TABLE_MIN_BUCKETS ((size_t)KMEM_TABLE_STRIPES)
/* The end of a pass in hash order (kmem_table_scan() returns 0 for it). */
#define KMEM_TABLE_SCAN_END ((uint64_t)1 << 32)

struct kmem_table;

/* An item as a get or a scan shows it; every pointer is borrowed for the
   call. */
struct kmem_entry {
    const void *key;
    size_t klen;
    const void *value;
    size_t vlen;
    int64_t expire_at; /* ms since the epoch, 0: none (stored, not acted on) */
};

/* Called with an item; returns 0, or a negative kvs_err that ends the
   call and that the table function returns. */
typedef int (*kmem_entry_fn)(void *ctx, const struct kmem_entry *e);

/*
 * kmem_table_create - an empty table whose items and bucket arrays come
 * from slab (borrowed: it must outlive the table).
 * @buckets: initial buckets, rounded up to a power of two, at least
 *           KMEM_TABLE_MIN_BUCKETS, at most 2^30.
 * @seed:    of the hash; 0 draws a random one.
 * Returns 0 with *out set, KVS_EINVAL (buckets over 2^30) or KVS_ENOMEM
 * (no room for the bucket array in slab, or malloc failed).
 */
int kmem_table_create(struct kmem_slab *slab, size_t buckets, uint64_t seed,
                      struct kmem_table **out);

/* Free every item and array back to the slab, and the table. Accepts
   NULL. No other call may run. */
void kmem_table_destroy(struct kmem_table *t);

/*
 * kmem_table_get - call fn with the key's item (fn must not keep the
 * pointers nor call into the table).
 * Returns 0 when found and fn returned 0, KVS_ENOTFOUND, or fn's error.
 */
int kmem_table_get(struct kmem_table *t, const void *key, size_t klen, kmem_entry_fn fn, void *ctx);

/*
 * kmem_table_put - insert the key, or replace its value and expiry.
 * key and value are copied. When the slab is full, first frees what
 * earlier writes retired (waiting for readers to leave) and tries again.
 * A replacement needs room for the new item beside the old one, which
 * readers may still be copying: in a full slab it is refused.
 * Returns 0 (*replaced, if not NULL, says whether the key was there),
 * KVS_ENOMEM (no room: nothing changed) or KVS_EINVAL (a key or value of
 * 4 GiB or more).
 */
int kmem_table_put(struct kmem_table *t, const void *key, size_t klen, const void *value,
                   size_t vlen, int64_t expire_at, bool *replaced);

/* kmem_table_remove - returns 0, or KVS_ENOTFOUND. */
int kmem_table_remove(struct kmem_table *t, const void *key, size_t klen);

/* kmem_table_remove_expired - remove the key if it has an expiry time at
   or before at, deciding under the key's lock (so a write that renews the
   key is never undone). Returns 0, or KVS_ENOTFOUND (missing, or not
   expired by at). */
int kmem_table_remove_expired(struct kmem_table *t, const void *key, size_t klen, int64_t at);

/* kmem_table_clear - remove every key, stripe by stripe (a concurrent
   write may survive it, as if it came after). */
void kmem_table_clear(struct kmem_table *t);

/* What the table holds (each figure exact when no write runs). */
struct kmem_table_figures {
    size_t keys;
    size_t bytes;       /* of keys and values */
    size_t expires;     /* keys with an expiry time */
    int64_t expire_sum; /* the sum of those times, ms since the epoch */
};
void kmem_table_figures(struct kmem_table *t, struct kmem_table_figures *f);

/* What kmem_table_snapshot() calls. */
struct kmem_snapshot_calls {
    /* Just before the generation moves on: a write that returned before
       it (and is known to have, through an acquire load of something the
       writer stored with release after its write) is in the snapshot. May
       be NULL. */
    void (*cut)(void *ctx);
    /* For each item of the cut, with its stripe locked: copy it out and
       return 0, or an error that ends the walk. */
    kmem_entry_fn item;
    /* After each stripe, with no lock held (write out what item copied).
       0, or an error that ends the walk. May be NULL. */
    int (*stripe_done)(void *ctx);
    void *ctx;
};

/*
 * kmem_table_snapshot - call c->item once for every key the table held at
 * one moment (the cut), with the value it had then, while other threads go
 * on reading and writing (see the top of this file). Snapshots of a table
 * run one at a time (a second call waits). Returns 0, or the first error
 * of item or stripe_done (the walk then ends early; the table is intact).
 */
int kmem_table_snapshot(struct kmem_table *t, const struct kmem_snapshot_calls *c);

/* Keys in the table (exact when no write runs). */
size_t kmem_table_count(struct kmem_table *t);

/* Buckets of the array new writes go to. */
size_t kmem_table_buckets(struct kmem_table *t);

/*
 * kmem_table_scan - one step of a pass over the keys in hash order.
 * @cursor: 0 to start a pass, else the *next of the previous step.
 * @want:   stop after about this many keys (0 is taken as 1), or after
 *          64 + 16 * want buckets so that a sparse table keeps steps short.
 * Calls fn for each key from the cursor to the end of the step; *next
 * gets the cursor of the next step, 0 when the pass is over. Returns 0,
 * KVS_EINVAL (a cursor no step returns), or fn's error (*next untouched:
 * the step can be repeated). A step on an empty table ends the pass.
 */
int kmem_table_scan(struct kmem_table *t, uint64_t cursor, size_t want, kmem_entry_fn fn, void *ctx,
                    uint64_t *next);

#ifdef KMEM_TESTING
/* Test hooks and counters, compiled in only for the tests (KMEM_TESTING):
   called after each item a growth moves; called by a reader's walk before
   it loads the next link (it may write to the table: a test makes a
   stripe move under the reader); gets that took the stripe lock, and
   walks redone because their stripe moved. */
extern void (*kmem__table_move_hook)(void);
extern void (*kmem__table_walk_hook)(void);
extern _Atomic unsigned long kmem__table_locked_gets, kmem__table_rewalks;
#endif

/*
 * kmem_table_reclaim - give retired items and arrays whose readers have
 * left back to the slab. With wait, first wait for the readers of
 * everything retired so far (not from inside a get or scan callback).
 */
void kmem_table_reclaim(struct kmem_table *t, bool wait);

#endif
