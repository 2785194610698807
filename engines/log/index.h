/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The in-memory index of the kvs engine: key hash -> where the key's live
 * record is.
 *
 * Design, and why it is safe for any number of readers beside one writer:
 *
 * - An open-addressing table (linear probing, power-of-two size, load kept
 *   at most 0.7) of 16-byte slots: the key's 64-bit hash and a location,
 *   (segment slot number + 1) << 32 | offset. Keys are not stored: a match
 *   on the hash is confirmed by comparing the key bytes in the record the
 *   location points to, through the segment's mapping. Values never enter
 *   RAM. So a key costs 16 bytes / load factor, 23 to 46 bytes, whatever its
 *   length.
 * - A location of 0 is an empty slot and ends a probe; 1 marks a removed
 *   key. Slots never go from used back to empty within a table, so a probe
 *   can never stop early because of a concurrent change.
 * - Writers are serialised by the engine's write lock (functions ending in
 *   _locked). A writer stores a slot's hash before its location, the
 *   location with release order, and only after the record it points to is
 *   in the file. A reader loads the location with acquire order first and
 *   the hash after it, so it never pairs a published location with a hash
 *   written before it. A reused removed slot may briefly show a reader an
 *   older location with a newer hash or the reverse; the key comparison
 *   against the record rejects such a pair, and the result is that of a read
 *   ordered before or after the concurrent write, which is all a concurrent
 *   read may expect.
 * - Growing or compacting the table builds a new table and publishes its
 *   pointer; the old table is frozen from then on and freed through the
 *   epoch (epoch.h) once no reader can be probing it. A reader that loaded
 *   the old pointer sees the state as of the swap, which is a state the
 *   store was in after the reader started.
 * - Readers therefore take no lock and never wait: a get is an epoch enter,
 *   a probe, a key comparison in the mapping, a copy and an epoch exit.
 * - A key's place is the top bits of its "order": its hash mixed with a
 *   salt by a bijection, so slot order is order order and a table twice
 *   the size splits slot i into 2i and 2i + 1. That is what lets a walk of
 *   the keys (klog_index_scan) be resumed from an order value, a cursor
 *   that means the same in every table of the index: every key whose order
 *   is below it was visited. A walk reads slots in order.
 * - The salt is drawn when the index is created (at each open, and anew by
 *   a clear) and kept by every table that replaces it. Without it a walk's
 *   order would be hash order, and keys inserted in that order (a store
 *   copied from another, hint files written by compaction's walk and read
 *   back at open) would all have their homes at the start of a table that
 *   is smaller than the final one: linear probing turns that into one
 *   cluster and quadratic time. Under another salt that order is random.
 */
#ifndef KVS_LOG_INDEX_H
#define KVS_LOG_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "epoch.h"

#define KLOG_LOC_EMPTY 0
#define KLOG_LOC_REMOVED 1

static inline uint64_t klog_loc(unsigned sno, uint32_t off)
{
    return ((uint64_t)sno + 1) << 32 | off;
}

static inline bool klog_loc_live(uint64_t loc)
{
    return (loc >> 32) != 0;
}

static inline unsigned klog_loc_sno(uint64_t loc)
{
    return (unsigned)(loc >> 32) - 1;
}

static inline uint32_t klog_loc_off(uint64_t loc)
{
    return (uint32_t)loc;
}

struct klog_slot {
    atomic_uint_least64_t hash;
    atomic_uint_least64_t loc;
};

struct klog_table {
    struct klog_retired retired; /* first: freed through the epoch */
    size_t mask;                 /* slots - 1 */
    unsigned shift;              /* 64 - log2(slots): a key's home is its order >> shift */
    uint64_t salt;               /* of the order (above) */
    struct klog_slot slot[];
};

struct klog_index {
    _Atomic(struct klog_table *) table;
    struct klog_epoch *epoch;
    /* Under the write lock: */
    size_t used;  /* slots not empty (live or removed) */
    size_t live;  /* slots holding a location */
    bool opening; /* no reader can reach the index yet (klog_index_set_opening_locked) */
};

/*
 * A key comparison: does the record at loc hold the key the caller looks
 * for? Returns 1 yes, 0 no, or a negative kvs_err (the record could not be
 * read), which ends the lookup.
 */
typedef int (*klog_match_fn)(void *ctx, uint64_t loc);

int klog_index_init(struct klog_index *ix, struct klog_epoch *epoch);
/* Free the current table; retired tables belong to the epoch. */
void klog_index_destroy(struct klog_index *ix);

/* The current table, for a reader inside an epoch section. */
static inline const struct klog_table *klog_index_table(struct klog_index *ix)
{
    return atomic_load_explicit(&ix->table, memory_order_acquire);
}

/*
 * klog_index_find - look hash up in t (reader side). Returns 1 with *loc set,
 * 0 when absent, or the error of match.
 */
int klog_index_find(const struct klog_table *t, uint64_t hash, klog_match_fn match, void *ctx,
                    uint64_t *loc);

/* A key's order in t's index (see the top): a bijection of its hash. */
static inline uint64_t klog_index_order(const struct klog_table *t, uint64_t hash)
{
    uint64_t x = hash ^ t->salt; /* then MurmurHash3's finalizer, a bijection */
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* The slot where a probe for hash begins. */
static inline size_t klog_index_home(const struct klog_table *t, uint64_t hash)
{
    return (size_t)(klog_index_order(t, hash) >> t->shift);
}

/* Start loading the slot where a probe for hash begins (a hint: no
   effect on the table). Reader side. */
static inline void klog_index_prefetch(const struct klog_table *t, uint64_t hash)
{
    __builtin_prefetch(&t->slot[klog_index_home(t, hash)]);
}

/* Test hook: when not 0, the salt of every new index instead of a random
   one, so that a test can repeat a run call for call (the layout of
   compaction outputs follows the order of the walk). */
extern uint64_t kvs__klog_test_salt;

/*
 * A key met by klog_index_scan(): its slot's hash and location. Returns 1
 * when it counts towards the step's keys, 0 when it does not (the caller
 * found the record at loc is not of a key of that hash: the slot changed
 * meanwhile), or a negative kvs_err, which ends the walk.
 */
typedef int (*klog_visit_fn)(void *ctx, uint64_t hash, uint64_t loc);

/*
 * klog_index_scan - one step of a walk over the keys of t in their order
 * (reader side, inside an epoch section; t is one table throughout).
 * @cursor: 0 to start; every key whose order (klog_index_order) is below
 *          it counts as visited.
 * @want:   stop after about this many keys counted by visit (at least 1).
 * @max_slots: and after at most about this many slots (at least 1), so
 *          that a sparse table does not make one step long.
 * Calls visit for each live key with an order from cursor up to the step's
 * end, each slot at most once; *next receives that end, the cursor of the
 * next step, or 0 when the walk is complete. A key present in the index
 * from the first step to the last is visited at least once in a walk
 * however tables change between steps (one that grows or shrinks between
 * steps may visit some keys again); in one step over one table, at most
 * once. Returns 0 or the error of visit (*next untouched).
 */
int klog_index_scan(const struct klog_table *t, uint64_t cursor, size_t want, size_t max_slots,
                    klog_visit_fn visit, void *ctx, uint64_t *next);

/* The location in the slot where a probe for hash begins if that slot
   holds hash, else KLOG_LOC_EMPTY: what a lookup will most likely compare
   first, to prefetch. Reader side. */
uint64_t klog_index_first_loc(const struct klog_table *t, uint64_t hash);

/* Where a key is, or would go, in the current table (writer side). */
struct klog_index_pos {
    struct klog_slot *slot; /* the key's slot, or the free slot it would take */
    bool found;             /* slot holds the key */
    bool fresh;             /* slot was empty (not a removed mark) */
};

/*
 * klog_index_lookup_locked - find the key (hash, match) for a write. With
 * room, first grow the table if one more key would overload it, so that a
 * following klog_index_put_locked() cannot fail. The position stays valid
 * until the write lock is released or the index changes. Returns 0,
 * KVS_ENOMEM (nothing changed) or the error of match.
 */
int klog_index_lookup_locked(struct klog_index *ix, uint64_t hash, klog_match_fn match, void *ctx,
                             bool room, struct klog_index_pos *pos);

/* klog_index_reserve_locked - grow the table now if n more keys would
   overload it, so that lookups with room for up to n new keys do not need
   to. Returns 0 or KVS_ENOMEM (nothing changed). */
int klog_index_reserve_locked(struct klog_index *ix, size_t n);

/* Point the key at loc; *old gets its previous location (KLOG_LOC_EMPTY if
   it had none). pos comes from a lookup with room. */
void klog_index_put_locked(struct klog_index *ix, const struct klog_index_pos *pos, uint64_t hash,
                           uint64_t loc, uint64_t *old);

/* Mark the key removed; *old gets its location. pos->found must be true. */
void klog_index_remove_locked(struct klog_index *ix, const struct klog_index_pos *pos,
                              uint64_t *old);

/* klog_index_move_locked - if the slot of hash still holds from, make it to.
   Returns whether it did (false: the key was written or removed since). */
bool klog_index_move_locked(struct klog_index *ix, uint64_t hash, uint64_t from, uint64_t to);

/* klog_index_drop_locked - if the slot of hash still holds from, mark the
   key removed. Returns whether it did. */
bool klog_index_drop_locked(struct klog_index *ix, uint64_t hash, uint64_t from);

/* An empty table for klog_index_reset_locked(), allocated before a change
   that must not fail half way; NULL when out of memory. */
struct klog_table *klog_index_table_new(void);
void klog_index_table_free(struct klog_table *t);

/* klog_index_reset_locked - replace the table by t, an empty table. */
void klog_index_reset_locked(struct klog_index *ix, struct klog_table *t);

/*
 * klog_index_set_opening_locked - say whether readers may probe the index:
 * while opening is true (the store is being replayed and no reader can
 * reach it), a table replaced by growth or a reset is freed at once rather
 * than retired through the epoch. Retired tables wait for the background
 * thread's next reclaim, about a second after the open: replaying 1M keys
 * outgrows 32 MB of tables, which doubled the anonymous memory of a
 * freshly restarted server. Starts false.
 */
void klog_index_set_opening_locked(struct klog_index *ix, bool opening);

#endif
